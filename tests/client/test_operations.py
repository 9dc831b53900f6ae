"""The sans-IO operations without a daemon: a fake transport answers each call.

The fake stands in for the generated gRPC stub only (it answers by method name); the operations, the records
and the reports under test are the client's own code, run as the sync and async drivers run them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2
from google.protobuf.message import Message

from simulatord.v1 import exchange_pb2, session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord_client import (
    Exchange,
    InvalidArgumentError,
    NotFoundError,
    SimulatorError,
    UnavailableError,
    stub,
)
from simulatord_client import operations as ops
from simulatord_client.rpc import Operation, Rpc, T, advance

SESSION = "tenants/t/sessions/s"
Answer = Callable[[Any], Message]


@dataclass
class Transport:
    """Answers calls by method name from `answers` (a reply, an error to raise, or a function of the request),
    one entry per call, and records what was asked for."""

    answers: dict[str, list[Message | SimulatorError | Answer]]
    calls: list[tuple[str, Any, float | None]] = field(default_factory=list)

    def __getattr__(self, method: str) -> Callable[..., Message]:
        def invoke(request: Any, timeout: float | None = None) -> Message:
            self.calls.append((method, request, timeout))
            answer = self.answers[method].pop(0)
            if isinstance(answer, SimulatorError):
                raise answer
            return answer(request) if callable(answer) else answer

        return invoke

    @property
    def methods(self) -> list[str]:
        return [method for method, _, _ in self.calls]


def drive(operation: Operation[T], transport: Transport) -> T:
    """What `Simulator._run` does, with the fake transport in place of the channel."""
    step = advance(operation)
    while isinstance(step, Rpc):
        try:
            reply = step.method(transport)(step.request, timeout=step.timeout)  # type: ignore[arg-type]
        except SimulatorError as error:
            step = advance(operation, error=error)
        else:
            step = advance(operation, reply)
    return step.value


def recorded(sequence: int, path: str, stub_name: str = "") -> exchange_pb2.Exchange:
    return exchange_pb2.Exchange(
        sequence=sequence,
        request=exchange_pb2.RecordedRequest(method="GET", path=path),
        response=exchange_pb2.RecordedResponse(status=200 if stub_name else 404),
        stub=stub_name,
    )


def test_listing_follows_page_tokens() -> None:
    transport = Transport(
        {
            "ListExchanges": [
                pb.ListExchangesResponse(exchanges=[recorded(1, "/a"), recorded(2, "/b")], next_page_token="p2"),
                pb.ListExchangesResponse(exchanges=[recorded(3, "/c")]),
            ]
        }
    )
    listed = drive(ops.list_exchanges(SESSION, {"method": "get", "path_prefix": "/"}), transport)
    assert [e.path for e in listed] == ["/a", "/b", "/c"]
    assert all(isinstance(e, Exchange) for e in listed)
    first, second = (request for _, request, _ in transport.calls)
    assert (first.page_token, second.page_token) == ("", "p2")
    assert first.page_size == second.page_size == ops.PAGE_SIZE
    assert first.filter == exchange_pb2.ExchangeFilter(method="GET", path_prefix="/")


def test_a_failed_verification_lists_the_stubs_to_describe_them() -> None:
    name = f"{SESSION}/stubs/lookup"
    unused = exchange_pb2.StubReport(stub=name)
    lookup = stub_pb2.Stub(name=name, request=stub_pb2.RequestMatcher(method="GET", path={"exact": "/users"}))
    transport = Transport(
        {
            "VerifySession": [pb.VerifySessionResponse(ok=False, unused_stubs=[unused])],
            "ListStubs": [pb.ListStubsResponse(stubs=[lookup])],
        }
    )
    with pytest.raises(AssertionError, match=r"Stubs never used:\n  - lookup \[GET /users\]"):
        drive(ops.verify(SESSION), transport)
    assert transport.methods == ["VerifySession", "ListStubs"]

    passing = Transport({"VerifySession": [pb.VerifySessionResponse(ok=True)]})
    drive(ops.verify(SESSION), passing)
    assert passing.methods == ["VerifySession"]


def test_a_session_whose_deferred_stubs_are_refused_is_deleted_again() -> None:
    refused = InvalidArgumentError("invalid stub", code=grpc.StatusCode.INVALID_ARGUMENT)
    transport = Transport(
        {
            "CreateSession": [pb.CreateSessionResponse(session=session_pb2.Session(name=SESSION))],
            "BatchCreateStubs": [refused],
            "DeleteSession": [pb.DeleteSessionResponse()],
        }
    )
    create = pb.CreateSessionRequest(parent="tenants/t")
    with pytest.raises(InvalidArgumentError):
        drive(ops.open_session(create, [(stub("GET", "/a"), "chosen")]), transport)
    assert transport.methods == ["CreateSession", "BatchCreateStubs", "DeleteSession"]
    batch, delete = transport.calls[1][1], transport.calls[2][1]
    assert [r.stub_id for r in batch.requests] == ["chosen"]
    assert delete == pb.DeleteSessionRequest(name=SESSION, allow_missing=True)


def test_stubs_go_one_by_one_or_in_a_batch() -> None:
    created = pb.CreateStubResponse(stub=stub_pb2.Stub(name=f"{SESSION}/stubs/one"))
    batch = pb.BatchCreateStubsResponse(stubs=[stub_pb2.Stub(name=f"{SESSION}/stubs/{n}") for n in ("a", "b")])
    transport = Transport({"CreateStub": [created], "BatchCreateStubs": [batch]})
    assert drive(ops.create_stubs(SESSION, []), transport) == []
    assert [r.id for r in drive(ops.create_stubs(SESSION, [stub("GET", "/one", stub_id="one")]), transport)] == ["one"]
    refs = drive(ops.create_stubs(SESSION, [stub("GET", "/a", stub_id="a"), stub("GET", "/b")]), transport)
    assert [r.id for r in refs] == ["a", "b"]
    assert transport.methods == ["CreateStub", "BatchCreateStubs"]
    assert transport.calls[0][1].stub_id == "one" and not transport.calls[0][1].stub.name
    assert [r.stub_id for r in transport.calls[1][1].requests] == ["a", ""]


def test_export_asks_to_remove_proxies_only_when_told() -> None:
    exported = pb.CreateSessionRequest(stubs=[stub("GET", "/recorded", text="as recorded")])
    transport = Transport({"ExportSession": [pb.ExportSessionResponse(session=exported)] * 2})
    assert drive(ops.export_session(SESSION), transport) == exported
    drive(ops.export_session(SESSION, remove_proxies=True), transport)
    requests = [request for _, request, _ in transport.calls]
    assert requests == [
        pb.ExportSessionRequest(name=SESSION),
        pb.ExportSessionRequest(name=SESSION, remove_proxies=True),
    ]


def test_wait_for_gives_the_daemon_time_to_answer_and_reports_a_timeout() -> None:
    missed = pb.WaitForExchangesResponse(satisfied=False, other_exchanges=[recorded(1, "/other")])
    transport = Transport({"WaitForExchanges": [missed]})
    with pytest.raises(AssertionError) as failure:
        drive(ops.wait_for(SESSION, 2, 0.5, {"path": "/hook"}), transport)
    assert str(failure.value).splitlines() == [
        f"timed out after 0.5s waiting for 2 request(s) matching [* /hook] in {SESSION}: 0 arrived",
        "  other requests that arrived (latest, at most 10):",
        "    #1 GET /other -> 404 (unmatched)",
    ]
    [(_, request, timeout)] = transport.calls
    assert request.timeout == duration_pb2.Duration(nanos=500_000_000) and request.count == 2
    assert timeout == 0.5 + ops.WAIT_GRACE


def test_heartbeats_stop_only_when_the_session_is_gone() -> None:
    gone = NotFoundError("session not found", code=grpc.StatusCode.NOT_FOUND)
    busy = UnavailableError("cannot reach simulatord", code=grpc.StatusCode.UNAVAILABLE)
    transport = Transport({"RefreshSession": [pb.RefreshSessionResponse(), busy, gone]})
    assert [drive(ops.heartbeat(SESSION, 0.2), transport) for _ in range(3)] == [True, True, False]
    assert {timeout for _, _, timeout in transport.calls} == {1.0}  # a beat may take a second, however short


def test_a_quiet_close_swallows_a_failed_delete() -> None:
    busy = UnavailableError("cannot reach simulatord", code=grpc.StatusCode.UNAVAILABLE)
    drive(ops.close_session(SESSION, quiet=True), Transport({"DeleteSession": [busy]}))
    with pytest.raises(UnavailableError):
        drive(ops.close_session(SESSION, quiet=False), Transport({"DeleteSession": [busy]}))


def test_reset_needs_a_target_before_any_call() -> None:
    transport = Transport({})
    with pytest.raises(ValueError, match="at least one"):
        drive(ops.reset_session(SESSION, stubs=False, journal=False, state=False), transport)
    assert transport.calls == []


def test_exchange_records_name_the_stub_as_the_proto_does() -> None:
    matched = Exchange.from_message(recorded(4, "/a", f"{SESSION}/stubs/get-a"))
    assert (matched.stub, matched.stub_id, matched.matched) == (f"{SESSION}/stubs/get-a", "get-a", True)
    assert str(matched) == "#4 GET /a -> 200 (get-a)"
    unmatched = Exchange.from_message(recorded(5, "/b"))
    assert (unmatched.stub, unmatched.stub_id, unmatched.matched) == ("", "", False)
