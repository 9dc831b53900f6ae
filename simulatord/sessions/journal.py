"""The journal of one session: exchanges in sequence, bounded in count and bytes, with live waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from simulatord.errors import SpecErrors
from simulatord.matching.near_misses import NearMiss
from simulatord.matching.request import HttpRequest
from simulatord.responding.wire import End

if TYPE_CHECKING:
    from simulatord.llm.simulation import LlmRecord
    from simulatord.responding.proxy import ProxyRecord
    from simulatord.webhooks.spec import WebhookRecord


class ExchangeKind(StrEnum):
    """What an exchange records."""

    HTTP = "http"
    WEBSOCKET_UPGRADE = "websocket_upgrade"
    WEBSOCKET_FRAME = "websocket_frame"
    WEBHOOK = "webhook"  # an attempt to deliver a webhook the daemon sent: neither matched nor unmatched


class Direction(StrEnum):
    """Who sent a WebSocket frame."""

    INBOUND = "inbound"  # the client
    OUTBOUND = "outbound"  # the simulator


@dataclass(frozen=True)
class Frame:
    """A recorded WebSocket message or close (an Exchange of kind WEBSOCKET_FRAME holds it)."""

    connection: int  # the sequence number of the connection's upgrade exchange
    direction: Direction
    text: str | None = None
    binary: bytes | None = None
    close_code: int | None = None
    close_reason: str = ""
    size: int = 0
    origin: str = ""  # what sent an outbound frame: on_connect, rules[i], control, ...


@dataclass(frozen=True, slots=True)
class JournalLimits:
    max_exchanges: int = 10_000
    max_bytes: int = 64 * 1024 * 1024
    max_body_bytes: int = 1024 * 1024


@dataclass(slots=True)
class Exchange:
    """One recorded request and what was served (or the near misses when nothing matched)."""

    sequence: int
    request: HttpRequest
    body_size: int
    body_truncated: bool
    stub_name: str
    near_misses: tuple[NearMiss, ...]
    status: int
    response_headers: tuple[tuple[str, str], ...]
    response_body_size: int
    duration: float
    end: End = End.COMPLETE
    event_count: int = 0
    behaviours: tuple[str, ...] = ()  # the behaviours that shaped the response, in the order they ran
    error: str = ""  # what went wrong while serving, if anything did
    size: int = field(default=0)
    kind: ExchangeKind = ExchangeKind.HTTP
    frame: Frame | None = None  # for kind WEBSOCKET_FRAME
    llm: LlmRecord | None = None  # for a request the session's LLM simulation answered or refused
    webhook: WebhookRecord | None = None  # for kind WEBHOOK
    proxy: ProxyRecord | None = None  # for a request a proxy stub forwarded

    @property
    def unmatched(self) -> bool:
        """A request nothing answered; webhooks the daemon sent are never that."""
        return not self.stub_name and self.kind is not ExchangeKind.WEBHOOK


# Fixed cost of one record beyond its variable-length parts (objects, tuples, dataclass slots).
_RECORD_OVERHEAD = 600


def estimate_size(exchange: Exchange) -> int:
    req = exchange.request
    # Plain loops: this runs for every recorded request, and generator sums cost twice as much here.
    headers = 64 * (len(req.headers) + len(exchange.response_headers))
    for n, v in req.headers:
        headers += len(n) + len(v)
    for n, v in exchange.response_headers:
        headers += len(n) + len(v)
    misses = 0
    for m in exchange.near_misses:
        misses += 200 + 120 * len(m.mismatches)
    frame = exchange.frame
    payload = 0 if frame is None else len(frame.text or "") + len(frame.binary or b"") + len(frame.close_reason)
    webhook = exchange.webhook
    if webhook is not None:
        payload += 200 + len(webhook.url) + len(webhook.response_body) + len(webhook.error)
    llm = exchange.llm
    if llm is not None:
        payload += 200 + len(llm.model) + len(llm.refusal_reason)
        for tool in llm.tools:
            payload += 64 + len(tool)
    return _RECORD_OVERHEAD + len(req.path) + len(req.query_string) + len(req.body) + headers + misses + payload


class Closed(StrEnum):
    """Why a journal takes no more exchanges."""

    OPEN = ""
    DELETED = "deleted"  # its session was deleted or expired
    STOPPING = "stopping"  # the daemon is shutting down


class JournalPool:
    """The daemon-wide bound on what every journal keeps together. Past it, the journals holding the most give
    up their oldest exchanges (counted in their `evicted_count`, as for their own limits) until the pool is
    back under 90% of its bound, so a burst does not evict one exchange per request."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.retained_bytes = 0
        self.evicted_count = 0  # evictions the pool made (the journals' own limits are not counted here)
        self.released_bytes = 0  # freed since the daemon last asked the allocator to return memory
        self._journals: set[Journal] = set()

    def join(self, journal: Journal) -> None:
        self._journals.add(journal)

    def leave(self, journal: Journal) -> None:
        if journal in self._journals:
            self._journals.discard(journal)
            self.retained_bytes -= journal.retained_bytes
            self.released_bytes += journal.retained_bytes

    def grew(self, size: int) -> None:
        self.retained_bytes += size
        if self.retained_bytes > self.max_bytes:
            self._evict(int(self.max_bytes * 0.9))

    def shrank(self, size: int) -> None:
        self.retained_bytes -= size
        self.released_bytes += size

    def _evict(self, target: int) -> None:
        while self.retained_bytes > target:
            largest = max(self._journals, key=lambda j: j.retained_bytes, default=None)
            if largest is None or not largest.evict_oldest():
                return
            self.evicted_count += 1


class Journal:
    """Keeps the newest exchanges within the limits; evictions are counted, never silent."""

    def __init__(self, limits: JournalLimits, pool: JournalPool | None = None) -> None:
        self.limits = limits
        self._entries: deque[Exchange] = deque()
        self.next_sequence = 1
        self.total_count = 0
        self.evicted_count = 0
        self.retained_bytes = 0
        self.closed = Closed.OPEN
        self.generation = 0  # bumped by clear(), so readers notice a reset even if new entries follow at once
        self._changed: asyncio.Event | None = None
        self.on_change: Callable[[], None] | None = None  # see Session.on_change
        self._pool = pool
        if pool is not None:
            pool.join(self)

    def append(self, exchange: Exchange) -> Exchange:
        exchange.sequence = self.next_sequence
        self.next_sequence += 1
        exchange.size = estimate_size(exchange)
        self._entries.append(exchange)
        self.total_count += 1
        self.retained_bytes += exchange.size
        limits = self.limits
        while self._entries and (len(self._entries) > limits.max_exchanges or self.retained_bytes > limits.max_bytes):
            self.evict_oldest()
        if self._pool is not None:
            self._pool.grew(exchange.size)
        self._wake()
        if self.on_change is not None:
            self.on_change()
        return exchange

    def evict_oldest(self) -> bool:
        """Drops the oldest exchange, counted; False when there is none."""
        if not self._entries:
            return False
        old = self._entries.popleft()
        self.retained_bytes -= old.size
        self.evicted_count += 1
        if self._pool is not None:
            self._pool.shrank(old.size)
        return True

    def _wake(self) -> None:
        # Only allocate a new Event when someone waits: the hot path stays allocation-free.
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def wait_for_change(self, timeout: float | None = None) -> None:
        """Returns after the next append, reset or close (or the timeout)."""
        if self.closed:
            return
        if self._changed is None:
            self._changed = asyncio.Event()
        event = self._changed
        if timeout is None:
            await event.wait()
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)

    def clear(self) -> None:
        if self._pool is not None:
            self._pool.shrank(self.retained_bytes)
        self._entries.clear()
        self.next_sequence = 1
        self.total_count = 0
        self.evicted_count = 0
        self.retained_bytes = 0
        self.generation += 1
        self._wake()
        if self.on_change is not None:
            self.on_change()

    def close(self, why: Closed = Closed.DELETED) -> None:
        """Takes no more exchanges; waiters and watchers see everything kept so far, then the end."""
        if not self.closed:
            self.closed = why
        if self._pool is not None:
            self._pool.leave(self)
        self._wake()

    def restore(self, entries: Iterable[Exchange], next_sequence: int, total_count: int, evicted_count: int) -> None:
        """Takes back what a store outside the process kept (in sequence order), numbered as they were."""
        self.clear()
        for exchange in entries:
            exchange.size = estimate_size(exchange)
            self._entries.append(exchange)
            self.retained_bytes += exchange.size
            if self._pool is not None:
                self._pool.grew(exchange.size)
        self.next_sequence = max(next_sequence, self._entries[-1].sequence + 1 if self._entries else 1)
        self.total_count = max(total_count, len(self._entries))
        self.evicted_count = evicted_count

    def __iter__(self) -> Iterator[Exchange]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def first_sequence(self) -> int:
        return self._entries[0].sequence if self._entries else 0

    @property
    def last_sequence(self) -> int:
        return self.next_sequence - 1

    def since(self, sequence: int) -> Iterator[Exchange]:
        """Kept exchanges with a sequence number at or above `sequence`, in order."""
        entries = self._entries
        if not entries:
            return iter(())
        start = max(0, sequence - entries[0].sequence)
        if start == 0:
            return iter(entries)
        if start >= len(entries):
            return iter(())
        # Sequence numbers are dense within the deque, so the offset is the position.
        return (entries[i] for i in range(start, len(entries)))

    def get(self, sequence: int) -> Exchange | None:
        entries = self._entries
        if not entries:
            return None
        index = sequence - entries[0].sequence
        if 0 <= index < len(entries):
            return entries[index]
        return None


class MatchState(StrEnum):
    """Whether an exchange was answered by a stub; ANY selects both."""

    ANY = ""
    MATCHED = "matched"
    UNMATCHED = "unmatched"


@dataclass(frozen=True)
class ExchangeFilter:
    """Selects exchanges; every field that is set must hold."""

    match_state: MatchState = MatchState.ANY
    stub: str = ""  # stub resource name or id
    method: str = ""
    path: str = ""
    path_prefix: str = ""

    def accepts(self, exchange: Exchange) -> bool:
        if self.match_state is MatchState.MATCHED and (exchange.unmatched or exchange.kind is ExchangeKind.WEBHOOK):
            return False
        if self.match_state is MatchState.UNMATCHED and not exchange.unmatched:
            return False
        if self.stub and exchange.stub_name != self.stub and not exchange.stub_name.endswith(f"/stubs/{self.stub}"):
            return False
        if self.method and exchange.request.method != self.method.upper():
            return False
        if self.path and exchange.request.path != self.path:
            return False
        return not (self.path_prefix and not exchange.request.path.startswith(self.path_prefix))


def exchange_filter(
    match_state: MatchState, stub: str, method: str, path: str, path_prefix: str, where: str, errors: SpecErrors
) -> ExchangeFilter:
    """Validates a filter; `where` is the ExchangeFilter message's path."""
    if path and path_prefix:
        errors.add(f"{where}.path_prefix", "set at most one of path and path_prefix")
    return ExchangeFilter(match_state, stub, method, path, path_prefix)
