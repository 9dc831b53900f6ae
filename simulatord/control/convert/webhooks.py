"""Webhook and Callback messages into the domain's webhook specs; deliveries and attempts back into messages."""

from __future__ import annotations

from collections.abc import Iterable

from simulatord.control.convert.scalars import oneof, seconds
from simulatord.errors import SpecErrors
from simulatord.v1 import webhook_pb2
from simulatord.webhooks import signing, spec
from simulatord.webhooks.delivery import Delivery, DeliveryState

_PROFILES = {
    webhook_pb2.SIGNING_PROFILE_GITHUB: signing.Profile.GITHUB,
    webhook_pb2.SIGNING_PROFILE_GITEA: signing.Profile.GITEA,
    webhook_pb2.SIGNING_PROFILE_GITLAB: signing.Profile.GITLAB,
    webhook_pb2.SIGNING_PROFILE_STRIPE: signing.Profile.STRIPE,
    webhook_pb2.SIGNING_PROFILE_SLACK: signing.Profile.SLACK,
    webhook_pb2.SIGNING_PROFILE_STANDARD_WEBHOOKS: signing.Profile.STANDARD,
    webhook_pb2.SIGNING_PROFILE_CUSTOM: signing.Profile.CUSTOM,
}
_ALGORITHMS = {
    webhook_pb2.HMAC_ALGORITHM_UNSPECIFIED: "sha256",
    webhook_pb2.HMAC_ALGORITHM_SHA1: "sha1",
    webhook_pb2.HMAC_ALGORITHM_SHA256: "sha256",
    webhook_pb2.HMAC_ALGORITHM_SHA512: "sha512",
}
_ENCODINGS = {
    webhook_pb2.SIGNATURE_ENCODING_UNSPECIFIED: "hex",
    webhook_pb2.SIGNATURE_ENCODING_HEX: "hex",
    webhook_pb2.SIGNATURE_ENCODING_BASE64: "base64",
}
_SCHEDULES = {
    webhook_pb2.RETRY_SCHEDULE_UNSPECIFIED: spec.Schedule.NONE,
    webhook_pb2.RETRY_SCHEDULE_NONE: spec.Schedule.NONE,
    webhook_pb2.RETRY_SCHEDULE_STRIPE: spec.Schedule.STRIPE,
    webhook_pb2.RETRY_SCHEDULE_SLACK: spec.Schedule.SLACK,
    webhook_pb2.RETRY_SCHEDULE_STANDARD_WEBHOOKS: spec.Schedule.STANDARD,
    webhook_pb2.RETRY_SCHEDULE_CUSTOM: spec.Schedule.CUSTOM,
}
_FAULTS = {
    webhook_pb2.SIGNATURE_FAULT_UNSPECIFIED: signing.SignatureFault.NONE,
    webhook_pb2.SIGNATURE_FAULT_WRONG_SIGNATURE: signing.SignatureFault.WRONG_SIGNATURE,
    webhook_pb2.SIGNATURE_FAULT_STALE_TIMESTAMP: signing.SignatureFault.STALE_TIMESTAMP,
    webhook_pb2.SIGNATURE_FAULT_MISSING_SIGNATURE: signing.SignatureFault.MISSING_SIGNATURE,
}
_STATES = {
    DeliveryState.PENDING: webhook_pb2.DELIVERY_STATE_PENDING,
    DeliveryState.DELIVERED: webhook_pb2.DELIVERY_STATE_DELIVERED,
    DeliveryState.FAILED: webhook_pb2.DELIVERY_STATE_FAILED,
    DeliveryState.STOPPED: webhook_pb2.DELIVERY_STATE_STOPPED,
    DeliveryState.CANCELLED: webhook_pb2.DELIVERY_STATE_CANCELLED,
}


def _signer(msg: webhook_pb2.WebhookSigning, where: str, errors: SpecErrors) -> signing.Signer:
    custom = None
    if msg.HasField("custom"):
        c = msg.custom
        custom = signing.CustomHmac(
            algorithm=_ALGORITHMS.get(c.algorithm, "?"),
            header=c.header,
            prefix=c.prefix,
            signed=c.signed_content or "{body}",
            encoding=_ENCODINGS.get(c.encoding, "?"),
            timestamp_header=c.timestamp_header,
            id_header=c.id_header,
        )
    return signing.signer(_PROFILES.get(msg.profile), list(msg.secrets), custom, where, errors)


def webhook(msg: webhook_pb2.Webhook, where: str, errors: SpecErrors, templated: bool = False) -> spec.WebhookSpec:
    body_kind, body = oneof(msg, "body", where, errors)
    retry = msg.retry
    policy = spec.retry_policy(
        seconds(retry.timeout),
        _SCHEDULES.get(retry.schedule),
        [seconds(d) for d in retry.delays],
        retry.time_scale,
        retry.max_attempts,
        f"{where}.retry",
        errors,
    )
    fault = _FAULTS.get(msg.fault.signature)
    if fault is None:
        errors.add(f"{where}.fault.signature", "unknown SignatureFault value")
    return spec.webhook(
        url=msg.url,
        method=msg.method,
        headers=dict(msg.headers),
        body_kind=body_kind,
        body=body,
        event=msg.event,
        signer=_signer(msg.signing, f"{where}.signing", errors) if msg.HasField("signing") else None,
        hook_id=msg.signing.hook_id,
        retry=policy,
        signature_fault=fault or signing.SignatureFault.NONE,
        duplicate=msg.fault.duplicate,
        where=where,
        errors=errors,
        templated=templated,
    )


def callbacks(items: Iterable[webhook_pb2.Callback], where: str, errors: SpecErrors) -> tuple[spec.CallbackSpec, ...]:
    return tuple(
        spec.callback(
            webhook(c.webhook, f"{where}[{i}].webhook", errors, templated=True),
            seconds(c.delay),
            f"{where}[{i}]",
            errors,
        )
        for i, c in enumerate(items)
    )


def delivery_to_proto(value: Delivery) -> webhook_pb2.WebhookDelivery:
    return webhook_pb2.WebhookDelivery(
        delivery_id=value.id,
        state=_STATES[value.state],
        attempts=value.attempts,
        sequences=value.sequences,
        last_status=value.last_status,
        last_error=value.last_error,
    )


def attempt_to_proto(value: spec.WebhookRecord) -> webhook_pb2.WebhookAttempt:
    return webhook_pb2.WebhookAttempt(
        delivery_id=value.delivery_id,
        attempt=value.attempt,
        url=value.url,
        response_body=value.response_body,
        error=value.error,
        callback_of=value.callback_of,
    )
