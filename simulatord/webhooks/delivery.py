"""A delivery's state and the pure parts of each attempt: the request to send and what its answer means."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from enum import StrEnum

from simulatord.webhooks.signing import Profile, sign
from simulatord.webhooks.spec import WebhookSpec

# A receiver asks for no more retries with one of these response headers (name, value), compared lower-case.
STOP_SIGNALS = (("x-slack-no-retry", "1"), ("webhook-delivery", "abort-message"))
USER_AGENT = "simulatord-webhooks/1"


class DeliveryState(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    STOPPED = "stopped"
    CANCELLED = "cancelled"


class Outcome(StrEnum):
    """How one attempt went, in Slack's words for `X-Slack-Retry-Reason`."""

    OK = "ok"
    HTTP_ERROR = "http_error"
    HTTP_TIMEOUT = "http_timeout"
    CONNECTION_FAILED = "connection_failed"
    FORBIDDEN = "forbidden"  # the target is outside --webhook-targets: retrying cannot help


@dataclass(eq=False)
class Delivery:
    """One webhook's delivery: the id every attempt carries, and how far it got."""

    id: str
    state: DeliveryState = DeliveryState.PENDING
    attempts: int = 0
    sequences: list[int] = field(default_factory=list)
    last_status: int = 0
    last_error: str = ""
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def end(self, state: DeliveryState) -> None:
        self.state = state
        self.done.set()


def delivery_id(spec: WebhookSpec) -> str:
    """A GUID for GitHub and Gitea, Svix's `msg_` form for Standard Webhooks, else a UUID."""
    value = uuid.uuid4()
    profile = spec.signer.profile if spec.signer is not None else None
    if profile is Profile.STANDARD:
        return "msg_" + value.hex[:27]
    return str(value)


def attempt_headers(
    spec: WebhookSpec, body: bytes, identifier: str, timestamp: int, attempt: int, previous: Outcome
) -> list[tuple[str, str]]:
    """The headers of one attempt: the webhook's own, then the signing profile's (re-signed each attempt, as
    Stripe and Svix do), then Slack's retry headers."""
    own = [] if any(n.lower() == "user-agent" for n, _ in spec.headers) else [("user-agent", USER_AGENT)]
    headers = [*own, *spec.headers]
    if spec.signer is not None:
        signed = sign(
            spec.signer,
            body,
            delivery_id=identifier,
            timestamp=timestamp,
            event=spec.event,
            hook_id=spec.hook_id,
            fault=spec.signature_fault,
        )
        names = {n.lower() for n, _ in signed}
        headers = [(n, v) for n, v in headers if n.lower() not in names] + signed
        if spec.signer.profile is Profile.SLACK and attempt > 1:
            headers += [("X-Slack-Retry-Num", str(attempt - 1)), ("X-Slack-Retry-Reason", previous.value)]
    return headers


def stop_requested(headers: list[tuple[str, str]]) -> bool:
    return any((n.lower(), v.strip().lower()) in STOP_SIGNALS for n, v in headers)
