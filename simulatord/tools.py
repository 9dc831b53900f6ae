"""Human-facing commands that talk to a running daemon over gRPC: health, session list, live exchange tail."""

from __future__ import annotations

import sys
from datetime import datetime

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from simulatord.v1 import exchange_pb2, session_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc

_COLORS = {"2": "\033[32m", "3": "\033[36m", "4": "\033[33m", "5": "\033[31m"}
_RESET = "\033[0m"


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
        print(f"simulatord at {address}: {exc.code().name}", file=sys.stderr)
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
                reply = stub.ListSessions(request, metadata=_metadata(token))
            except grpc.RpcError as exc:
                print(f"simulatord at {address}: {exc.code().name}: {exc.details()}", file=sys.stderr)
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
        try:
            for event in stub.WatchExchanges(request, metadata=_metadata(token)):
                if event.HasField("exchange"):
                    print(format_exchange(event.exchange, color), flush=True)
                else:
                    print(
                        f"... {event.evicted_count} exchange(s) evicted before they could be shown",
                        flush=True,
                    )
        except grpc.RpcError as exc:
            print(f"watch ended: {exc.code().name}: {exc.details()}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            return 0
    return 0
