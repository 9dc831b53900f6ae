"""MemoryStore, the in-process session store, honours the SessionStore contract."""

from __future__ import annotations

from simulatord.sessions.store import MemoryStore, SessionStore
from tests.unit.store_contract import SessionStoreContract


class TestMemoryStore(SessionStoreContract):
    """The contract suite, run against a fresh MemoryStore per test."""

    def make_store(self, max_sessions: int, max_per_tenant: int | None = None) -> SessionStore:
        return MemoryStore(max_sessions=max_sessions, max_per_tenant=max_per_tenant or max_sessions)
