"""Bad input to every RPC gets a canonical status, a stable ErrorInfo reason and field violations; nothing is lost."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from simulatord.v1 import exchange_pb2, session_pb2, stub_pb2, webhook_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from tests.helpers import stub

INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
MISSING = "tenants/nobody/sessions/missing"


def details(error: grpc.RpcError) -> tuple[str, list[str]]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, "the error carries google.rpc.Status details"
    reason, fields = "", []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            assert info.domain == "simulatord"
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    return reason, fields


def bad_regex_stub() -> stub_pb2.Stub:
    return stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(regex="(unclosed")), responses=[stub_pb2.Response()]
    )


def call(control: pb_grpc.SimulatorServiceStub, method: str, request: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        result = getattr(control, method)(request, timeout=10)
        if method == "WatchExchanges":
            next(iter(result))
    return caught.value


CASES: list[tuple[str, Callable[[str], Any], grpc.StatusCode, str, list[str]]] = [
    ("CreateSession", lambda s: pb.CreateSessionRequest(parent="tenant/x"), INVALID, "INVALID_ARGUMENT", ["parent"]),
    (
        "CreateSession",
        lambda s: pb.CreateSessionRequest(parent="tenants/x", session_id="Bad_Id"),
        INVALID,
        "INVALID_ARGUMENT",
        ["session_id"],
    ),
    (
        "CreateSession",
        lambda s: pb.CreateSessionRequest(parent="tenants/x", stubs=[stub(), bad_regex_stub()]),
        INVALID,
        "INVALID_STUB",
        ["stubs[1].request.path.regex"],
    ),
    (
        "CreateSession",
        lambda s: pb.CreateSessionRequest(parent="tenants/x", template="nope"),
        NOT_FOUND,
        "TEMPLATE_NOT_FOUND",
        [],
    ),
    (
        "CreateSession",
        lambda s: pb.CreateSessionRequest(
            parent="tenants/x", session=session_pb2.Session(journal_limits=session_pb2.JournalLimits(max_exchanges=-1))
        ),
        INVALID,
        "INVALID_ARGUMENT",
        ["session.journal_limits.max_exchanges"],
    ),
    (
        "CreateSession",
        lambda s: pb.CreateSessionRequest(
            parent="tenants/x", session=session_pb2.Session(labels={"a=b": "c", "ok": "x,y"})
        ),
        INVALID,
        "INVALID_ARGUMENT",
        ["session.labels['a=b']", "session.labels['ok']"],
    ),
    ("GetSession", lambda s: pb.GetSessionRequest(name="sessions/x"), INVALID, "INVALID_ARGUMENT", ["name"]),
    ("GetSession", lambda s: pb.GetSessionRequest(name=MISSING), NOT_FOUND, "SESSION_NOT_FOUND", []),
    (
        "ListSessions",
        lambda s: pb.ListSessionsRequest(parent="tenants/x", page_token="garbage"),
        INVALID,
        "INVALID_ARGUMENT",
        ["page_token"],
    ),
    (
        "ListSessions",
        lambda s: pb.ListSessionsRequest(parent="tenants/x", page_size=-1),
        INVALID,
        "INVALID_ARGUMENT",
        ["page_size"],
    ),
    ("DeleteSession", lambda s: pb.DeleteSessionRequest(name=MISSING), NOT_FOUND, "SESSION_NOT_FOUND", []),
    (
        "ResetSession",
        lambda s: pb.ResetSessionRequest(name=s, targets=[99]),
        INVALID,
        "INVALID_ARGUMENT",
        ["targets[0]"],
    ),
    (
        "RefreshSession",
        lambda s: pb.RefreshSessionRequest(name=s, ttl={"seconds": -5}),
        INVALID,
        "INVALID_ARGUMENT",
        ["ttl"],
    ),
    ("RefreshSession", lambda s: pb.RefreshSessionRequest(name=MISSING), NOT_FOUND, "SESSION_NOT_FOUND", []),
    ("SetSessionState", lambda s: pb.SetSessionStateRequest(name=MISSING), NOT_FOUND, "SESSION_NOT_FOUND", []),
    ("VerifySession", lambda s: pb.VerifySessionRequest(name=MISSING), NOT_FOUND, "SESSION_NOT_FOUND", []),
    (
        "CreateStub",
        lambda s: pb.CreateStubRequest(parent=s, stub=stub_pb2.Stub()),
        INVALID,
        "INVALID_STUB",
        ["stub.responses"],
    ),
    (
        "CreateStub",
        lambda s: pb.CreateStubRequest(parent=s, stub=stub(), stub_id="-x"),
        INVALID,
        "INVALID_STUB",
        ["stub_id"],
    ),
    (
        "CreateStub",
        lambda s: pb.CreateStubRequest(
            parent=s,
            stub=stub_pb2.Stub(
                request=stub_pb2.RequestMatcher(
                    body=[stub_pb2.BodyMatcher(json_path=stub_pb2.JsonPathMatcher(expression="$[?"))]
                ),
                responses=[stub_pb2.Response(status=700)],
            ),
        ),
        INVALID,
        "INVALID_STUB",
        ["stub.request.body[0].json_path.expression", "stub.responses[0].status"],
    ),
    ("CreateStub", lambda s: pb.CreateStubRequest(parent=MISSING, stub=stub()), NOT_FOUND, "SESSION_NOT_FOUND", []),
    (
        "BatchCreateStubs",
        lambda s: pb.BatchCreateStubsRequest(
            parent=s, requests=[pb.CreateStubRequest(stub=stub()), pb.CreateStubRequest(stub=bad_regex_stub())]
        ),
        INVALID,
        "INVALID_STUB",
        ["requests[1].stub.request.path.regex"],
    ),
    ("GetStub", lambda s: pb.GetStubRequest(name=s + "/stubs/none"), NOT_FOUND, "STUB_NOT_FOUND", []),
    ("GetStub", lambda s: pb.GetStubRequest(name=s), INVALID, "INVALID_ARGUMENT", ["name"]),
    ("ListStubs", lambda s: pb.ListStubsRequest(parent=s, page_token="x"), INVALID, "INVALID_ARGUMENT", ["page_token"]),
    (
        "ReplaceStub",
        lambda s: pb.ReplaceStubRequest(stub=stub_pb2.Stub(name=s + "/stubs/none")),
        NOT_FOUND,
        "STUB_NOT_FOUND",
        [],
    ),
    ("DeleteStub", lambda s: pb.DeleteStubRequest(name=s + "/stubs/none"), NOT_FOUND, "STUB_NOT_FOUND", []),
    ("GetExchange", lambda s: pb.GetExchangeRequest(name=s + "/exchanges/abc"), INVALID, "INVALID_ARGUMENT", ["name"]),
    ("GetExchange", lambda s: pb.GetExchangeRequest(name=s + "/exchanges/5"), NOT_FOUND, "EXCHANGE_NOT_FOUND", []),
    (
        "ListExchanges",
        lambda s: pb.ListExchangesRequest(parent=s, filter=exchange_pb2.ExchangeFilter(path="/a", path_prefix="/b")),
        INVALID,
        "INVALID_ARGUMENT",
        ["filter.path_prefix"],
    ),
    (
        "CountExchanges",
        lambda s: pb.CountExchangesRequest(parent=s, filter=exchange_pb2.ExchangeFilter(match_state=42)),
        INVALID,
        "INVALID_ARGUMENT",
        ["filter.match_state"],
    ),
    (
        "WaitForExchanges",
        lambda s: pb.WaitForExchangesRequest(parent=s, timeout={"seconds": 9999}),
        INVALID,
        "INVALID_ARGUMENT",
        ["timeout"],
    ),
    ("WaitForExchanges", lambda s: pb.WaitForExchangesRequest(parent=MISSING), NOT_FOUND, "SESSION_NOT_FOUND", []),
    (
        "WatchExchanges",
        lambda s: pb.WatchExchangesRequest(parent=s, start_sequence=-1),
        INVALID,
        "INVALID_ARGUMENT",
        ["start_sequence"],
    ),
    ("WatchExchanges", lambda s: pb.WatchExchangesRequest(parent=MISSING), NOT_FOUND, "SESSION_NOT_FOUND", []),
    (
        "SendWebSocketMessage",
        lambda s: pb.SendWebSocketMessageRequest(parent=s),
        INVALID,
        "INVALID_ARGUMENT",
        ["message"],
    ),
    (
        "SendWebSocketMessage",
        lambda s: pb.SendWebSocketMessageRequest(parent=MISSING, close=stub_pb2.WebSocketClose()),
        NOT_FOUND,
        "SESSION_NOT_FOUND",
        [],
    ),
    (
        "SendWebSocketMessage",
        lambda s: pb.SendWebSocketMessageRequest(parent=s, close=stub_pb2.WebSocketClose()),
        grpc.StatusCode.FAILED_PRECONDITION,
        "NO_WEBSOCKET_CONNECTION",
        [],
    ),
    ("DeliverWebhooks", lambda s: pb.DeliverWebhooksRequest(parent=s), INVALID, "INVALID_ARGUMENT", ["webhooks"]),
    ("ExportSession", lambda s: pb.ExportSessionRequest(name="tenants/x"), INVALID, "INVALID_ARGUMENT", ["name"]),
    ("ExportSession", lambda s: pb.ExportSessionRequest(name=MISSING), NOT_FOUND, "SESSION_NOT_FOUND", []),
    (
        "ImportWireMockMappings",
        lambda s: pb.ImportWireMockMappingsRequest(
            parent=s, mapping_files=[pb.WireMockFile(path="m.json", content=b"{ not json")]
        ),
        INVALID,
        "INVALID_ARGUMENT",
        ["mapping_files[0].content"],
    ),
    (
        "ImportOpenApi",
        lambda s: pb.ImportOpenApiRequest(parent=s, document=b"[1, 2"),
        INVALID,
        "INVALID_ARGUMENT",
        ["document"],
    ),
    (
        "ImportOpenApi",
        lambda s: pb.ImportOpenApiRequest(parent=s, document=b"swagger: '2.0'"),
        INVALID,
        "INVALID_ARGUMENT",
        ["document"],
    ),
    (
        "ImportOpenApi",
        lambda s: pb.ImportOpenApiRequest(parent=MISSING, document=b'{"openapi": "3.0.3", "paths": {}}'),
        NOT_FOUND,
        "SESSION_NOT_FOUND",
        [],
    ),
    (
        "ImportWireMockMappings",
        lambda s: pb.ImportWireMockMappingsRequest(parent=MISSING),
        NOT_FOUND,
        "SESSION_NOT_FOUND",
        [],
    ),
    (
        "DeliverWebhooks",
        lambda s: pb.DeliverWebhooksRequest(parent=MISSING, webhooks=[webhook_pb2.Webhook(url="http://127.0.0.1:9/")]),
        NOT_FOUND,
        "SESSION_NOT_FOUND",
        [],
    ),
]


@pytest.mark.parametrize(
    ("method", "build", "code", "reason", "fields"), CASES, ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(CASES)]
)
def test_bad_input(
    control: pb_grpc.SimulatorServiceStub,
    session: pb.CreateSessionResponse,
    method: str,
    build: Callable[[str], Any],
    code: grpc.StatusCode,
    reason: str,
    fields: list[str],
) -> None:
    error = call(control, method, build(session.session.name))
    assert error.code() == code, error.details()
    got_reason, got_fields = details(error)
    assert got_reason == reason
    assert got_fields == fields
    assert error.details()  # a readable message, not just a code


def test_every_rpc_has_a_bad_input_case() -> None:
    service = pb.DESCRIPTOR.services_by_name["SimulatorService"]
    assert {m.name for m in service.methods} <= {c[0] for c in CASES} | EXTRA_RPC_CASES


# RPCs whose bad-input cases live with the feature that added them.
EXTRA_RPC_CASES: set[str] = set()


def test_failed_calls_lose_nothing(control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse) -> None:
    name = session.session.name
    control.CreateStub(pb.CreateStubRequest(parent=name, stub=stub(), stub_id="keep"))
    call(
        control,
        "BatchCreateStubs",
        pb.BatchCreateStubsRequest(
            parent=name,
            requests=[pb.CreateStubRequest(stub=stub(), stub_id="new"), pb.CreateStubRequest(stub=bad_regex_stub())],
        ),
    )
    call(control, "CreateStub", pb.CreateStubRequest(parent=name, stub=stub(), stub_id="keep"))
    stubs = control.ListStubs(pb.ListStubsRequest(parent=name)).stubs
    assert [s.name.rsplit("/", 1)[1] for s in stubs] == ["keep"]
