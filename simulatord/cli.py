"""The `simulatord` command: serve the daemon, check its health, list sessions and tail exchanges."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from simulatord.config import Settings, env_default

DEFAULT_ADDRESS = "127.0.0.1:50051"


def _serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = Settings()
    p = sub.add_parser("serve", help="run the daemon (flags fall back to SIMULATORD_* environment variables)")
    p.add_argument("--host", default=env_default("host", d.host), help="address to listen on [SIMULATORD_HOST]")
    p.add_argument(
        "--http-port",
        type=int,
        default=env_default("http_port", d.http_port),
        help="HTTP port, 0 picks a free one [SIMULATORD_HTTP_PORT]",
    )
    p.add_argument(
        "--grpc-port",
        type=int,
        default=env_default("grpc_port", d.grpc_port),
        help="gRPC port, 0 picks a free one [SIMULATORD_GRPC_PORT]",
    )
    p.add_argument(
        "--public-url",
        default=env_default("public_url", d.public_url),
        help="base of session URLs as clients reach them, e.g. http://simulatord:8080 [SIMULATORD_PUBLIC_URL]",
    )
    p.add_argument(
        "--host-suffix",
        default=env_default("host_suffix", d.host_suffix),
        help="domain for Host routing: {session}.{tenant}.SUFFIX [SIMULATORD_HOST_SUFFIX]",
    )
    p.add_argument(
        "--templates",
        default=env_default("templates", ""),
        help="directory of session templates (*.json, *.yaml) [SIMULATORD_TEMPLATES]",
    )
    p.add_argument(
        "--default-ttl",
        type=float,
        default=env_default("default_ttl", d.default_ttl),
        help="seconds a session lives without RefreshSession [SIMULATORD_DEFAULT_TTL]",
    )
    p.add_argument(
        "--max-sessions",
        type=int,
        default=env_default("max_sessions", d.max_sessions),
        help="[SIMULATORD_MAX_SESSIONS]",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=env_default("max_body_bytes", d.max_body_bytes),
        help="largest request body accepted; larger ones get 413 [SIMULATORD_MAX_BODY_BYTES]",
    )
    p.add_argument(
        "--max-stream-seconds",
        type=float,
        default=env_default("max_stream_seconds", d.max_stream_seconds),
        help="streams and hangs that do not end by themselves end after this [SIMULATORD_MAX_STREAM_SECONDS]",
    )
    p.add_argument(
        "--tls-cert",
        default=env_default("tls_cert", ""),
        help="PEM certificate: serve HTTPS (HTTP/2 by ALPN) instead of HTTP [SIMULATORD_TLS_CERT]",
    )
    p.add_argument(
        "--tls-key", default=env_default("tls_key", ""), help="PEM private key for --tls-cert [SIMULATORD_TLS_KEY]"
    )
    p.add_argument(
        "--journal-max-exchanges",
        type=int,
        default=env_default("journal_max_exchanges", d.journal_max_exchanges),
        help="default journal bound per session [SIMULATORD_JOURNAL_MAX_EXCHANGES]",
    )
    p.add_argument(
        "--journal-max-bytes",
        type=int,
        default=env_default("journal_max_bytes", d.journal_max_bytes),
        help="default journal bound per session [SIMULATORD_JOURNAL_MAX_BYTES]",
    )
    p.add_argument(
        "--journal-budget-bytes",
        type=int,
        default=env_default("journal_budget_bytes", d.journal_budget_bytes),
        help="what all journals keep together; past it the largest evict first [SIMULATORD_JOURNAL_BUDGET_BYTES]",
    )
    p.add_argument(
        "--max-sessions-per-tenant",
        type=int,
        default=env_default("max_sessions_per_tenant", d.max_sessions_per_tenant),
        help="so that one tenant cannot take every slot of --max-sessions [SIMULATORD_MAX_SESSIONS_PER_TENANT]",
    )
    p.add_argument(
        "--request-read-timeout",
        type=float,
        default=env_default("request_read_timeout", d.request_read_timeout),
        help="seconds to receive a request's body; slower ones get 408 [SIMULATORD_REQUEST_READ_TIMEOUT]",
    )
    p.add_argument(
        "--redact-headers",
        default=env_default("redact_headers", d.redact_headers),
        help="request headers whose values every journal records as [redacted], comma-separated, e.g. "
        "authorization,x-api-key,cookie (sessions may add their own) [SIMULATORD_REDACT_HEADERS]",
    )
    p.add_argument(
        "--loop",
        choices=["asyncio", "uvloop"],
        default=env_default("loop", "asyncio"),
        help="event loop implementation [SIMULATORD_LOOP]",
    )
    p.add_argument(
        "--server",
        choices=["hypercorn", "uvicorn"],
        default=env_default("server", d.server),
        help="ASGI server: hypercorn (HTTP/1.1, h2c, HTTP/2 over TLS) or uvicorn with httptools (HTTP/1.1 only, "
        "faster; pip install 'simulatord[fast]') [SIMULATORD_SERVER]",
    )
    p.add_argument(
        "--auth",
        default=env_default("auth", ""),
        help="JSON or YAML file of bearer tokens and the tenants each may use; without it any client may use "
        "every tenant [SIMULATORD_AUTH]",
    )
    p.add_argument("--log-level", default=env_default("log_level", d.log_level), help="[SIMULATORD_LOG_LEVEL]")


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
    ls.add_argument("--tenant", default="-")
    exchanges = sub.add_parser("exchanges", help="inspect exchanges").add_subparsers(dest="action", required=True)
    watch = exchanges.add_parser("watch", help="live tail of a session's exchanges")
    _address(watch)
    watch.add_argument("--session", required=True, help="tenants/{tenant}/sessions/{session}")
    watch.add_argument("--from-start", action="store_true", help="replay what the journal keeps first")
    watch.add_argument("--color", choices=["auto", "always", "never"], default="auto")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from simulatord import server
    from simulatord.control.auth import AuthFileError
    from simulatord.control.templates import TemplateError

    logging.basicConfig(level=str(args.log_level).upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings(
        host=args.host,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        public_url=args.public_url,
        host_suffix=args.host_suffix,
        templates=Path(args.templates) if args.templates else None,
        default_ttl=args.default_ttl,
        max_sessions=args.max_sessions,
        max_body_bytes=args.max_body_bytes,
        max_stream_seconds=args.max_stream_seconds,
        tls_cert=Path(args.tls_cert) if args.tls_cert else None,
        tls_key=Path(args.tls_key) if args.tls_key else None,
        journal_max_exchanges=args.journal_max_exchanges,
        journal_max_bytes=args.journal_max_bytes,
        journal_budget_bytes=args.journal_budget_bytes,
        max_sessions_per_tenant=args.max_sessions_per_tenant,
        request_read_timeout=args.request_read_timeout,
        redact_headers=args.redact_headers,
        server=args.server,
        auth=Path(args.auth) if args.auth else None,
    )
    runner = asyncio.run
    if args.loop == "uvloop":
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

    if args.command == "health":
        return tools.health(args.address, args.timeout, args.token)
    if args.command == "sessions":
        return tools.list_sessions(args.address, args.tenant, args.token)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    return tools.watch(args.address, args.session, args.from_start, color, args.token)


if __name__ == "__main__":
    sys.exit(main())
