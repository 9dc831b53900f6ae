"""Journal unit tests: sequence numbers, bounded memory with counted evictions, and waking waiters."""

from __future__ import annotations

import asyncio

from simulatord.matching.request import HttpRequest
from simulatord.sessions.journal import Exchange, ExchangeFilter, Journal, JournalLimits, JournalPool, MatchState


def exchange(path: str = "/", body: bytes = b"", stub: str = "") -> Exchange:
    return Exchange(0, HttpRequest("GET", path, body=body), len(body), False, stub, (), 200, (), 0, 0.0)


def test_sequences_are_dense_and_start_at_one() -> None:
    journal = Journal(JournalLimits())
    assert [journal.append(exchange()).sequence for _ in range(3)] == [1, 2, 3]
    assert [e.sequence for e in journal.since(2)] == [2, 3]
    assert journal.get(3) is not None and journal.get(4) is None


def test_count_bound_evicts_oldest_and_counts() -> None:
    journal = Journal(JournalLimits(max_exchanges=3))
    for _ in range(5):
        journal.append(exchange())
    assert len(journal) == 3
    assert journal.evicted_count == 2
    assert journal.first_sequence == 3 and journal.last_sequence == 5
    assert [e.sequence for e in journal.since(1)] == [3, 4, 5]


def test_byte_bound_holds_memory_flat() -> None:
    journal = Journal(JournalLimits(max_exchanges=1_000_000, max_bytes=50_000))
    for _ in range(1000):
        journal.append(exchange(body=b"x" * 1000))
    assert journal.retained_bytes <= 50_000
    assert journal.evicted_count == 1000 - len(journal)
    assert journal.total_count == 1000


def test_clear_restarts_sequences() -> None:
    journal = Journal(JournalLimits())
    journal.append(exchange())
    journal.clear()
    assert journal.append(exchange()).sequence == 1
    assert journal.evicted_count == 0


def test_filter() -> None:
    hit = exchange("/v1/chat", stub="tenants/t/sessions/s/stubs/chat")
    miss = exchange("/v1/other")
    assert ExchangeFilter(match_state=MatchState.MATCHED).accepts(hit)
    assert not ExchangeFilter(match_state=MatchState.MATCHED).accepts(miss)
    assert ExchangeFilter(match_state=MatchState.UNMATCHED).accepts(miss)
    assert ExchangeFilter(stub="chat").accepts(hit)
    assert ExchangeFilter(stub="tenants/t/sessions/s/stubs/chat").accepts(hit)
    assert not ExchangeFilter(stub="cha").accepts(hit)
    assert ExchangeFilter(path_prefix="/v1/").accepts(miss)
    assert not ExchangeFilter(method="post").accepts(miss)


def test_waiters_wake_on_append_and_close() -> None:
    async def scenario() -> list[str]:
        journal = Journal(JournalLimits())
        seen: list[str] = []

        async def waiter() -> None:
            await journal.wait_for_change()
            seen.append(f"woke with {len(journal)}")
            await journal.wait_for_change()
            seen.append(f"closed={journal.closed.value}")

        task = asyncio.create_task(waiter())
        await asyncio.sleep(0)
        journal.append(exchange())
        await asyncio.sleep(0)
        journal.close()
        await asyncio.wait_for(task, 1)
        return seen

    assert asyncio.run(scenario()) == ["woke with 1", "closed=deleted"]


def test_wait_times_out() -> None:
    async def scenario() -> None:
        await Journal(JournalLimits()).wait_for_change(timeout=0.01)

    asyncio.run(scenario())


def test_the_daemon_wide_pool_evicts_from_the_journals_holding_the_most() -> None:
    """Past the pool's bound the largest journal gives up its oldest exchanges, counted, down to 90% of it."""
    pool = JournalPool(max_bytes=20_000)
    big, small = Journal(JournalLimits(), pool), Journal(JournalLimits(), pool)
    for _ in range(3):
        small.append(exchange())
    while pool.retained_bytes + 2_000 <= pool.max_bytes:
        big.append(exchange(body=b"x" * 1_000))
    small_before = small.retained_bytes
    big.append(exchange(body=b"x" * 1_000))
    assert pool.retained_bytes <= 18_000
    assert small.retained_bytes == small_before and small.evicted_count == 0
    assert big.evicted_count == pool.evicted_count > 0
    assert pool.retained_bytes == big.retained_bytes + small.retained_bytes
    big.close()
    assert pool.retained_bytes == small.retained_bytes  # a closed journal's bytes leave the pool
    small.clear()
    assert pool.retained_bytes == 0
