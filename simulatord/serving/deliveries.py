"""Running webhook deliveries: attempts with their retries, each recorded in the session's journal.

Imported by the first delivery (`Outbound.start` or a stub's callbacks), not at start-up: most daemons never
send a webhook, and the signing, templating and retry code is a fair share of the daemon's import time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from simulatord.errors import PermissionDenied, ResourceExhausted
from simulatord.matching.request import HttpRequest
from simulatord.responding.reply import Reply
from simulatord.serving.recording import record
from simulatord.sessions.journal import ExchangeKind
from simulatord.sessions.session import Session
from simulatord.webhooks.delivery import (
    Delivery,
    DeliveryState,
    Outcome,
    attempt_headers,
    delivery_id,
    stop_requested,
)
from simulatord.webhooks.spec import CallbackSpec, WebhookRecord, WebhookSpec, rendered

if TYPE_CHECKING:
    from simulatord.serving.outbound import Outbound

log = logging.getLogger("simulatord.serving.outbound")


def start(
    outbound: Outbound, session: Session, specs: Sequence[WebhookSpec], reverse: bool = False, callback_of: str = ""
) -> list[Delivery]:
    """Starts delivering; first attempts go one after another, in order (or reversed)."""
    if session.pending_deliveries + len(specs) > outbound.max_pending:
        raise ResourceExhausted(
            f"session {session.key.name} has {session.pending_deliveries} webhook deliveries pending; "
            f"at most {outbound.max_pending} may be",
            "TOO_MANY_DELIVERIES",
            {"session": session.key.name},
        )
    deliveries = [Delivery(delivery_id(spec)) for spec in specs]
    # Counted from now, not from each first attempt: IN_ORDER deliveries start one after another, and the bound
    # must hold for those still waiting their turn too.
    session.pending_deliveries += len(deliveries)
    pairs = list(zip(specs, deliveries, strict=True))
    _run(outbound, session, _in_order(outbound, session, pairs[::-1] if reverse else pairs, callback_of), deliveries)
    return deliveries


def _run(outbound: Outbound, session: Session, work: Coroutine[Any, Any, None], deliveries: Sequence[Delivery]) -> None:
    """Runs `work` until the session goes; a task cancelled before it ran ends its deliveries as CANCELLED."""
    task = asyncio.ensure_future(work)
    session.track(task)

    def ended(done: asyncio.Task[None]) -> None:
        if done.cancelled():
            for delivery in deliveries:
                _end(session, delivery, DeliveryState.CANCELLED)

    task.add_done_callback(ended)


def callbacks(
    outbound: Outbound,
    session: Session,
    request: HttpRequest,
    stub_name: str,
    callbacks: Sequence[CallbackSpec],
    values: Any,
) -> None:
    """Schedules a stub's callbacks, rendered from the request that triggered them."""
    for callback in callbacks:
        session.track(asyncio.ensure_future(_callback(outbound, session, stub_name, callback, values)))


async def _callback(outbound: Outbound, session: Session, stub_name: str, callback: CallbackSpec, values: Any) -> None:
    if callback.delay:
        await asyncio.sleep(callback.delay)
    try:
        spec = await rendered(callback.webhook, values)
    except Exception as exc:  # a template is user code: its failure is recorded, never raised
        _record_failure(outbound, session, callback.webhook, stub_name, f"the callback's template failed: {exc}")
        return
    try:
        start(outbound, session, [spec], callback_of=stub_name)
    except ResourceExhausted as exc:  # no caller to answer: the journal says why nothing was sent
        _record_failure(outbound, session, spec, stub_name, exc.message)


async def _in_order(
    outbound: Outbound, session: Session, pairs: list[tuple[WebhookSpec, Delivery]], callback_of: str
) -> None:
    for spec, delivery in pairs:
        first = asyncio.Event()
        _run(outbound, session, _deliver(outbound, session, spec, delivery, callback_of, first), [delivery])
        await first.wait()


async def _deliver(
    outbound: Outbound, session: Session, spec: WebhookSpec, delivery: Delivery, callback_of: str, first: asyncio.Event
) -> None:
    waits = spec.retry.waits()
    previous = Outcome.OK
    try:
        attempt = 0
        while True:
            attempt += 1
            outcome, stop = await _attempt(outbound, session, spec, delivery, attempt, previous, callback_of)
            if attempt == 1:
                if spec.duplicate:  # the same delivery again, id and all: receivers must be idempotent
                    await _attempt(outbound, session, spec, delivery, attempt, previous, callback_of)
                first.set()
            if outcome is Outcome.OK:
                _end(session, delivery, DeliveryState.DELIVERED)
                return
            if stop:  # the receiver said so, or the target is forbidden and stays so
                _end(
                    session,
                    delivery,
                    DeliveryState.STOPPED if outcome is not Outcome.FORBIDDEN else DeliveryState.FAILED,
                )
                return
            if attempt > len(waits):
                _end(session, delivery, DeliveryState.FAILED)
                return
            previous = outcome
            await asyncio.sleep(waits[attempt - 1])
    except asyncio.CancelledError:
        _end(session, delivery, DeliveryState.CANCELLED)
        raise
    except Exception:
        log.exception("delivering webhook %s to %s failed", delivery.id, spec.url)
        _end(session, delivery, DeliveryState.FAILED)
    finally:
        first.set()


async def _attempt(
    outbound: Outbound,
    session: Session,
    spec: WebhookSpec,
    delivery: Delivery,
    attempt: int,
    previous: Outcome,
    callback_of: str,
) -> tuple[Outcome, bool]:
    import httpx  # imported by the first delivery (see _http): a lookup in sys.modules after that

    started = outbound.clock()
    headers = attempt_headers(spec, spec.body, delivery.id, int(started), attempt, previous)
    status, answer_headers, kept, size, error = 0, [], b"", 0, ""
    outcome = Outcome.OK
    limit = session.limits.max_body_bytes
    try:
        await outbound.check(spec)
        client = outbound.http()
        assert outbound._slots is not None
        sending = client.stream(spec.method, spec.url, headers=headers, content=spec.body)
        async with outbound._slots, asyncio.timeout(spec.retry.timeout), sending as response:
            status = response.status_code
            answer_headers = list(response.headers.multi_items())
            async for chunk in response.aiter_raw():
                size += len(chunk)
                if len(kept) < limit:
                    kept += chunk[: limit - len(kept)]
    except PermissionDenied as exc:
        error, outcome = exc.message, Outcome.FORBIDDEN
    except TimeoutError:
        error, outcome = f"no complete answer within {spec.retry.timeout:g} seconds", Outcome.HTTP_TIMEOUT
    except httpx.HTTPError as exc:
        error, outcome = f"{type(exc).__name__}: {exc}".rstrip(": "), Outcome.CONNECTION_FAILED
    if outcome is Outcome.OK and not 200 <= status < 300:
        outcome = Outcome.HTTP_ERROR
    reply = Reply(status, answer_headers)
    reply.sent_bytes = size
    reply.error = error
    attempt_record = WebhookRecord(delivery.id, attempt, spec.url, kept, error, callback_of)
    with contextlib.suppress(Exception):  # a journal closed meanwhile (the session deleted) records nothing
        exchange = record(
            session,
            _sent(spec, headers, started),
            reply,
            outbound.clock(),
            stub_name=callback_of,
            kind=ExchangeKind.WEBHOOK,
            body_size=len(spec.body),
            webhook=attempt_record,
        )
        delivery.sequences.append(exchange.sequence)
        outbound.metrics.delivered(exchange)
    delivery.attempts = attempt
    delivery.last_status, delivery.last_error = status, error
    return outcome, outcome is Outcome.FORBIDDEN or stop_requested(answer_headers)


def _record_failure(outbound: Outbound, session: Session, spec: WebhookSpec, stub_name: str, error: str) -> None:
    reply = Reply(0, [])
    reply.error = error
    with contextlib.suppress(Exception):
        record(
            session,
            _sent(spec, list(spec.headers), outbound.clock()),
            reply,
            outbound.clock(),
            stub_name=stub_name,
            kind=ExchangeKind.WEBHOOK,
            webhook=WebhookRecord("", 0, spec.url, error=error, callback_of=stub_name),
        )


def _end(session: Session, delivery: Delivery, state: DeliveryState) -> None:
    """Ends a delivery once (later calls do nothing), and stops counting it as pending."""
    if delivery.state is DeliveryState.PENDING:
        delivery.end(state)
        session.pending_deliveries -= 1


def _sent(spec: WebhookSpec, headers: list[tuple[str, str]], started: float) -> HttpRequest:
    """What the journal shows as the request: the method, the URL's path and query, the headers, the body."""
    parts = urlsplit(spec.url)
    return HttpRequest(
        method=spec.method,
        path=parts.path or "/",
        query_string=parts.query,
        headers=tuple((n.lower(), v) for n, v in headers),
        body=spec.body,
        receive_time=started,
    )
