"""Replicas sharing one real redis-server: any replica answers any control call for any session (relayed to the
session's owner), names and quotas hold across them, and a session whose owner is gone is taken over."""

from __future__ import annotations

import contextlib
import signal
import socket
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
import websockets.exceptions
import websockets.sync.client
from google.protobuf import json_format

from simulatord.v1 import exchange_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.behaviours import websocket_stub, ws_binary, ws_close, ws_rule, ws_text
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import SERVER, TOKENS, bearer, stub, write_auth_file
from tests.redis_support import RedisServer, redis_server
from tests.service.test_bad_input import details
from tests.service.test_redis_store import eventually

__all__ = ["redis_server"]  # a fixture, used by name

Control = pb_grpc.SimulatorServiceStub


@contextlib.contextmanager
def replicas(redis: RedisServer, count: int, *args: str) -> Iterator[list[tuple[EmbeddedDaemon, Control]]]:
    with contextlib.ExitStack() as stack:
        running = []
        for _ in range(count):
            daemon = stack.enter_context(EmbeddedDaemon(["--store", redis.url, *args], server=SERVER))
            channel = stack.enter_context(grpc.insecure_channel(daemon.grpc_address))
            running.append((daemon, pb_grpc.SimulatorServiceStub(channel)))
        yield running


def refused(call: object) -> tuple[grpc.StatusCode, str, list[str]]:
    with pytest.raises(grpc.RpcError) as error:
        call()  # type: ignore[operator]
    reason, fields = details(error.value)
    return error.value.code(), reason, fields


def test_any_replica_programs_and_reads_a_session_another_owns(redis_server: RedisServer) -> None:
    with replicas(redis_server, 2) as [(a, on_a), (_, on_b)]:
        name = on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team")).session.name
        made = on_b.CreateStub(pb.CreateStubRequest(parent=name, stub_id="hi", stub=stub(path="/hi", text="hello")))
        assert made.stub.name == f"{name}/stubs/hi"
        assert [s.name for s in on_a.ListStubs(pb.ListStubsRequest(parent=name)).stubs] == [made.stub.name]

        watch = on_b.WatchExchanges(pb.WatchExchangesRequest(parent=name, start_sequence=1), timeout=20)
        assert httpx.get(f"{a.http_url}/{name}/hi").text == "hello"  # served by the owner
        waited = on_b.WaitForExchanges(
            pb.WaitForExchangesRequest(parent=name, count=1, filter=exchange_pb2.ExchangeFilter(path="/hi"))
        )
        assert waited.satisfied and waited.exchanges[0].stub == made.stub.name
        first = next(iter(watch))
        assert first.exchange.sequence == 1 and first.exchange.request.path == "/hi"
        watch.cancel()
        assert on_b.GetStub(pb.GetStubRequest(name=made.stub.name)).stub.match_count == 1
        assert on_b.VerifySession(pb.VerifySessionRequest(name=name)).ok

        on_b.DeleteSession(pb.DeleteSessionRequest(name=name))
        assert refused(lambda: on_a.GetSession(pb.GetSessionRequest(name=name)))[:2] == (
            grpc.StatusCode.NOT_FOUND,
            "SESSION_NOT_FOUND",
        )


def test_the_owners_errors_come_back_with_their_details(redis_server: RedisServer) -> None:
    with replicas(redis_server, 2) as [(_, on_a), (_, on_b)]:
        name = on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team")).session.name
        bad = stub_pb2.Stub(request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(regex="(")))
        code, reason, fields = refused(lambda: on_b.CreateStub(pb.CreateStubRequest(parent=name, stub=bad)))
        assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STUB")
        assert "stub.request.path.regex" in fields
        assert refused(lambda: on_b.GetStub(pb.GetStubRequest(name=f"{name}/stubs/nope")))[:2] == (
            grpc.StatusCode.NOT_FOUND,
            "STUB_NOT_FOUND",
        )


def test_names_and_quotas_hold_across_replicas_and_listings_show_every_replicas_sessions(
    redis_server: RedisServer,
) -> None:
    with replicas(redis_server, 2, "--max-sessions-per-tenant", "3") as [(_, on_a), (_, on_b)]:
        made = [
            on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team", session_id="one")).session.name,
            on_b.CreateSession(pb.CreateSessionRequest(parent="tenants/team", session_id="two")).session.name,
            on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team", session_id="three")).session.name,
        ]
        assert refused(lambda: on_b.CreateSession(pb.CreateSessionRequest(parent="tenants/team", session_id="one")))[
            :2
        ] == (grpc.StatusCode.ALREADY_EXISTS, "SESSION_ALREADY_EXISTS")
        assert refused(lambda: on_b.CreateSession(pb.CreateSessionRequest(parent="tenants/team")))[:2] == (
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "TENANT_QUOTA_EXCEEDED",
        )
        for control in (on_a, on_b):
            pages, token = [], ""
            while True:
                page = control.ListSessions(pb.ListSessionsRequest(parent="tenants/-", page_size=2, page_token=token))
                pages.append([s.name for s in page.sessions])
                if not (token := page.next_page_token):
                    break
            assert pages == [made[:2], made[2:]]
        on_b.DeleteSession(pb.DeleteSessionRequest(name=made[0]))  # frees the name and the slot everywhere
        on_b.CreateSession(pb.CreateSessionRequest(parent="tenants/team", session_id="one"))


def test_the_token_travels_with_a_relayed_call_and_is_checked_on_both_sides(
    redis_server: RedisServer, tmp_path: object
) -> None:
    auth = write_auth_file(tmp_path / "auth.yaml")  # type: ignore[operator]
    with replicas(redis_server, 2, "--auth", str(auth)) as [(_, on_a), (_, on_b)]:
        team_a = bearer(TOKENS["team-a"])
        name = on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team-a"), metadata=team_a).session.name
        assert on_b.GetSession(pb.GetSessionRequest(name=name), metadata=team_a).session.name == name
        assert refused(lambda: on_b.GetSession(pb.GetSessionRequest(name=name), metadata=bearer(TOKENS["team-b"])))[
            :2
        ] == (grpc.StatusCode.PERMISSION_DENIED, "TENANT_FORBIDDEN")
        assert refused(lambda: on_b.GetSession(pb.GetSessionRequest(name=name)))[:2] == (
            grpc.StatusCode.UNAUTHENTICATED,
            "TOKEN_MISSING",
        )


def test_a_killed_owners_sessions_are_taken_over_once_its_lease_runs_out(redis_server: RedisServer) -> None:
    with replicas(redis_server, 2) as [(a, on_a), (b, on_b)]:
        name = on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team")).session.name
        seq = stub(path="/n", text="first")
        seq.responses.add(status=200, body_text="second")
        on_a.CreateStub(pb.CreateStubRequest(parent=name, stub_id="n", stub=seq))
        assert httpx.get(f"{a.http_url}/{name}/n").text == "first"
        on_a.CountExchanges(pb.CountExchangesRequest(parent=name))  # answered: so it is in Redis
        assert a.process is not None
        a.process.send_signal(signal.SIGKILL)
        a.process.wait(10)
        killed = time.monotonic()

        journal = eventually(lambda: on_b.ListExchanges(pb.ListExchangesRequest(parent=name)))
        assert time.monotonic() - killed < 10
        assert [e.request.path for e in journal.exchanges] == ["/n"]
        assert httpx.get(f"{b.http_url}/{name}/n").text == "second"  # the sequence goes on where it was
        assert on_b.GetStub(pb.GetStubRequest(name=f"{name}/stubs/n")).stub.match_count == 2


def test_a_replica_that_stops_gracefully_hands_its_sessions_over_at_once(redis_server: RedisServer) -> None:
    with replicas(redis_server, 2) as [(a, on_a), (_, on_b)]:
        name = on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team")).session.name
        on_a.CreateStub(pb.CreateStubRequest(parent=name, stub=stub(path="/x")))
        assert a.stop() == 0
        started = time.monotonic()
        assert len(on_b.ListStubs(pb.ListStubsRequest(parent=name)).stubs) == 1  # no UNAVAILABLE, no lease wait
        assert time.monotonic() - started < 1.0


def parse_stub(spec: dict[str, object]) -> stub_pb2.Stub:
    return json_format.ParseDict(spec, stub_pb2.Stub())


def test_http_traffic_for_another_replicas_session_is_served_through_its_owner(redis_server: RedisServer) -> None:
    with replicas(redis_server, 2) as [(a, on_a), (b, _)]:
        created = on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team", session_id="shop")).session
        name = created.name
        on_a.CreateStub(
            pb.CreateStubRequest(
                parent=name,
                stub=parse_stub(
                    {
                        "request": {"method": "POST", "path": {"exact": "/orders"}},
                        "responses": [
                            {
                                "status": 201,
                                "headers": [{"name": "x-order", "value": "o-1"}],
                                "bodyJson": {"id": 1},
                            }
                        ],
                    }
                ),
            )
        )
        sse = {"events": [{"data": f"e{n}", "delay": "0.2s"} for n in range(3)]}
        on_a.CreateStub(
            pb.CreateStubRequest(
                parent=name, stub=parse_stub({"request": {"path": {"exact": "/sse"}}, "responses": [{"sse": sse}]})
            )
        )
        reset = {"request": {"path": {"exact": "/reset"}}, "responses": [{"fault": {"kind": "FAULT_KIND_RESET"}}]}
        on_a.CreateStub(pb.CreateStubRequest(parent=name, stub=parse_stub(reset)))

        with httpx.Client(timeout=10) as http:
            direct = http.post(f"{a.http_url}/{name}/orders", json={"n": 1}, headers={"x-id": "7"})
            relayed = http.post(f"{b.http_url}/{name}/orders", json={"n": 1}, headers={"x-id": "7"})
            assert (relayed.status_code, relayed.json(), relayed.headers["x-order"]) == (201, {"id": 1}, "o-1")
            assert [(k, v) for k, v in relayed.headers.items() if k not in ("date", "server")] == [
                (k, v) for k, v in direct.headers.items() if k not in ("date", "server")
            ]
            # Routed by Host at the replica that got it, and by Host again at the owner.
            by_host = http.post(
                f"{b.http_url}/orders", json={"n": 2}, headers={"x-id": "8", "host": "shop.team.localhost"}
            )
            assert by_host.status_code == 201 and by_host.headers["x-order"] == "o-1"

            arrivals = []
            started = time.monotonic()
            with http.stream("GET", f"{b.http_url}/{name}/sse") as stream:
                for line in stream.iter_lines():
                    if line.startswith("data:"):
                        arrivals.append(time.monotonic() - started)
            assert len(arrivals) == 3 and arrivals[2] - arrivals[0] > 0.3  # relayed as they came, not at the end
            with pytest.raises(httpx.TransportError):
                http.get(f"{b.http_url}/{name}/reset")

        journal = on_a.ListExchanges(pb.ListExchangesRequest(parent=name)).exchanges
        assert [(e.request.method, e.request.path, e.response.status) for e in journal] == [
            ("POST", "/orders", 201),
            ("POST", "/orders", 201),
            ("POST", "/orders", 201),
            ("GET", "/sse", 200),
            ("GET", "/reset", 0),
        ]  # each recorded once, by the owner
        relayed_headers = {h.name: h.value for h in journal[1].request.headers}
        assert relayed_headers["x-id"] == "7" and relayed_headers["x-simulatord-relayed"] == "1"
        assert "x-simulatord-relayed" not in {h.name for h in journal[0].request.headers}  # came straight
        assert journal[2].request.routing == exchange_pb2.ROUTING_HOST


def test_traffic_for_a_killed_owners_session_gets_503_until_another_replica_takes_it_over(
    redis_server: RedisServer,
) -> None:
    with replicas(redis_server, 2) as [(a, on_a), (b, _)]:
        name = on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team")).session.name
        on_a.CreateStub(pb.CreateStubRequest(parent=name, stub=stub(path="/x", text="here")))
        assert a.process is not None
        a.process.send_signal(signal.SIGKILL)
        a.process.wait(10)
        answer = httpx.get(f"{b.http_url}/{name}/x")
        assert (answer.status_code, answer.json()["reason"], answer.headers["retry-after"]) == (
            503,
            "OWNER_UNAVAILABLE",
            "1",
        )
        deadline = time.monotonic() + 10
        while answer.status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.2)
            answer = httpx.get(f"{b.http_url}/{name}/x")
        assert answer.text == "here"


def test_a_websocket_to_another_replicas_session_is_relayed_both_ways_with_its_close(
    redis_server: RedisServer,
) -> None:
    with replicas(redis_server, 2) as [(_, on_a), (b, _)]:
        name = on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team", session_id="chat")).session.name
        chat = websocket_stub(
            "/rooms/{room}",
            on_connect=[ws_text("welcome to {{ path.room }}", template=True)],
            rules=[
                ws_rule(ws_text("pong"), equals="ping"),
                ws_rule(ws_binary(b"\x00\x01"), contains="bytes"),
                ws_rule(ws_text("bye"), equals="quit", close=ws_close(4001, "client asked")),
            ],
            subprotocol="chat.v1",
        )
        on_a.CreateStub(pb.CreateStubRequest(parent=name, stub=chat))
        base = b.http_url.replace("http://", "ws://")
        with websockets.sync.client.connect(f"{base}/{name}/rooms/lobby", subprotocols=["chat.v1"]) as client:
            assert client.subprotocol == "chat.v1"
            assert client.recv(timeout=5) == "welcome to lobby"
            client.send("ping")
            assert client.recv(timeout=5) == "pong"
            client.send("some bytes")
            assert client.recv(timeout=5) == b"\x00\x01"
            client.send("quit")
            assert client.recv(timeout=5) == "bye"
            with pytest.raises(websockets.exceptions.ConnectionClosed):
                client.recv(timeout=5)
            assert (client.close_code, client.close_reason) == (4001, "client asked")
        # Routed by Host here; the owner gets the session's name in the routing header.
        port = int(b.http_url.rsplit(":", 1)[1])
        with websockets.sync.client.connect(
            f"ws://chat.team.localhost:{port}/rooms/hall",
            sock=socket.create_connection(("127.0.0.1", port)),  # the Host header names the session
            subprotocols=["chat.v1"],
        ) as client:
            assert client.recv(timeout=5) == "welcome to hall"
        # An upgrade the owner refuses (no stub there) is refused with the owner's answer.
        with pytest.raises(websockets.exceptions.InvalidStatus) as refused_upgrade:
            websockets.sync.client.connect(f"{base}/{name}/nowhere").close()
        assert refused_upgrade.value.response.status_code == 404
        assert b"SESSION_NOT_FOUND" not in refused_upgrade.value.response.body  # the owner's unmatched answer

        journal = on_a.ListExchanges(pb.ListExchangesRequest(parent=name)).exchanges
        upgrades = [e for e in journal if e.kind == exchange_pb2.EXCHANGE_KIND_WEBSOCKET_UPGRADE]
        assert [(e.request.path, e.response.status) for e in upgrades] == [
            ("/rooms/lobby", 101),
            ("/rooms/hall", 101),
            ("/nowhere", 404),
        ]


def test_a_request_relayed_once_is_never_relayed_again(redis_server: RedisServer) -> None:
    with replicas(redis_server, 2) as [(_, on_a), (b, _)]:
        name = on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team")).session.name
        answer = httpx.get(f"{b.http_url}/{name}/x", headers={"x-simulatord-relayed": "1"})
        assert (answer.status_code, answer.json()["reason"]) == (503, "OWNER_UNAVAILABLE")
        assert "is changing" in answer.json()["error"]


def test_a_replica_whose_lease_lapsed_gives_up_what_another_took_over(redis_server: RedisServer) -> None:
    with replicas(redis_server, 2) as [(a, on_a), (_, on_b)]:
        name = on_a.CreateSession(pb.CreateSessionRequest(parent="tenants/team")).session.name
        on_a.CreateStub(pb.CreateStubRequest(parent=name, stub=stub(path="/who", text="old")))
        assert a.process is not None
        a.process.send_signal(signal.SIGSTOP)  # a stalled owner: alive, but its lease runs out
        try:
            eventually(lambda: on_b.GetSession(pb.GetSessionRequest(name=name), timeout=2))  # taken over by b
            on_b.CreateStub(pb.CreateStubRequest(parent=name, stub=stub(path="/who", text="new")), timeout=5)
        finally:
            a.process.send_signal(signal.SIGCONT)
        # Once a's next heartbeat finds its lease gone, a drops the session and relays to b like any replica.
        deadline = time.monotonic() + 10
        while (answer := httpx.get(f"{a.http_url}/{name}/who")).text != "new" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert answer.text == "new"
        assert on_a.GetSession(pb.GetSessionRequest(name=name)).session.stub_count == 2
