"""Proxy stubs against a real upstream on loopback: forwarding, recording once and always, SSE with its timing,
replay with the upstream stopped, and every way the upstream can fail."""

from __future__ import annotations

import gzip
import hashlib
import itertools
import time

import grpc
import httpx
import pytest
from google.protobuf import json_format

from simulatord.v1 import exchange_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from tests.service.proxy_support import BIG, SSE_GAP, Upstream, upstream
from tests.service.test_bad_input import details

__all__ = ["upstream"]  # a fixture, used by name

ONCE = stub_pb2.PROXY_MODE_RECORD_ONCE
ALWAYS = stub_pb2.PROXY_MODE_RECORD_ALWAYS
# Headers each HTTP server adds on its own (and a session answer carries both the upstream's and ours).
SERVERS_OWN = {"server", "date"}


def proxy_stub(upstream: str, mode: int = stub_pb2.PROXY_MODE_TRANSPARENT, **fields: object) -> stub_pb2.Stub:
    """A catch-all stub that forwards everything (priority -10, so that programmed stubs win)."""
    record = fields.pop("record", None)
    proxy = stub_pb2.Proxy(upstream=upstream, mode=mode)  # type: ignore[arg-type]
    if record is not None:
        proxy.record.CopyFrom(json_format.ParseDict(record, stub_pb2.RecordOptions()))
    for name, value in fields.items():
        json_format.ParseDict({name: value}, proxy)
    return stub_pb2.Stub(priority=-10, responses=[stub_pb2.Response(proxy=proxy)])


def program(control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, stub: stub_pb2.Stub) -> str:
    return control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=stub)).stub.name


def exchanges(control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse) -> list[exchange_pb2.Exchange]:
    return list(control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges)


def stubs(control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse) -> list[stub_pb2.Stub]:
    return list(control.ListStubs(pb.ListStubsRequest(parent=session.session.name)).stubs)


def recorded(control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse) -> list[stub_pb2.Stub]:
    return [s for s in stubs(control, session) if s.description.startswith("recorded from")]


def headers_of(response: httpx.Response) -> list[tuple[str, str]]:
    """The headers the upstream chose, in order (without framing and what every server adds)."""
    return [
        (k, v)
        for k, v in response.headers.multi_items()
        if k not in SERVERS_OWN | {"content-length", "transfer-encoding", "connection"}
    ]


def test_a_transparent_proxy_answers_as_the_upstream_does_and_the_journal_says_where_it_went(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    program(control, session, proxy_stub(upstream.url))
    program(
        control,
        session,
        stub_pb2.Stub(
            request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact="/local")),
            responses=[stub_pb2.Response(body_text="programmed")],
        ),
    )
    base = session.session.base_url
    for path in ("/json?a=1&a=2&b=x", "/gzip", "/status?code=429", "/nowhere"):
        direct = http.get(upstream.url + path)
        through = http.get(base + path)
        assert through.status_code == direct.status_code, path
        assert headers_of(through) == headers_of(direct), path
        if path.startswith("/json"):
            assert through.json()["n"] == direct.json()["n"] + 1 and through.json()["query"] == {"a": "2", "b": "x"}
        else:
            assert through.content == direct.content, path
    assert http.get(base + "/local").text == "programmed"  # a programmed stub still wins
    zipped = http.get(base + "/gzip")
    assert zipped.headers["content-encoding"] == "gzip" and zipped.text == "compressed hello " * 50
    with http.stream("GET", base + "/gzip") as raw:  # the upstream's bytes, not decoded on the way
        assert gzip.decompress(b"".join(raw.iter_raw())) == b"compressed hello " * 50

    journal = exchanges(control, session)
    first = journal[0]
    assert first.proxy.url == upstream.url + "/json?a=1&a=2&b=x"
    assert first.response.behaviours == ["proxy"] and first.response.status == 200
    assert first.proxy.upstream_latency.ToTimedelta().total_seconds() > 0
    assert not first.proxy.recorded_stub and not first.proxy.not_recorded
    assert not recorded(control, session)  # transparent: nothing becomes a stub


def test_the_upstream_gets_the_clients_request_less_the_per_connection_headers_plus_the_proxys_own(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    stub = proxy_stub(upstream.url, request_headers=[{"name": "x-api-key", "value": "real-key"}])
    program(control, session, stub)
    answer = http.post(
        session.session.base_url + "/echo?q=a%20b",
        content=b'{"model":"m"}',
        headers={"authorization": "Bearer t", "x-api-key": "test-key", "x-custom": "1", "content-type": "text/x"},
    )
    seen = answer.json()
    assert seen["authorization"] == "Bearer t" and seen["x-custom"] == "1" and seen["content-type"] == "text/x"
    assert seen["x-api-key"] == "real-key"  # the proxy's header replaces the client's
    assert seen["host"] == upstream.url.removeprefix("http://")
    assert "x-simulatord-session" not in seen
    method, path, _, body = upstream.received[-1]
    assert (method, path, body) == ("POST", "/echo?q=a%20b", b'{"model":"m"}')


def test_record_once_keeps_the_first_answer_and_replays_it_with_the_upstream_stopped(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    program(control, session, proxy_stub(upstream.url, ONCE, record={"keepSecrets": True}))
    base = session.session.base_url
    live = {path: http.get(base + path) for path in ("/json?x=1", "/json?x=2", "/gzip", "/big", "/status?code=503")}
    again = http.get(base + "/json?x=1")
    assert again.json() == live["/json?x=1"].json()  # answered by the recorded stub, not the upstream
    assert len(upstream.received) == 5

    upstream.stop()
    for path, first in live.items():
        replay = http.get(base + path)
        assert replay.status_code == first.status_code, path
        assert headers_of(replay) == headers_of(first), path
        assert replay.content == first.content, path
    assert hashlib.sha256(http.get(base + "/big").content).digest() == hashlib.sha256(BIG).digest()
    assert http.get(base + "/json?x=3").status_code == 502  # never recorded: the proxy is still asked

    made = recorded(control, session)
    assert len(made) == 5 and all(s.priority == -10 for s in made)
    [one] = [s for s in made if s.request.query and s.request.query[0].value.equals == "1"]
    assert (one.request.method, one.request.path.exact) == ("GET", "/json")
    assert one.responses[0].status == 200 and one.match_count == 2
    journal = exchanges(control, session)
    assert journal[0].proxy.recorded_stub == one.name
    assert journal[5].stub == one.name and not journal[5].HasField("proxy")
    assert journal[-1].proxy.not_recorded == "the upstream gave no answer"
    assert journal[-1].response.error.startswith("the upstream ")


def test_record_always_makes_ordered_sequences_that_replay_once_the_proxy_is_exported_away(
    control: pb_grpc.SimulatorServiceStub,
    session: pb.CreateSessionResponse,
    upstream: Upstream,
    http: httpx.Client,
    tenant: str,
) -> None:
    program(control, session, proxy_stub(upstream.url, ALWAYS))
    base = session.session.base_url
    seen = [http.get(base + path).json()["n"] for path in ("/items/1", "/items/2", "/items/1", "/items/1")]
    assert seen == [1, 2, 3, 4]  # every request reached the upstream

    exported = control.ExportSession(pb.ExportSessionRequest(name=session.session.name, remove_proxies=True)).session
    assert len(exported.stubs) == 2 and not any(s.responses[0].HasField("proxy") for s in exported.stubs)
    with_proxy = control.ExportSession(pb.ExportSessionRequest(name=session.session.name)).session
    assert len(with_proxy.stubs) == 3
    exported.parent = f"tenants/{tenant}"
    replay = control.CreateSession(exported)
    upstream.stop()
    try:
        again = [http.get(replay.session.base_url + "/items/1").json()["n"] for _ in range(4)]
        assert again == [1, 3, 4, 4]  # the sequence, then its last answer repeated
        assert http.get(replay.session.base_url + "/items/2").json()["n"] == 2
        cookie = http.get(replay.session.base_url + "/items/2").headers["set-cookie"]
        assert cookie == "[redacted]"  # a secret by default
    finally:
        control.DeleteSession(pb.DeleteSessionRequest(name=replay.session.name))


def test_recorded_matchers_use_the_chosen_fields_and_never_write_down_a_secret(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    options = {
        "matchHeaders": ["x-tenant", "authorization", "x-missing"],
        "matchJsonPaths": ["$.model", "$.absent"],
        "ignoreQuery": True,
    }
    program(control, session, proxy_stub(upstream.url, ONCE, record=options))
    base = session.session.base_url
    send = {"headers": {"x-tenant": "a", "authorization": "Bearer secret-1"}, "json": {"model": "m1", "x": 1}}
    first = http.post(base + "/json?page=1", **send)  # type: ignore[arg-type]
    [made] = recorded(control, session)
    matcher = made.request
    assert not matcher.query
    assert {(h.name, h.value.equals, h.absent) for h in matcher.headers} == {
        ("x-tenant", "a", False),
        ("authorization", "", False),  # present, value not recorded
        ("x-missing", "", True),
    }
    assert "secret-1" not in str(made) and "s3cr3t" not in str(made)
    assert made.responses[0].headers[-1].value == "[redacted]"  # set-cookie
    upstream.stop()
    same = http.post(
        base + "/json?page=9", headers={"x-tenant": "a", "authorization": "Bearer other"}, json={"model": "m1", "x": 2}
    )
    assert same.json() == first.json()
    for changed in (
        {"headers": {"x-tenant": "b", "authorization": "Bearer x"}, "json": {"model": "m1"}},
        {"headers": {"x-tenant": "a"}, "json": {"model": "m1"}},
        {"headers": {"x-tenant": "a", "authorization": "x", "x-missing": "1"}, "json": {"model": "m1"}},
        {"headers": {"x-tenant": "a", "authorization": "x"}, "json": {"model": "m2"}},
        {"headers": {"x-tenant": "a", "authorization": "x"}, "json": {"model": "m1", "absent": 0}},
    ):
        assert http.post(base + "/json", **changed).status_code == 502, changed  # type: ignore[arg-type]


def event_times(http: httpx.Client, url: str) -> tuple[bytes, list[float]]:
    """The body of an SSE answer and when each event arrived, relative to the response headers."""
    body, times = b"", []
    with http.stream("GET", url) as answer:
        start = time.monotonic()
        for chunk in answer.iter_raw():
            body += chunk
            times.extend(time.monotonic() - start for _ in range(chunk.count(b"\n\n")))
    return body, times


def test_an_sse_stream_passes_through_live_and_replays_with_its_event_spacing(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    program(control, session, proxy_stub(upstream.url, ONCE))
    url = session.session.base_url + "/sse"
    live, live_times = event_times(http, url)
    assert live == b'data: {"i": 0}\n\ndata: {"i": 1}\n\ndata: {"i": 2}\n\ndata: [DONE]\n\n'
    assert live_times[1] - live_times[0] >= SSE_GAP * 0.8  # passed through as it came, not buffered

    [made] = recorded(control, session)
    events = made.responses[0].sse.events
    assert [e.data for e in events] == ['{"i": 0}', '{"i": 1}', '{"i": 2}', "[DONE]"]
    assert all(e.delay.ToTimedelta().total_seconds() >= SSE_GAP * 0.8 for e in events[1:])
    assert {(h.name, h.value) for h in made.responses[0].headers} >= {("content-type", "text/event-stream")}

    upstream.stop()
    replay, replay_times = event_times(http, url)
    assert replay == live
    gaps = [b - a for a, b in itertools.pairwise(replay_times)]
    assert all(gap >= SSE_GAP * 0.8 for gap in gaps), gaps
    [ex] = [e for e in exchanges(control, session) if e.stub == made.name]
    assert ex.response.event_count == 4


def test_timing_scale_zero_records_the_events_without_their_waits(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    program(control, session, proxy_stub(upstream.url, ONCE, record={"timingScale": 0}))
    http.get(session.session.base_url + "/sse")
    [made] = recorded(control, session)
    assert len(made.responses[0].sse.events) == 4
    assert not any(e.HasField("delay") for e in made.responses[0].sse.events)


def test_sse_the_daemon_would_spell_otherwise_is_recorded_as_raw_chunks_byte_for_byte(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    program(control, session, proxy_stub(upstream.url, ONCE))
    url = session.session.base_url + "/sse-crlf"
    live = http.get(url).content
    assert live == b"data:one\r\n\r\nevent: two\r\ndata:2\r\n\r\n"
    [made] = recorded(control, session)
    assert [c.data for c in made.responses[0].chunked.chunks] == [b"data:one\r\n\r\n", b"event: two\r\ndata:2\r\n\r\n"]
    upstream.stop()
    assert http.get(url).content == live


def test_an_sse_stream_the_upstream_broke_off_is_broken_off_for_the_client_and_in_the_replay(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    program(control, session, proxy_stub(upstream.url, ONCE))
    url = session.session.base_url + "/sse-abort"

    def read_until_broken() -> bytes:
        got = b""
        with pytest.raises(httpx.HTTPError), http.stream("GET", url) as answer:
            for chunk in answer.iter_raw():
                got += chunk
        return got

    assert read_until_broken() == b"data: a\n\ndata: b\n\n"
    [made] = recorded(control, session)
    sse = made.responses[0].sse
    assert len(sse.events) == 2 and sse.abort_after == 2
    live = next(e for e in exchanges(control, session) if e.proxy.url)
    assert live.response.end == exchange_pb2.RESPONSE_END_ABORTED and "broke off" in live.response.error
    upstream.stop()
    assert read_until_broken() == b"data: a\n\ndata: b\n\n"


def test_a_body_the_upstream_broke_off_resets_the_client_and_is_not_recorded(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    program(control, session, proxy_stub(upstream.url, ONCE))
    with pytest.raises(httpx.HTTPError):
        http.get(session.session.base_url + "/broken")
    [ex] = exchanges(control, session)
    assert ex.response.end == exchange_pb2.RESPONSE_END_ABORTED and ex.response.status == 200
    assert ex.proxy.not_recorded.startswith("the upstream broke off the body")
    assert not recorded(control, session)


def test_an_upstream_that_is_down_or_slow_gets_502_or_504_with_a_reason(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    program(control, session, proxy_stub(upstream.url, timeout="0.3s"))
    slow = http.get(session.session.base_url + "/slow")
    assert slow.status_code == 504 and slow.json()["reason"] == "PROXY_UPSTREAM_TIMEOUT"
    upstream.stop()
    down = http.get(session.session.base_url + "/json")
    assert down.status_code == 502 and down.json()["reason"] == "PROXY_UPSTREAM_UNAVAILABLE"
    journal = exchanges(control, session)
    assert [e.response.status for e in journal] == [504, 502]
    assert "could not be reached" in journal[1].response.error


def test_proxies_are_checked_when_programmed(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse
) -> None:
    def refusal(stub: stub_pb2.Stub) -> tuple[grpc.StatusCode, str, list[str]]:
        with pytest.raises(grpc.RpcError) as caught:
            program(control, session, stub)
        reason, fields = details(caught.value)
        return caught.value.code(), reason, fields

    outside = proxy_stub("http://192.0.2.1:80")
    assert refusal(outside)[:2] == (grpc.StatusCode.PERMISSION_DENIED, "PROXY_TARGET_FORBIDDEN")
    cases = {
        "ftp://127.0.0.1/": "stub.responses[0].proxy.upstream",
        "http://127.0.0.1/x?y=1": "stub.responses[0].proxy.upstream",
        "http://127.0.0.1:99999": "stub.responses[0].proxy.upstream",
    }
    for url, field_path in cases.items():
        assert refusal(proxy_stub(url)) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_STUB", [field_path]), url
    with_body = proxy_stub("http://127.0.0.1:1")
    with_body.responses[0].body_text = "no"
    with_body.responses[0].sse.events.add(data="x")
    assert set(refusal(with_body)[2]) == {"stub.responses[0].proxy", "stub.responses[0].sse"}
    bad_record = proxy_stub(
        "http://127.0.0.1:1",
        record={"matchJsonPaths": ["$[?"], "redactHeaders": ["x"], "keepSecrets": True, "timingScale": -1},
        requestHeaders=[{"name": "host", "value": "x"}],
    )
    bad_record.responses[0].proxy.timeout.FromMilliseconds(0)
    assert set(refusal(bad_record)[2]) == {
        "stub.responses[0].proxy.record.match_json_paths[0]",
        "stub.responses[0].proxy.record.redact_headers",
        "stub.responses[0].proxy.record.timing_scale",
        "stub.responses[0].proxy.request_headers[0]",
        "stub.responses[0].proxy.timeout",
    }
    on_websocket = proxy_stub("http://127.0.0.1:1")
    on_websocket.websocket.SetInParent()
    assert refusal(on_websocket)[2] == ["stub.responses[0].proxy"]
    assert not stubs(control, session)  # nothing refused was kept


def test_once_the_client_has_an_answer_its_recording_answers_the_next_request(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    # The recording is made before the answer's last bytes leave, so a client that hangs up as soon as it has
    # them, and asks again at once, never reaches the upstream a second time; run often enough to catch a race.
    program(control, session, proxy_stub(upstream.url, ONCE))
    base = session.session.base_url
    for n in range(40):
        path = f"/json?x={n}" if n % 2 else f"/big?n={n}"
        first = httpx.get(base + path)  # a connection of its own, closed the moment the body is complete
        assert http.get(base + path).content == first.content
        assert len(upstream.received) == n + 1, path
    assert all(e.proxy.recorded_stub for e in exchanges(control, session) if e.HasField("proxy"))


def test_a_forwarded_exchange_is_in_the_journal_before_the_client_can_ask_again(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, upstream: Upstream, http: httpx.Client
) -> None:
    # The journal keeps exchanges in the order their answers were complete: a request sent after a proxied
    # answer arrived must come after it, or a test reading the journal sees them swapped.
    program(control, session, proxy_stub(upstream.url))
    control.CreateStub(
        pb.CreateStubRequest(
            parent=session.session.name,
            stub=stub_pb2.Stub(
                responses=[stub_pb2.Response(status=204)],
                request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact="/local")),
            ),
        )
    )
    base = session.session.base_url
    for n in range(40):
        http.get(f"{base}/json?x={n}")
        http.get(f"{base}/local")
    paths = [e.request.path for e in exchanges(control, session)]
    assert paths == ["/json", "/local"] * 40
