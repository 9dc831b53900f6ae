"""One isolated session: its stubs in trial order, its scenario state and its journal."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simulatord.errors import AlreadyExists, NotFound
from simulatord.matching.matchers import Mismatch
from simulatord.matching.near_misses import NearMiss, nearest
from simulatord.matching.request import HttpRequest
from simulatord.names import SessionKey
from simulatord.responding.ratelimit import Buckets, RateDecision
from simulatord.responding.reply import ResponseSpec
from simulatord.sessions.connections import Connections
from simulatord.sessions.journal import Closed, Journal, JournalLimits, JournalPool
from simulatord.sessions.stubs import Stub

if TYPE_CHECKING:
    from simulatord.llm.simulation import Simulation

MAX_NEAR_MISSES = 3


@dataclass(frozen=True, slots=True)
class Selection:
    """The stub chosen for a request and the response it serves, or the near misses when none matched."""

    stub: Stub | None
    response: ResponseSpec | None
    captures: dict[str, str]
    near_misses: tuple[NearMiss, ...] = ()
    rate: RateDecision | None = None  # set only for stubs with a rate limit


def _trial_order(stub: Stub) -> tuple[int, int]:
    """Stubs are tried by priority (higher first), then newest first."""
    return (-stub.priority, -stub.order)


@dataclass(eq=False)
class Session:
    """The stubs, scenario state, rate buckets, open WebSockets and journal of one isolated session."""

    key: SessionKey
    ttl: float
    limits: JournalLimits
    labels: dict[str, str] = field(default_factory=dict)
    unmatched_status: int = 404
    create_time: float = field(default_factory=time.time)
    expire_time: float = 0.0
    state: str = ""
    # Named scenarios: independent state machines next to the session's own `state` (empty name).
    scenarios: dict[str, str] = field(default_factory=dict)
    journal: Journal = field(init=False)
    _stubs: dict[str, Stub] = field(default_factory=dict, init=False)
    _ordered: tuple[Stub, ...] = field(default=(), init=False)  # HTTP stubs, in trial order
    # WebSocket stubs are tried apart, so plain HTTP requests never look at them (and vice versa).
    _ws_ordered: tuple[Stub, ...] = field(default=(), init=False)
    _all: tuple[Stub, ...] = field(default=(), init=False)
    # The HTTP stubs a request with a given (method, path) can match, in trial order: the stubs bucketed under
    # that exact method and path or under that path with any method, merged with every stub that has no such
    # key. ("", path) holds the any-method list. A request whose key is in neither tries `_unkeyed` alone.
    _by_key: dict[tuple[str, str], tuple[Stub, ...]] = field(default_factory=dict, init=False)
    _unkeyed: tuple[Stub, ...] = field(default=(), init=False)
    pool: JournalPool | None = field(default=None, repr=False)  # the daemon-wide journal budget
    redact_headers: frozenset[str] = frozenset()  # request headers the journal records as [redacted]
    buckets: Buckets = field(default_factory=Buckets, init=False)  # rate-limit token buckets
    connections: Connections = field(default_factory=Connections, init=False)  # open WebSockets
    llm: Simulation | None = None  # answers the provider's endpoints that no stub matches
    # Webhook deliveries and callbacks in progress, cancelled when the session goes.
    _outbound: set[asyncio.Task[None]] = field(default_factory=set, init=False, repr=False)
    pending_deliveries: int = field(default=0, init=False)
    _next_order: int = field(default=0, init=False)
    # A store that keeps sessions outside the process (stores.redis) is told of every change it must write
    # through this; `version` says whether the definition (stubs) changed, or only runtime state.
    on_change: Callable[[], None] | None = field(default=None, init=False, repr=False)
    version: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.journal = Journal(self.limits, self.pool)
        if not self.expire_time:
            self.expire_time = self.create_time + self.ttl

    # --- stubs -----------------------------------------------------------------------------------

    @property
    def stubs(self) -> tuple[Stub, ...]:
        """Stubs in the order they are tried: higher priority first, then newest first."""
        return self._all

    def _reorder(self) -> None:
        self._all = tuple(sorted(self._stubs.values(), key=_trial_order))
        self._ordered = tuple(s for s in self._all if s.websocket is None)
        self._ws_ordered = tuple(s for s in self._all if s.websocket is not None)
        self._index()
        self.version += 1
        self.changed()

    def changed(self) -> None:
        """Tells the store (if it keeps sessions outside the process) that this session has something to write."""
        if self.on_change is not None:
            self.on_change()

    def _index(self) -> None:
        """Rebuilds the per-(method, path) candidate lists; runs when stubs change, never per request."""
        buckets: dict[tuple[str, str], list[Stub]] = {}
        unkeyed: list[Stub] = []
        for stub in self._ordered:  # already in trial order, so every bucket is too
            key = stub.matcher.index_key()
            if key is None:
                unkeyed.append(stub)
            else:
                buckets.setdefault(key, []).append(stub)

        by_key: dict[tuple[str, str], tuple[Stub, ...]] = {}
        for (method, path), stubs in buckets.items():
            any_method = buckets.get(("", path), []) if method else []
            by_key[(method, path)] = tuple(heapq.merge(stubs, any_method, unkeyed, key=_trial_order))
        self._by_key = by_key
        self._unkeyed = tuple(unkeyed)

    def candidates(self, request: HttpRequest) -> tuple[Stub, ...]:
        """The HTTP stubs that could match `request`, in trial order; the others cannot match it."""
        by_key = self._by_key
        if not by_key:
            return self._unkeyed
        path = request.path
        found = by_key.get((request.method, path))
        if found is None:
            found = by_key.get(("", path), self._unkeyed)
        return found

    def add_stubs(self, stubs: Iterable[Stub]) -> None:
        """Adds stubs all or nothing: a duplicate id rejects the whole batch."""
        batch = list(stubs)
        ids = [s.id for s in batch]
        for stub_id in ids:
            if stub_id in self._stubs or ids.count(stub_id) > 1:
                raise AlreadyExists(
                    f"stub {self.key.stub_name(stub_id)} already exists",
                    "STUB_ALREADY_EXISTS",
                    {"stub": self.key.stub_name(stub_id)},
                )
        for stub in batch:
            stub.order = self._next_order
            self._next_order += 1
            self._stubs[stub.id] = stub
        self._reorder()

    def get_stub(self, stub_id: str) -> Stub:
        stub = self._stubs.get(stub_id)
        if stub is None:
            name = self.key.stub_name(stub_id)
            raise NotFound(f"stub {name} not found", "STUB_NOT_FOUND", {"stub": name})
        return stub

    def replace_stub(self, stub: Stub) -> None:
        old = self.get_stub(stub.id)
        stub.order, stub.create_time = old.order, old.create_time
        self._stubs[stub.id] = stub
        self._reorder()

    def delete_stub(self, stub_id: str) -> None:
        self.get_stub(stub_id)
        del self._stubs[stub_id]
        self._reorder()

    def clear_stubs(self) -> None:
        self._stubs.clear()
        self._reorder()

    # --- the data plane --------------------------------------------------------------------------

    def state_of(self, scenario: str) -> str:
        return self.scenarios.get(scenario, "") if scenario else self.state

    def set_state(self, scenario: str, state: str) -> None:
        if not scenario:
            self.state = state
        elif state:
            self.scenarios[scenario] = state
        else:  # the initial state is not stored, so a listing shows only scenarios that moved
            self.scenarios.pop(scenario, None)
        self.changed()

    def _state_mismatch(self, stub: Stub) -> list[Mismatch]:
        if stub.required_state and stub.required_state != self.state_of(stub.scenario):
            field_name = f"scenarios.{stub.scenario}" if stub.scenario else "state"
            return [Mismatch(field_name, repr(stub.required_state), repr(self.state_of(stub.scenario)))]
        if stub.exhausted:
            return [Mismatch("times", f"at most {stub.times or len(stub.responses)} matches", "exhausted")]
        return []

    def select(self, request: HttpRequest, websocket: bool = False) -> Selection:
        """Picks the first available stub that matches and advances it; otherwise explains the nearest misses."""
        everyone = self._ws_ordered if websocket else self._ordered
        # Only the stubs that could match are tried; the skipped ones would fail `matches` with no side effect.
        for stub in everyone if websocket else self.candidates(request):
            if stub.required_state and stub.required_state != self.state_of(stub.scenario):
                continue
            if stub.exhausted or not stub.matcher.matches(request):
                continue
            if stub.websocket is not None and not stub.websocket.accepts(request):
                continue
            rate = None
            if stub.rate_limit is not None:
                rate = self.buckets.take(stub.rate_limit, request)
                if not rate.allowed:  # limited: the sequence and the scenario state stay where they are
                    stub.rate_limited_count += 1
                    return Selection(stub, stub.rate_limit.response, stub.matcher.captures(request), rate=rate)
            response = stub.take_response()
            if stub.next_state:
                self.set_state(stub.scenario, stub.next_state)
            return Selection(stub, response, stub.matcher.captures(request), rate=rate)
        # Near misses are ranked over every stub, indexed away or not: the nearest may have another path.
        return Selection(None, None, {}, nearest(everyone, request, MAX_NEAR_MISSES, extra=self._state_mismatch))

    # --- lifecycle -------------------------------------------------------------------------------

    def refresh(self, now: float, ttl: float | None = None) -> None:
        if ttl is not None:
            self.ttl = ttl
        self.expire_time = now + self.ttl
        self.changed()

    def reset(self, stubs: bool, journal: bool, state: bool) -> None:
        if stubs:
            self.clear_stubs()
        if journal:
            self.journal.clear()
        if state:
            self.state = ""
            self.scenarios.clear()
            self.buckets.clear()
            if self.llm is not None:
                self.llm.reset()
            self.changed()

    def track(self, task: asyncio.Task[None]) -> None:
        """Keeps a webhook task until it ends, so that closing the session can cancel it."""
        self._outbound.add(task)
        task.add_done_callback(self._outbound.discard)

    def close(self, why: Closed = Closed.DELETED) -> None:
        for task in list(self._outbound):
            task.cancel()
        self.journal.close(why)
        self.connections.close_all()
