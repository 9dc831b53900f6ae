"""Human-facing commands that talk to a running daemon over gRPC: health, session list, live exchange tail, and
sessions as files (export, import, WireMock mappings import)."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from simulatord.config import Settings
from simulatord.v1 import exchange_pb2, session_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc

_COLORS = {"2": "\033[32m", "3": "\033[36m", "4": "\033[33m", "5": "\033[31m"}
_RESET = "\033[0m"
# What grpc says when an HTTP server answered instead of a gRPC one: hypercorn (HTTP/2) answers the call's
# path with a 404, an HTTP/1.1-only server (uvicorn) the HTTP/2 preface with a 400.
_HTTP_NOT_GRPC = ("Received http2 header with status", "Trying to connect an http1.x server")
# Errors the daemon itself sends carry google.rpc status details; a transport failure has none.
_DAEMON_DETAILS = "grpc-status-details-bin"
DEFAULT_GRPC_PORT = Settings.grpc_port
# A port that accepts connections but never speaks HTTP/2 would otherwise keep a one-shot command waiting forever.
CALL_TIMEOUT = 30.0


def failure(address: str, exc: grpc.RpcError) -> str:
    """One line saying why a command got no answer from the daemon at `address`, and what to do about it."""
    code, details = exc.code(), exc.details() or ""
    if code in (grpc.StatusCode.UNIMPLEMENTED, grpc.StatusCode.UNAVAILABLE) and any(
        words in details for words in _HTTP_NOT_GRPC
    ):
        return (
            f"simulatord: {address} answers HTTP, not gRPC: is it the daemon's HTTP port (--http-port)? "
            f"Commands need its gRPC port (simulatord serve --grpc-port, default {DEFAULT_GRPC_PORT}): "
            "give it as --address or SIMULATORD_ADDRESS"
        )
    from_daemon = isinstance(exc, grpc.Call) and any(key == _DAEMON_DETAILS for key, _ in exc.trailing_metadata() or ())
    if code == grpc.StatusCode.UNAVAILABLE and not from_daemon:
        return (
            f"simulatord: cannot reach the daemon at {address} (is it running? start it with `simulatord serve`, "
            "or give its gRPC address as --address or SIMULATORD_ADDRESS)"
        )
    if code == grpc.StatusCode.DEADLINE_EXCEEDED and not from_daemon:
        return f"simulatord: no gRPC answer from {address} in time (is it the daemon's gRPC port, --grpc-port?)"
    return f"simulatord at {address}: {code.name}: {details}"


def _metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata for a daemon started with --auth; none without a token."""
    token = token.strip()  # a token read from a file or a secret often ends in a newline, which metadata refuses
    return (("authorization", f"Bearer {token}"),) if token else ()


def health(address: str, timeout: float, token: str = "") -> int:
    # Health stays open with --auth (probes carry no token); a given token is sent anyway, so that every command
    # takes the same flags and a proxy in front of the daemon that wants one gets it.
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=timeout, metadata=_metadata(token)
            )
    except grpc.RpcError as exc:
        print(failure(address, exc), file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"simulatord at {address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def list_sessions(address: str, tenant: str, token: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.SimulatorServiceStub(channel)
        page = ""
        rows: list[session_pb2.Session] = []
        while True:
            request = pb.ListSessionsRequest(parent=f"tenants/{tenant}", page_token=page)
            try:
                reply = stub.ListSessions(request, timeout=CALL_TIMEOUT, metadata=_metadata(token))
            except grpc.RpcError as exc:
                print(failure(address, exc), file=sys.stderr)
                return 1
            rows.extend(reply.sessions)
            page = reply.next_page_token
            if not page:
                break
    print(f"{'SESSION':<48} {'STUBS':>5} {'EXCHANGES':>9} {'EXPIRES':<20} BASE URL")
    for s in rows:
        expires = s.expire_time.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")
        print(f"{s.name:<48} {s.stub_count:>5} {s.journal_stats.total_count:>9} {expires:<20} {s.base_url}")
    return 0


def format_exchange(exchange: exchange_pb2.Exchange, color: bool) -> str:
    req, resp = exchange.request, exchange.response
    when = datetime.fromtimestamp(req.receive_time.ToMicroseconds() / 1e6).strftime("%H:%M:%S.%f")[:-3]
    status = str(resp.status)
    if color:
        status = f"{_COLORS.get(status[:1], '')}{status}{_RESET}"
    query = f"?{req.query_string}" if req.query_string else ""
    took = resp.duration.ToMicroseconds() / 1000
    target = exchange.stub.rsplit("/", 1)[-1] if exchange.stub else "UNMATCHED"
    line = f"#{exchange.sequence:<5} {when} {req.method:<7} {req.path}{query} -> {status} ({took:.1f} ms) {target}"
    for miss in exchange.near_misses:
        why = "; ".join(f"{m.field}: expected {m.expected}, got {m.actual}" for m in miss.mismatches)
        line += f"\n        near miss {miss.stub.rsplit('/', 1)[-1]}: {why}"
    return line


def watch(address: str, session: str, from_start: bool, color: bool, token: str = "") -> int:
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.SimulatorServiceStub(channel)
        request = pb.WatchExchangesRequest(parent=session, start_sequence=1 if from_start else 0)
        shown = False
        try:
            for event in stub.WatchExchanges(request, metadata=_metadata(token)):
                shown = True
                if event.HasField("exchange"):
                    print(format_exchange(event.exchange, color), flush=True)
                else:
                    print(
                        f"... {event.evicted_count} exchange(s) evicted before they could be shown",
                        flush=True,
                    )
        except grpc.RpcError as exc:
            # Once the watch has shown something, the daemon was reachable: say the stream ended, and why.
            ended = f"watch ended: {exc.code().name}: {exc.details()}" if shown else failure(address, exc)
            print(ended, file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
    return 0


def _write(text: str, out: str) -> None:
    if out == "-":
        sys.stdout.write(text)
    else:
        Path(out).write_text(text, encoding="utf-8")


def template_json(template: pb.CreateSessionRequest) -> str:
    """A session template file's text: stable (sorted keys), so exporting an imported export gives the same bytes."""
    return json_format.MessageToJson(template, indent=2, sort_keys=True) + "\n"


def export_session(
    address: str, session: str, out: str, journal: str, token: str = "", *, remove_proxies: bool = False
) -> int:
    """Writes the session's template (`out`, - for stdout) and, given `journal`, its exchanges as JSON lines; with
    `remove_proxies`, the template leaves out the stubs that proxy, so a recorded session replays on its own."""
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.SimulatorServiceStub(channel)
        try:
            reply = stub.ExportSession(
                pb.ExportSessionRequest(name=session, remove_proxies=remove_proxies),
                timeout=CALL_TIMEOUT,
                metadata=_metadata(token),
            )
            lines: list[str] = []
            page = ""
            while journal:
                listed = stub.ListExchanges(
                    pb.ListExchangesRequest(parent=session, page_token=page),
                    timeout=CALL_TIMEOUT,
                    metadata=_metadata(token),
                )
                lines += [json_format.MessageToJson(e, indent=None, sort_keys=True) + "\n" for e in listed.exchanges]
                page = listed.next_page_token
                if not page:
                    break
        except grpc.RpcError as exc:
            print(failure(address, exc), file=sys.stderr)
            return 1
    _write(template_json(reply.session), out)
    if journal:
        _write("".join(lines), journal)
    return 0


def import_session(address: str, path: str, tenant: str, session_id: str, token: str = "") -> int:
    """Creates a session from a template file (JSON or YAML, as `export` writes and `serve --templates` reads)."""
    from simulatord.control.templates import TemplateError, read_template

    try:
        request = read_template(Path(path))
    except TemplateError as exc:
        print(f"simulatord: {exc}", file=sys.stderr)
        return 2
    request.parent, request.session_id = f"tenants/{tenant}", session_id
    with grpc.insecure_channel(address) as channel:
        try:
            reply = pb_grpc.SimulatorServiceStub(channel).CreateSession(
                request, timeout=CALL_TIMEOUT, metadata=_metadata(token)
            )
        except grpc.RpcError as exc:
            print(failure(address, exc), file=sys.stderr)
            return 1
    print(f"{reply.session.name} {len(reply.stubs)} stubs {reply.session.base_url}")
    return 0


def import_wiremock(address: str, root: str, session: str, strict: bool, dry_run: bool, token: str = "") -> int:
    """Converts a WireMock root directory (or a mappings directory, or one mapping file) into the session's stubs
    and prints what was not converted."""
    from simulatord.control.convert.wiremock import root_files

    try:
        mapping_paths, body_files = root_files(Path(root))
    except FileNotFoundError as exc:
        print(f"simulatord: {exc}", file=sys.stderr)
        return 2
    request = pb.ImportWireMockMappingsRequest(parent=session, strict=strict, validate_only=dry_run)
    for name, path in mapping_paths:
        request.mapping_files.add(path=name, content=path.read_bytes())
    for name, content in body_files.items():
        request.body_files.add(path=name, content=content)
    if not request.mapping_files:
        print(f"simulatord: no mapping files (*.json) under {root}", file=sys.stderr)
        return 2
    with grpc.insecure_channel(address) as channel:
        try:
            reply = pb_grpc.SimulatorServiceStub(channel).ImportWireMockMappings(
                request, timeout=CALL_TIMEOUT, metadata=_metadata(token)
            )
        except grpc.RpcError as exc:
            print(failure(address, exc), file=sys.stderr)
            return 1
    done = "would create" if dry_run else "created"
    print(f"{done} {len(reply.stubs)} stubs from {len(request.mapping_files)} mapping file(s) in {session}")
    for gap in reply.unconverted:
        print(f"  not converted: {gap.mapping}: {gap.field}: {gap.reason}")
    return 0


def import_openapi(
    address: str, path: str, session: str, base_path: str, strict: bool, dry_run: bool, token: str = ""
) -> int:
    """Converts an OpenAPI document into the session's stubs and prints what was not converted."""
    request = pb.ImportOpenApiRequest(
        parent=session, document=Path(path).read_bytes(), base_path=base_path, strict=strict, validate_only=dry_run
    )
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.SimulatorServiceStub(channel)
        try:
            reply = stub.ImportOpenApi(request, timeout=CALL_TIMEOUT, metadata=_metadata(token))
            unmatched = stub.GetSession(
                pb.GetSessionRequest(name=session), timeout=CALL_TIMEOUT, metadata=_metadata(token)
            ).session.unmatched_status
        except grpc.RpcError as exc:
            print(failure(address, exc), file=sys.stderr)
            return 1
    done = "would create" if dry_run else "created"
    print(f"{done} {len(reply.stubs)} stubs from {path} in {session}")
    for gap in reply.unconverted:
        print(f"  not converted: {gap.operation}: {gap.field}: {gap.reason}")
    if unmatched != 400:
        print(f"  note: requests that fail validation get the session's unmatched status, {unmatched}, not 400")
    return 0
