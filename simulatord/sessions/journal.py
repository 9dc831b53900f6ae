"""The journal of one session: exchanges in sequence, bounded in count and bytes, with live waiting."""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from simulatord.errors import SpecErrors
from simulatord.matching.near_misses import NearMiss
from simulatord.matching.request import HttpRequest
from simulatord.responding.wire import End


class ExchangeKind(StrEnum):
    """What an exchange records."""

    HTTP = "http"
    WEBSOCKET_UPGRADE = "websocket_upgrade"
    WEBSOCKET_FRAME = "websocket_frame"


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

    @property
    def matched(self) -> bool:
        return bool(self.stub_name)


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
    return _RECORD_OVERHEAD + len(req.path) + len(req.query_string) + len(req.body) + headers + misses + payload


class Journal:
    """Keeps the newest exchanges within the limits; evictions are counted, never silent."""

    def __init__(self, limits: JournalLimits) -> None:
        self.limits = limits
        self._entries: deque[Exchange] = deque()
        self.next_sequence = 1
        self.total_count = 0
        self.evicted_count = 0
        self.retained_bytes = 0
        self.closed = False
        self.generation = 0  # bumped by clear(), so readers notice a reset even if new entries follow at once
        self._changed: asyncio.Event | None = None

    def append(self, exchange: Exchange) -> Exchange:
        exchange.sequence = self.next_sequence
        self.next_sequence += 1
        exchange.size = estimate_size(exchange)
        self._entries.append(exchange)
        self.total_count += 1
        self.retained_bytes += exchange.size
        limits = self.limits
        while self._entries and (len(self._entries) > limits.max_exchanges or self.retained_bytes > limits.max_bytes):
            old = self._entries.popleft()
            self.retained_bytes -= old.size
            self.evicted_count += 1
        self._wake()
        return exchange

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
        self._entries.clear()
        self.next_sequence = 1
        self.total_count = 0
        self.evicted_count = 0
        self.retained_bytes = 0
        self.generation += 1
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

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
        if self.match_state is MatchState.MATCHED and not exchange.stub_name:
            return False
        if self.match_state is MatchState.UNMATCHED and exchange.stub_name:
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
