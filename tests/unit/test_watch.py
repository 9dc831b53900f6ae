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
