"""Sending webhooks: one daemon-wide HTTP client delivers each webhook with its retries and records every attempt."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from simulatord.errors import PermissionDenied, ResourceExhausted
from simulatord.matching.request import HttpRequest
from simulatord.responding.reply import Reply
from simulatord.responding.templating import variables
from simulatord.serving.metrics import Metrics
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
from simulatord.webhooks.targets import TargetForbidden, Targets

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)


class Outbound:
    """Delivers webhooks for every session: bounded attempts in flight, a target policy, per-session bookkeeping
    so that deleting a session cancels what it still has pending."""

    def __init__(
        self,
        targets: Targets,
        concurrency: int = 32,
        max_pending: int = 1000,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.targets = targets
        self.metrics = metrics or Metrics()
        self.max_pending = max_pending
        self.clock = clock
        self._concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # made on first use: most sessions never send a webhook
            # trust_env=False: a proxy from the daemon's environment must not carry deliveries off the host.
            import httpx  # here, not at the top: it takes ~150 ms to import, and most daemons never send a webhook

            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=None)
            self._slots = asyncio.Semaphore(self._concurrency)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def check(self, spec: WebhookSpec) -> None:
        """Raises PermissionDenied when the webhook's target is outside the allowed ones."""
        parts = urlsplit(spec.url)
        try:
            await self.targets.check(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except TargetForbidden as exc:
            raise PermissionDenied(str(exc), "WEBHOOK_TARGET_FORBIDDEN", {"url": spec.url}) from None

    def start(
        self, session: Session, specs: Sequence[WebhookSpec], reverse: bool = False, callback_of: str = ""
    ) -> list[Delivery]:
        """Starts delivering; first attempts go one after another, in order (or reversed)."""
        if session.pending_deliveries + len(specs) > self.max_pending:
            raise ResourceExhausted(
                f"session {session.key.name} has {session.pending_deliveries} webhook deliveries pending; "
                f"at most {self.max_pending} may be",
                "TOO_MANY_DELIVERIES",
                {"session": session.key.name},
            )
        deliveries = [Delivery(delivery_id(spec)) for spec in specs]
        # Counted from now, not from each first attempt: IN_ORDER deliveries start one after another, and the bound
        # must hold for those still waiting their turn too.
        session.pending_deliveries += len(deliveries)
        pairs = list(zip(specs, deliveries, strict=True))
        self._run(session, self._in_order(session, pairs[::-1] if reverse else pairs, callback_of), deliveries)
        return deliveries

    def _run(self, session: Session, work: Coroutine[Any, Any, None], deliveries: Sequence[Delivery]) -> None:
        """Runs `work` until the session goes; a task cancelled before it ran ends its deliveries as CANCELLED."""
        task = asyncio.ensure_future(work)
        session.track(task)

        def ended(done: asyncio.Task[None]) -> None:
            if done.cancelled():
                for delivery in deliveries:
                    _end(session, delivery, DeliveryState.CANCELLED)

        task.add_done_callback(ended)

    def callbacks(
        self, session: Session, request: HttpRequest, stub_name: str, callbacks: Sequence[CallbackSpec], values: Any
    ) -> None:
        """Schedules a stub's callbacks, rendered from the request that triggered them."""
        for callback in callbacks:
            session.track(asyncio.ensure_future(self._callback(session, stub_name, callback, values)))

    async def _callback(self, session: Session, stub_name: str, callback: CallbackSpec, values: Any) -> None:
        if callback.delay:
            await asyncio.sleep(callback.delay)
        try:
            spec = await rendered(callback.webhook, values)
        except Exception as exc:  # a template is user code: its failure is recorded, never raised
            self._record_failure(session, callback.webhook, stub_name, f"the callback's template failed: {exc}")
            return
        try:
            self.start(session, [spec], callback_of=stub_name)
        except ResourceExhausted as exc:  # no caller to answer: the journal says why nothing was sent
            self._record_failure(session, spec, stub_name, exc.message)

    async def _in_order(self, session: Session, pairs: list[tuple[WebhookSpec, Delivery]], callback_of: str) -> None:
        for spec, delivery in pairs:
            first = asyncio.Event()
            self._run(session, self._deliver(session, spec, delivery, callback_of, first), [delivery])
            await first.wait()

    async def _deliver(
        self, session: Session, spec: WebhookSpec, delivery: Delivery, callback_of: str, first: asyncio.Event
    ) -> None:
        waits = spec.retry.waits()
        previous = Outcome.OK
        try:
            attempt = 0
            while True:
                attempt += 1
                outcome, stop = await self._attempt(session, spec, delivery, attempt, previous, callback_of)
                if attempt == 1:
                    if spec.duplicate:  # the same delivery again, id and all: receivers must be idempotent
                        await self._attempt(session, spec, delivery, attempt, previous, callback_of)
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
        self,
        session: Session,
        spec: WebhookSpec,
        delivery: Delivery,
        attempt: int,
        previous: Outcome,
        callback_of: str,
    ) -> tuple[Outcome, bool]:
        import httpx  # imported by the first delivery (see _http): a lookup in sys.modules after that

        started = self.clock()
        headers = attempt_headers(spec, spec.body, delivery.id, int(started), attempt, previous)
        status, answer_headers, kept, size, error = 0, [], b"", 0, ""
        outcome = Outcome.OK
        limit = session.limits.max_body_bytes
        try:
            await self.check(spec)
            client = self._http()
            assert self._slots is not None
            sending = client.stream(spec.method, spec.url, headers=headers, content=spec.body)
            async with self._slots, asyncio.timeout(spec.retry.timeout), sending as response:
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
                self.clock(),
                stub_name=callback_of,
                kind=ExchangeKind.WEBHOOK,
                body_size=len(spec.body),
                webhook=attempt_record,
            )
            delivery.sequences.append(exchange.sequence)
            self.metrics.delivered(exchange)
        delivery.attempts = attempt
        delivery.last_status, delivery.last_error = status, error
        return outcome, outcome is Outcome.FORBIDDEN or stop_requested(answer_headers)

    def _record_failure(self, session: Session, spec: WebhookSpec, stub_name: str, error: str) -> None:
        reply = Reply(0, [])
        reply.error = error
        with contextlib.suppress(Exception):
            record(
                session,
                _sent(spec, list(spec.headers), self.clock()),
                reply,
                self.clock(),
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


def template_values(request: HttpRequest, captures: Any, match: int, sequence: int, state: str, now: float) -> Any:
    """The variables a callback's templates render with: those of a templated response."""
    return variables(request, captures, match, sequence, state, None, now)
