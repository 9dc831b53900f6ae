"""The `simulatord` command: serve the daemon, check its health, list sessions, tail exchanges, export and import."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from simulatord.config import ENV_PREFIX, Settings, env_default, flags, resolve_loop, resolve_server, store_problem
from simulatord.errors import InvalidArgument
from simulatord.names import ID_RULE, WILDCARD, parse_session, valid_id

DEFAULT_ADDRESS = f"127.0.0.1:{Settings.grpc_port}"


# Names are checked here, not only by the daemon: its error would name the request field (`parent`), not the flag.
def _session_name(value: str) -> str:
    try:
        parse_session(value)
    except InvalidArgument as exc:
        example = value if valid_id(value) else "checkout"
        hint = (
            ""
            if value.count("/") == 3  # the form is right, an id is not: the description says which rule
            else f"; give the session's full name, e.g. tenants/acme/sessions/{example} (`simulatord sessions list`)"
        )
        raise argparse.ArgumentTypeError(exc.violations[0].description + hint) from None
    return value


def _tenant_id(value: str) -> str:
    if not (valid_id(value) or value == WILDCARD):
        raise argparse.ArgumentTypeError(
            f"tenant id {value!r} {ID_RULE}; give the id alone (acme, not tenants/acme), or {WILDCARD} for every tenant"
        )
    return value


_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _boolean(value: str) -> bool:
    if value.lower() in _TRUE + _FALSE:
        return value.lower() in _TRUE
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(_TRUE + _FALSE)}, got {value!r}")


def _switch(p: argparse.ArgumentParser, name: str, default: bool, help: str) -> None:
    """A bool setting: `--name` (or `--name false`, as its environment variable takes) and `--no-name`."""
    flag = name.replace("_", "-")
    p.add_argument(
        f"--{flag}", nargs="?", const=True, type=_boolean, default=env_default(name, default), metavar="BOOL", help=help
    )
    # SUPPRESS: the default is the one above (with its environment fallback), not store_false's True.
    p.add_argument(f"--no-{flag}", dest=name, action="store_false", default=argparse.SUPPRESS, help=f"--{flag} false")


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the daemon (flags fall back to SIMULATORD_* environment variables)")
    for setting in flags():
        default: Any = setting.default
        if isinstance(default, bool):
            _switch(p, setting.name, default, f"{setting.metadata['help']} [{ENV_PREFIX}{setting.name.upper()}]")
            continue
        convert: Callable[[str], Any] = Path if default is None else type(default)
        p.add_argument(
            "--" + setting.name.replace("_", "-"),
            type=convert,
            default=env_default(setting.name, default),
            choices=setting.metadata["choices"] or None,
            help=f"{setting.metadata['help']} [{ENV_PREFIX}{setting.name.upper()}]",
        )
    p.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default=env_default("loop", "auto"),
        help=f"event loop: asyncio, uvloop, or auto: uvloop under uvicorn when installed [{ENV_PREFIX}LOOP]",
    )


def _address(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--address",
        default=os.environ.get("SIMULATORD_ADDRESS", DEFAULT_ADDRESS),
        help="gRPC address of the daemon [SIMULATORD_ADDRESS]",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("SIMULATORD_TOKEN", ""),
        help="bearer token, for a daemon started with --auth [SIMULATORD_TOKEN]",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="simulatord", description="API simulator for integration tests")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_parser(sub)
    health = sub.add_parser("health", help="exit 0 when the daemon's gRPC health check says SERVING")
    _address(health)
    health.add_argument("--timeout", type=float, default=3.0)
    sessions = sub.add_parser("sessions", help="inspect sessions").add_subparsers(dest="action", required=True)
    ls = sessions.add_parser("list", help="list sessions of a tenant (default: every tenant)")
    _address(ls)
    ls.add_argument("--tenant", type=_tenant_id, default=WILDCARD, help="a tenant id, or - for every tenant")
    exchanges = sub.add_parser("exchanges", help="inspect exchanges").add_subparsers(dest="action", required=True)
    watch = exchanges.add_parser("watch", help="live tail of a session's exchanges")
    _address(watch)
    watch.add_argument("--session", type=_session_name, required=True, help="tenants/{tenant}/sessions/{session}")
    watch.add_argument("--from-start", action="store_true", help="replay what the journal keeps first")
    watch.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    export = sub.add_parser("export", help="write a session's settings and stubs as a template file (JSON)")
    _address(export)
    export.add_argument("session", type=_session_name, help="tenants/{tenant}/sessions/{session}")
    export.add_argument("-o", "--output", default="-", help="file to write (default: stdout)")
    export.add_argument("--journal", default="", help="also write the exchanges the journal keeps to FILE (JSON lines)")
    export.add_argument(
        "--remove-proxies", action="store_true", help="leave out the stubs that proxy, keeping those they recorded"
    )
    imported = sub.add_parser("import", help="create a session from a template file (what export writes)")
    _address(imported)
    imported.add_argument("file", help="a JSON or YAML template file")
    imported.add_argument("--tenant", type=_tenant_id, default="default", help="the tenant to create it in")
    imported.add_argument("--session-id", default="", help="the new session's id (default: generated)")
    wiremock = sub.add_parser("import-wiremock", help="convert WireMock mappings into a session's stubs")
    _address(wiremock)
    wiremock.add_argument("root", help="WireMock's root dir (mappings/ and __files/), a mappings dir or one file")
    wiremock.add_argument("--session", type=_session_name, required=True, help="tenants/{tenant}/sessions/{session}")
    wiremock.add_argument("--strict", action="store_true", help="create nothing when anything is not converted")
    wiremock.add_argument("--dry-run", action="store_true", help="convert and report only")
    openapi = sub.add_parser("import-openapi", help="stubs from an OpenAPI 3 document's examples, validating requests")
    _address(openapi)
    openapi.add_argument("document", help="the OpenAPI document, JSON or YAML")
    openapi.add_argument("--session", type=_session_name, required=True, help="tenants/{tenant}/sessions/{session}")
    openapi.add_argument("--base-path", default="", help="a prefix for every path, e.g. /v1")
    openapi.add_argument("--strict", action="store_true", help="create nothing when anything is not converted")
    openapi.add_argument("--dry-run", action="store_true", help="convert and report only")
    return parser


def serve_settings(args: argparse.Namespace) -> tuple[Settings, str]:
    """The settings and the event loop `serve`'s arguments ask for, `auto` resolved."""
    settings = Settings(**{setting.name: getattr(args, setting.name) for setting in flags()})
    settings = replace(settings, server=resolve_server(settings.server, settings.tls_cert is not None))
    return settings, resolve_loop(args.loop, settings.server)


def parse_serve(argv: Sequence[str]) -> tuple[Settings, str]:
    """`serve_settings` of `simulatord serve ARGV` (environment fallbacks included); argparse exits on bad ones."""
    return serve_settings(build_parser().parse_args(["serve", *argv]))


def _serve(args: argparse.Namespace) -> int:
    from simulatord import server
    from simulatord.control.auth import AuthFileError
    from simulatord.control.templates import TemplateError
    from simulatord.webhooks.targets import Targets

    logging.basicConfig(level=str(args.log_level).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings, loop = serve_settings(args)
    try:
        Targets.parse(settings.webhook_targets)
    except ValueError as exc:
        print(f"simulatord: cannot start: {exc}", file=sys.stderr)
        return 2
    if (problem := store_problem(settings.store)) is not None:
        print(f"simulatord: cannot start: {problem}", file=sys.stderr)
        return 2
    runner = asyncio.run
    if loop == "uvloop":
        import uvloop  # optional extra: pip install simulatord[fast]

        runner = uvloop.run
    try:
        runner(server.run(settings, on_ready=server.print_ready))
    except (TemplateError, AuthFileError, OSError) as exc:  # bad files, ports in use: one line, no traceback
        print(f"simulatord: cannot start: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args)
    from simulatord import tools

    try:
        if args.command == "health":
            return tools.health(args.address, args.timeout, args.token)
        if args.command == "sessions":
            return tools.list_sessions(args.address, args.tenant, args.token)
        if args.command == "export":
            return tools.export_session(
                args.address, args.session, args.output, args.journal, args.token, remove_proxies=args.remove_proxies
            )
        if args.command == "import":
            return tools.import_session(args.address, args.file, args.tenant, args.session_id, args.token)
        if args.command == "import-wiremock":
            return tools.import_wiremock(args.address, args.root, args.session, args.strict, args.dry_run, args.token)
        if args.command == "import-openapi":
            return tools.import_openapi(
                args.address, args.document, args.session, args.base_path, args.strict, args.dry_run, args.token
            )
        color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
        return tools.watch(args.address, args.session, args.from_start, color, args.token)
    except KeyboardInterrupt:  # Ctrl-C while waiting for the daemon: no traceback
        return 130


if __name__ == "__main__":
    sys.exit(main())
