"""WebSocket stubs over a real daemon: conversations, control-plane pushes, closes and the recorded frames."""

from __future__ import annotations

import json
import threading
import time

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from simulatord.v1 import exchange_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.behaviours import (
    push_request,
    rate_limit,
    websocket_stub,
    ws_binary,
    ws_close,
    ws_json,
    ws_rule,
    ws_text,
)

Session = pb.CreateSessionResponse
FRAME, UPGRADE = exchange_pb2.EXCHANGE_KIND_WEBSOCKET_FRAME, exchange_pb2.EXCHANGE_KIND_WEBSOCKET_UPGRADE
IN, OUT = exchange_pb2.FRAME_DIRECTION_INBOUND, exchange_pb2.FRAME_DIRECTION_OUTBOUND


def ws_url(session: Session, path: str) -> str:
    return session.session.base_url.replace("http://", "ws://", 1) + path


def create(control: pb_grpc.SimulatorServiceStub, session: Session, stub: stub_pb2.Stub) -> stub_pb2.Stub:
    return control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=stub)).stub


def frames(control: pb_grpc.SimulatorServiceStub, session: Session) -> list[exchange_pb2.Exchange]:
    listed = control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges
    return [e for e in listed if e.kind == FRAME]


def wait_for(control: pb_grpc.SimulatorServiceStub, session: Session, count: int) -> list[exchange_pb2.Exchange]:
    reply = control.WaitForExchanges(pb.WaitForExchangesRequest(parent=session.session.name, count=count))
    assert reply.satisfied, [e.kind for e in reply.exchanges]
    return list(reply.exchanges)


@pytest.fixture
def chat(control: pb_grpc.SimulatorServiceStub, session: Session) -> stub_pb2.Stub:
    return create(
        control,
        session,
        websocket_stub(
            "/rooms/{room}",
            on_connect=[ws_text("welcome to {{ path.room }}", template=True), ws_json({"type": "hello"})],
            rules=[
                ws_rule(ws_text("pong"), equals="ping"),
                ws_rule(
                    ws_json(
                        {"type": "joined", "user": "{{ message.json.user }}", "n": "{{ message.json.n }}"},
                        template=True,
                    ),
                    json_subset={"type": "join"},
                ),
                ws_rule(ws_text("late", delay=0.2), regex=r"^slow\b"),
                ws_rule(ws_binary(b"\x00\x01"), contains="bytes"),
                ws_rule(ws_text("bye"), equals="quit", close=ws_close(4001, "client asked")),
            ],
        ),
    )


def test_conversation_on_connect_rules_and_close(
    control: pb_grpc.SimulatorServiceStub, session: Session, chat: stub_pb2.Stub
) -> None:
    with connect(ws_url(session, "/rooms/lobby"), open_timeout=5) as client:
        assert client.recv(timeout=5) == "welcome to lobby"
        assert json.loads(client.recv(timeout=5)) == {"type": "hello"}
        client.send("ping")
        assert client.recv(timeout=5) == "pong"
        client.send(json.dumps({"type": "join", "user": "ada", "n": 3}))
        assert json.loads(client.recv(timeout=5)) == {"type": "joined", "user": "ada", "n": 3}
        started = time.monotonic()
        client.send("slow please")
        assert client.recv(timeout=5) == "late"
        assert time.monotonic() - started >= 0.19
        client.send("some bytes")
        assert client.recv(timeout=5) == b"\x00\x01"
        client.send("nobody answers this")
        client.send("quit")
        assert client.recv(timeout=5) == "bye"
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
        assert (client.close_code, client.close_reason) == (4001, "client asked")

    recorded = wait_for(control, session, 15)
    upgrade = recorded[0]
    assert (upgrade.kind, upgrade.response.status, upgrade.stub) == (UPGRADE, 101, chat.name)
    assert upgrade.request.path == "/rooms/lobby"
    seen = [(e.frame.direction, e.frame.WhichOneof("payload"), e.frame.origin) for e in recorded[1:]]
    assert seen[:4] == [
        (OUT, "text", "on_connect"),
        (OUT, "text", "on_connect"),
        (IN, "text", ""),
        (OUT, "text", "rules[0]"),
    ]
    assert all(e.frame.connection == upgrade.sequence and e.stub == chat.name for e in recorded[1:])
    unanswered = [e for e in recorded if e.frame.text == "nobody answers this"]
    assert len(unanswered) == 1
    close = next(e.frame for e in recorded if e.frame.WhichOneof("payload") == "close" and e.frame.direction == OUT)
    assert (close.close.code, close.close.reason, close.origin) == (4001, "client asked", "rules[4]")
    assert control.GetStub(pb.GetStubRequest(name=chat.name)).stub.match_count == 1


def test_push_from_control_plane_then_close_with_code(
    control: pb_grpc.SimulatorServiceStub, session: Session, chat: stub_pb2.Stub
) -> None:
    """The issue's "done when": a conversation with a push from the control plane and a chosen close code."""
    name = session.session.name
    watch = control.WatchExchanges(pb.WatchExchangesRequest(parent=name, start_sequence=1), timeout=20)
    watched: list[exchange_pb2.Exchange] = []

    def consume() -> None:
        try:
            for event in watch:
                watched.append(event.exchange)
        except grpc.RpcError:
            pass  # cancelled at the end of the test

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    with connect(ws_url(session, "/rooms/ops"), open_timeout=5) as client:
        client.recv(timeout=5)
        client.recv(timeout=5)
        pushed = control.SendWebSocketMessage(push_request(name, ws_json({"alert": "deploy"}), stub=chat.name))
        assert len(pushed.connections) == 1
        assert json.loads(client.recv(timeout=5)) == {"alert": "deploy"}
        control.SendWebSocketMessage(
            push_request(
                name, ws_text("going down"), close=ws_close(4000, "maintenance"), connection=pushed.connections[0]
            )
        )
        assert client.recv(timeout=5) == "going down"
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
        assert (client.close_code, client.close_reason) == (4000, "maintenance")

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(
        e.frame.origin == "control" and e.frame.HasField("close") for e in watched
    ):
        time.sleep(0.05)
    watch.cancel()
    kinds = [(e.kind, e.frame.origin) for e in watched]
    assert kinds[0] == (UPGRADE, "")
    assert (FRAME, "control") in kinds
    last_control = [e for e in watched if e.frame.origin == "control"]
    assert [e.frame.WhichOneof("payload") for e in last_control] == ["text", "text", "close"]
    assert last_control[-1].frame.close.code == 4000


def test_push_errors(control: pb_grpc.SimulatorServiceStub, session: Session, chat: stub_pb2.Stub) -> None:
    name = session.session.name
    with pytest.raises(grpc.RpcError) as none_open:
        control.SendWebSocketMessage(push_request(name, ws_text("hi")))
    assert none_open.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.RpcError) as empty:
        control.SendWebSocketMessage(push_request(name))
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as bad_close:
        control.SendWebSocketMessage(push_request(name, close=ws_close(1234)))
    assert bad_close.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as unknown_stub:
        control.SendWebSocketMessage(push_request(name, ws_text("hi"), stub="nope"))
    assert unknown_stub.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as unknown_session:
        control.SendWebSocketMessage(push_request("tenants/nobody/sessions/missing", ws_text("hi")))
    assert unknown_session.value.code() == grpc.StatusCode.NOT_FOUND


def test_http_and_websocket_stubs_never_answer_each_other(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session, chat: stub_pb2.Stub
) -> None:
    create(control, session, stub_pb2.Stub(responses=[stub_pb2.Response(body_text="catch-all http")]))
    assert http.get(session.session.base_url + "/rooms/lobby").text == "catch-all http"
    with pytest.raises(InvalidStatus) as rejected:
        connect(ws_url(session, "/elsewhere"), open_timeout=5)
    assert rejected.value.response.status_code == 404
    near = json.loads(rejected.value.response.body or b"{}")["near_misses"]
    assert [m["stub"] for m in near] == [chat.name]
    upgrade = control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges[-1]
    assert (upgrade.kind, upgrade.response.status, upgrade.stub) == (UPGRADE, 404, "")


def test_upgrade_refused_by_response_status_and_rate_limit(
    control: pb_grpc.SimulatorServiceStub, session: Session
) -> None:
    create(
        control,
        session,
        websocket_stub(
            "/private",
            responses=[stub_pb2.Response(status=401, body_text="token required")],
        ),
    )
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(session, "/private"), open_timeout=5)
    assert refused.value.response.status_code == 401
    create(
        control,
        session,
        websocket_stub(
            "/feed",
            on_connect=[ws_text("hi")],
            rate_limit=rate_limit(1, 60.0),
        ),
    )
    with connect(ws_url(session, "/feed"), open_timeout=5) as client:
        assert client.recv(timeout=5) == "hi"
        assert client.response.headers["x-ratelimit-remaining"] == "0"
    with pytest.raises(InvalidStatus) as limited:
        connect(ws_url(session, "/feed"), open_timeout=5)
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["retry-after"]


def test_subprotocol_and_close_after_connect(control: pb_grpc.SimulatorServiceStub, session: Session) -> None:
    create(
        control,
        session,
        websocket_stub(
            "/graphql",
            subprotocol="graphql-ws",
            on_connect=[ws_text("ready")],
            close_after_connect=ws_close(4403, "forbidden", delay=0.05),
        ),
    )
    with pytest.raises(InvalidStatus):
        connect(ws_url(session, "/graphql"), open_timeout=5)  # the client offers no subprotocol
    with connect(ws_url(session, "/graphql"), subprotocols=["graphql-ws"], open_timeout=5) as client:
        assert client.subprotocol == "graphql-ws"
        assert client.recv(timeout=5) == "ready"
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
        assert client.close_code == 4403


def test_deleting_the_session_closes_its_websockets(
    control: pb_grpc.SimulatorServiceStub, session: Session, chat: stub_pb2.Stub
) -> None:
    with connect(ws_url(session, "/rooms/x"), open_timeout=5) as client:
        client.recv(timeout=5)
        client.recv(timeout=5)
        control.DeleteSession(pb.DeleteSessionRequest(name=session.session.name))
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=5)
        assert client.close_code == 1001


def test_invalid_websocket_stub_is_rejected(control: pb_grpc.SimulatorServiceStub, session: Session) -> None:
    bad = websocket_stub(
        "/bad",
        on_connect=[stub_pb2.WebSocketMessage(), ws_text("{{ oops", template=True)],
        rules=[ws_rule(ws_text("x"), regex="(unclosed", close=ws_close(999))],
    )
    with pytest.raises(grpc.RpcError) as caught:
        create(control, session, bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)  # type: ignore[arg-type]
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert any(d.Unpack(bad_request) for d in status.details if d.Is(error_details_pb2.BadRequest.DESCRIPTOR))
    assert {v.field for v in bad_request.field_violations} == {
        "stub.websocket.on_connect[0].payload",
        "stub.websocket.on_connect[1].text",
        "stub.websocket.rules[0].message[0].regex",
        "stub.websocket.rules[0].close.code",
    }


def test_client_close_is_recorded_as_an_inbound_close(
    control: pb_grpc.SimulatorServiceStub, session: Session, chat: stub_pb2.Stub
) -> None:
    with connect(ws_url(session, "/rooms/y"), open_timeout=5) as client:
        client.recv(timeout=5)
        client.recv(timeout=5)
    recorded = wait_for(control, session, 4)
    close = recorded[3].frame
    assert (close.direction, close.WhichOneof("payload")) == (IN, "close")
    assert close.close.code in (1000, 1005, 1006)  # hypercorn reports only normal or abnormal closure
    with pytest.raises(grpc.RpcError) as gone:
        control.SendWebSocketMessage(push_request(session.session.name, ws_text("anyone?")))
    assert gone.value.code() == grpc.StatusCode.FAILED_PRECONDITION
