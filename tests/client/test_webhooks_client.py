"""The client's webhook helpers: the messages the builders make, and deliveries through both drivers to a real
receiver on loopback, checked with the providers' own verifiers (standardwebhooks, stripe, slack_sdk)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from datetime import timedelta

import httpx
import pytest
import stripe
from slack_sdk.signature import SignatureVerifier
from standardwebhooks import Webhook as StandardWebhook
from standardwebhooks.webhooks import WebhookVerificationError

from simulatord.v1 import exchange_pb2, webhook_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord_client import (
    AsyncSimulator,
    Delivery,
    Exchange,
    InvalidArgumentError,
    PermissionDeniedError,
    Session,
    Simulator,
    WebhookAttempt,
    stub,
    webhooks,
    when,
)
from simulatord_client import operations as ops
from simulatord_client.rpc import Done, Rpc, advance
from tests.service.webhook_support import Receiver, receiver

__all__ = ["receiver"]  # a fixture, used by name

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STRIPE_SECRET = "whsec_stripe_test_secret"


# --- builders ------------------------------------------------------------------------------------


def test_signing_profiles() -> None:
    github = webhooks.github("s3cret", hook_id="42")
    assert (github.profile, list(github.secrets), github.hook_id) == (
        webhook_pb2.SIGNING_PROFILE_GITHUB,
        ["s3cret"],
        "42",
    )
    assert webhooks.github("s").hook_id == ""  # the daemon sends 1
    assert webhooks.gitea("s").profile == webhook_pb2.SIGNING_PROFILE_GITEA
    assert webhooks.gitlab("tok").profile == webhook_pb2.SIGNING_PROFILE_GITLAB
    assert webhooks.slack("s").profile == webhook_pb2.SIGNING_PROFILE_SLACK
    rolled = webhooks.stripe("whsec_new", "whsec_old")
    assert (rolled.profile, list(rolled.secrets)) == (webhook_pb2.SIGNING_PROFILE_STRIPE, ["whsec_new", "whsec_old"])
    standard = webhooks.standard(WHSEC)
    assert (standard.profile, list(standard.secrets)) == (webhook_pb2.SIGNING_PROFILE_STANDARD_WEBHOOKS, [WHSEC])
    assert not standard.HasField("custom")


def test_signing_needs_a_secret_of_the_provider_s_form() -> None:
    with pytest.raises(ValueError, match="needs a secret"):
        webhooks.stripe()
    with pytest.raises(ValueError, match="needs a secret"):
        webhooks.github("")
    with pytest.raises(ValueError, match="whsec_"):
        webhooks.standard("plain-secret")


def test_custom_signing() -> None:
    signing = webhooks.custom(
        "k",
        header="X-Signature",
        algorithm="sha512",
        prefix="sha512=",
        signed="{timestamp}.{body}",
        encoding="base64",
        timestamp_header="X-Timestamp",
    )
    assert signing.profile == webhook_pb2.SIGNING_PROFILE_CUSTOM and list(signing.secrets) == ["k"]
    assert signing.custom == webhook_pb2.CustomSigning(
        algorithm=webhook_pb2.HMAC_ALGORITHM_SHA512,
        header="X-Signature",
        prefix="sha512=",
        signed_content="{timestamp}.{body}",
        encoding=webhook_pb2.SIGNATURE_ENCODING_BASE64,
        timestamp_header="X-Timestamp",
    )
    plain = webhooks.custom("k", header="X-Sig").custom
    assert (plain.algorithm, plain.signed_content, plain.encoding) == (
        webhook_pb2.HMAC_ALGORITHM_SHA256,
        "{body}",
        webhook_pb2.SIGNATURE_ENCODING_HEX,
    )
    with pytest.raises(ValueError, match="unknown HMAC algorithm 'md5'; one of sha1, sha256, sha512"):
        webhooks.custom("k", header="X-Sig", algorithm="md5")
    with pytest.raises(ValueError, match="header"):
        webhooks.custom("k", header="")


def test_retry_schedules() -> None:
    assert webhooks.retry().schedule == webhook_pb2.RETRY_SCHEDULE_NONE
    named = webhooks.retry("stripe", time_scale=0.001, timeout=2.5, max_attempts=3)
    assert (named.schedule, named.time_scale, named.max_attempts) == (webhook_pb2.RETRY_SCHEDULE_STRIPE, 0.001, 3)
    assert named.timeout.ToTimedelta() == timedelta(seconds=2.5) and not named.delays
    assert webhooks.retry("slack").schedule == webhook_pb2.RETRY_SCHEDULE_SLACK
    assert webhooks.retry("standard").schedule == webhook_pb2.RETRY_SCHEDULE_STANDARD_WEBHOOKS
    custom = webhooks.retry([0.05, timedelta(milliseconds=100)])
    assert custom.schedule == webhook_pb2.RETRY_SCHEDULE_CUSTOM
    assert [d.ToTimedelta() for d in custom.delays] == [timedelta(milliseconds=50), timedelta(milliseconds=100)]
    assert not custom.HasField("timeout")
    with pytest.raises(ValueError, match="unknown retry schedule 'github'"):
        webhooks.retry("github")
    with pytest.raises(ValueError, match="at least one wait"):
        webhooks.retry([])
    with pytest.raises(ValueError, match="time_scale"):
        webhooks.retry("stripe", time_scale=0)


def test_faults() -> None:
    assert webhooks.fault() == webhook_pb2.WebhookFault()
    assert webhooks.fault("wrong_signature").signature == webhook_pb2.SIGNATURE_FAULT_WRONG_SIGNATURE
    assert webhooks.fault("stale_timestamp").signature == webhook_pb2.SIGNATURE_FAULT_STALE_TIMESTAMP
    assert webhooks.fault("missing_signature", duplicate=True) == webhook_pb2.WebhookFault(
        signature=webhook_pb2.SIGNATURE_FAULT_MISSING_SIGNATURE, duplicate=True
    )
    with pytest.raises(ValueError, match="unknown signature fault"):
        webhooks.fault("bad_signature")


def test_webhook_bodies_and_fields() -> None:
    hook = webhooks.webhook(
        "http://127.0.0.1:9/hooks",
        json={"action": "opened", "n": 1},
        method="put",
        headers={"x-tenant": "blue"},
        event="issues",
        signing=webhooks.github("s"),
        retry=webhooks.retry("none", timeout=1),
        fault=webhooks.fault(duplicate=True),
    )
    assert (hook.url, hook.method, dict(hook.headers), hook.event) == (
        "http://127.0.0.1:9/hooks",
        "PUT",
        {"x-tenant": "blue"},
        "issues",
    )
    assert hook.WhichOneof("body") == "body_json" and hook.body_json.struct_value["action"] == "opened"
    assert hook.signing.profile == webhook_pb2.SIGNING_PROFILE_GITHUB and hook.fault.duplicate
    assert hook.retry.timeout.seconds == 1
    assert webhooks.webhook("http://h/x").method == "POST" and webhooks.webhook("http://h/x").WhichOneof("body") is None
    assert webhooks.webhook("http://h/x", json=None).body_json.WhichOneof("kind") == "null_value"  # JSON null
    assert webhooks.webhook("http://h/x", text="hé").body_text == "hé"
    assert webhooks.webhook("http://h/x", body="raw").body_bytes == b"raw"
    assert webhooks.webhook("http://h/x", body=b"\x00\xff").body_bytes == b"\x00\xff"
    with pytest.raises(TypeError, match="at most one webhook body, got json and text"):
        webhooks.webhook("http://h/x", json={}, text="")
    with pytest.raises(TypeError, match="signing= takes"):
        webhooks.webhook("http://h/x", signing=webhooks.retry())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="url"):
        webhooks.webhook("")


def test_callbacks_on_stubs() -> None:
    hook = webhooks.webhook("http://127.0.0.1:9/{{ path.n }}", text="{{ request.body }}")
    delayed = webhooks.callback(hook, delay=0.25)
    assert delayed.webhook == hook and delayed.delay.ToTimedelta() == timedelta(milliseconds=250)
    assert not webhooks.callback(hook).HasField("delay")
    built = stub("POST", "/issues/{n}", status=201, callbacks=[delayed, hook])
    assert list(built.callbacks) == [delayed, webhook_pb2.Callback(webhook=hook)]
    assert when("POST", "/x").respond(201).callback(hook).build().callbacks[0].webhook == hook
    with pytest.raises(TypeError, match="callbacks is a list"):
        stub("POST", "/x", callbacks=hook)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="a callback is"):
        stub("POST", "/x", callbacks=["http://h/x"])  # type: ignore[list-item]


def test_delivery_record() -> None:
    message = webhook_pb2.WebhookDelivery(
        delivery_id="msg_1",
        state=webhook_pb2.DELIVERY_STATE_STOPPED,
        attempts=2,
        sequences=[3, 5],
        last_status=410,
        last_error="",
    )
    delivery = Delivery.from_message(message)
    assert delivery == Delivery("msg_1", "stopped", 2, (3, 5), 410, "")
    assert not delivery.delivered
    states = [webhook_pb2.DeliveryState.Name(v) for v in webhook_pb2.DeliveryState.values()]
    assert [Delivery.from_message(webhook_pb2.WebhookDelivery(state=webhook_pb2.DeliveryState.Value(s))).state
            for s in states] == ["unknown", "pending", "delivered", "failed", "stopped", "cancelled"]  # fmt: skip


def test_exchange_of_a_webhook_attempt() -> None:
    message = exchange_pb2.Exchange(
        sequence=4,
        kind=exchange_pb2.EXCHANGE_KIND_WEBHOOK,
        stub="tenants/t/sessions/s/stubs/assign",
        request=exchange_pb2.RecordedRequest(method="POST", path="/hooks", body=b"{}"),
        response=exchange_pb2.RecordedResponse(status=503),
        webhook=webhook_pb2.WebhookAttempt(
            delivery_id="d1", attempt=2, url="http://127.0.0.1:9/hooks", response_body=b"busy", callback_of="x"
        ),
    )
    exchange = Exchange.from_message(message)
    assert exchange.kind == "webhook" and not exchange.matched
    assert exchange.webhook == WebhookAttempt("d1", 2, "http://127.0.0.1:9/hooks", b"busy", "", "x")
    assert str(exchange) == "#4 webhook POST http://127.0.0.1:9/hooks -> 503 (attempt 2)"
    plain = Exchange.from_message(exchange_pb2.Exchange(sequence=1, stub="tenants/t/sessions/s/stubs/a"))
    assert (plain.kind, plain.webhook, plain.matched) == ("http", None, True)
    frame = Exchange.from_message(exchange_pb2.Exchange(kind=exchange_pb2.EXCHANGE_KIND_WEBSOCKET_FRAME))
    assert frame.kind == "websocket_frame"


def test_the_operation_asks_for_one_call_with_a_deadline_past_the_wait() -> None:
    hook = webhooks.webhook("http://127.0.0.1:9/h")
    operation = ops.deliver_webhooks("tenants/t/sessions/s", [hook, hook], wait=True, timeout=12, order="reversed")
    step = advance(operation)
    assert isinstance(step, Rpc)
    request = step.request
    assert isinstance(request, pb.DeliverWebhooksRequest)
    assert (request.parent, len(request.webhooks), request.order, request.wait, request.timeout.seconds) == (
        "tenants/t/sessions/s",
        2,
        pb.DELIVERY_ORDER_REVERSED,
        True,
        12,
    )
    assert step.timeout is not None and step.timeout > 12
    reply = pb.DeliverWebhooksResponse(
        deliveries=[webhook_pb2.WebhookDelivery(delivery_id="a", state=webhook_pb2.DELIVERY_STATE_DELIVERED)]
    )
    done = advance(operation, reply)
    assert isinstance(done, Done) and done.value == [Delivery("a", "delivered", 0, (), 0, "")]
    no_wait = advance(ops.deliver_webhooks("n", [hook], wait=False, timeout=30, order="in_order"))
    assert isinstance(no_wait, Rpc) and no_wait.timeout is None
    with pytest.raises(ValueError, match="unknown delivery order"):
        advance(ops.deliver_webhooks("n", [hook], wait=True, timeout=1, order="shuffled"))
    with pytest.raises(TypeError, match="as arguments"):
        advance(ops.deliver_webhooks("n", [[hook]], wait=True, timeout=1, order="in_order"))  # type: ignore[list-item]


# --- against the daemon --------------------------------------------------------------------------


def test_a_standard_webhook_retried_keeps_its_id_and_verifies(sim_session: Session, receiver: Receiver) -> None:
    receiver.answers = [(500, {}), (503, {})]
    hook = webhooks.webhook(
        receiver.url + "/hooks",
        json={"type": "invoice.paid", "id": "évt_1"},
        signing=webhooks.standard(WHSEC),
        retry=webhooks.retry("standard", time_scale=0.001),
    )

    delivery = sim_session.deliver_webhook(hook)

    assert (delivery.state, delivery.attempts, delivery.last_status, delivery.last_error) == ("delivered", 3, 200, "")
    arrived = receiver.wait(3)
    assert {r.headers["webhook-id"] for r in arrived} == {delivery.delivery_id}
    for request in arrived:
        assert StandardWebhook(WHSEC).verify(request.body, request.headers) == {"type": "invoice.paid", "id": "évt_1"}
    attempts = [e for e in sim_session.exchanges() if e.webhook]
    assert [(e.kind, e.status, e.webhook.attempt, e.webhook.delivery_id) for e in attempts if e.webhook] == [
        ("webhook", 500, 1, delivery.delivery_id),
        ("webhook", 503, 2, delivery.delivery_id),
        ("webhook", 200, 3, delivery.delivery_id),
    ]
    assert tuple(e.sequence for e in attempts) == delivery.sequences
    assert attempts[2].webhook is not None and attempts[2].webhook.response_body == b"ok"
    assert (attempts[0].path, attempts[0].headers["content-type"]) == ("/hooks", "application/json")
    sim_session.verify()  # a webhook is never an unmatched request


def test_stripe_signatures_verify_and_a_wrong_one_is_refused(sim_session: Session, receiver: Receiver) -> None:
    event = {"id": "evt_1", "object": "event", "type": "invoice.paid"}
    good = webhooks.webhook(receiver.url + "/stripe", json=event, signing=webhooks.stripe(STRIPE_SECRET, "whsec_old"))
    bad = webhooks.webhook(
        receiver.url + "/stripe",
        json=event,
        signing=webhooks.stripe(STRIPE_SECRET),
        fault=webhooks.fault("wrong_signature"),
    )

    deliveries = sim_session.deliver_webhooks(good, bad)

    assert [d.state for d in deliveries] == ["delivered", "delivered"]  # the receiver here accepts everything
    first, second = receiver.wait(2)
    assert stripe.Webhook.construct_event(first.body, first.headers["stripe-signature"], STRIPE_SECRET).id == "evt_1"
    assert first.headers["stripe-signature"].count("v1=") == 2  # one per secret while one is rolled
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(second.body, second.headers["stripe-signature"], STRIPE_SECRET)


def test_slack_stale_timestamp_fails_the_sdk_check_and_stop_signal_ends_retries(
    sim_session: Session, receiver: Receiver
) -> None:
    receiver.answers = [(500, {"X-Slack-No-Retry": "1"})]
    signing = webhooks.slack("slack-secret")
    retried = webhooks.webhook(
        receiver.url + "/slack", json={"type": "event_callback"}, signing=signing, retry=webhooks.retry("slack")
    )
    stale = webhooks.webhook(
        receiver.url + "/slack", text="x", signing=signing, fault=webhooks.fault("stale_timestamp")
    )

    stopped, late = sim_session.deliver_webhooks(retried, stale)

    assert (stopped.state, stopped.attempts, stopped.last_status) == ("stopped", 1, 500)
    assert late.state == "delivered"
    first, second = receiver.wait(2)
    verifier = SignatureVerifier("slack-secret")
    assert verifier.is_valid_request(first.body, first.headers)
    assert not verifier.is_valid_request(second.body, second.headers)
    assert 3500 < time.time() - int(second.headers["x-slack-request-timestamp"]) < 3700  # an hour old


def test_a_stub_callback_reaches_the_receiver(sim_session: Session, receiver: Receiver, http: httpx.Client) -> None:
    issues = webhooks.webhook(
        receiver.url + "/gitea/{{ request.json.repo }}",
        event="issue_assign",
        json={"action": "assigned", "number": "{{ path.n | int }}"},
        signing=webhooks.gitea("s3cret"),
    )
    assign = sim_session.stub(
        "POST", "/repos/{owner}/{repo}/issues/{n}/assignees", status=201, callbacks=[webhooks.callback(issues, 0.01)]
    )

    assert http.post(f"{sim_session.url}/repos/o/app/issues/7/assignees", json={"repo": "app"}).status_code == 201

    [request] = receiver.wait(1)
    assert request.path == "/gitea/app" and json.loads(request.body) == {"action": "assigned", "number": 7}
    assert (request.headers["x-gitea-event"], request.headers["x-gitea-event-type"]) == ("issues", "issue_assign")
    expected = hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-gitea-signature"], expected)
    [attempt] = [e for e in sim_session.wait_for(2) if e.webhook]
    assert attempt.webhook is not None and attempt.webhook.callback_of == assign.name
    assert attempt.stub_id == assign.id and not attempt.matched
    assert sim_session.count(matched=True) == 1  # the triggering request; the webhook is neither
    assert sim_session.count(stub=assign) == 2  # the request and the callback it triggered


def test_errors_map_to_the_client_s_exceptions(sim_session: Session) -> None:
    with pytest.raises(PermissionDeniedError) as denied:
        sim_session.deliver_webhook(webhooks.webhook("http://8.8.8.8/hook"))
    assert denied.value.reason == "WEBHOOK_TARGET_FORBIDDEN"
    with pytest.raises(InvalidArgumentError) as invalid:
        sim_session.deliver_webhook(webhooks.webhook("http://127.0.0.1:9/h", signing=webhooks.github("s", "abc")))
    assert [v.field for v in invalid.value.field_violations] == ["webhooks[0].signing.hook_id"]


def test_without_waiting_deliveries_are_pending_then_journalled(sim_session: Session, receiver: Receiver) -> None:
    [delivery] = sim_session.deliver_webhooks(webhooks.webhook(receiver.url + "/later", text="hi"), wait=False)
    assert delivery.state == "pending" and delivery.delivery_id
    [attempt] = sim_session.wait_for(path="/later")
    assert attempt.webhook is not None and attempt.webhook.delivery_id == delivery.delivery_id


def test_async_delivery_in_reverse_order(simulatord_address: str, receiver: Receiver) -> None:
    hooks = [
        webhooks.webhook(f"{receiver.url}/{n}", json={"n": n}, signing=webhooks.standard(WHSEC)) for n in (1, 2, 3)
    ]

    async def scenario() -> tuple[list[Delivery], list[Exchange]]:
        async with AsyncSimulator(simulatord_address) as sim, sim.session(tenant="webhooks-async") as s:
            deliveries = await s.deliver_webhooks(*hooks, order="reversed")
            single = await s.deliver_webhook(hooks[0], timeout=5)
            return [*deliveries, single], await s.exchanges()

    deliveries, journal = asyncio.run(scenario())

    assert [d.state for d in deliveries] == ["delivered"] * 4
    arrived = receiver.wait(4)
    assert [r.path for r in arrived] == ["/3", "/2", "/1", "/1"]
    for request in arrived:
        StandardWebhook(WHSEC).verify(request.body, request.headers)
    assert [e.path for e in journal] == ["/3", "/2", "/1", "/1"] and {e.kind for e in journal} == {"webhook"}
    assert [r.headers["webhook-id"] for r in arrived[:3]] == [d.delivery_id for d in deliveries[2::-1]]


def test_a_missing_signature_fails_the_standard_verifier(simulator: Simulator, receiver: Receiver) -> None:
    hook = webhooks.webhook(
        receiver.url + "/h", json={}, signing=webhooks.standard(WHSEC), fault=webhooks.fault("missing_signature")
    )
    with simulator.session(tenant="webhooks-sync") as s:
        assert s.deliver_webhook(hook).delivered
    [request] = receiver.wait(1)
    assert "webhook-signature" not in request.headers and "webhook-id" in request.headers
    with pytest.raises(WebhookVerificationError):
        StandardWebhook(WHSEC).verify(request.body, request.headers)
