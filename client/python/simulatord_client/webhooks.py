"""Builders for webhooks the daemon delivers to the code under test, signed as a provider signs them, and `Delivery`.

Each builder returns a plain `simulatord.v1` message (`Webhook`, `WebhookSigning`, `WebhookRetry`, `WebhookFault`,
`Callback`), so a raw message is accepted wherever a helper's result is. With
`from simulatord_client import webhooks`::

    hook = webhooks.webhook(
        "http://127.0.0.1:9000/hooks/stripe",
        json={"type": "invoice.paid"},
        signing=webhooks.stripe("whsec_test"),
        retry=webhooks.retry("stripe", time_scale=0.001),
    )
    [delivery] = s.deliver_webhooks(hook)
    assert delivery.state == "delivered"

    # A stub that, each time it matches, sends a webhook rendered from the request that triggered it.
    assigned = webhooks.webhook(url, event="issues", json={"number": "{{ path.n | int }}"}, signing=webhooks.gitea("s"))
    s.stub("POST", "/repos/{owner}/{repo}/issues/{n}/assignees", status=201, callbacks=[assigned])
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import webhook_pb2
from simulatord_client.builders import MISSING, json_value
from simulatord_client.durations import DurationLike, duration

_V = TypeVar("_V")

_SCHEDULES: dict[str, webhook_pb2.RetrySchedule.ValueType] = {
    "none": webhook_pb2.RETRY_SCHEDULE_NONE,
    "stripe": webhook_pb2.RETRY_SCHEDULE_STRIPE,
    "slack": webhook_pb2.RETRY_SCHEDULE_SLACK,
    "standard": webhook_pb2.RETRY_SCHEDULE_STANDARD_WEBHOOKS,
}
_SIGNATURE_FAULTS: dict[str, webhook_pb2.SignatureFault.ValueType] = {
    "wrong_signature": webhook_pb2.SIGNATURE_FAULT_WRONG_SIGNATURE,
    "stale_timestamp": webhook_pb2.SIGNATURE_FAULT_STALE_TIMESTAMP,
    "missing_signature": webhook_pb2.SIGNATURE_FAULT_MISSING_SIGNATURE,
}
_ALGORITHMS: dict[str, webhook_pb2.HmacAlgorithm.ValueType] = {
    "sha1": webhook_pb2.HMAC_ALGORITHM_SHA1,
    "sha256": webhook_pb2.HMAC_ALGORITHM_SHA256,
    "sha512": webhook_pb2.HMAC_ALGORITHM_SHA512,
}
_ENCODINGS: dict[str, webhook_pb2.SignatureEncoding.ValueType] = {
    "hex": webhook_pb2.SIGNATURE_ENCODING_HEX,
    "base64": webhook_pb2.SIGNATURE_ENCODING_BASE64,
}
_ORDERS: dict[str, pb.DeliveryOrder.ValueType] = {
    "in_order": pb.DELIVERY_ORDER_IN_ORDER,
    "reversed": pb.DELIVERY_ORDER_REVERSED,
}
_STATES: dict[webhook_pb2.DeliveryState.ValueType, str] = {
    webhook_pb2.DELIVERY_STATE_UNSPECIFIED: "unknown",
    webhook_pb2.DELIVERY_STATE_PENDING: "pending",
    webhook_pb2.DELIVERY_STATE_DELIVERED: "delivered",
    webhook_pb2.DELIVERY_STATE_FAILED: "failed",
    webhook_pb2.DELIVERY_STATE_STOPPED: "stopped",
    webhook_pb2.DELIVERY_STATE_CANCELLED: "cancelled",
}
#: A retry schedule: a provider's name (`"none"`, `"stripe"`, `"slack"`, `"standard"`) or the waits before each
#: retry, in seconds (a custom schedule).
ScheduleLike = str | Sequence[DurationLike]


def _choice(table: Mapping[str, _V], name: str, what: str) -> _V:
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; one of {', '.join(table)}") from None


# --- signing -------------------------------------------------------------------------------------


def _signing(
    profile: webhook_pb2.SigningProfile.ValueType, secrets: Iterable[str], what: str
) -> webhook_pb2.WebhookSigning:
    listed = list(secrets)
    if not listed or not all(isinstance(secret, str) and secret for secret in listed):
        raise ValueError(f"{what} needs a secret: a non-empty str")
    return webhook_pb2.WebhookSigning(profile=profile, secrets=listed)


def github(secret: str, hook_id: str = "") -> webhook_pb2.WebhookSigning:
    """GitHub's signing: `X-Hub-Signature-256: sha256=<hex>` (and the legacy SHA-1 `X-Hub-Signature`),
    `X-GitHub-Event` (the webhook's `event`), `X-GitHub-Delivery` (a GUID), `X-GitHub-Hook-ID` (`hook_id`, a
    number; "" sends `1`).

    Example: `webhooks.webhook(url, event="push", json=payload, signing=webhooks.github("s3cret"))`.
    """
    out = _signing(webhook_pb2.SIGNING_PROFILE_GITHUB, [secret], "github()")
    out.hook_id = str(hook_id)
    return out


def gitea(secret: str) -> webhook_pb2.WebhookSigning:
    """Gitea's signing: `X-Gitea-Signature` (bare hex HMAC-SHA256 of the body), `X-Gitea-Event`,
    `X-Gitea-Event-Type`, `X-Gitea-Delivery`, and the Gogs and GitHub aliases Gitea also sends. The webhook's
    `event` may be Gitea's event type (`issue_assign` sends event `issues`, type `issue_assign`).
    """
    return _signing(webhook_pb2.SIGNING_PROFILE_GITEA, [secret], "gitea()")


def gitlab(token: str) -> webhook_pb2.WebhookSigning:
    """GitLab's: the secret token itself in `X-Gitlab-Token`, the `event` in `X-Gitlab-Event` (`Issue Hook`),
    the delivery id in `Idempotency-Key` and `X-Gitlab-Webhook-UUID`."""
    return _signing(webhook_pb2.SIGNING_PROFILE_GITLAB, [token], "gitlab()")


def stripe(*secrets: str) -> webhook_pb2.WebhookSigning:
    """Stripe's: `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256("t.body")>`, one `v1` per secret (several
    while a secret is rolled); verifies with `stripe.Webhook.construct_event(body, header, secret)`."""
    return _signing(webhook_pb2.SIGNING_PROFILE_STRIPE, secrets, "stripe()")


def slack(secret: str) -> webhook_pb2.WebhookSigning:
    """Slack's: `X-Slack-Signature: v0=<hex HMAC-SHA256("v0:ts:body")>` and `X-Slack-Request-Timestamp`; retries
    carry `X-Slack-Retry-Num` and `X-Slack-Retry-Reason`."""
    return _signing(webhook_pb2.SIGNING_PROFILE_SLACK, [secret], "slack()")


def standard(*secrets: str) -> webhook_pb2.WebhookSigning:
    """Standard Webhooks (Svix): `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` over
    `id.timestamp.body`, one signature per secret, space-separated. Secrets are `whsec_` and base64, as
    `standardwebhooks.Webhook(secret)` takes them."""
    for secret in secrets:
        if isinstance(secret, str) and secret and not secret.startswith("whsec_"):
            raise ValueError(f"a Standard Webhooks secret is `whsec_` followed by base64, got {secret[:6]!r}...")
    return _signing(webhook_pb2.SIGNING_PROFILE_STANDARD_WEBHOOKS, secrets, "standard()")


def custom(
    secret: str,
    *,
    header: str,
    algorithm: str = "sha256",
    prefix: str = "",
    signed: str = "{body}",
    encoding: str = "hex",
    timestamp_header: str = "",
    id_header: str = "",
) -> webhook_pb2.WebhookSigning:
    """A custom HMAC: `algorithm` (`sha1`, `sha256`, `sha512`) over `signed` (a template of `{body}`,
    `{timestamp}` and `{id}`, the delivery id; `{{`/`}}` for literal braces), written in `encoding` (`hex`,
    `base64`) after `prefix` in `header`; `timestamp_header` sends the unix timestamp (needed when `signed` holds
    `{timestamp}`) and `id_header` the delivery id (needed when it holds `{id}`).

    Example: `webhooks.custom("k", header="X-Signature", prefix="sha512=", algorithm="sha512",
    signed="{timestamp}.{body}", timestamp_header="X-Timestamp")`.
    """
    if not header:
        raise ValueError("custom() needs the header that carries the signature: header='X-Signature'")
    out = _signing(webhook_pb2.SIGNING_PROFILE_CUSTOM, [secret], "custom()")
    out.custom.CopyFrom(
        webhook_pb2.CustomSigning(
            algorithm=_choice(_ALGORITHMS, algorithm, "HMAC algorithm"),
            header=header,
            prefix=prefix,
            signed_content=signed,
            encoding=_choice(_ENCODINGS, encoding, "signature encoding"),
            timestamp_header=timestamp_header,
            id_header=id_header,
        )
    )
    return out


# --- retries and faults --------------------------------------------------------------------------


def retry(
    schedule: ScheduleLike = "none",
    *,
    time_scale: float = 1.0,
    timeout: DurationLike | None = None,
    max_attempts: int = 0,
) -> webhook_pb2.WebhookRetry:
    """Timeout per attempt and retries. `schedule`: `"none"` (one attempt, as GitHub, Gitea and GitLab),
    `"stripe"` (1 min, 5 min, 30 min, 2 h, ... over three days), `"slack"` (at once, 1 min, 5 min), `"standard"`
    (at once, 5 s, 5 min, 30 min, 2 h, ...), or a list of waits in seconds. `time_scale` multiplies every wait
    (0.001: five minutes in 300 ms); `timeout` bounds each attempt (None: 10 s); `max_attempts` caps the attempts,
    the first included (0: the schedule's).

    Example: `webhooks.retry("standard", time_scale=0.001, timeout=2)`, `webhooks.retry([0.05, 0.1])`.
    """
    if not time_scale > 0:
        raise ValueError(f"time_scale multiplies every wait: more than 0, got {time_scale}")
    if max_attempts < 0:
        raise ValueError(f"max_attempts must be 0 (the schedule's) or more, got {max_attempts}")
    out = webhook_pb2.WebhookRetry(time_scale=time_scale, max_attempts=max_attempts)
    if isinstance(schedule, str):
        out.schedule = _choice(_SCHEDULES, schedule, "retry schedule")
    else:
        delays = [duration(wait) for wait in schedule]
        if not delays:
            raise ValueError('a custom schedule needs at least one wait; no retries is retry("none")')
        out.schedule = webhook_pb2.RETRY_SCHEDULE_CUSTOM
        out.delays.extend(delays)
    if timeout is not None:
        out.timeout.CopyFrom(duration(timeout))
    return out


def fault(signature: str | None = None, *, duplicate: bool = False) -> webhook_pb2.WebhookFault:
    """Faults for negative tests of the receiver: `signature` `"wrong_signature"` (signed with another secret),
    `"stale_timestamp"` (an hour old; profiles with a timestamp only) or `"missing_signature"` (the header left
    out); `duplicate` delivers the webhook twice with the same delivery id.

    Example: `webhooks.webhook(url, json=event, signing=webhooks.stripe(key), fault=webhooks.fault("wrong_signature"))`.
    """
    out = webhook_pb2.WebhookFault(duplicate=duplicate)
    if signature is not None:
        out.signature = _choice(_SIGNATURE_FAULTS, signature, "signature fault")
    return out


# --- webhooks and callbacks ----------------------------------------------------------------------


def webhook(
    url: str,
    *,
    json: Any = MISSING,
    text: str | None = None,
    body: bytes | str | None = None,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    event: str = "",
    signing: webhook_pb2.WebhookSigning | None = None,
    retry: webhook_pb2.WebhookRetry | None = None,
    fault: webhook_pb2.WebhookFault | None = None,
) -> webhook_pb2.Webhook:
    """A webhook: `url` (an allowed host: see `serve --webhook-targets`), at most one body (`json`, sent compactly
    with `content-type: application/json`; `text`, UTF-8 `text/plain`; `body`, raw), `method`, extra `headers`
    (the signing profile's win on a clash), the provider's `event` name, and `signing`, `retry`, `fault` from the
    helpers above. In a stub's callback, url, header values and body are templates rendered from the triggering
    request (`{{ request.json.repo }}`, `{{ path.n }}`).

    Example: `webhooks.webhook(url, event="issues", json={"action": "opened"}, signing=webhooks.github("s3cret"))`.
    """
    if not url:
        raise ValueError("a webhook needs the url to deliver to")
    given = [
        name
        for name, there in (("json", json is not MISSING), ("text", text is not None), ("body", body is not None))
        if there
    ]
    if len(given) > 1:
        raise TypeError(f"give at most one webhook body, got {' and '.join(given)}")
    out = webhook_pb2.Webhook(url=url, method=method.upper(), headers=dict(headers or {}), event=event)
    if json is not MISSING:
        out.body_json.CopyFrom(json_value(json))
    elif text is not None:
        out.body_text = text
    elif body is not None:
        out.body_bytes = body.encode() if isinstance(body, str) else body
    if signing is not None:
        out.signing.CopyFrom(_typed(signing, webhook_pb2.WebhookSigning, "signing", "webhooks.github(...) &c."))
    if retry is not None:
        out.retry.CopyFrom(_typed(retry, webhook_pb2.WebhookRetry, "retry", "webhooks.retry(...)"))
    if fault is not None:
        out.fault.CopyFrom(_typed(fault, webhook_pb2.WebhookFault, "fault", "webhooks.fault(...)"))
    return out


_M = TypeVar("_M")


def _typed(value: object, cls: type[_M], what: str, helper: str) -> _M:
    if not isinstance(value, cls):
        raise TypeError(f"{what}= takes {helper}, not {type(value).__name__}")
    return value


def callback(webhook: webhook_pb2.Webhook, delay: DurationLike | None = None) -> webhook_pb2.Callback:
    """A webhook a stub sends each time it matches, `delay` (seconds) after its response; its url, header values
    and body are templates rendered from the triggering request. A bare Webhook in `callbacks=[...]` means the
    same with no delay.

    Example: `s.stub("POST", "/issues/{n}/assignees", status=201, callbacks=[webhooks.callback(hook, delay=0.1)])`.
    """
    out = webhook_pb2.Callback(webhook=_typed(webhook, webhook_pb2.Webhook, "callback()", "webhooks.webhook(...)"))
    if delay is not None:
        out.delay.CopyFrom(duration(delay))
    return out


def delivery_order(name: str) -> pb.DeliveryOrder.ValueType:
    """The DeliveryOrder for `"in_order"` or `"reversed"` (last first: out-of-order delivery)."""
    return _choice(_ORDERS, name, "delivery order")


# --- outcomes ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """How one webhook's delivery went: `delivery_id` (what the receiver sees in `X-GitHub-Delivery`,
    `webhook-id`..., the same on every attempt), `state` (`"pending"`, `"delivered"`, `"failed"`, `"stopped"`
    when the receiver asked for no retries, `"cancelled"`), `attempts` made, the journal `sequences` of their
    exchanges, the last attempt's `last_status` (0 when it got none) and `last_error` (a connection error or
    timeout).

    Example: `assert (delivery.state, delivery.attempts) == ("delivered", 3)`.
    """

    delivery_id: str
    state: str
    attempts: int
    sequences: tuple[int, ...]
    last_status: int
    last_error: str

    @classmethod
    def from_message(cls, message: webhook_pb2.WebhookDelivery) -> Delivery:
        """The record for a WebhookDelivery message."""
        return cls(
            delivery_id=message.delivery_id,
            state=_STATES.get(message.state, "unknown"),
            attempts=message.attempts,
            sequences=tuple(message.sequences),
            last_status=message.last_status,
            last_error=message.last_error,
        )

    @property
    def delivered(self) -> bool:
        """True when an attempt got a 2xx."""
        return self.state == "delivered"
