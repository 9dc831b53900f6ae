"""Webhooks the daemon delivers, against a real receiver on loopback, checked with the providers' own verifiers."""

from __future__ import annotations

import hashlib
import hmac
import json

import grpc
import httpx
import pytest
from google.protobuf import json_format
from standardwebhooks import Webhook as StandardWebhook

from simulatord.v1 import exchange_pb2, stub_pb2, webhook_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from tests.service.test_bad_input import details
from tests.service.webhook_support import Receiver, receiver

__all__ = ["receiver"]  # a fixture, used by name

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def hook(fields: dict[str, object]) -> webhook_pb2.Webhook:
    return json_format.ParseDict(fields, webhook_pb2.Webhook())


def test_a_standard_webhook_retried_on_its_scaled_schedule_keeps_its_id(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    receiver.answers = [(500, {}), (503, {})]
    webhook = hook(
        {
            "url": receiver.url + "/hooks",
            "bodyJson": {"type": "invoice.paid", "id": "évt_1"},
            "signing": {"profile": "SIGNING_PROFILE_STANDARD_WEBHOOKS", "secrets": [WHSEC]},
            "retry": {"schedule": "RETRY_SCHEDULE_STANDARD_WEBHOOKS", "timeScale": 0.001},
        }
    )
    name = session.session.name
    answer = control.DeliverWebhooks(pb.DeliverWebhooksRequest(parent=name, webhooks=[webhook], wait=True))
    [delivery] = answer.deliveries
    assert (delivery.state, delivery.attempts, delivery.last_status) == (webhook_pb2.DELIVERY_STATE_DELIVERED, 3, 200)
    arrived = receiver.wait(3)
    assert {r.headers["webhook-id"] for r in arrived} == {delivery.delivery_id}
    for request in arrived:  # the reference verifier accepts every attempt
        assert StandardWebhook(WHSEC).verify(request.body, request.headers) == {"type": "invoice.paid", "id": "évt_1"}
    journal = control.ListExchanges(pb.ListExchangesRequest(parent=name)).exchanges
    assert [(e.kind, e.response.status, e.webhook.attempt) for e in journal] == [
        (exchange_pb2.EXCHANGE_KIND_WEBHOOK, 500, 1),
        (exchange_pb2.EXCHANGE_KIND_WEBHOOK, 503, 2),
        (exchange_pb2.EXCHANGE_KIND_WEBHOOK, 200, 3),
    ]
    assert journal[2].webhook.response_body == b"ok" and journal[2].request.path == "/hooks"
    assert list(delivery.sequences) == [e.sequence for e in journal]
    assert control.VerifySession(pb.VerifySessionRequest(name=name)).ok  # webhooks are never "unmatched"


def test_a_stub_callback_renders_from_the_triggering_request(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, http: httpx.Client, receiver: Receiver
) -> None:
    callback = {
        "webhook": {
            "url": receiver.url + "/gitea/{{ request.json.repo }}",
            "event": "issues",
            "bodyJson": {"action": "assigned", "issue": {"number": "{{ path.n | int }}"}},
            "signing": {"profile": "SIGNING_PROFILE_GITEA", "secrets": ["s3cret"]},
        }
    }
    stub = json_format.ParseDict(
        {
            "request": {"method": "POST", "path": {"template": "/repos/issues/{n}/assignees"}},
            "responses": [{"status": 201}],
            "callbacks": [callback],
        },
        stub_pb2.Stub(),
    )
    name = session.session.name
    control.CreateStub(pb.CreateStubRequest(parent=name, stub=stub))
    assert http.post(session.session.base_url + "/repos/issues/7/assignees", json={"repo": "app"}).status_code == 201
    [request] = receiver.wait(1)
    assert request.path == "/gitea/app" and json.loads(request.body) == {"action": "assigned", "issue": {"number": 7}}
    assert request.headers["x-gitea-event"] == "issues"
    expected = hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-gitea-signature"], expected)  # as a Gitea receiver checks it


def test_a_target_outside_the_allowed_ones_is_permission_denied(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        control.DeliverWebhooks(
            pb.DeliverWebhooksRequest(parent=session.session.name, webhooks=[hook({"url": "http://8.8.8.8/hook"})])
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details(caught.value)[0] == "WEBHOOK_TARGET_FORBIDDEN"
