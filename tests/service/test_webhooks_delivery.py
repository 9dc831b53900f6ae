"""How the daemon delivers webhooks over time, against a real receiver on loopback: retry schedules (scaled), stop
signals, timeouts, refused connections, the journal (List/Wait/Watch/Get/Verify), session deletion, stub callbacks."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import stripe
from google.protobuf import duration_pb2, json_format
from slack_sdk.signature import SignatureVerifier
from standardwebhooks import Webhook as StandardWebhook

from simulatord.v1 import exchange_pb2, stub_pb2, webhook_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from tests.service.webhook_support import Answer, Receiver, hook, receiver, refusing_url

__all__ = ["receiver", "refusing_url"]  # fixtures, used by name

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
DELIVERED, FAILED = webhook_pb2.DELIVERY_STATE_DELIVERED, webhook_pb2.DELIVERY_STATE_FAILED
STOPPED, CANCELLED = webhook_pb2.DELIVERY_STATE_STOPPED, webhook_pb2.DELIVERY_STATE_CANCELLED
WEBHOOK = exchange_pb2.EXCHANGE_KIND_WEBHOOK
SCALE = 0.001  # minutes become milliseconds


def deliver(
    control: pb_grpc.SimulatorServiceStub, name: str, *webhooks: webhook_pb2.Webhook, wait: bool = True
) -> list[webhook_pb2.WebhookDelivery]:
    answer = control.DeliverWebhooks(pb.DeliverWebhooksRequest(parent=name, webhooks=webhooks, wait=wait))
    return list(answer.deliveries)


def journal(control: pb_grpc.SimulatorServiceStub, name: str, **filter: object) -> list[exchange_pb2.Exchange]:
    request = pb.ListExchangesRequest(parent=name, filter=exchange_pb2.ExchangeFilter(**filter))  # type: ignore[arg-type]
    return list(control.ListExchanges(request).exchanges)


def stub(fields: dict[str, object]) -> stub_pb2.Stub:
    return json_format.ParseDict(fields, stub_pb2.Stub())


# Retries: each provider's documented schedule, scaled; the waits are lower bounds, never upper ones.

SCHEDULES = {  # the first two waits of each, in seconds, as webhook.proto documents them
    "stripe": ("SIGNING_PROFILE_STRIPE", "whsec_stripe", "RETRY_SCHEDULE_STRIPE", (60, 300)),
    "slack": ("SIGNING_PROFILE_SLACK", "slack-secret", "RETRY_SCHEDULE_SLACK", (0, 60)),
    "standard": ("SIGNING_PROFILE_STANDARD_WEBHOOKS", WHSEC, "RETRY_SCHEDULE_STANDARD_WEBHOOKS", (0, 5)),
}


@pytest.mark.parametrize("provider", list(SCHEDULES))
def test_a_receiver_failing_twice_sees_the_providers_scaled_schedule_with_one_delivery_id(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver, provider: str
) -> None:
    profile, secret, schedule, waits = SCHEDULES[provider]
    receiver.answers = [(500, {}), (503, {})]
    webhook = hook(
        {
            "url": receiver.url + "/hooks",
            "bodyJson": {"id": "evt_1", "object": "event", "type": "invoice.paid"},
            "signing": {"profile": profile, "secrets": [secret]},
            "retry": {"schedule": schedule, "timeScale": SCALE},
        }
    )
    name = session.session.name
    [delivery] = deliver(control, name, webhook)
    assert (delivery.state, delivery.attempts, delivery.last_status) == (DELIVERED, 3, 200)
    arrived = sorted(receiver.still(3, 0.05), key=lambda r: r.at)
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(arrived)]
    assert all(gap >= wait * SCALE for gap, wait in zip(gaps, waits, strict=True)), (gaps, waits)
    for request in arrived:  # every attempt is signed afresh and passes the provider's own verifier
        if provider == "stripe":
            stripe.Webhook.construct_event(request.body, request.headers["stripe-signature"], secret)
        elif provider == "slack":
            assert SignatureVerifier(secret).is_valid_request(request.body, request.headers)
        else:
            StandardWebhook(secret).verify(request.body, request.headers)
            assert request.headers["webhook-id"] == delivery.delivery_id
    if provider == "slack":  # Slack numbers its retries and says why
        retry = [(r.headers.get("x-slack-retry-num"), r.headers.get("x-slack-retry-reason")) for r in arrived]
        assert retry == [(None, None), ("1", "http_error"), ("2", "http_error")]
    exchanges = journal(control, name)
    assert [(e.kind, e.response.status, e.webhook.attempt) for e in exchanges] == [
        (WEBHOOK, 500, 1),
        (WEBHOOK, 503, 2),
        (WEBHOOK, 200, 3),
    ]
    assert {e.webhook.delivery_id for e in exchanges} == {delivery.delivery_id}
    assert list(delivery.sequences) == [e.sequence for e in exchanges]


@pytest.mark.parametrize(
    ("profile", "secret", "schedule", "signal"),
    [
        ("SIGNING_PROFILE_SLACK", "slack-secret", "RETRY_SCHEDULE_SLACK", {"X-Slack-No-Retry": "1"}),
        (
            "SIGNING_PROFILE_STANDARD_WEBHOOKS",
            WHSEC,
            "RETRY_SCHEDULE_STANDARD_WEBHOOKS",
            {"webhook-delivery": "abort-message"},
        ),
    ],
    ids=["slack-no-retry", "abort-message"],
)
def test_a_stop_signal_ends_the_retries(
    control: pb_grpc.SimulatorServiceStub,
    session: pb.CreateSessionResponse,
    receiver: Receiver,
    profile: str,
    secret: str,
    schedule: str,
    signal: dict[str, str],
) -> None:
    receiver.answers = [(500, signal)]
    signing = {"profile": profile, "secrets": [secret]}
    webhook = hook(
        {"url": receiver.url, "bodyText": "x", "signing": signing, "retry": {"schedule": schedule, "timeScale": SCALE}}
    )
    [delivery] = deliver(control, session.session.name, webhook)
    assert (delivery.state, delivery.attempts, delivery.last_status) == (STOPPED, 1, 500)
    receiver.still(1, 0.2)  # the schedule's next attempt was due at once: none came


def test_an_attempt_slower_than_the_timeout_is_an_http_timeout(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    receiver.answers = [Answer(200, delay=1.0)]
    webhook = hook(
        {
            "url": receiver.url,
            "bodyText": "slow",
            "signing": {"profile": "SIGNING_PROFILE_SLACK", "secrets": ["slack-secret"]},
            "retry": {"schedule": "RETRY_SCHEDULE_SLACK", "timeScale": SCALE, "timeout": "0.3s"},
        }
    )
    name = session.session.name
    [delivery] = deliver(control, name, webhook)
    assert (delivery.state, delivery.attempts, delivery.last_status, delivery.last_error) == (DELIVERED, 2, 200, "")
    first, second = journal(control, name)
    assert first.response.status == 0 and "0.3 seconds" in first.webhook.error
    assert first.response.error == first.webhook.error and second.webhook.error == ""
    arrived = {r.headers.get("x-slack-retry-num"): r for r in receiver.wait(2)}
    assert arrived["1"].headers["x-slack-retry-reason"] == "http_timeout"  # what Slack says of a slow answer


def test_a_refused_connection_is_recorded_and_fails_after_max_attempts(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, refusing_url: str
) -> None:
    retry = {"schedule": "RETRY_SCHEDULE_STRIPE", "timeScale": 0.0001, "maxAttempts": 3}
    name = session.session.name
    signing = {"profile": "SIGNING_PROFILE_SLACK", "secrets": ["slack-secret"]}
    [delivery] = deliver(
        control, name, hook({"url": refusing_url, "bodyText": "x", "signing": signing, "retry": retry})
    )
    assert (delivery.state, delivery.attempts, delivery.last_status) == (FAILED, 3, 0)
    assert "ConnectError" in delivery.last_error
    exchanges = journal(control, name)
    assert [(e.webhook.attempt, e.response.status) for e in exchanges] == [(1, 0), (2, 0), (3, 0)]
    assert all(e.webhook.error and e.webhook.delivery_id == delivery.delivery_id for e in exchanges)
    sent = [{h.name: h.value for h in e.request.headers} for e in exchanges]  # what the daemon tried to send
    reasons = [(h.get("x-slack-retry-num"), h.get("x-slack-retry-reason")) for h in sent]
    assert reasons == [(None, None), ("1", "connection_failed"), ("2", "connection_failed")]


# Observation: attempts are exchanges like any other, never matched nor unmatched.


def test_attempts_are_listed_waited_for_watched_and_got_but_never_matched_or_unmatched(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver, http: httpx.Client
) -> None:
    name = session.session.name
    receiver.answers = [Answer(500, {"x-why": "busy"}, b"try later")]
    webhook = hook(
        {
            "url": receiver.url + "/in?x=1",
            "bodyJson": {"n": 1},
            "signing": {"profile": "SIGNING_PROFILE_GITHUB", "secrets": ["s"]},
            "event": "push",
            "retry": {"schedule": "RETRY_SCHEDULE_CUSTOM", "delays": ["0.2s"]},
        }
    )
    watch = control.WatchExchanges(pb.WatchExchangesRequest(parent=name, start_sequence=1), timeout=10)
    try:
        # An unmatched request first: once the watch has sent it, the watch is live for what follows.
        assert http.get(session.session.base_url + "/nothing-here").status_code == 404
        assert next(watch).exchange.kind == exchange_pb2.EXCHANGE_KIND_HTTP
        [delivery] = deliver(control, name, webhook, wait=False)
        assert delivery.state == webhook_pb2.DELIVERY_STATE_PENDING
        seen = [next(watch).exchange, next(watch).exchange]
    finally:
        watch.cancel()
    assert [(e.kind, e.response.status, e.webhook.attempt) for e in seen] == [(WEBHOOK, 500, 1), (WEBHOOK, 200, 2)]
    waited = control.WaitForExchanges(pb.WaitForExchangesRequest(parent=name, count=3))
    assert waited.satisfied and [e.kind for e in waited.exchanges][1:] == [WEBHOOK, WEBHOOK]
    got = control.GetExchange(pb.GetExchangeRequest(name=f"{name}/exchanges/{seen[0].sequence}")).exchange
    assert got.webhook.response_body == b"try later" and got.webhook.delivery_id == seen[1].webhook.delivery_id
    assert ("x-why", "busy") in [(h.name, h.value) for h in got.response.headers]
    sent = {h.name: h.value for h in got.request.headers}
    assert sent["x-github-event"] == "push" and sent["x-hub-signature-256"].startswith("sha256=")
    assert (got.request.method, got.request.path, got.request.query_string) == ("POST", "/in", "x=1")
    assert json.loads(got.request.body) == {"n": 1} and got.webhook.url == receiver.url + "/in?x=1"
    # Match-state filters leave webhooks out, both ways; VerifySession does not count them as unmatched.
    unmatched = journal(control, name, match_state=exchange_pb2.MATCH_STATE_UNMATCHED)
    assert [e.kind for e in unmatched] == [exchange_pb2.EXCHANGE_KIND_HTTP]
    assert journal(control, name, match_state=exchange_pb2.MATCH_STATE_MATCHED) == []
    for state in (exchange_pb2.MATCH_STATE_MATCHED, exchange_pb2.MATCH_STATE_UNMATCHED):
        request = pb.WaitForExchangesRequest(
            parent=name,
            count=2,
            filter=exchange_pb2.ExchangeFilter(match_state=state),
            timeout=duration_pb2.Duration(nanos=200_000_000),
        )
        assert not control.WaitForExchanges(request).satisfied
    verified = control.VerifySession(pb.VerifySessionRequest(name=name))
    assert [e.sequence for e in verified.unmatched_exchanges] == [unmatched[0].sequence]


def test_verify_stays_ok_with_webhooks_only(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    receiver.answers = [(404, {})]
    name = session.session.name
    [delivery] = deliver(control, name, hook({"url": receiver.url, "bodyText": "x"}))
    assert (delivery.state, delivery.last_status) == (FAILED, 404)
    assert control.VerifySession(pb.VerifySessionRequest(name=name)).ok


# Lifecycle: a deleted session sends nothing more.


def test_deleting_the_session_cancels_its_pending_retries(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    receiver.answers = [(500, {})]
    retry = {"schedule": "RETRY_SCHEDULE_CUSTOM", "delays": ["0.5s"], "timeScale": 1}
    name = session.session.name
    [delivery] = deliver(control, name, hook({"url": receiver.url, "bodyText": "x", "retry": retry}), wait=False)
    assert delivery.state == webhook_pb2.DELIVERY_STATE_PENDING
    receiver.wait(1)
    control.DeleteSession(pb.DeleteSessionRequest(name=name))
    receiver.still(1, 1.0)  # the retry was due 0.5 s after the first attempt


def test_deleting_the_session_ends_a_waiting_call_with_every_delivery_cancelled(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver
) -> None:
    # The first webhook's receiver is slow; the second waits for the first's first attempt (IN_ORDER).
    receiver.answers = [Answer(200, delay=1.0)]
    name = session.session.name
    webhooks = [hook({"url": receiver.url, "bodyText": str(n), "retry": {"timeout": "5s"}}) for n in (1, 2)]
    request = pb.DeliverWebhooksRequest(
        parent=name, webhooks=webhooks, wait=True, timeout=duration_pb2.Duration(seconds=4)
    )
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(control.DeliverWebhooks, request)
        time.sleep(0.3)  # the first attempt is in flight
        control.DeleteSession(pb.DeleteSessionRequest(name=name))
        answer = waiting.result(timeout=10)
    assert [d.state for d in answer.deliveries] == [CANCELLED, CANCELLED]
    receiver.wait(1)  # the first arrived (the receiver records it once it has answered)
    receiver.still(1, 0.2)  # the second was never sent


def test_deleting_the_session_cancels_a_delayed_callback(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, receiver: Receiver, http: httpx.Client
) -> None:
    name = session.session.name
    callback = {"webhook": {"url": receiver.url, "bodyText": "late"}, "delay": "0.5s"}
    control.CreateStub(
        pb.CreateStubRequest(
            parent=name,
            stub=stub({"request": {"path": {"exact": "/go"}}, "responses": [{"status": 202}], "callbacks": [callback]}),
        )
    )
    assert http.post(session.session.base_url + "/go").status_code == 202
    control.DeleteSession(pb.DeleteSessionRequest(name=name))
    receiver.still(0, 1.0)


# Callbacks: webhooks a stub sends when it matches.


def test_a_stub_callback_renders_from_path_captures_json_and_headers_after_its_delay(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, http: httpx.Client, receiver: Receiver
) -> None:
    callback = {
        "webhook": {
            "url": receiver.url + "/gitea/{{ request.json.repo }}",
            "event": "issues",
            "headers": {"X-Trace": "{{ request.headers['x-trace'] }}"},
            "bodyJson": {
                "action": "assigned",
                "issue": {"number": "{{ path.n | int }}"},
                "by": "{{ request.json.user }}",
            },
            "signing": {"profile": "SIGNING_PROFILE_GITEA", "secrets": ["s3cret"]},
        },
        "delay": "0.3s",
    }
    name = session.session.name
    created = control.CreateStub(
        pb.CreateStubRequest(
            parent=name,
            stub=stub(
                {
                    "request": {"method": "POST", "path": {"template": "/repos/issues/{n}/assignees"}},
                    "responses": [{"status": 201}],
                    "callbacks": [callback],
                }
            ),
        )
    )
    sent = time.monotonic()
    response = http.post(
        session.session.base_url + "/repos/issues/7/assignees",
        json={"repo": "app", "user": "ann"},
        headers={"x-trace": "t-1"},
    )
    assert response.status_code == 201
    [request] = receiver.wait(1)
    assert request.at - sent >= 0.3  # the delay is a lower bound
    assert request.path == "/gitea/app" and request.headers["x-trace"] == "t-1"
    assert json.loads(request.body) == {"action": "assigned", "issue": {"number": 7}, "by": "ann"}
    expected = hmac.new(b"s3cret", request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-gitea-signature"], expected)  # as a Gitea receiver checks it
    [served, attempt] = journal(control, name)
    assert attempt.kind == WEBHOOK and attempt.webhook.callback_of == created.stub.name == served.stub


def test_a_callback_whose_template_fails_is_recorded_not_raised(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, http: httpx.Client, receiver: Receiver
) -> None:
    name = session.session.name
    callbacks = [
        {"webhook": {"url": "{{ request.json.target }}", "bodyText": "x"}},  # renders to a URL that is no URL
        {"webhook": {"url": receiver.url, "bodyText": "{{ 1 // request.json.zero }}"}},  # raises while rendering
    ]
    control.CreateStub(
        pb.CreateStubRequest(
            parent=name,
            stub=stub({"request": {"path": {"exact": "/t"}}, "responses": [{"status": 200}], "callbacks": callbacks}),
        )
    )
    assert http.post(session.session.base_url + "/t", json={"target": "ftp://nowhere", "zero": 0}).status_code == 200
    waited = control.WaitForExchanges(pb.WaitForExchangesRequest(parent=name, count=3))
    assert waited.satisfied
    failed = [e for e in waited.exchanges if e.kind == WEBHOOK]
    assert len(failed) == 2 and all("template failed" in e.webhook.error for e in failed)
    assert any("ftp://nowhere" in e.webhook.error for e in failed)
    assert all(e.response.error == e.webhook.error and e.webhook.callback_of for e in failed)
    receiver.still(0, 0.1)
    assert http.post(session.session.base_url + "/t", json={"target": receiver.url, "zero": 1}).status_code == 200
    assert [r.body for r in receiver.wait(2)] in ([b"x", b"1"], [b"1", b"x"])  # the daemon still delivers


def test_a_stub_matched_twice_sends_two_deliveries(
    control: pb_grpc.SimulatorServiceStub, session: pb.CreateSessionResponse, http: httpx.Client, receiver: Receiver
) -> None:
    name = session.session.name
    callback = {
        "webhook": {
            "url": receiver.url + "/n/{{ path.n }}",
            "bodyJson": {"n": "{{ path.n }}"},
            "signing": {"profile": "SIGNING_PROFILE_STANDARD_WEBHOOKS", "secrets": [WHSEC]},
        }
    }
    control.CreateStub(
        pb.CreateStubRequest(
            parent=name,
            stub=stub(
                {"request": {"path": {"template": "/e/{n}"}}, "responses": [{"status": 200}], "callbacks": [callback]}
            ),
        )
    )
    for n in ("1", "2"):
        assert http.post(f"{session.session.base_url}/e/{n}").status_code == 200
    arrived = receiver.wait(2)
    assert sorted(r.path for r in arrived) == ["/n/1", "/n/2"]
    assert sorted(StandardWebhook(WHSEC).verify(r.body, r.headers)["n"] for r in arrived) == ["1", "2"]
    assert len({r.headers["webhook-id"] for r in arrived}) == 2
    receiver.still(2, 0.1)
