"""`/metrics` scraped from a daemon of its own after known traffic, parsed with prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.protobuf import json_format
from prometheus_client.parser import text_string_to_metric_families

from simulatord.v1 import session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import stub
from tests.service.webhook_support import Answer, Receiver, hook, receiver

__all__ = ["receiver"]  # a fixture, used by name


@pytest.fixture(scope="module")
def daemon() -> Iterator[EmbeddedDaemon]:
    with EmbeddedDaemon(["--max-body-bytes", "1000"]) as running:
        yield running


def scrape(daemon: EmbeddedDaemon) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = httpx.get(daemon.http_url + "/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


def test_webhook_attempts_by_outcome(daemon: EmbeddedDaemon, receiver: Receiver) -> None:
    receiver.answers = [Answer(500)]
    retried = hook({"url": receiver.url + "/h", "retry": {"schedule": "RETRY_SCHEDULE_CUSTOM", "delays": ["0s"]}})
    with grpc.insecure_channel(daemon.grpc_address) as channel:
        control = pb_grpc.SimulatorServiceStub(channel)
        session = control.CreateSession(pb.CreateSessionRequest(parent="tenants/hooks")).session
        control.DeliverWebhooks(pb.DeliverWebhooksRequest(parent=session.name, webhooks=[retried], wait=True))
    samples = scrape(daemon)
    attempts = {
        dict(labels)["outcome"]: v for (n, labels), v in samples.items() if n == "simulatord_webhook_attempts_total"
    }
    assert attempts == {"http_error": 1, "delivered": 1}


def test_requests_by_tenant_and_outcome_latency_and_control_calls(daemon: EmbeddedDaemon) -> None:
    fault = stub_pb2.Response(fault=stub_pb2.Fault(kind=stub_pb2.FAULT_KIND_RESET))
    flaky = stub_pb2.Stub(request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact="/reset")), responses=[fault])
    llm = json_format.ParseDict({"provider": "LLM_PROVIDER_OPENAI"}, session_pb2.Session().llm)
    with grpc.insecure_channel(daemon.grpc_address) as channel:
        control = pb_grpc.SimulatorServiceStub(channel)
        plain = control.CreateSession(
            pb.CreateSessionRequest(parent="tenants/shop", stubs=[stub(path="/ok", json={"ok": True}), flaky])
        ).session
        chat = control.CreateSession(
            pb.CreateSessionRequest(parent="tenants/bots", session=session_pb2.Session(llm=llm))
        )
        with pytest.raises(grpc.RpcError):
            control.GetSession(pb.GetSessionRequest(name="tenants/shop/sessions/none"))
        with httpx.Client(base_url=plain.base_url, timeout=5) as http:
            for _ in range(3):
                assert http.get("/ok").status_code == 200
            assert http.get("/missing").status_code == 404
            with pytest.raises(httpx.HTTPError):
                http.get("/reset")
            assert http.post("/ok", content=b"x" * 2000).status_code == 413
        answer = httpx.post(
            chat.session.base_url + "/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            timeout=5,
        )
        assert answer.status_code == 200
        control.WaitForExchanges(pb.WaitForExchangesRequest(parent=plain.name, count=6, timeout={"seconds": 5}))
    samples = scrape(daemon)

    def requests(tenant: str, outcome: str) -> float:
        return samples.get(("simulatord_http_requests_total", (("outcome", outcome), ("tenant", tenant))), 0)

    assert [requests("shop", o) for o in ("matched", "unmatched", "fault", "body_too_large")] == [3, 1, 1, 1]
    assert requests("bots", "llm") == 1
    matched = samples[("simulatord_http_request_duration_seconds_count", (("outcome", "matched"),))]
    assert matched >= 3
    assert (
        samples[("simulatord_http_request_duration_seconds_bucket", (("le", "+Inf"), ("outcome", "matched")))]
        == matched
    )
    assert samples[("simulatord_control_rpcs_total", (("code", "OK"), ("method", "CreateSession")))] >= 2
    assert samples[("simulatord_control_rpcs_total", (("code", "NOT_FOUND"), ("method", "GetSession")))] == 1
    assert samples[("simulatord_sessions", ())] >= 2 and samples[("simulatord_tenants", ())] >= 2
    assert samples[("simulatord_journal_bytes", ())] > 0
    assert not any(dict(labels).get("session") for _, labels in samples)  # no label names a session
