"""Watching and waiting in the domain, without servers: every append reaches a watcher, whenever it happens."""

from __future__ import annotations

import asyncio

from simulatord.matching.request import HttpRequest
from simulatord.names import SessionKey
from simulatord.sessions.journal import Exchange, ExchangeFilter
from simulatord.sessions.service import Addressing, Simulator
from simulatord.sessions.settings import SessionSettings
from simulatord.sessions.store import MemoryStore

KEY = SessionKey("t", "s")


def simulator() -> Simulator:
    sim = Simulator(MemoryStore(), Addressing("http://x", "localhost"))
    sim.create_session(KEY, SessionSettings())
    return sim


def record(sim: Simulator, path: str) -> None:
    sim.session(KEY).journal.append(Exchange(0, HttpRequest("GET", path), 0, False, "", (), 200, (), 0, 0.0))


def test_append_while_the_watcher_is_suspended_at_yield_is_delivered() -> None:
    async def scenario() -> list[str]:
        sim = simulator()
        record(sim, "/one")
        watch = sim.watch_exchanges(KEY, ExchangeFilter(), 1)
        first = await anext(watch)
        record(sim, "/two")  # the generator is suspended at its yield: nobody waits on the journal now
        second = await asyncio.wait_for(anext(watch), 1)
        assert not isinstance(first, int) and not isinstance(second, int)
        return [first.request.path, second.request.path]

    assert asyncio.run(scenario()) == ["/one", "/two"]


def test_wait_for_sees_appends_made_before_and_during_the_wait() -> None:
    async def scenario() -> tuple[bool, int]:
        sim = simulator()
        record(sim, "/a")

        async def later() -> None:
            await asyncio.sleep(0.01)
            record(sim, "/a")
            record(sim, "/b")

        task = asyncio.create_task(later())
        result = await sim.wait_for_exchanges(KEY, ExchangeFilter(path="/a"), 2, 1.0)
        await task
        return result.satisfied, len(result.matching)

    assert asyncio.run(scenario()) == (True, 2)


def test_a_stall_of_the_daemon_extends_every_lease_before_the_sweep() -> None:
    """Nobody could refresh a session while the event loop was blocked, so a stall never expires one."""
    now = [1000.0]
    sim = Simulator(MemoryStore(), Addressing("http://x", "localhost"), clock=lambda: now[0])
    sim.create_session(KEY, SessionSettings(ttl=6.0))
    now[0] += 11.0  # an 11 s stall: the client's heartbeats (every 2 s) were all blocked
    assert sim.sweep_expired(stalled=11.0) == 0
    assert sim.session(KEY).expire_time == 1000.0 + 6.0 + 11.0
    now[0] += 6.5  # no refresh since: now the lease has really run out
    assert sim.sweep_expired() == 1


def test_a_close_while_the_watcher_is_suspended_at_yield_still_delivers_what_came_before_it() -> None:
    """Drain: exchanges recorded while the daemon stops reach the watcher before its stream ends."""

    async def scenario() -> list[str]:
        sim = simulator()
        record(sim, "/one")
        watch = sim.watch_exchanges(KEY, ExchangeFilter(), 1)
        seen = [await anext(watch)]
        record(sim, "/two")  # the generator is suspended at its yield of /one: then the journal closes
        sim.close()
        seen += [item async for item in watch]
        return [item.request.path for item in seen if not isinstance(item, int)]

    assert asyncio.run(scenario()) == ["/one", "/two"]
