"""Stubs over real gRPC and HTTP: priorities, sequences, times, replace, delete, addressing and near misses."""

from __future__ import annotations

import json
import time

import grpc
import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord.v1 import stub_pb2
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import stub, value

Session = pb.CreateSessionResponse


def add(control: pb_grpc.SimulatorServiceStub, session: Session, *stubs: stub_pb2.Stub) -> list[stub_pb2.Stub]:
    reply = control.BatchCreateStubs(
        pb.BatchCreateStubsRequest(parent=session.session.name, requests=[pb.CreateStubRequest(stub=s) for s in stubs])
    )
    return list(reply.stubs)


def test_priority_then_newest_first(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    url = session.session.base_url
    add(control, session, stub(text="old"), stub(text="new"))
    assert http.get(url + "/hello").text == "new"
    add(control, session, stub(text="important", priority=10))
    assert http.get(url + "/hello").text == "important"
    listed = control.ListStubs(pb.ListStubsRequest(parent=session.session.name)).stubs
    assert [s.responses[0].body_text for s in listed] == ["important", "new", "old"]


@pytest.mark.parametrize(
    ("after_last", "expected"),
    [
        (stub_pb2.SEQUENCE_END_UNSPECIFIED, [503, 503, 200, 200, 200]),
        (stub_pb2.SEQUENCE_END_CYCLE, [503, 503, 200, 503, 503]),
        (stub_pb2.SEQUENCE_END_STOP_MATCHING, [503, 503, 200, 404, 404]),
    ],
)
def test_sequences(
    control: pb_grpc.SimulatorServiceStub,
    http: httpx.Client,
    session: Session,
    after_last: int,
    expected: list[int],
) -> None:
    flaky = stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact="/flaky")),
        responses=[
            stub_pb2.Response(status=503),
            stub_pb2.Response(status=503),
            stub_pb2.Response(status=200),
        ],
        after_last=after_last,
    )
    add(control, session, flaky)
    assert [http.get(session.session.base_url + "/flaky").status_code for _ in expected] == expected


def test_times_falls_through_to_the_next_stub(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    add(control, session, stub(text="fallback"), stub(text="once", times=1))
    url = session.session.base_url + "/hello"
    assert [http.get(url).text for _ in range(3)] == ["once", "fallback", "fallback"]
    counts = {
        s.responses[0].body_text: s.match_count
        for s in control.ListStubs(pb.ListStubsRequest(parent=session.session.name)).stubs
    }
    assert counts == {"once": 1, "fallback": 2}


def test_matching_on_query_headers_and_json_body(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    chat = stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(
            method="POST",
            path=stub_pb2.PathMatcher(exact="/v1/chat/completions"),
            query=[stub_pb2.FieldMatcher(name="api-version", value=stub_pb2.StringMatcher(prefix="2024"))],
            headers=[
                stub_pb2.FieldMatcher(name="Authorization", value=stub_pb2.StringMatcher(regex=r"^Bearer sk-\w+$"))
            ],
            body=[
                stub_pb2.BodyMatcher(json_subset=value({"model": "gpt-4o"})),
                stub_pb2.BodyMatcher(
                    json_path=stub_pb2.JsonPathMatcher(expression="$.messages[-1].role", equals=value("user"))
                ),
            ],
        ),
        responses=[stub_pb2.Response(status=200, body_json=value({"choices": [{"index": 0}]}))],
    )
    add(control, session, chat)
    url = session.session.base_url + "/v1/chat/completions?api-version=2024-06-01"
    good = {"model": "gpt-4o", "messages": [{"role": "system"}, {"role": "user", "content": "hi"}]}
    ok = http.post(url, json=good, headers={"authorization": "Bearer sk-abc"})
    assert ok.status_code == 200 and ok.json() == {"choices": [{"index": 0}]}
    miss = http.post(url, json={**good, "model": "gpt-3"}, headers={"authorization": "Bearer sk-abc"})
    assert miss.status_code == 404
    near = miss.json()["near_misses"][0]
    assert [m["field"] for m in near["mismatches"]] == ["body[0]"]
    assert "gpt-3" in near["mismatches"][0]["actual"]


def test_get_replace_delete(control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session) -> None:
    created = control.CreateStub(
        pb.CreateStubRequest(parent=session.session.name, stub_id="greeting", stub=stub(text="hi"))
    ).stub
    assert created.name == session.session.name + "/stubs/greeting"
    url = session.session.base_url + "/hello"
    assert http.get(url).text == "hi"
    replacement = stub(text="hello again")
    replacement.name = created.name
    replaced = control.ReplaceStub(pb.ReplaceStubRequest(stub=replacement)).stub
    assert replaced.match_count == 0 and http.get(url).text == "hello again"
    assert control.GetStub(pb.GetStubRequest(name=created.name)).stub.match_count == 1
    control.DeleteStub(pb.DeleteStubRequest(name=created.name))
    assert http.get(url).status_code == 404
    with pytest.raises(grpc.RpcError) as caught:
        control.GetStub(pb.GetStubRequest(name=created.name))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_batch_is_all_or_nothing(control: pb_grpc.SimulatorServiceStub, session: Session) -> None:
    bad = stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(regex="(")), responses=[stub_pb2.Response()]
    )
    with pytest.raises(grpc.RpcError) as caught:
        add(control, session, stub(), bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert control.GetSession(pb.GetSessionRequest(name=session.session.name)).session.stub_count == 0


def test_addressing_by_header_and_host(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, daemon, session: Session
) -> None:  # type: ignore[no-untyped-def]
    add(control, session, stub(path="/v1/models", text="models"))
    s = session.session
    assert http.get(daemon.http_url + "/v1/models", headers={"x-simulatord-session": s.name}).text == "models"
    assert http.get(daemon.http_url + "/v1/models", headers={"host": s.host}).text == "models"
    routings = [e.request.routing for e in control.ListExchanges(pb.ListExchangesRequest(parent=s.name)).exchanges]
    assert routings == [2 + 1, 2]  # ROUTING_HEADER, ROUTING_HOST
    unaddressed = http.get(daemon.http_url + "/v1/models")
    assert unaddressed.status_code == 404 and unaddressed.json()["reason"] == "NO_SESSION"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("checkout", "must be 'tenants/{tenant}/sessions/{session}', got 'checkout'"),
        ("tenants/ACME/sessions/s1", "ids in 'tenants/ACME/sessions/s1' must be 1-63 characters of a-z"),
    ],
)
def test_a_malformed_session_header_says_what_is_wrong(
    http: httpx.Client, daemon: EmbeddedDaemon, value: str, problem: str
) -> None:
    expected = f"the x-simulatord-session header's value is malformed: {problem}"
    answer = http.post(daemon.http_url + "/v1/models", headers={"x-simulatord-session": value}, content=b"{}")
    assert answer.status_code == 400 and answer.json()["reason"] == "MALFORMED_SESSION_HEADER"
    assert answer.json()["error"].startswith(expected)
    ws_url = daemon.http_url.replace("http://", "ws://", 1) + "/chat"
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url, additional_headers={"x-simulatord-session": value}, open_timeout=5)
    assert refused.value.response.status_code == 400
    assert json.loads(refused.value.response.body or b"{}")["error"].startswith(expected)


def test_delay_and_unmatched_status(control: pb_grpc.SimulatorServiceStub, http: httpx.Client, tenant: str) -> None:
    from simulatord.v1 import session_pb2

    created = control.CreateSession(
        pb.CreateSessionRequest(
            parent=f"tenants/{tenant}",
            session=session_pb2.Session(unmatched_status=599),
            stubs=[
                stub_pb2.Stub(
                    request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact="/slow")),
                    responses=[stub_pb2.Response(status=204, delay={"nanos": 300_000_000})],
                )
            ],
        )
    )
    started = time.monotonic()
    assert http.get(created.session.base_url + "/slow").status_code == 204
    assert time.monotonic() - started >= 0.3
    with pytest.raises(httpx.ReadTimeout):
        http.get(created.session.base_url + "/slow", timeout=0.1)
    assert http.get(created.session.base_url + "/other").status_code == 599
