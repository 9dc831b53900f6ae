"""The contract every SessionStore implementation must honour, as a base class each store's test module subclasses."""

from __future__ import annotations

import asyncio

import pytest

from simulatord.errors import AlreadyExists, NotFound, ResourceExhausted
from simulatord.names import SessionKey
from simulatord.sessions.journal import ExchangeFilter, JournalLimits
from simulatord.sessions.service import Addressing, Simulator
from simulatord.sessions.session import Session
from simulatord.sessions.store import SessionStore


def session(
    tenant: str = "t",
    session_id: str = "s",
    *,
    create_time: float = 1_000.0,
    expire_time: float = 0.0,
    labels: dict[str, str] | None = None,
) -> Session:
    """A fresh session; without an expire_time it expires an hour after its create_time."""
    return Session(
        key=SessionKey(tenant, session_id),
        ttl=3600.0,
        limits=JournalLimits(),
        labels=dict(labels or {}),
        create_time=create_time,
        expire_time=expire_time,
    )


def names(sessions: list[Session]) -> list[str]:
    return [s.key.name for s in sessions]


class SessionStoreContract:
    """What the daemon relies on from session storage; every test names the promise it checks.

    A store's test module subclasses this, names the subclass `Test...` so that pytest collects it, and implements
    `make_store`; a store that needs cleaning up (a Redis database, say) does it in its own fixtures. The contract
    only uses what the `SessionStore` protocol offers and compares sessions by key and by the fields a store must
    keep, never by identity, so a store that hands out copies passes as well as one that does not.
    """

    def make_store(self, max_sessions: int, max_per_tenant: int | None = None) -> SessionStore:
        """A new, empty store that holds at most `max_sessions` sessions, and `max_per_tenant` of any one tenant
        (None: no bound per tenant but max_sessions)."""
        raise NotImplementedError

    # --- add, get, find ------------------------------------------------------------------------------

    def test_an_added_session_is_returned_by_get_and_find(self) -> None:
        """add() stores a session under its key; get() and find() return it with its labels and times."""
        store = self.make_store(10)
        store.add(session("t", "s", create_time=1_500.0, expire_time=9_000.0, labels={"team": "payments"}))
        for found in (store.get(SessionKey("t", "s")), store.find(SessionKey("t", "s"))):
            assert found is not None
            assert found.key == SessionKey("t", "s")
            assert found.labels == {"team": "payments"}
            assert (found.create_time, found.expire_time) == (1_500.0, 9_000.0)

    def test_adding_a_second_session_under_a_taken_key_raises_already_exists_and_keeps_the_first(self) -> None:
        """add() of a key already in the store raises AlreadyExists (SESSION_ALREADY_EXISTS); the first stays."""
        store = self.make_store(10)
        store.add(session(labels={"copy": "first"}))
        with pytest.raises(AlreadyExists) as raised:
            store.add(session(labels={"copy": "second"}))
        assert raised.value.reason == "SESSION_ALREADY_EXISTS"
        assert store.get(SessionKey("t", "s")).labels == {"copy": "first"}
        assert len(store) == 1

    def test_adding_beyond_max_sessions_raises_resource_exhausted(self) -> None:
        """Once the store holds max_sessions sessions, add() raises ResourceExhausted (TOO_MANY_SESSIONS) and
        stores nothing."""
        store = self.make_store(2)
        store.add(session("t", "a"))
        store.add(session("t", "b"))
        with pytest.raises(ResourceExhausted) as raised:
            store.add(session("t", "c"))
        assert raised.value.reason == "TOO_MANY_SESSIONS"
        assert store.find(SessionKey("t", "c")) is None
        assert len(store) == 2

    def test_max_sessions_bounds_the_whole_store_not_each_tenant(self) -> None:
        """The limit is store-wide: sessions of every tenant count towards it."""
        store = self.make_store(2)
        store.add(session("a", "s"))
        store.add(session("b", "s"))
        with pytest.raises(ResourceExhausted):
            store.add(session("c", "s"))

    def test_one_tenant_cannot_take_more_than_its_quota(self) -> None:
        """Past max_per_tenant sessions of one tenant, add() raises ResourceExhausted (TENANT_QUOTA_EXCEEDED),
        while other tenants still get theirs; removing one frees its place."""
        store = self.make_store(10, max_per_tenant=2)
        store.add(session("greedy", "a"))
        store.add(session("greedy", "b"))
        with pytest.raises(ResourceExhausted) as raised:
            store.add(session("greedy", "c"))
        assert raised.value.reason == "TENANT_QUOTA_EXCEEDED"
        store.add(session("other", "a"))
        store.remove(SessionKey("greedy", "a"))
        store.add(session("greedy", "c"))
        assert len(store) == 3

    def test_removing_a_session_frees_its_place_under_max_sessions(self) -> None:
        """A removed session no longer counts towards max_sessions."""
        store = self.make_store(1)
        store.add(session("t", "a"))
        store.remove(SessionKey("t", "a"))
        store.add(session("t", "b"))
        assert store.find(SessionKey("t", "b")) is not None

    def test_get_of_a_missing_key_raises_not_found(self) -> None:
        """get() of a key the store does not hold raises NotFound (SESSION_NOT_FOUND)."""
        store = self.make_store(10)
        store.add(session("t", "present"))
        with pytest.raises(NotFound) as raised:
            store.get(SessionKey("t", "absent"))
        assert raised.value.reason == "SESSION_NOT_FOUND"

    def test_find_of_a_missing_key_returns_none(self) -> None:
        """find() is get() without the error: None for a key the store does not hold."""
        store = self.make_store(10)
        store.add(session("t", "present"))
        assert store.find(SessionKey("t", "absent")) is None
        assert store.find(SessionKey("other", "present")) is None

    # --- listing -------------------------------------------------------------------------------------

    def test_in_tenant_lists_a_tenants_sessions_by_create_time_then_name(self) -> None:
        """in_tenant() returns the tenant's sessions ordered by (create_time, name), whatever the adding order."""
        store = self.make_store(10)
        for session_id, created in (("c", 20.0), ("b", 10.0), ("a", 20.0), ("d", 5.0)):
            store.add(session("t", session_id, create_time=created))
        assert names(store.in_tenant("t")) == [
            "tenants/t/sessions/d",
            "tenants/t/sessions/b",
            "tenants/t/sessions/a",
            "tenants/t/sessions/c",
        ]

    def test_in_tenant_with_the_wildcard_lists_every_tenant_in_the_same_order(self) -> None:
        """in_tenant("-") returns the sessions of all tenants, ordered by (create_time, name) across tenants."""
        store = self.make_store(10)
        store.add(session("y", "s", create_time=10.0))
        store.add(session("x", "late", create_time=30.0))
        store.add(session("x", "s", create_time=10.0))
        store.add(session("y", "early", create_time=1.0))
        assert names(store.in_tenant("-")) == [
            "tenants/y/sessions/early",
            "tenants/x/sessions/s",
            "tenants/y/sessions/s",
            "tenants/x/sessions/late",
        ]

    def test_in_tenant_of_a_tenant_without_sessions_is_empty(self) -> None:
        """in_tenant() of a tenant with no sessions is an empty list, not an error."""
        store = self.make_store(10)
        store.add(session("t", "s"))
        assert store.in_tenant("nobody") == []

    def test_tenants_are_kept_apart(self) -> None:
        """The same session id in two tenants names two sessions: each is stored, found, listed and removed
        on its own."""
        store = self.make_store(10)
        store.add(session("a", "s", labels={"owner": "a"}))
        store.add(session("b", "s", labels={"owner": "b"}))
        assert store.get(SessionKey("a", "s")).labels == {"owner": "a"}
        assert store.get(SessionKey("b", "s")).labels == {"owner": "b"}
        assert names(store.in_tenant("a")) == ["tenants/a/sessions/s"]
        assert names(store.in_tenant("b")) == ["tenants/b/sessions/s"]
        store.remove(SessionKey("a", "s"))
        assert store.find(SessionKey("a", "s")) is None
        assert store.get(SessionKey("b", "s")).labels == {"owner": "b"}
        assert len(store) == 1

    # --- removal -------------------------------------------------------------------------------------

    def test_remove_returns_the_session_and_takes_it_out_of_the_store(self) -> None:
        """remove() returns the removed session; afterwards the store neither finds nor lists it."""
        store = self.make_store(10)
        store.add(session("t", "gone", labels={"k": "v"}))
        store.add(session("t", "kept"))
        removed = store.remove(SessionKey("t", "gone"))
        assert removed is not None
        assert removed.key == SessionKey("t", "gone") and removed.labels == {"k": "v"}
        assert store.find(SessionKey("t", "gone")) is None
        assert names(store.in_tenant("t")) == ["tenants/t/sessions/kept"]

    def test_remove_closes_the_session_so_its_waiters_and_watchers_end(self) -> None:
        """remove() closes the session: its journal is closed, a waiter on the journal wakes, and a watcher of
        its exchanges (Simulator.watch_exchanges over this store) ends."""

        async def scenario() -> None:
            store = self.make_store(10)
            store.add(session("t", "s"))
            key = SessionKey("t", "s")
            journal = store.get(key).journal
            watch = Simulator(store, Addressing("http://127.0.0.1:1", "sim.test")).watch_exchanges(
                key, ExchangeFilter(), 0
            )
            waiter = asyncio.create_task(journal.wait_for_change())
            watcher = asyncio.create_task(anext(watch, "ended"))
            await asyncio.sleep(0.01)
            assert not waiter.done() and not watcher.done(), "nothing happened yet, so both still wait"
            removed = store.remove(key)
            assert removed is not None and removed.journal.closed
            await asyncio.wait_for(waiter, 1.0)
            assert await asyncio.wait_for(watcher, 1.0) == "ended"

        asyncio.run(scenario())

    def test_removing_a_missing_or_already_removed_key_returns_none(self) -> None:
        """remove() of a key the store does not hold returns None, including a second remove of the same key."""
        store = self.make_store(10)
        store.add(session("t", "s"))
        assert store.remove(SessionKey("t", "never")) is None
        assert store.remove(SessionKey("t", "s")) is not None
        assert store.remove(SessionKey("t", "s")) is None
        assert len(store) == 0

    def test_a_removed_sessions_key_can_be_added_again(self) -> None:
        """After remove(), a new session may take the same key; the store then holds the new, open session."""
        store = self.make_store(10)
        store.add(session(labels={"generation": "1"}))
        store.remove(SessionKey("t", "s"))
        store.add(session(labels={"generation": "2"}))
        again = store.get(SessionKey("t", "s"))
        assert again.labels == {"generation": "2"}
        assert not again.journal.closed

    # --- expiry and size -----------------------------------------------------------------------------

    def test_expired_returns_the_sessions_whose_expire_time_has_passed(self) -> None:
        """expired(now) returns the sessions, of every tenant, whose expire_time lies before now, and no other."""
        store = self.make_store(10)
        store.add(session("a", "old", expire_time=100.0))
        store.add(session("b", "older", expire_time=50.0))
        store.add(session("a", "fresh", expire_time=300.0))
        assert store.expired(10.0) == []
        assert sorted(names(store.expired(200.0))) == ["tenants/a/sessions/old", "tenants/b/sessions/older"]
        assert len(store.expired(1_000.0)) == 3

    def test_expired_only_reports_and_removes_nothing(self) -> None:
        """expired() is a query: the expired sessions stay in the store until they are removed."""
        store = self.make_store(10)
        store.add(session("t", "s", expire_time=100.0))
        assert names(store.expired(200.0)) == ["tenants/t/sessions/s"]
        assert store.find(SessionKey("t", "s")) is not None
        assert len(store) == 1

    def test_len_counts_the_sessions_held(self) -> None:
        """len() is the number of sessions in the store, across tenants; refused adds do not count."""
        store = self.make_store(10)
        assert len(store) == 0
        store.add(session("a", "s"))
        store.add(session("b", "s"))
        assert len(store) == 2
        with pytest.raises(AlreadyExists):
            store.add(session("a", "s"))
        assert len(store) == 2
        store.remove(SessionKey("a", "s"))
        assert len(store) == 1
