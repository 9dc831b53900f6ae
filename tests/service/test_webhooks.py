"""Webhooks the daemon delivers, against a real receiver on loopback, checked with the providers' own verifiers:
every profile verifies and every signature fault is refused by the same oracle; duplicates, order, bad input."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc
import httpx
import pytest
import stripe
from google.protobuf import json_format
from slack_sdk.signature import SignatureVerifier
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks import WebhookVerificationError

from simulatord.v1 import exchange_pb2, stub_pb2, webhook_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from tests.service.test_bad_input import details
from tests.service.webhook_support import Received, Receiver, hook, octokit_verify, receiver

__all__ = ["receiver"]  # a fixture, used by name

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WHSEC_ROTATED = "whsec_" + base64.b64encode(b"another-key-of-24-bytes!").decode()
# Non-ASCII: a daemon that re-encodes the body between signing and sending would not verify.
EVENT = {"id": "evt_1", "object": "event", "type": "issues.assigned", "title": "Grüße ✓"}
FAULTS = {
    "good": "SIGNATURE_FAULT_UNSPECIFIED",
    "wrong": "SIGNATURE_FAULT_WRONG_SIGNATURE",
    "stale": "SIGNATURE_FAULT_STALE_TIMESTAMP",
    "missing": "SIGNATURE_FAULT_MISSING_SIGNATURE",
}
CUSTOM_TS: dict[str, object] = {
    "profile": "SIGNING_PROFILE_CUSTOM",
    "secrets": ["custom-secret"],
    "custom": {
        "algorithm": "HMAC_ALGORITHM_SHA512",
        "header": "X-Signature",
        "prefix": "v1=",
        "signedContent": "{timestamp}.{id}.{body}",
        "encoding": "SIGNATURE_ENCODING_BASE64",
        "timestampHeader": "X-Timestamp",
        "idHeader": "X-Delivery",
    },
}


def deliver(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, *webhooks: webhook_pb2.Webhook, **kw: Any
) -> pb.DeliverWebhooksResponse:
    request = pb.DeliverWebhooksRequest(parent=session.session.name, webhooks=webhooks, wait=True, **kw)
    answer: pb.DeliverWebhooksResponse = control.DeliverWebhooks(request)
    return answer


# The oracles: what each provider's receiver runs; True when it accepts the delivery.


def _raises_not(check: Callable[[], object], *errors: type[Exception]) -> bool:
    try:
        check()
    except errors:
        return False
    return True


def stripe_accepts(request: Received, secret: str = "whsec_stripe") -> bool:
    header = request.headers.get("stripe-signature", "")
    return _raises_not(
        lambda: stripe.Webhook.construct_event(request.body, header, secret), stripe.SignatureVerificationError
    )


def slack_accepts(request: Received) -> bool:
    return SignatureVerifier("slack-secret").is_valid_request(request.body, request.headers)


def standard_accepts(request: Received) -> bool:
    return _raises_not(lambda: StandardWebhook(WHSEC).verify(request.body, request.headers), WebhookVerificationError)


def gitea_accepts(request: Received) -> bool:  # as Gitea's docs show a receiver checking it
    expected = hmac.new(b"gitea-secret", request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(request.headers.get("x-gitea-signature", ""), expected)


def gitlab_accepts(request: Received) -> bool:
    return hmac.compare_digest(request.headers.get("x-gitlab-token", ""), "gitlab-secret")


def custom_accepts(request: Received) -> bool:
    """A receiver of the CUSTOM_TS scheme: sha512 over `ts.id.body`, base64, five minutes of tolerance."""
    timestamp = request.headers.get("x-timestamp", "0")
    if abs(time.time() - int(timestamp)) > 300:
        return False
    signed = f"{timestamp}.{request.headers.get('x-delivery', '')}.".encode() + request.body
    expected = "v1=" + base64.b64encode(hmac.new(b"custom-secret", signed, hashlib.sha512).digest()).decode()
    return hmac.compare_digest(request.headers.get("x-signature", ""), expected)


def github_accepts(requests: list[Received]) -> list[bool]:
    verdicts = octokit_verify([("github-secret", r.body, r.headers.get("x-hub-signature-256")) for r in requests])
    return [verdict is True for verdict in verdicts]


PROFILES: dict[str, tuple[dict[str, object], Callable[[list[Received]], list[bool]]]] = {
    "stripe": (
        {"profile": "SIGNING_PROFILE_STRIPE", "secrets": ["whsec_stripe"]},
        lambda rs: [stripe_accepts(r) for r in rs],
    ),
    "slack": (
        {"profile": "SIGNING_PROFILE_SLACK", "secrets": ["slack-secret"]},
        lambda rs: list(map(slack_accepts, rs)),
    ),
    "standard": (
        {"profile": "SIGNING_PROFILE_STANDARD_WEBHOOKS", "secrets": [WHSEC]},
        lambda rs: list(map(standard_accepts, rs)),
    ),
    "gitea": (
        {"profile": "SIGNING_PROFILE_GITEA", "secrets": ["gitea-secret"]},
        lambda rs: list(map(gitea_accepts, rs)),
    ),
    "gitlab": (
        {"profile": "SIGNING_PROFILE_GITLAB", "secrets": ["gitlab-secret"]},
        lambda rs: list(map(gitlab_accepts, rs)),
    ),
    "github": ({"profile": "SIGNING_PROFILE_GITHUB", "secrets": ["github-secret"]}, github_accepts),
    "custom": (CUSTOM_TS, lambda rs: list(map(custom_accepts, rs))),
}
TIMESTAMPED = ("stripe", "slack", "standard", "custom")


@pytest.mark.parametrize("provider", list(PROFILES))
def test_each_provider_verifies_and_every_fault_is_refused_by_its_own_oracle(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver, provider: str
) -> None:
    signing, oracle = PROFILES[provider]
    faults = [f for f in FAULTS if f != "stale" or provider in TIMESTAMPED]
    webhooks = [
        hook(
            {
                "url": f"{receiver.url}/{fault}",
                "event": "issues",
                "bodyJson": EVENT,
                "signing": signing,
                "fault": {"signature": FAULTS[fault]},
            }
        )
        for fault in faults
    ]
    answer = deliver(control, session, *webhooks)
    assert [d.state for d in answer.deliveries] == [webhook_pb2.DELIVERY_STATE_DELIVERED] * len(faults)
    by_path = {r.path.lstrip("/"): r for r in receiver.wait(len(faults))}
    if provider == "custom":  # the delivery id the receiver reads is the one the daemon reports
        assert [by_path[f].headers["x-delivery"] for f in faults] == [d.delivery_id for d in answer.deliveries]
    arrived = [by_path[fault] for fault in faults]
    assert all(json.loads(r.body) == EVENT for r in arrived)
    assert dict(zip(faults, oracle(arrived), strict=True)) == {fault: fault == "good" for fault in faults}


def test_stripe_rotated_secrets_each_verify_with_construct_event(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    signing = {"profile": "SIGNING_PROFILE_STRIPE", "secrets": ["whsec_old", "whsec_new"]}
    deliver(control, session, hook({"url": receiver.url, "bodyJson": EVENT, "signing": signing}))
    [request] = receiver.wait(1)
    assert request.headers["stripe-signature"].count("v1=") == 2
    assert request.headers["user-agent"].startswith("Stripe/")
    for secret in ("whsec_old", "whsec_new"):
        event = stripe.Webhook.construct_event(request.body, request.headers["stripe-signature"], secret)
        assert event.id == "evt_1" and event.type == "issues.assigned"
    assert not stripe_accepts(request, "whsec_other")


def test_standard_webhooks_rotated_secrets_each_verify(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    signing = {"profile": "SIGNING_PROFILE_STANDARD_WEBHOOKS", "secrets": [WHSEC, WHSEC_ROTATED]}
    [delivery] = deliver(
        control, session, hook({"url": receiver.url, "bodyJson": EVENT, "signing": signing})
    ).deliveries
    [request] = receiver.wait(1)
    assert request.headers["webhook-id"] == delivery.delivery_id and delivery.delivery_id.startswith("msg_")
    for secret in (WHSEC, WHSEC_ROTATED):
        assert StandardWebhook(secret).verify(request.body, request.headers) == EVENT


def test_github_headers_as_github_sends_them(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    signing = {"profile": "SIGNING_PROFILE_GITHUB", "secrets": ["github-secret"], "hookId": "4242"}
    webhook = hook({"url": receiver.url + "/gh", "event": "issues", "bodyJson": EVENT, "signing": signing})
    [delivery] = deliver(control, session, webhook).deliveries
    [request] = receiver.wait(1)
    headers = request.headers
    assert headers["x-github-delivery"] == delivery.delivery_id == str(uuid.UUID(delivery.delivery_id))
    assert (headers["x-github-event"], headers["x-github-hook-id"]) == ("issues", "4242")
    assert headers["user-agent"].startswith("GitHub-Hookshot/")
    assert headers["content-type"] == "application/json"
    legacy = "sha1=" + hmac.new(b"github-secret", request.body, hashlib.sha1).hexdigest()
    assert hmac.compare_digest(headers["x-hub-signature"], legacy)
    assert octokit_verify([("github-secret", request.body, headers["x-hub-signature-256"])]) == [True]


def test_a_custom_hmac_in_githubs_shape_is_verified_by_octokit(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    custom = {"header": "X-Hub-Signature-256", "prefix": "sha256="}  # sha256, hex, over the body: the defaults
    signing = {"profile": "SIGNING_PROFILE_CUSTOM", "secrets": ["k"], "custom": custom}
    deliver(control, session, hook({"url": receiver.url, "bodyText": "Grüße ✓ plain", "signing": signing}))
    [request] = receiver.wait(1)
    assert request.headers["content-type"] == "text/plain; charset=utf-8" and request.body == "Grüße ✓ plain".encode()
    assert octokit_verify([("k", request.body, request.headers["x-hub-signature-256"])]) == [True]
    assert octokit_verify([("other", request.body, request.headers["x-hub-signature-256"])]) == [False]


def test_gitlab_and_gitea_event_headers(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    gitlab = {"profile": "SIGNING_PROFILE_GITLAB", "secrets": ["gitlab-secret"]}
    gitea = {"profile": "SIGNING_PROFILE_GITEA", "secrets": ["gitea-secret"]}
    answer = deliver(
        control,
        session,
        hook({"url": receiver.url + "/gitlab", "event": "Issue Hook", "bodyJson": EVENT, "signing": gitlab}),
        hook({"url": receiver.url + "/gitea", "event": "issue_assign", "bodyJson": EVENT, "signing": gitea}),
    )
    by_path = {r.path: r for r in receiver.wait(2)}
    lab, tea = by_path["/gitlab"].headers, by_path["/gitea"].headers
    assert lab["x-gitlab-event"] == "Issue Hook" and lab["idempotency-key"] == answer.deliveries[0].delivery_id
    assert gitlab_accepts(by_path["/gitlab"]) and gitea_accepts(by_path["/gitea"])
    assert (tea["x-gitea-event"], tea["x-gitea-event-type"]) == ("issues", "issue_assign")
    assert tea["x-gitea-delivery"] == tea["x-github-delivery"] == answer.deliveries[1].delivery_id


def test_a_duplicate_is_two_attempts_with_one_delivery_id(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    signing = {"profile": "SIGNING_PROFILE_GITHUB", "secrets": ["github-secret"]}
    webhook = hook(
        {"url": receiver.url, "event": "push", "bodyJson": EVENT, "signing": signing, "fault": {"duplicate": True}}
    )
    [delivery] = deliver(control, session, webhook).deliveries
    assert delivery.state == webhook_pb2.DELIVERY_STATE_DELIVERED and len(delivery.sequences) == 2
    arrived = receiver.still(2, 0.1)
    assert [r.headers["x-github-delivery"] for r in arrived] == [delivery.delivery_id] * 2
    assert github_accepts(arrived) == [True, True]
    journal = control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges
    assert [e.webhook.delivery_id for e in journal] == [delivery.delivery_id] * 2
    assert [e.sequence for e in journal] == list(delivery.sequences)


def test_reversed_order_delivers_the_last_first(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    signing = {"profile": "SIGNING_PROFILE_STANDARD_WEBHOOKS", "secrets": [WHSEC]}
    webhooks = [hook({"url": receiver.url, "bodyJson": {"n": n}, "signing": signing}) for n in (1, 2, 3)]
    answer = deliver(control, session, *webhooks, order=pb.DELIVERY_ORDER_REVERSED)
    arrived = sorted(receiver.wait(3), key=lambda r: r.at)
    assert [json.loads(r.body)["n"] for r in arrived] == [3, 2, 1]
    # The answer keeps the request's order: its first delivery is the one that arrived last.
    assert [d.delivery_id for d in answer.deliveries] == [r.headers["webhook-id"] for r in reversed(arrived)]
    assert all(standard_accepts(r) for r in arrived)
    answer = deliver(control, session, *webhooks)  # and in order by default
    arrived = sorted(receiver.wait(6), key=lambda r: r.at)[3:]
    assert [json.loads(r.body)["n"] for r in arrived] == [1, 2, 3]


def test_a_target_outside_the_allowed_ones_is_permission_denied(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse
) -> None:
    # Refused before anything is sent: the daemon checks the target when the call arrives.
    with pytest.raises(grpc.RpcError) as caught:
        control.DeliverWebhooks(
            pb.DeliverWebhooksRequest(parent=session.session.name, webhooks=[hook({"url": "http://8.8.8.8/hook"})])
        )
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert details(caught.value)[0] == "WEBHOOK_TARGET_FORBIDDEN"
    assert control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges == []


GOOD = {"url": "http://127.0.0.1:9/hook"}


@pytest.mark.parametrize(
    ("webhooks", "field"),
    [
        ([{}], "webhooks[0].url"),
        ([{"url": "ftp://127.0.0.1/hook"}], "webhooks[0].url"),
        ([GOOD, {"url": "http://127.0.0.1:9/", "method": "PO ST"}], "webhooks[1].method"),
        (
            [{**GOOD, "signing": PROFILES["github"][0], "fault": {"signature": "SIGNATURE_FAULT_STALE_TIMESTAMP"}}],
            "webhooks[0].fault.signature",
        ),
        (
            [{**GOOD, "signing": {"profile": "SIGNING_PROFILE_STANDARD_WEBHOOKS", "secrets": ["plain"]}}],
            "webhooks[0].signing.secrets[0]",
        ),
        ([{**GOOD, "retry": {"schedule": "RETRY_SCHEDULE_CUSTOM"}}], "webhooks[0].retry.delays"),
        ([{**GOOD, "retry": {"maxAttempts": 21}}], "webhooks[0].retry.max_attempts"),
        (
            [{**GOOD, "signing": {**CUSTOM_TS, "custom": {**CUSTOM_TS["custom"], "idHeader": ""}}}],  # type: ignore[dict-item]
            "webhooks[0].signing.custom.id_header",
        ),
        ([], "webhooks"),
        ([GOOD] * 101, "webhooks"),
    ],
    ids=[
        "no-url",
        "ftp",
        "method",
        "github-stale",
        "whsec",
        "custom-no-delays",
        "attempts-21",
        "id-unsent",
        "none",
        "101",
    ],
)
def test_bad_webhooks_are_invalid_argument_at_the_exact_field(
    control: pb_grpc.SimulatorServiceStub,
    session: pb.CreateSessionResponse,
    webhooks: list[dict[str, object]],
    field: str,
) -> None:
    request = pb.DeliverWebhooksRequest(parent=session.session.name, webhooks=[hook(w) for w in webhooks])
    with pytest.raises(grpc.RpcError) as caught:
        control.DeliverWebhooks(request)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value)[1] == [field]
    assert control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges == []


def test_a_callback_url_template_syntax_error_is_invalid_argument(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse
) -> None:
    stub = json_format.ParseDict(
        {
            "request": {"path": {"exact": "/x"}},
            "responses": [{"status": 200}],
            "callbacks": [{"webhook": {"url": "http://127.0.0.1:9/{{ path.n "}}],
        },
        stub_pb2.Stub(),
    )
    with pytest.raises(grpc.RpcError) as caught:
        control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=stub))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value)[1] == ["stub.callbacks[0].webhook.url"]


def test_unsigned_webhooks_carry_method_headers_and_raw_bytes(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver, http: httpx.Client
) -> None:
    body = b"\xff\x00 raw"
    webhook = hook(
        {
            "url": receiver.url + "/raw?q=1",
            "method": "put",
            "headers": {"X-Custom": "yes", "Content-Type": "application/octet-stream"},
            "bodyBytes": base64.b64encode(body).decode(),
        }
    )
    [delivery] = deliver(control, session, webhook).deliveries
    [request] = receiver.wait(1)
    assert (request.method, request.path, request.body) == ("PUT", "/raw?q=1", body)
    assert request.headers["x-custom"] == "yes" and request.headers["content-type"] == "application/octet-stream"
    [exchange] = control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges
    assert exchange.kind == exchange_pb2.EXCHANGE_KIND_WEBHOOK and exchange.request.method == "PUT"
    assert (exchange.request.path, exchange.request.query_string) == ("/raw", "q=1")
    assert exchange.request.body == body and exchange.webhook.url == receiver.url + "/raw?q=1"
    assert delivery.delivery_id == exchange.webhook.delivery_id


def test_a_webhook_that_sets_its_user_agent_sends_only_that_one(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    mine = hook({"url": receiver.url + "/ua", "bodyText": "hi", "headers": {"User-Agent": "mine/1"}})
    control.DeliverWebhooks(pb.DeliverWebhooksRequest(parent=session.session.name, webhooks=[mine], wait=True))
    [request] = receiver.wait(1)
    assert request.headers["user-agent"] == "mine/1"
    [exchange] = control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges
    assert [h.value for h in exchange.request.headers if h.name == "user-agent"] == ["mine/1"]
