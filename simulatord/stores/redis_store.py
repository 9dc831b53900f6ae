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
from simulatord.names import WILDCARD, SessionKey, new_id, parse_session
from simulatord.sessions.service import Simulator
from simulatord.sessions.session import Session
from simulatord.sessions.store import MemoryStore, already_exists, tenant_quota_exceeded, too_many_sessions
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
# The owner of a session and the owner's advertised addresses ('' when its lease ran out).
_LOCATE = """
local owner = redis.call('GET', KEYS[1])
if not owner then return {'', ''} end
return {owner, redis.call('GET', ARGV[1] .. owner) or ''}
"""
# Takes a session whose owner's lease ran out (or that has none); 0 when a live replica owns it.
_CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner == ARGV[1] then return 1 end
if owner and redis.call('EXISTS', ARGV[2] .. owner) == 1 then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1
"""
# A new session's name and quota slots, across every replica, taken at once.
_RESERVE = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then return 'exists' end
if redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 'too_many' end
if redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[4]) then return 'quota' end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[2])
return 'ok'
"""
# How long a replica relays to an owner it looked up without asking Redis again: a relayed request saves a
# round trip, and an ownership change (a takeover, a handover) is seen this much later at most.
LOCATED_FOR = 0.5
LOCATED_MAX = 10_000
HEARTBEAT = 1.0  # seconds between a replica's renewals of its lease
LEASE = 3.0  # seconds a replica's sessions stay its own without a renewal
ORPHAN_SWEEP_BEATS = 2  # every how many beats a replica looks for sessions nobody owns
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
        self.replica = new_id("r")  # this daemon among the replicas sharing the Redis
        self.simulator: Simulator | None = None
        self._advert = ""
        self._advert_set = False
        self._heart: asyncio.Task[None] | None = None
        self._adopting: dict[SessionKey, asyncio.Future[bool]] = {}
        self._located: dict[SessionKey, tuple[float, dict[str, str]]] = {}  # key: (until, owner's addresses)

    # --- the SessionStore interface --------------------------------------------------------------

    def add(self, session: Session) -> None:
        self._memory.add(session)
        self._watch(session)
        self._mark(session)

    def remove(self, key: SessionKey) -> Session | None:
        session = self._forget(key)
        if session is not None:
            self._removed.add(key)
            self._note()
        return session

    def _forget(self, key: SessionKey) -> Session | None:
        """Drops a session from this replica only: what Redis holds of it stays."""
        session = self._memory.remove(key)
        if session is not None:
            session.on_change = session.journal.on_change = None
            self._written.pop(session, None)
            self._dirty.pop(key, None)
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

    async def close(self) -> None:
        """Writes what is left, then stops the writer and disconnects."""
        with contextlib.suppress(SimulatorError):
            await self.flush()
        for task in (self._writer, self._heart):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(Exception):  # leaving at once lets another replica take the sessions over now
            await self.redis.delete(self._replica_key(self.replica))
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
            pipe.delete(self._session_key(key), self._journal_key(key), self._owner_key(key))
            pipe.srem(f"{self.prefix}sessions", key.name)
            pipe.srem(self._tenant_key(key.tenant), key.name)
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
            pipe.sadd(self._tenant_key(key.tenant), key.name)
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

    def _owner_key(self, key: SessionKey) -> str:
        return f"{self.prefix}owner:{key.name}"

    def _tenant_key(self, tenant: str) -> str:
        return f"{self.prefix}tenant:{tenant}"

    def _replica_key(self, replica: str) -> str:
        return f"{self.prefix}replica:{replica}"

    # --- start-up --------------------------------------------------------------------------------

    async def connect(self) -> None:
        """Checks that Redis answers; an OSError (the CLI's "cannot start") says why not."""
        try:
            await self.redis.ping()
        except Exception as exc:
            raise OSError(f"the session store at {display_url(self.url)} does not answer: {exc}") from exc

    async def start(self, simulator: Simulator, http_url: str, grpc_address: str) -> int:
        """Joins the replicas sharing this Redis under the given addresses, takes over (loads) every session
        no live replica owns, and starts writing and renewing. Returns how many sessions it took over."""
        self.simulator = simulator
        self._advert = json.dumps({"http": http_url, "grpc": grpc_address})
        await self._beat()
        loaded = await self.adopt_orphans()
        self._writer = asyncio.create_task(self._write_forever(), name="redis-store-writer")
        self._heart = asyncio.create_task(self._beat_forever(), name="redis-store-heartbeat")
        return loaded

    # --- replicas --------------------------------------------------------------------------------

    async def _beat(self) -> None:
        key, lease = self._replica_key(self.replica), round(LEASE * 1000)
        if self._advert_set and not await self.redis.set(key, self._advert, px=lease, xx=True):
            await self._lapsed()  # our lease ran out (a stalled loop, Redis away): others may own our sessions
        await self.redis.set(key, self._advert, px=lease)
        self._advert_set = True

    async def _lapsed(self) -> None:
        """Our lease was gone. Sessions another replica took over meanwhile are given up, in this replica only;
        sessions nobody owns (Redis restarted empty) are claimed again and written whole."""
        sessions = self._memory.in_tenant(WILDCARD)
        owners = await self.redis.mget([self._owner_key(s.key) for s in sessions]) if sessions else []
        for session, owner in zip(sessions, owners, strict=True):
            if owner is None and await self.redis.set(self._owner_key(session.key), self.replica, nx=True):
                self._written.pop(session, None)  # Redis lost what was written: all of it again
                self._mark(session)
            elif owner is None or owner.decode() != self.replica:
                log.warning("session %s was taken over while this replica's lease had lapsed", session.key.name)
                lost = self._forget(session.key)
                if lost is not None:
                    lost.close()

    async def _beat_forever(self) -> None:
        beats = 0
        while True:
            await asyncio.sleep(HEARTBEAT)
            beats += 1
            try:
                await self._beat()
                if beats % ORPHAN_SWEEP_BEATS == 0:
                    await self.adopt_orphans()
            except Exception as exc:  # the writer reports Redis trouble to the callers; keep beating
                log.warning("renewing replica %s in %s failed: %s", self.replica, display_url(self.url), exc)

    async def locate(self, key: SessionKey) -> str | None:
        found = await self._locate(key)
        return found["grpc"] if found is not None else None

    async def locate_http(self, key: SessionKey) -> str | None:
        """The HTTP base URL of the live replica that owns `key`, when that is another one (see `locate`)."""
        found = await self._locate(key)
        return found["http"] if found is not None else None

    async def _locate(self, key: SessionKey) -> dict[str, str] | None:
        if self._memory.find(key) is not None:
            return None
        now = time.monotonic()
        cached = self._located.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        owner, advert = await self.redis.eval(_LOCATE, 1, self._owner_key(key), f"{self.prefix}replica:")
        owner, advert = owner.decode(), advert.decode()
        if not owner or owner == self.replica:
            return None
        if not advert:  # its owner died: this replica takes it over, and answers
            await self.adopt(key)
            return None
        found: dict[str, str] = json.loads(advert)
        if len(self._located) >= LOCATED_MAX:
            self._located.clear()
        self._located[key] = (now + LOCATED_FOR, found)
        return found

    async def reserve(self, key: SessionKey) -> None:
        outcome = (
            await self.redis.eval(
                _RESERVE,
                3,
                f"{self.prefix}sessions",
                self._tenant_key(key.tenant),
                self._owner_key(key),
                key.name,
                self.replica,
                self._memory.max_sessions,
                self._memory.max_per_tenant,
            )
        ).decode()
        if outcome == "exists":
            raise already_exists(key)
        if outcome == "too_many":
            raise too_many_sessions(self._memory.max_sessions)
        if outcome == "quota":
            raise tenant_quota_exceeded(key.tenant, self._memory.max_per_tenant)

    def release(self, key: SessionKey) -> None:
        self._removed.add(key)
        self._note()

    async def peers(self) -> list[str]:
        names = [k async for k in self.redis.scan_iter(match=f"{self.prefix}replica:*", count=1000)]
        mine = self._replica_key(self.replica).encode()
        adverts = await self.redis.mget(names) if names else []
        return [json.loads(a)["grpc"] for n, a in zip(names, adverts, strict=True) if a is not None and n != mine]

    async def adopt_orphans(self) -> int:
        """Takes over every stored session whose owner is gone (all of them at the first start)."""
        names = sorted(n.decode() for n in await self.redis.smembers(f"{self.prefix}sessions"))
        adopted = 0
        for name in names:
            key = parse_session(name)
            if self._memory.find(key) is None and await self.adopt(key):
                adopted += 1
        return adopted

    async def adopt(self, key: SessionKey) -> bool:
        """Claims a session whose owner is gone and makes it again here from what Redis holds; False when a
        live replica owns it (or it is gone)."""
        running = self._adopting.get(key)
        if running is None:
            running = self._adopting[key] = asyncio.ensure_future(self._adopt(key))
            running.add_done_callback(lambda _: self._adopting.pop(key, None))
        return await asyncio.shield(running)

    async def _adopt(self, key: SessionKey) -> bool:
        if self._memory.find(key) is not None:
            return True
        claimed = await self.redis.eval(_CLAIM, 1, self._owner_key(key), self.replica, f"{self.prefix}replica:")
        if not claimed:
            return False
        fields = await self.redis.hgetall(self._session_key(key))
        entries = await self.redis.xrange(self._journal_key(key))
        if self._memory.find(key) is not None:
            return True
        assert self.simulator is not None, "adopting starts with start()"
        try:
            session = _restore(self.simulator, key, fields, entries)
        except Exception as exc:  # one unreadable session must not keep the others from loading
            log.error("session %s in %s was not loaded (left as it is): %s", key.name, display_url(self.url), exc)
            return False
        if session is None:  # expired while nobody owned it
            self._removed.add(key)
            self._note()
            return False
        self._written[session] = _Written(session.version, session.journal.generation, session.journal.last_sequence)
        self._dirty.pop(key, None)  # restoring changed nothing the store would have to write back
        return True


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
