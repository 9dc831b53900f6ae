"""The simulator's operations on sessions, stubs and exchanges, independent of any transport."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import TypeVar

from simulatord.errors import FailedPrecondition, NotFound, Unavailable, invalid
from simulatord.names import WILDCARD, SessionKey
from simulatord.sessions.connections import Push
from simulatord.sessions.journal import Closed, Exchange, ExchangeFilter, JournalLimits, JournalPool
from simulatord.sessions.session import Session
from simulatord.sessions.settings import SessionSettings
from simulatord.sessions.store import SessionStore
from simulatord.sessions.stubs import Stub
from simulatord.sessions.verify import VerifyReport, verify

T = TypeVar("T")

DEFAULT_JOURNAL_BUDGET = 512 * 1024 * 1024
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_WAIT_SECONDS = 600.0
MAX_WAIT_RESULTS = 1000
MAX_OTHER_RESULTS = 10
DEADLINE_MARGIN = 0.05  # seconds left for the answer to travel back before the caller gives up


@dataclass(frozen=True)
class Addressing:
    """How sessions are reached over HTTP: base URL prefix, virtual host and routing header."""

    public_url: str
    host_suffix: str

    def base_url(self, key: SessionKey) -> str:
        return f"{self.public_url.rstrip('/')}/{key.name}"

    def host(self, key: SessionKey) -> str:
        return f"{key.session}.{key.tenant}.{self.host_suffix}"


def encode_token(kind: str, position: int) -> str:
    raw = json.dumps({"k": kind, "p": position}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str, kind: str, field: str = "page_token") -> int:
    if not token:
        return 0
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        if data["k"] != kind or not isinstance(data["p"], int) or data["p"] < 0:
            raise ValueError
        return int(data["p"])
    except (ValueError, KeyError, TypeError, RecursionError):
        raise invalid(field, "is not a token returned by a previous call of this method") from None


def page_size(requested: int, field: str = "page_size") -> int:
    if requested < 0:
        raise invalid(field, "must not be negative")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def page_of(items: Sequence[T], size: int, token: str, kind: str) -> tuple[list[T], str]:
    """One page of `items` and the token of the next (empty after the last), by offset."""
    offset = decode_token(token, kind)
    limit = page_size(size)
    more = offset + limit < len(items)
    return list(items[offset : offset + limit]), encode_token(kind, offset + limit) if more else ""


def parse_label_selector(selector: str) -> list[tuple[str, str | None]]:
    terms: list[tuple[str, str | None]] = []
    for part in filter(None, (p.strip() for p in selector.split(","))):
        key, sep, value = part.partition("=")
        if not key.strip():
            raise invalid("label_selector", f"term {part!r} has no key")
        terms.append((key.strip(), value.strip() if sep else None))
    return terms


@dataclass(frozen=True)
class WaitResult:
    satisfied: bool
    matching: list[Exchange]
    others: list[Exchange]


class Simulator:
    """Every control-plane operation on sessions, stubs and exchanges; the gRPC servicer only translates."""

    def __init__(
        self,
        store: SessionStore,
        addressing: Addressing,
        default_ttl: float = 3600.0,
        default_limits: JournalLimits | None = None,
        clock: Callable[[], float] = time.time,
        journal_budget: int = DEFAULT_JOURNAL_BUDGET,
        redact_headers: frozenset[str] = frozenset(),
    ) -> None:
        self.store = store
        self.addressing = addressing
        self.default_ttl = default_ttl
        self.default_limits = default_limits or JournalLimits()
        self.clock = clock
        self.pool = JournalPool(journal_budget)  # what every session's journal keeps, together
        self.redact_headers = redact_headers  # the daemon's own list, added to every session's

    # --- sessions --------------------------------------------------------------------------------

    def create_session(self, key: SessionKey, settings: SessionSettings, stubs: Sequence[Stub] = ()) -> Session:
        session = Session(
            key=key,
            ttl=settings.ttl or self.default_ttl,
            limits=settings.limits(self.default_limits),
            labels=dict(settings.labels),
            unmatched_status=settings.unmatched_status or 404,
            create_time=self.clock(),
            pool=self.pool,
            redact_headers=settings.redact_headers | self.redact_headers,
        )
        if settings.llm is not None:
            from simulatord.llm.simulation import Simulation  # loaded by the first session that simulates an LLM

            session.llm = Simulation(settings.llm, key.name, self.clock, source=settings.llm_source)
        session.add_stubs(stubs)
        self.store.add(session)
        return session

    def session(self, key: SessionKey) -> Session:
        return self.store.get(key)

    def list_sessions(
        self, tenant: str, size: int, token: str, selector: str, within: Collection[str] | None = None
    ) -> tuple[list[Session], str]:
        """`within`, when given, keeps only sessions of those tenants: what a tenant-scoped caller of `-` sees."""
        return page_of(self.select_sessions(tenant, selector, within), size, token, f"sessions:{tenant}:{selector}")

    def select_sessions(self, tenant: str, selector: str, within: Collection[str] | None = None) -> list[Session]:
        """Every session of `tenant` (or `-`) whose labels the selector accepts, oldest first."""
        terms = parse_label_selector(selector)
        return [
            s
            for s in self.store.in_tenant(tenant)
            if (within is None or s.key.tenant in within)
            and all(k in s.labels and (v is None or s.labels[k] == v) for k, v in terms)
        ]

    def delete_session(self, key: SessionKey, allow_missing: bool = False) -> None:
        if self.store.remove(key) is None and not allow_missing:
            raise NotFound(f"session {key.name} not found", "SESSION_NOT_FOUND", {"session": key.name})

    def reset_session(self, key: SessionKey, stubs: bool, journal: bool, state: bool) -> Session:
        session = self.store.get(key)
        session.reset(stubs, journal, state)
        return session

    def refresh_session(self, key: SessionKey, ttl: float | None) -> Session:
        session = self.store.get(key)
        session.refresh(self.clock(), ttl)
        return session

    def set_state(self, key: SessionKey, scenario: str, state: str) -> Session:
        session = self.store.get(key)
        session.set_state(scenario, state)
        return session

    def verify(self, key: SessionKey) -> VerifyReport:
        return verify(self.store.get(key))

    def sweep_expired(self, stalled: float = 0.0) -> int:
        """Removes expired sessions. `stalled` is how long the daemon could not serve anyone (its event loop was
        blocked): no client could refresh its sessions meanwhile, so every lease is first extended by as much,
        and a stall never deletes a live client's sessions."""
        if stalled > 0:
            for session in self.store.in_tenant(WILDCARD):
                session.expire_time += stalled
        expired = self.store.expired(self.clock())
        for session in expired:
            self.store.remove(session.key)
        return len(expired)

    def close(self) -> None:
        """Ends every watcher (once it has everything recorded) and every waiter, for a graceful stop."""
        for session in self.store.in_tenant(WILDCARD):
            session.close(Closed.STOPPING)

    # --- stubs -----------------------------------------------------------------------------------

    def create_stubs(self, key: SessionKey, stubs: Sequence[Stub]) -> Sequence[Stub]:
        """Adds stubs all or nothing."""
        self.store.get(key).add_stubs(stubs)
        return stubs

    def get_stub(self, key: SessionKey, stub_id: str) -> Stub:
        return self.store.get(key).get_stub(stub_id)

    def list_stubs(self, key: SessionKey, size: int, token: str) -> tuple[list[Stub], str]:
        return page_of(self.store.get(key).stubs, size, token, f"stubs:{key.name}")

    def replace_stub(self, key: SessionKey, stub: Stub) -> Stub:
        self.store.get(key).replace_stub(stub)
        return stub

    def delete_stub(self, key: SessionKey, stub_id: str) -> None:
        self.store.get(key).delete_stub(stub_id)

    # --- exchanges -------------------------------------------------------------------------------

    def get_exchange(self, key: SessionKey, sequence: int) -> Exchange:
        exchange = self.store.get(key).journal.get(sequence)
        if exchange is None:
            name = key.exchange_name(sequence)
            raise NotFound(f"exchange {name} not found (or evicted)", "EXCHANGE_NOT_FOUND", {"exchange": name})
        return exchange

    def list_exchanges(
        self, key: SessionKey, filt: ExchangeFilter, size: int, token: str
    ) -> tuple[list[Exchange], str, int]:
        journal = self.store.get(key).journal
        start = decode_token(token, f"exchanges:{key.name}") or 1
        limit = page_size(size)
        page: list[Exchange] = []
        next_token = ""
        for exchange in journal.since(start):
            if not filt.accepts(exchange):
                continue
            if len(page) == limit:
                next_token = encode_token(f"exchanges:{key.name}", exchange.sequence)
                break
            page.append(exchange)
        return page, next_token, journal.evicted_count

    def count_exchanges(self, key: SessionKey, filt: ExchangeFilter) -> tuple[int, int]:
        journal = self.store.get(key).journal
        return sum(1 for e in journal if filt.accepts(e)), journal.evicted_count

    async def wait_for_exchanges(
        self, key: SessionKey, filt: ExchangeFilter, count: int, timeout: float, caller_deadline: float | None = None
    ) -> WaitResult:
        """Waits until `count` exchanges pass the filter (0 means 1), at most `timeout` seconds, and answers
        "not satisfied" shortly before `caller_deadline` (seconds the caller still waits) rather than after it."""
        if count < 0:
            raise invalid("count", "must not be negative")
        if not 0 <= timeout <= MAX_WAIT_SECONDS:
            raise invalid("timeout", f"must be between 0 and {MAX_WAIT_SECONDS:.0f} seconds")
        count = count or 1
        if caller_deadline is not None:
            timeout = min(timeout, max(0.0, caller_deadline - DEADLINE_MARGIN))
        session = self.store.get(key)
        journal = session.journal
        deadline = self.clock() + timeout
        matching: list[Exchange] = []
        cursor, generation = 1, journal.generation
        while True:
            if journal.generation != generation:  # the journal was reset while we waited
                matching, cursor, generation = [], 1, journal.generation
            for exchange in journal.since(cursor):
                cursor = exchange.sequence + 1
                if filt.accepts(exchange):
                    matching.append(exchange)
            if len(matching) >= count:
                return WaitResult(True, matching[:MAX_WAIT_RESULTS], [])
            if journal.closed is Closed.STOPPING:
                raise Unavailable("the daemon is stopping", "DAEMON_STOPPING", {"session": key.name})
            if journal.closed:
                raise NotFound(
                    f"session {key.name} was deleted while waiting",
                    "SESSION_NOT_FOUND",
                    {"session": key.name},
                )
            remaining = deadline - self.clock()
            if remaining <= 0:
                others = [e for e in journal if not filt.accepts(e)][-MAX_OTHER_RESULTS:]
                return WaitResult(False, matching[:MAX_WAIT_RESULTS], others)
            await journal.wait_for_change(remaining)

    async def watch_exchanges(
        self, key: SessionKey, filt: ExchangeFilter, start_sequence: int
    ) -> AsyncIterator[Exchange | int]:
        """Yields matching exchanges from `start_sequence` on, live; an int is a count of evicted ones skipped."""
        if start_sequence < 0:
            raise invalid("start_sequence", "must not be negative")
        journal = self.store.get(key).journal
        cursor, generation = start_sequence or journal.next_sequence, journal.generation
        while True:
            if journal.generation != generation:  # reset: sequence numbers restarted
                cursor, generation = 1, journal.generation
            first = journal.first_sequence
            if first and cursor < first:
                yield first - cursor
                cursor = first
            for exchange in list(journal.since(cursor)):
                cursor = exchange.sequence + 1
                if filt.accepts(exchange):
                    yield exchange
            # Appended while this generator was suspended at a `yield`: nobody was waiting then, so no wake-up
            # is pending for it; look again before waiting, and before ending on a close that came meanwhile
            # (the exchanges recorded while the daemon drained are a watcher's too).
            if cursor < journal.next_sequence or journal.generation != generation:
                continue
            if journal.closed:
                return
            await journal.wait_for_change()

    # --- WebSockets ------------------------------------------------------------------------------

    def push(self, key: SessionKey, stub: str, connection: int, push: Push) -> list[int]:
        """Queues a message and/or close to the addressed open connections; returns their ids."""
        session = self.store.get(key)
        stub_name = ""
        if stub:
            stub_id = stub.rsplit("/stubs/", 1)[1] if "/stubs/" in stub else stub
            if "/stubs/" in stub and stub.rsplit("/stubs/", 1)[0] != key.name:
                raise NotFound(f"stub {stub} is not in session {key.name}", "STUB_NOT_FOUND", {"stub": stub})
            stub_name = session.get_stub(stub_id).name
        targets = session.connections.select(stub_name, connection)
        if not targets:
            scope = f"connection {connection}" if connection else f"stub {stub_name}" if stub_name else "the session"
            raise FailedPrecondition(
                f"no open WebSocket connection for {scope} in {key.name}",
                "NO_WEBSOCKET_CONNECTION",
                {"session": key.name, "stub": stub_name, "connection": str(connection or "")},
            )
        for target in targets:
            target.outbox.put_nowait(push)
        return [target.id for target in targets]
