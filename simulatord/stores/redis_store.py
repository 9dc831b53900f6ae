"""Sessions kept in Redis as well as in memory, so that they outlive the daemon: `serve --store redis://...`.

The daemon still serves every request from memory, where a session's runtime state stays exact. Every change a
session reports (`Session.on_change`, `Journal.on_change`) marks it dirty; one writer task writes what changed
since its last visit in one pipelined round trip, and every control RPC waits for that write (`flush`) before it
answers. So once a control RPC has answered, every change and every exchange before it is in Redis; a daemon
killed outright loses at most what was recorded since the last write (a few milliseconds of traffic).

Keys, per session name (`tenants/{t}/sessions/{s}`):
- `{prefix}sessions`: a set of every session's name;
- `{prefix}session:{name}`: a hash of `create` (the CreateSessionRequest that makes it again, settings only),
  `stubs` (a BatchCreateStubsRequest of its stubs with their ids, in creation order) and `runtime` (JSON: lease,
  scenario states, stub counters, journal counters);
- `{prefix}journal:{name}`: a stream of Exchange messages whose entry ids are their sequence numbers (`{n}-0`),
  trimmed as the journal evicts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from simulatord.control.convert import exchanges, sessions, stubs
from simulatord.errors import SimulatorError, SpecErrors, Unavailable
from simulatord.names import SessionKey, parse_session
from simulatord.sessions.service import Simulator
from simulatord.sessions.session import Session
from simulatord.sessions.store import MemoryStore
from simulatord.v1 import exchange_pb2
from simulatord.v1 import simulator_service_pb2 as pb

log = logging.getLogger(__name__)

# Appends a session's new exchanges in one command: one reply to read instead of one per exchange.
_APPEND = """
for i = 1, #ARGV, 2 do
  redis.call('XADD', KEYS[1], ARGV[i], 'x', ARGV[i + 1])
end
return #ARGV / 2
"""
_APPEND_MAX_ENTRIES = 500
_APPEND_MAX_BYTES = 8 * 1024 * 1024
FLUSH_TIMEOUT = 5.0  # seconds a control RPC waits for Redis before it answers UNAVAILABLE
_RETRY_PAUSE = (0.05, 2.0)  # the writer's pause after a failed write: first, then at most (doubling)


def display_url(url: str) -> str:
    """The store's URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


@dataclass
class _Written:
    """What the writer last wrote of one session, so that it writes only what changed since."""

    version: int = -1  # the session's definition version
    generation: int = -1  # the journal's generation (a reset starts a new one)
    last_sequence: int = 0


class RedisStore:
    """The in-memory store, written through to Redis by one background writer; sessions load back at start."""

    def __init__(self, url: str, max_sessions: int, max_per_tenant: int, prefix: str = "sd:") -> None:
        import redis.asyncio  # only a daemon started with --store redis:// needs the client library

        self.url = url
        self.prefix = prefix
        self.redis: Any = redis.asyncio.from_url(url, socket_timeout=FLUSH_TIMEOUT, socket_connect_timeout=2.0)
        self._memory = MemoryStore(max_sessions, max_per_tenant)
        self.get = self._memory.get
        self.find = self._memory.find
        self.in_tenant = self._memory.in_tenant
        self.expired = self._memory.expired
        self._dirty: dict[SessionKey, Session] = {}
        self._removed: set[SessionKey] = set()
        self._written: dict[Session, _Written] = {}
        self._marked = 0  # changes reported so far
        self._stored = 0  # of those, the ones written
        self._wake = asyncio.Event()
        self._progress = asyncio.Condition()
        self._writer: asyncio.Task[None] | None = None
        self._append: str | None = None  # the SHA of _APPEND once Redis has it
        self.failure = ""  # why the last write failed, until one succeeds

    # --- the SessionStore interface --------------------------------------------------------------

    def add(self, session: Session) -> None:
        self._memory.add(session)
        self._watch(session)
        self._mark(session)

    def remove(self, key: SessionKey) -> Session | None:
        session = self._memory.remove(key)
        if session is not None:
            session.on_change = session.journal.on_change = None
            self._written.pop(session, None)
            self._dirty.pop(key, None)
            self._removed.add(key)
            self._note()
        return session

    def __len__(self) -> int:
        return len(self._memory)

    async def flush(self) -> None:
        target = self._marked
        if self._stored >= target:
            return
        try:
            async with self._progress:
                await asyncio.wait_for(self._progress.wait_for(lambda: self._stored >= target), FLUSH_TIMEOUT)
        except TimeoutError:
            raise Unavailable(
                f"the change is made and served, but the session store at {display_url(self.url)} has not "
                f"confirmed it within {FLUSH_TIMEOUT:g} s ({self.failure or 'no answer'}); it is written when "
                "the store answers again",
                "SESSION_STORE_UNAVAILABLE",
                {"store": display_url(self.url)},
            ) from None

    # --- marking ---------------------------------------------------------------------------------

    def _watch(self, session: Session) -> None:
        session.on_change = session.journal.on_change = functools.partial(self._mark, session)

    def _mark(self, session: Session) -> None:
        self._dirty[session.key] = session
        self._note()

    def _note(self) -> None:
        self._marked += 1
        self._wake.set()

    # --- the writer ------------------------------------------------------------------------------

    def start(self) -> None:
        self._writer = asyncio.create_task(self._write_forever(), name="redis-store-writer")

    async def close(self) -> None:
        """Writes what is left, then stops the writer and disconnects."""
        with contextlib.suppress(SimulatorError):
            await self.flush()
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self.redis.aclose()

    async def _write_forever(self) -> None:
        pause = _RETRY_PAUSE[0]
        while True:
            await self._wake.wait()
            self._wake.clear()
            target, dirty, removed = self._marked, self._dirty, self._removed
            self._dirty, self._removed = {}, set()
            try:
                written = await self._write(dirty, removed)
            except Exception as exc:  # Redis away or refusing: keep everything dirty and try again
                self._append = None  # a Redis started again has forgotten the script
                self.failure = f"{type(exc).__name__}: {exc}"
                log.warning("writing sessions to %s failed, retrying: %s", display_url(self.url), self.failure)
                for key in removed:
                    if key not in self._dirty:
                        self._removed.add(key)
                for key, session in dirty.items():
                    if key not in self._removed and self._memory.find(key) is session:
                        self._dirty.setdefault(key, session)
                self._wake.set()
                await asyncio.sleep(pause)
                pause = min(pause * 2, _RETRY_PAUSE[1])
                continue
            pause = _RETRY_PAUSE[0]
            self.failure = ""
            for session, state in written.items():
                if self._memory.find(session.key) is session:  # not removed while the write was on its way
                    self._written[session] = state
            async with self._progress:
                self._stored = target
                self._progress.notify_all()

    async def _write(self, dirty: dict[SessionKey, Session], removed: set[SessionKey]) -> dict[Session, _Written]:
        if self._append is None:
            self._append = await self.redis.script_load(_APPEND)
        pipe = self.redis.pipeline(transaction=False)
        for key in removed:  # first, so that a session made again under the same name starts clean
            pipe.delete(self._session_key(key), self._journal_key(key))
            pipe.srem(f"{self.prefix}sessions", key.name)
        written: dict[Session, _Written] = {}
        for key, session in dirty.items():
            written[session] = self._write_session(pipe, key, session)
        await pipe.execute()
        return written

    def _write_session(self, pipe: Any, key: SessionKey, session: Session) -> _Written:
        before = self._written.get(session) or _Written()
        after = _Written(session.version, session.journal.generation, before.last_sequence)
        fields: dict[str, bytes | str] = {"runtime": json.dumps(runtime(session))}
        if before.version != session.version:
            fields["create"] = definition(session).SerializeToString()
            fields["stubs"] = stub_batch(session).SerializeToString()
            pipe.sadd(f"{self.prefix}sessions", key.name)
        pipe.hset(self._session_key(key), mapping=fields)
        journal = session.journal
        stream = self._journal_key(key)
        if before.generation != journal.generation:  # new, or reset: the stream starts again at 1
            pipe.delete(stream)
            after.last_sequence = 0
        entries: list[str | bytes] = []
        size = 0
        for exchange in journal.since(after.last_sequence + 1):
            data = exchanges.exchange_to_proto(exchange, key).SerializeToString()
            entries += (f"{exchange.sequence}-0", data)
            size += len(data)
            after.last_sequence = exchange.sequence
            if len(entries) >= 2 * _APPEND_MAX_ENTRIES or size >= _APPEND_MAX_BYTES:  # commands of bounded size
                pipe.evalsha(self._append, 1, stream, *entries)
                entries, size = [], 0
        if entries:
            pipe.evalsha(self._append, 1, stream, *entries)
        first_kept = journal.first_sequence or journal.next_sequence
        if after.last_sequence and first_kept > 1:
            pipe.xtrim(stream, minid=f"{first_kept}-0", approximate=False)
        return after

    def _session_key(self, key: SessionKey) -> str:
        return f"{self.prefix}session:{key.name}"

    def _journal_key(self, key: SessionKey) -> str:
        return f"{self.prefix}journal:{key.name}"

    # --- start-up --------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Checks that Redis answers; an OSError (the CLI's "cannot start") says why not."""
        try:
            await self.redis.ping()
        except Exception as exc:
            raise OSError(f"the session store at {display_url(self.url)} does not answer: {exc}") from exc

    async def load(self, simulator: Simulator) -> int:
        """Makes every stored session again, with its stubs, counters, scenario states and journal; drops the
        ones that expired while no daemon ran. Returns how many were loaded."""
        names = sorted(n.decode() for n in await self.redis.smembers(f"{self.prefix}sessions"))
        loaded = 0
        for name in names:
            key = parse_session(name)
            fields = await self.redis.hgetall(self._session_key(key))
            entries = await self.redis.xrange(self._journal_key(key))
            try:
                session = _restore(simulator, key, fields, entries)
            except Exception as exc:  # one unreadable session must not keep the others from loading
                log.error("session %s in %s was not loaded (left as it is): %s", name, display_url(self.url), exc)
                continue
            if session is None:
                self._removed.add(key)
                self._note()
                continue
            self._written[session] = _Written(
                session.version, session.journal.generation, session.journal.last_sequence
            )
            loaded += 1
        # Restoring made changes the store would write back unchanged: only removals are left to write.
        self._dirty.clear()
        return loaded


def definition(session: Session) -> pb.CreateSessionRequest:
    """The CreateSessionRequest that makes the session again, without its stubs."""
    request = sessions.session_to_template(session)
    del request.stubs[:]
    request.parent = f"tenants/{session.key.tenant}"
    request.session_id = session.key.session
    return request


def stub_batch(session: Session) -> pb.BatchCreateStubsRequest:
    """The session's stubs as BatchCreateStubs takes them, with their ids, in creation order."""
    ordered = sorted(session.stubs, key=lambda s: s.order)
    return pb.BatchCreateStubsRequest(
        parent=session.key.name,
        requests=[pb.CreateStubRequest(stub_id=s.id, stub=stubs.stub_to_template(s)) for s in ordered],
    )


def runtime(session: Session) -> dict[str, Any]:
    """What changes as the session serves: its lease, scenario states, stub counters and journal counters."""
    journal = session.journal
    return {
        "create_time": session.create_time,
        "expire_time": session.expire_time,
        "ttl": session.ttl,
        "state": session.state,
        "scenarios": session.scenarios,
        "stubs": {s.id: [s.match_count, s.rate_limited_count, s.create_time] for s in session.stubs},
        "journal": [journal.next_sequence, journal.total_count, journal.evicted_count],
    }


def _restore(
    simulator: Simulator, key: SessionKey, fields: dict[bytes, bytes], entries: list[tuple[bytes, dict[bytes, bytes]]]
) -> Session | None:
    """The session as stored, or None when it expired (or never was complete) and is to be removed."""
    if b"create" not in fields or b"runtime" not in fields:
        return None
    state = json.loads(fields[b"runtime"])
    if state["expire_time"] <= simulator.clock():
        return None
    create = pb.CreateSessionRequest.FromString(fields[b"create"])
    batch = pb.BatchCreateStubsRequest.FromString(fields.get(b"stubs", b""))
    errors = SpecErrors()
    settings = sessions.settings(create.session, "session", errors)
    now = time.time()
    built = [
        stubs.stub(r.stub, key.name, r.stub_id, f"stubs[{i}]", f"stubs[{i}].stub_id", errors, now)
        for i, r in enumerate(batch.requests)
    ]
    errors.raise_if_any()
    session = simulator.create_session(key, settings, built)
    session.create_time, session.expire_time, session.ttl = state["create_time"], state["expire_time"], state["ttl"]
    session.state, session.scenarios = state["state"], dict(state["scenarios"])
    for stub in session.stubs:
        if (counters := state["stubs"].get(stub.id)) is not None:
            stub.match_count, stub.rate_limited_count, stub.create_time = counters
    next_sequence, total, evicted = state["journal"]
    session.journal.restore(
        (exchanges.exchange_from_proto(exchange_pb2.Exchange.FromString(x[b"x"])) for _, x in entries),
        next_sequence,
        total,
        evicted,
    )
    return session
