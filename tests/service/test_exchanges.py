"""The journal over real gRPC: list and count with filters, wait for, watch live with resume, and verify."""

from __future__ import annotations

import queue
import threading
import time

import grpc
import httpx
from google.protobuf import duration_pb2

from simulatord.v1 import exchange_pb2, session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from tests.helpers import stub

Session = pb.CreateSessionResponse


def with_stubs(
    control: pb_grpc.SimulatorServiceStub, tenant: str, *stubs: stub_pb2.Stub, **settings: object
) -> session_pb2.Session:
    return control.CreateSession(
        pb.CreateSessionRequest(
            parent=f"tenants/{tenant}",
            stubs=stubs,
            session=session_pb2.Session(**settings),  # type: ignore[arg-type]
        )
    ).session


def test_list_records_what_was_sent_and_filters(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, tenant: str
) -> None:
    s = with_stubs(control, tenant, stub(method="POST", path="/v1/items", status=201))
    http.post(s.base_url + "/v1/items?dry=1", json={"name": "a"}, headers={"X-Trace": "abc"})
    http.get(s.base_url + "/v1/missing")
    everything = control.ListExchanges(pb.ListExchangesRequest(parent=s.name)).exchanges
    assert [e.sequence for e in everything] == [1, 2]
    first = everything[0]
    assert first.name == f"{s.name}/exchanges/1"
    assert first.request.method == "POST" and first.request.path == "/v1/items"
    assert first.request.query_string == "dry=1" and first.request.query[0].name == "dry"
    assert ("x-trace", "abc") in [(h.name, h.value) for h in first.request.headers]
    assert first.request.body == b'{"name":"a"}' and first.request.body_size == 12
    assert first.response.status == 201 and first.response.end == exchange_pb2.RESPONSE_END_COMPLETE
    assert first.stub.startswith(s.name + "/stubs/")
    unmatched = control.ListExchanges(
        pb.ListExchangesRequest(
            parent=s.name, filter=exchange_pb2.ExchangeFilter(match_state=exchange_pb2.MATCH_STATE_UNMATCHED)
        )
    ).exchanges
    assert [e.request.path for e in unmatched] == ["/v1/missing"]
    assert unmatched[0].near_misses[0].mismatches[0].field == "method"
    by_stub = control.CountExchanges(
        pb.CountExchangesRequest(parent=s.name, filter=exchange_pb2.ExchangeFilter(stub=first.stub))
    ).count
    assert by_stub == 1
    by_prefix = control.CountExchanges(
        pb.CountExchangesRequest(parent=s.name, filter=exchange_pb2.ExchangeFilter(path_prefix="/v1/", method="get"))
    ).count
    assert by_prefix == 1


def test_pagination_of_exchanges(control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session) -> None:
    for i in range(7):
        http.get(f"{session.session.base_url}/p/{i}")
    seen, token = [], ""
    while True:
        page = control.ListExchanges(
            pb.ListExchangesRequest(parent=session.session.name, page_size=3, page_token=token)
        )
        seen += [e.request.path for e in page.exchanges]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"/p/{i}" for i in range(7)]


def test_journal_limits_evict_and_report(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, tenant: str
) -> None:
    s = with_stubs(control, tenant, journal_limits=session_pb2.JournalLimits(max_exchanges=3, max_body_bytes=4))
    for i in range(5):
        http.post(f"{s.base_url}/n/{i}", content=b"0123456789")
    listed = control.ListExchanges(pb.ListExchangesRequest(parent=s.name))
    assert [e.sequence for e in listed.exchanges] == [3, 4, 5] and listed.evicted_count == 2
    assert listed.exchanges[0].request.body == b"0123" and listed.exchanges[0].request.body_truncated
    assert listed.exchanges[0].request.body_size == 10
    stats = control.GetSession(pb.GetSessionRequest(name=s.name)).session.journal_stats
    assert (stats.total_count, stats.retained_count, stats.evicted_count, stats.first_sequence) == (
        5,
        3,
        2,
        3,
    )


def test_wait_for_returns_when_enough_arrived(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    url = session.session.base_url

    def later() -> None:
        time.sleep(0.2)
        for _ in range(3):
            http.get(url + "/late")

    threading.Thread(target=later).start()
    started = time.monotonic()
    reply = control.WaitForExchanges(
        pb.WaitForExchangesRequest(
            parent=session.session.name,
            count=3,
            filter=exchange_pb2.ExchangeFilter(path="/late"),
            timeout=duration_pb2.Duration(seconds=5),
        )
    )
    assert reply.satisfied and reply.count == 3
    assert time.monotonic() - started < 4


def test_wait_for_timeout_says_what_was_seen(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    http.get(session.session.base_url + "/v1/other")
    reply = control.WaitForExchanges(
        pb.WaitForExchangesRequest(
            parent=session.session.name,
            count=1,
            filter=exchange_pb2.ExchangeFilter(path="/v1/expected"),
            timeout=duration_pb2.Duration(nanos=200_000_000),
        )
    )
    assert not reply.satisfied and reply.count == 0
    assert [e.request.path for e in reply.other_exchanges] == ["/v1/other"]


def test_watch_replays_then_streams_live_and_resumes(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    url, name = session.session.base_url, session.session.name
    http.get(url + "/before")
    events: queue.Queue[exchange_pb2.Exchange] = queue.Queue()
    stream = control.WatchExchanges(pb.WatchExchangesRequest(parent=name, start_sequence=1))

    def consume() -> None:
        try:
            for event in stream:
                events.put(event.exchange)
        except grpc.RpcError:
            pass  # cancelled below

    threading.Thread(target=consume, daemon=True).start()
    assert events.get(timeout=5).request.path == "/before"
    http.get(url + "/live")
    live = events.get(timeout=5)
    assert (live.sequence, live.request.path) == (2, "/live")
    stream.cancel()
    http.get(url + "/after")
    resumed = control.WatchExchanges(pb.WatchExchangesRequest(parent=name, start_sequence=live.sequence + 1))
    assert next(iter(resumed)).exchange.request.path == "/after"
    resumed.cancel()


def test_watch_ends_cleanly_when_the_session_is_deleted(
    control: pb_grpc.SimulatorServiceStub, session: Session
) -> None:
    stream = control.WatchExchanges(pb.WatchExchangesRequest(parent=session.session.name))
    threading.Timer(0.3, lambda: control.DeleteSession(pb.DeleteSessionRequest(name=session.session.name))).start()
    assert list(stream) == []
    assert stream.code() == grpc.StatusCode.OK


def test_watch_reports_evicted_gap(control: pb_grpc.SimulatorServiceStub, http: httpx.Client, tenant: str) -> None:
    s = with_stubs(control, tenant, journal_limits=session_pb2.JournalLimits(max_exchanges=2))
    for i in range(5):
        http.get(f"{s.base_url}/{i}")
    stream = control.WatchExchanges(pb.WatchExchangesRequest(parent=s.name, start_sequence=1))
    it = iter(stream)
    first = next(it)
    assert first.WhichOneof("event") == "evicted_count" and first.evicted_count == 3
    assert next(it).exchange.sequence == 4
    stream.cancel()


def test_verify_reports_everything_in_one_message(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, tenant: str
) -> None:
    s = with_stubs(
        control,
        tenant,
        stub(path="/used", description="used once"),
        stub(path="/never", description="never called"),
        stub(path="/twice", description="called twice", expect=stub_pb2.CallCountExpectation(at_least=2)),
    )
    http.get(s.base_url + "/used")
    http.get(s.base_url + "/twice")
    http.get(s.base_url + "/typo")
    report = control.VerifySession(pb.VerifySessionRequest(name=s.name))
    assert not report.ok
    assert [r.description for r in report.unused_stubs] == ["never called"]
    assert [(r.description, r.match_count, r.expected) for r in report.unmet_expectations] == [
        ("called twice", 1, "at least 2")
    ]
    assert [e.request.path for e in report.unmatched_exchanges] == ["/typo"]
    assert (
        "GET /typo" in report.summary and "never called" in report.summary and "expected at least 2" in report.summary
    )
    http.get(s.base_url + "/never")
    http.get(s.base_url + "/twice")
    control.ResetSession(pb.ResetSessionRequest(name=s.name, targets=[pb.RESET_TARGET_JOURNAL]))
    assert control.VerifySession(pb.VerifySessionRequest(name=s.name)).ok


def test_watch_continues_across_a_journal_reset(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    url, name = session.session.base_url, session.session.name
    for i in range(3):
        http.get(f"{url}/old/{i}")
    stream = control.WatchExchanges(pb.WatchExchangesRequest(parent=name, start_sequence=1))
    events = iter(stream)
    assert [next(events).exchange.sequence for _ in range(3)] == [1, 2, 3]
    control.ResetSession(pb.ResetSessionRequest(name=name, targets=[pb.RESET_TARGET_JOURNAL]))
    for i in range(4):  # more than were there before, so a sequence-number comparison alone would skip some
        http.get(f"{url}/new/{i}")
    assert [next(events).exchange.request.path for _ in range(4)] == [f"/new/{i}" for i in range(4)]
    stream.cancel()
