"""Resources one client could exhaust, a drained shutdown, protocol edges and redaction, over real daemons."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2

from simulatord.v1 import exchange_pb2, session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import SERVER, stub
from tests.service.test_bad_input import details

Control = pb_grpc.SimulatorServiceStub


@contextlib.contextmanager
def daemon_with(*args: str) -> Iterator[tuple[EmbeddedDaemon, Control]]:
    with EmbeddedDaemon(list(args), server=SERVER) as running, grpc.insecure_channel(running.grpc_address) as ch:
        yield running, pb_grpc.SimulatorServiceStub(ch)


def seconds(value: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(value * 1e9))
    return out


def raw_exchange(url: str, data: bytes, wait: float = 0.0) -> bytes:
    """Sends bytes on a fresh connection (optionally pausing after them) and reads until the daemon closes."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(data)
        time.sleep(wait)
        received = b""
        with contextlib.suppress(OSError):
            while chunk := raw.recv(65536):
                received += chunk
    return received


def exchanges(control: Control, session: str) -> list[exchange_pb2.Exchange]:
    return list(control.ListExchanges(pb.ListExchangesRequest(parent=session)).exchanges)


def test_sigterm_drains_in_flight_traffic_into_the_journal_before_watchers_end() -> None:
    """A delayed answer gets a 503 saying the daemon stops, a held-open stream is closed; both are recorded and
    reach a watcher before its stream ends with OK; a waiter is told UNAVAILABLE; the log stays clean."""
    daemon = EmbeddedDaemon(server=SERVER).start()
    with grpc.insecure_channel(daemon.grpc_address) as channel:
        control = pb_grpc.SimulatorServiceStub(channel)
        slow = stub_pb2.Response(body_text="late", delay=seconds(30))
        held = stub_pb2.Response(
            sse=stub_pb2.SseStream(
                events=[stub_pb2.SseEvent(data="one")], after_last=stub_pb2.STREAM_AFTER_LAST_HOLD_OPEN
            )
        )
        created = control.CreateSession(
            pb.CreateSessionRequest(
                parent="tenants/drain",
                stubs=[
                    stub_pb2.Stub(
                        request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact=path)), responses=[answer]
                    )
                    for path, answer in (("/slow", slow), ("/held", held))
                ],
            )
        )
        name, base = created.session.name, created.session.base_url
        watched: list[exchange_pb2.Exchange] = []
        ended: list[grpc.StatusCode] = []
        stream = control.WatchExchanges(pb.WatchExchangesRequest(parent=name, start_sequence=1))

        def watch() -> None:
            for event in stream:
                watched.append(event.exchange)
            ended.append(stream.code())

        waited: list[grpc.RpcError] = []

        def wait() -> None:
            try:
                control.WaitForExchanges(pb.WaitForExchangesRequest(parent=name, count=100, timeout=seconds(60)))
            except grpc.RpcError as exc:
                waited.append(exc)

        answers: dict[str, object] = {}

        def get(path: str) -> None:
            try:
                with httpx.stream("GET", base + path, timeout=30) as response:
                    answers[path] = (response.status_code, response.read())
            except httpx.HTTPError as exc:
                answers[path] = exc

        threads = [threading.Thread(target=f) for f in (watch, wait)]
        threads += [threading.Thread(target=get, args=(path,)) for path in ("/slow", "/held")]
        for thread in threads:
            thread.start()
        time.sleep(1.0)  # both requests are in flight, the watch and the wait are live
        started = time.perf_counter()
        assert daemon.stop() == 0
        assert time.perf_counter() - started < 8
        for thread in threads:
            thread.join(10)

    assert answers["/slow"][0] == 503 and b"DAEMON_STOPPING" in answers["/slow"][1]  # type: ignore[index]
    assert isinstance(answers["/held"], httpx.HTTPError)  # the stream was cut, not ended as if complete
    by_path = {e.request.path: e for e in watched}
    assert set(by_path) == {"/slow", "/held"}
    assert by_path["/slow"].response.status == 503
    assert by_path["/held"].response.end == exchange_pb2.RESPONSE_END_ABORTED
    assert all("daemon stopped" in e.response.error for e in watched)
    assert ended == [grpc.StatusCode.OK]
    assert waited and waited[0].code() == grpc.StatusCode.UNAVAILABLE
    assert details(waited[0])[0] == "DAEMON_STOPPING"
    assert "Traceback" not in daemon.output and "CancelledError" not in daemon.output, daemon.output


def test_a_trickling_body_gets_408_and_is_recorded() -> None:
    with daemon_with("--request-read-timeout", "0.5") as (daemon, control):
        created = control.CreateSession(pb.CreateSessionRequest(parent="tenants/slow", stubs=[stub("POST", "/u")]))
        path = created.session.base_url.removeprefix(daemon.http_url)
        head = f"POST {path}/u HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".encode()
        answer = raw_exchange(daemon.http_url, head + b"0123456789", wait=1.5)
        assert answer.startswith(b"HTTP/1.1 408") and b"BODY_TOO_SLOW" in answer
        (recorded,) = exchanges(control, created.session.name)
        assert (recorded.response.status, recorded.request.body_size) == (408, 10)
        assert "did not arrive within 0.5 seconds" in recorded.response.error


def test_the_journal_budget_evicts_from_the_largest_journal_only() -> None:
    with daemon_with("--journal-budget-bytes", "300000") as (_, control):
        big = control.CreateSession(pb.CreateSessionRequest(parent="tenants/budget", stubs=[stub("POST", "/x")]))
        small = control.CreateSession(pb.CreateSessionRequest(parent="tenants/budget", stubs=[stub("POST", "/x")]))
        with httpx.Client() as http:
            for _ in range(3):
                http.post(small.session.base_url + "/x", content=b"s" * 1000)
            for _ in range(60):
                http.post(big.session.base_url + "/x", content=b"b" * 10_000)
        big_stats = control.GetSession(pb.GetSessionRequest(name=big.session.name)).session.journal_stats
        small_stats = control.GetSession(pb.GetSessionRequest(name=small.session.name)).session.journal_stats
        assert big_stats.evicted_count > 0 and small_stats.evicted_count == 0
        assert small_stats.retained_count == 3
        assert big_stats.retained_bytes + small_stats.retained_bytes <= 300_000
        listed = control.ListExchanges(pb.ListExchangesRequest(parent=big.session.name))
        assert listed.evicted_count == big_stats.evicted_count  # evictions are counted, never silent


def test_one_tenant_cannot_take_every_session_slot() -> None:
    with daemon_with("--max-sessions-per-tenant", "2") as (_, control):
        for _ in range(2):
            control.CreateSession(pb.CreateSessionRequest(parent="tenants/greedy"))
        with pytest.raises(grpc.RpcError) as refused:
            control.CreateSession(pb.CreateSessionRequest(parent="tenants/greedy"))
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert details(refused.value)[0] == "TENANT_QUOTA_EXCEEDED"
        control.CreateSession(pb.CreateSessionRequest(parent="tenants/modest"))


def test_redacted_headers_never_reach_the_journal_but_still_match() -> None:
    with daemon_with("--redact-headers", "Authorization") as (_, control):
        guarded = stub_pb2.Stub(
            request=stub_pb2.RequestMatcher(
                path=stub_pb2.PathMatcher(exact="/me"),
                headers=[stub_pb2.FieldMatcher(name="authorization", value=stub_pb2.StringMatcher(equals="Bearer ok"))],
            ),
            responses=[stub_pb2.Response(body_text="you")],
        )
        created = control.CreateSession(
            pb.CreateSessionRequest(
                parent="tenants/secret", session=session_pb2.Session(redact_headers=["X-Api-Key"]), stubs=[guarded]
            )
        )
        assert sorted(created.session.redact_headers) == ["authorization", "x-api-key"]
        with httpx.Client(base_url=created.session.base_url) as http:
            assert http.get("/me", headers={"authorization": "Bearer ok", "x-api-key": "k1"}).text == "you"
            assert http.get("/me", headers={"authorization": "Bearer stolen"}).status_code == 404
        matched, missed = exchanges(control, created.session.name)
        for exchange in (matched, missed):
            values = {h.name: h.value for h in exchange.request.headers}
            assert values["authorization"] == "[redacted]"
            assert values.get("x-api-key", "[redacted]") == "[redacted]"
        (mismatch,) = missed.near_misses[0].mismatches
        assert (mismatch.field, mismatch.actual) == ("headers.authorization", "[redacted]")


def test_content_length_with_transfer_encoding_is_refused_and_the_connection_closed(
    daemon: EmbeddedDaemon, control: Control, tenant: str
) -> None:
    created = control.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}", stubs=[stub("POST", "/x")]))
    path = created.session.base_url.removeprefix(daemon.http_url)
    smuggled = f"GET {path}/x HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    request = (
        f"POST {path}/x HTTP/1.1\r\nHost: x\r\nContent-Length: {len(smuggled) + 5}\r\n"
        "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    ).encode() + smuggled
    answer = raw_exchange(daemon.http_url, request)
    assert answer.startswith(b"HTTP/1.1 400")
    assert answer.count(b"HTTP/1.1") == 1  # the smuggled request was never served
    if SERVER == "uvicorn":  # httptools refuses the request itself: it never reaches the session
        assert exchanges(control, created.session.name) == []
        return
    assert b"AMBIGUOUS_FRAMING" in answer
    (recorded,) = exchanges(control, created.session.name)
    assert recorded.response.status == 400 and "RFC 9112" in recorded.response.error


def test_host_names_route_whatever_their_case_and_with_the_roots_dot(
    daemon: EmbeddedDaemon, control: Control, tenant: str
) -> None:
    created = control.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}", stubs=[stub(text="hi")]))
    for host in (created.session.host.upper(), created.session.host + "."):
        answer = httpx.get(daemon.http_url + "/hello", headers={"host": host})
        assert answer.text == "hi", host


def test_a_percent_escaped_base_url_addresses_no_session(daemon: EmbeddedDaemon, control: Control, tenant: str) -> None:
    """`/tenants/a%2Fb/...` decodes to another split of the path than the client wrote: no session."""
    control.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}", session_id="b", stubs=[stub()]))
    escaped = f"{daemon.http_url}/tenants/{tenant}%2Fsessions/sessions/b/hello"
    answer = httpx.get(httpx.URL(escaped))
    assert answer.status_code == 404 and answer.json()["reason"] == "NO_SESSION"
    assert httpx.get(f"{daemon.http_url}/tenants/{tenant}/sessions/b/hello").status_code == 200


def test_a_body_over_the_limit_records_how_much_arrived() -> None:
    with daemon_with("--max-body-bytes", "1000") as (_, control):
        created = control.CreateSession(pb.CreateSessionRequest(parent="tenants/big", stubs=[stub("POST", "/up")]))
        answer = httpx.post(created.session.base_url + "/up", content=b"x" * 50_000)
        assert answer.status_code == 413
        (recorded,) = exchanges(control, created.session.name)
        assert recorded.request.body_size > 1000 and recorded.request.body_truncated
        assert "limit of 1000 bytes" in recorded.response.error
