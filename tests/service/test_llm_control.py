"""An LLM simulation over the control plane: validated when the session is made, echoed back, reset with the
session's state, and judged by VerifySession like stubs are."""

from __future__ import annotations

import grpc
import httpx
import pytest
from google.protobuf import json_format

from simulatord.v1 import llm_pb2, session_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from tests.service.test_bad_input import details

CHAT = "/v1/chat/completions"
HELLO = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}


def create(control: pb_grpc.SimulatorServiceStub, tenant: str, simulation: dict[str, object]) -> session_pb2.Session:
    llm = json_format.ParseDict(simulation, llm_pb2.LlmSimulation())
    request = pb.CreateSessionRequest(parent=f"tenants/{tenant}", session=session_pb2.Session(llm=llm))
    return control.CreateSession(request).session


def test_an_invalid_simulation_is_invalid_argument_naming_every_field(
    control: pb_grpc.SimulatorServiceStub, tenant: str
) -> None:
    bad = {"provider": "LLM_PROVIDER_OPENAI", "rules": [{"replies": []}, {"replies": [{"stopReason": "end_turn"}]}]}
    with pytest.raises(grpc.RpcError) as caught:
        create(control, tenant, bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value) == (
        "INVALID_ARGUMENT",
        ["session.llm.rules[0].replies", "session.llm.rules[1].replies[0].stop_reason"],
    )
    listed = control.ListSessions(pb.ListSessionsRequest(parent=f"tenants/{tenant}"))
    assert list(listed.sessions) == []  # nothing was made of it


def test_the_simulation_is_echoed_back_as_programmed(control: pb_grpc.SimulatorServiceStub, tenant: str) -> None:
    simulation = {"provider": "LLM_PROVIDER_ANTHROPIC", "rules": [{"id": "hi", "replies": [{"text": "Hi!"}]}]}
    created = create(control, tenant, simulation)
    got = control.GetSession(pb.GetSessionRequest(name=created.name)).session
    assert json_format.MessageToDict(got.llm) == simulation


def test_reset_state_starts_rules_again_from_their_first_reply(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, tenant: str
) -> None:
    simulation = {"provider": "LLM_PROVIDER_OPENAI", "rules": [{"replies": [{"text": "one"}, {"text": "two"}]}]}
    created = create(control, tenant, simulation)

    def said() -> str:
        answer = http.post(created.base_url + CHAT, json=HELLO)
        return str(answer.json()["choices"][0]["message"]["content"])

    assert [said(), said(), said()] == ["one", "two", "two"]
    control.ResetSession(pb.ResetSessionRequest(name=created.name, targets=[pb.RESET_TARGET_STATE]))
    assert said() == "one"


def test_verify_reports_requests_the_simulation_refused(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, tenant: str
) -> None:
    created = create(control, tenant, {"provider": "LLM_PROVIDER_OPENAI"})
    assert http.post(created.base_url + CHAT, json=HELLO).status_code == 200
    assert control.VerifySession(pb.VerifySessionRequest(name=created.name)).ok
    refused = http.post(created.base_url + CHAT, json={"model": "gpt-4o", "messages": [], "stream_options": {}})
    assert refused.status_code == 400 and refused.json()["error"]["type"] == "invalid_request_error"
    report = control.VerifySession(pb.VerifySessionRequest(name=created.name))
    assert not report.ok
    [unmatched] = report.unmatched_exchanges
    assert unmatched.llm.refusal_reason.startswith("Invalid 'messages': empty array")
    assert "Invalid 'messages': empty array" in report.summary
