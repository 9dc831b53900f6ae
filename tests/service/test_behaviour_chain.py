"""The behaviour chain over a real daemon: each exchange records the behaviours that shaped it, in chain order."""

from __future__ import annotations

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2
from websockets.sync.client import connect

from simulatord.v1 import exchange_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from tests.service.test_behaviours_state import violations

Session = pb.CreateSessionResponse


def seconds(value: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(value * 1e9))
    return out


def fixed(value: float) -> stub_pb2.Delay:
    return stub_pb2.Delay(fixed=seconds(value))


def on(path: str, *responses: stub_pb2.Response, **fields: object) -> stub_pb2.Stub:
    return stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact=path)),
        responses=list(responses),
        **fields,  # type: ignore[arg-type]
    )


def program(control: pb_grpc.SimulatorServiceStub, session: Session, *stubs: stub_pb2.Stub) -> None:
    control.BatchCreateStubs(
        pb.BatchCreateStubsRequest(parent=session.session.name, requests=[pb.CreateStubRequest(stub=s) for s in stubs])
    )


def recorded(control: pb_grpc.SimulatorServiceStub, session: Session, path: str) -> exchange_pb2.Exchange:
    listed = control.ListExchanges(
        pb.ListExchangesRequest(parent=session.session.name, filter=exchange_pb2.ExchangeFilter(path=path))
    )
    (exchange,) = listed.exchanges
    return exchange


def test_each_exchange_names_the_behaviours_that_ran_in_chain_order(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    everything = stub_pb2.Response(
        status=201,
        body_text="hello {{ request.method }}",
        template=stub_pb2.ResponseTemplate(),
        delay=seconds(0.01),
        header_delay=fixed(0.01),
        body_delay=fixed(0.01),
    )
    stream = stub_pb2.Response(sse=stub_pb2.SseStream(events=[stub_pb2.SseEvent(data="one")]))
    program(
        control,
        session,
        on("/everything", everything, rate_limit=stub_pb2.RateLimit(limit=5, period=seconds(60))),
        on("/plain", stub_pb2.Response(body_text="plain")),
        on("/stream", stream),
    )
    base = session.session.base_url
    answer = http.post(f"{base}/everything")
    assert (answer.status_code, answer.text, answer.headers["x-ratelimit-remaining"]) == (201, "hello POST", "4")
    assert http.get(f"{base}/plain").text == "plain"
    assert http.get(f"{base}/stream").text == "data: one\n\n"
    assert http.get(f"{base}/nowhere").status_code == 404

    shaped = recorded(control, session, "/everything").response
    assert list(shaped.behaviours) == ["template", "rate_limit", "delay", "header_delay", "paced_body"]
    assert shaped.duration.ToNanoseconds() >= 30_000_000  # the three waits each took their 10 ms
    assert list(recorded(control, session, "/plain").response.behaviours) == []
    assert list(recorded(control, session, "/stream").response.behaviours) == ["sse"]
    assert list(recorded(control, session, "/nowhere").response.behaviours) == []


def test_a_failing_template_skips_the_rest_of_the_chain(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    """The explanation reaches the client instead of the fault the response would have ended with."""
    broken = stub_pb2.Response(
        body_text="x",
        template=stub_pb2.ResponseTemplate(status="{{ 'not a number' }}"),
        fault=stub_pb2.Fault(kind=stub_pb2.FAULT_KIND_RESET),
    )
    program(control, session, on("/broken", broken))
    answer = http.get(f"{session.session.base_url}/broken")
    assert answer.status_code == 500
    assert answer.json()["reason"] == "TEMPLATE_ERROR"
    exchange = recorded(control, session, "/broken")
    assert (exchange.response.status, list(exchange.response.behaviours)) == (500, ["template"])


def test_a_websocket_upgrade_runs_the_same_chain(control: pb_grpc.SimulatorServiceStub, session: Session) -> None:
    accept = stub_pb2.Response(
        status=101,
        headers=[stub_pb2.Header(name="x-room", value="{{ path.room }}")],
        template=stub_pb2.ResponseTemplate(),
        delay=seconds(0.01),
    )
    room = stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(template="/rooms/{room}")),
        responses=[accept],
        websocket=stub_pb2.WebSocketBehaviour(on_connect=[stub_pb2.WebSocketMessage(text="hi")]),
    )
    program(control, session, room)
    url = session.session.base_url.replace("http://", "ws://", 1) + "/rooms/blue"
    with connect(url, open_timeout=5) as client:
        assert client.response.headers["x-room"] == "blue"
        assert client.recv(timeout=5) == "hi"
    listed = control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges
    (upgrade,) = [e for e in listed if e.kind == exchange_pb2.EXCHANGE_KIND_WEBSOCKET_UPGRADE]
    assert (upgrade.response.status, list(upgrade.response.behaviours)) == (101, ["template", "delay"])


@pytest.mark.parametrize(
    ("response", "field"),
    [
        (stub_pb2.Response(fault=stub_pb2.Fault(kind=stub_pb2.FAULT_KIND_RESET)), "fault"),
        (stub_pb2.Response(header_delay=fixed(0.1)), "header_delay"),
        (stub_pb2.Response(sse=stub_pb2.SseStream(events=[stub_pb2.SseEvent(data="x")])), "sse"),
        (stub_pb2.Response(dribble=stub_pb2.Dribble(chunk_bytes=1, duration=seconds(1))), "dribble"),
    ],
)
def test_delivery_behaviours_are_refused_on_a_websocket_upgrade_when_programmed(
    control: pb_grpc.SimulatorServiceStub, session: Session, response: stub_pb2.Response, field: str
) -> None:
    room = stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact="/ws")),
        responses=[response],
        websocket=stub_pb2.WebSocketBehaviour(),
    )
    with pytest.raises(grpc.RpcError) as refused:
        control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=room))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in violations(refused.value)] == [f"stub.responses[0].{field}"]
