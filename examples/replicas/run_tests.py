"""Test runner of the replicas example: two simulatord replicas on one Redis, behind the one name `simulatord`.

It runs inside the `tests` container of examples/replicas/docker-compose.yml and checks, from inside the network,
that the one address leads to both replicas, that a session made through one is programmed, served and read
through the other, and that every replica lists every session. Prints a pytest-style report and exits 0 when
every test passed, 1 otherwise. Settings (env): READY_TIMEOUT_S (90), TENANT (replicas-example).
"""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
import urllib.error
import urllib.request
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from simulatord.v1 import simulator_service_pb2 as svc
from simulatord.v1 import simulator_service_pb2_grpc as svc_grpc
from simulatord.v1 import stub_pb2

READY_TIMEOUT_S = float(os.environ.get("READY_TIMEOUT_S", "90"))
TENANT = os.environ.get("TENANT", "replicas-example")
REPLICAS = ("simulatord-a", "simulatord-b")
RPC_TIMEOUT_S = 10.0


def wait_for(address: str) -> None:
    """Polls grpc.health.v1 Check until the replica says SERVING (DNS may not even resolve at first)."""
    with grpc.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        deadline = time.monotonic() + READY_TIMEOUT_S
        last = "no answer yet"
        while time.monotonic() < deadline:
            try:
                if (
                    health.Check(health_pb2.HealthCheckRequest(), timeout=2).status
                    == health_pb2.HealthCheckResponse.SERVING
                ):
                    return
            except grpc.RpcError as err:
                last = f"{err.code().name}: {err.details()}"
            time.sleep(0.5)
    raise RuntimeError(f"{address} not SERVING after {READY_TIMEOUT_S:.0f} s ({last})")


def control(host: str) -> svc_grpc.SimulatorServiceStub:
    return svc_grpc.SimulatorServiceStub(grpc.insecure_channel(f"{host}:50051"))


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read()


def get_status(url: str) -> tuple[int, bytes]:
    try:
        return get(url)
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def test_one_name_leads_to_both_replicas() -> None:
    behind = {info[4][0] for info in socket.getaddrinfo("simulatord", 50051, proto=socket.IPPROTO_TCP)}
    each = {socket.getaddrinfo(host, 50051, proto=socket.IPPROTO_TCP)[0][4][0] for host in REPLICAS}
    assert behind == each and len(each) == 2, (behind, each)


def test_a_session_made_on_one_replica_is_programmed_served_and_read_on_the_other() -> None:
    a, b = control(REPLICAS[0]), control(REPLICAS[1])
    session = a.CreateSession(svc.CreateSessionRequest(parent=f"tenants/{TENANT}"), timeout=RPC_TIMEOUT_S).session
    assert session.base_url.startswith("http://simulatord:8080/"), session.base_url
    hello = stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(method="GET", path=stub_pb2.PathMatcher(exact="/hello")),
        responses=[stub_pb2.Response(status=200, body_text="hello from the owner")],
    )
    b.CreateStub(svc.CreateStubRequest(parent=session.name, stub=hello), timeout=RPC_TIMEOUT_S)
    for host in (*REPLICAS, "simulatord"):  # each replica, and the one address, several times
        for _ in range(3):
            status, body = get(f"http://{host}:8080/{session.name}/hello")
            assert (status, body) == (200, b"hello from the owner"), (host, status, body)
    journal = b.ListExchanges(svc.ListExchangesRequest(parent=session.name), timeout=RPC_TIMEOUT_S).exchanges
    assert [e.sequence for e in journal] == list(range(1, 10)), [e.sequence for e in journal]
    relayed = [e for e in journal if any(h.name == "x-simulatord-relayed" for h in e.request.headers)]
    assert len(relayed) >= 3, "the three requests to simulatord-b went through it to the owner"
    b.DeleteSession(svc.DeleteSessionRequest(name=session.name), timeout=RPC_TIMEOUT_S)
    status, _ = get_status(f"http://simulatord-a:8080/{session.name}/hello")
    assert status == 404, status


def test_every_replica_lists_every_session() -> None:
    made = [
        control(host)
        .CreateSession(svc.CreateSessionRequest(parent=f"tenants/{TENANT}-list"), timeout=RPC_TIMEOUT_S)
        .session.name
        for host in REPLICAS
    ]
    for host in REPLICAS:
        listed = control(host).ListSessions(
            svc.ListSessionsRequest(parent=f"tenants/{TENANT}-list"), timeout=RPC_TIMEOUT_S
        )
        assert [s.name for s in listed.sessions] == made, (host, listed.sessions)


TESTS: list[Callable[[], None]] = [
    test_one_name_leads_to_both_replicas,
    test_a_session_made_on_one_replica_is_programmed_served_and_read_on_the_other,
    test_every_replica_lists_every_session,
]


def main() -> int:
    started = time.monotonic()
    print("=" * 30 + " test session starts " + "=" * 30, flush=True)
    try:
        for host in REPLICAS:
            wait_for(f"{host}:50051")
    except RuntimeError as err:
        print(f"ERROR readiness: {err}", flush=True)
        print(f"{'=' * 20} 1 error in {time.monotonic() - started:.2f}s {'=' * 20}", flush=True)
        return 1
    print(f"collected {len(TESTS)} items\n", flush=True)
    failures: list[tuple[str, str]] = []
    for test in TESTS:
        try:
            test()
        except Exception:  # an assertion, an RPC error or a network error: all are failures
            failures.append((test.__name__, traceback.format_exc()))
            print(f"run_tests.py::{test.__name__} FAILED", flush=True)
        else:
            print(f"run_tests.py::{test.__name__} PASSED", flush=True)
    for name, tb in failures:
        print(f"\n{'_' * 20} {name} {'_' * 20}\n{tb}", flush=True)
    passed = len(TESTS) - len(failures)
    parts = ([f"{len(failures)} failed"] if failures else []) + [f"{passed} passed"]
    print(f"\n{'=' * 20} {', '.join(parts)} in {time.monotonic() - started:.2f}s {'=' * 20}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
