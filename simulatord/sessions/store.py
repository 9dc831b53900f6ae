"""The narrow interface to session state, and its in-process implementation."""

from __future__ import annotations

from collections import Counter
from typing import Protocol

from simulatord.errors import AlreadyExists, NotFound, ResourceExhausted
from simulatord.names import WILDCARD, SessionKey
from simulatord.sessions.session import Session


class SessionStore(Protocol):
    """Everything the daemon needs from session storage; a shared multi-process store implements the same.
    `add` enforces the daemon's bounds (sessions in all, and per tenant) atomically with storing."""

    def add(self, session: Session) -> None: ...

    def get(self, key: SessionKey) -> Session: ...

    def find(self, key: SessionKey) -> Session | None: ...

    def in_tenant(self, tenant: str) -> list[Session]: ...

    def remove(self, key: SessionKey) -> Session | None: ...

    def expired(self, now: float) -> list[Session]: ...

    def __len__(self) -> int: ...

    async def flush(self) -> None:
        """Returns once every change made so far is stored: at once for a store in this process."""


def already_exists(key: SessionKey) -> AlreadyExists:
    return AlreadyExists(f"session {key.name} already exists", "SESSION_ALREADY_EXISTS", {"session": key.name})


def too_many_sessions(limit: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"the daemon holds its maximum of {limit} sessions; delete some first",
        "TOO_MANY_SESSIONS",
        {"max_sessions": str(limit)},
    )


def tenant_quota_exceeded(tenant: str, limit: int) -> ResourceExhausted:
    return ResourceExhausted(
        f"tenant {tenant} holds its quota of {limit} sessions; delete some first",
        "TENANT_QUOTA_EXCEEDED",
        {"tenant": tenant, "max_sessions_per_tenant": str(limit)},
    )


class MemoryStore:
    """Sessions in a dict of this process; lookups on the hot path are one dict access."""

    def __init__(self, max_sessions: int = 10_000, max_per_tenant: int = 1000) -> None:
        self.max_sessions = max_sessions
        self.max_per_tenant = max_per_tenant
        self._sessions: dict[SessionKey, Session] = {}
        self._per_tenant: Counter[str] = Counter()

    def add(self, session: Session) -> None:
        if session.key in self._sessions:
            raise already_exists(session.key)
        if len(self._sessions) >= self.max_sessions:
            raise too_many_sessions(self.max_sessions)
        tenant = session.key.tenant
        if self._per_tenant[tenant] >= self.max_per_tenant:
            raise tenant_quota_exceeded(tenant, self.max_per_tenant)
        self._sessions[session.key] = session
        self._per_tenant[tenant] += 1

    def get(self, key: SessionKey) -> Session:
        session = self._sessions.get(key)
        if session is None:
            raise NotFound(f"session {key.name} not found", "SESSION_NOT_FOUND", {"session": key.name})
        return session

    def find(self, key: SessionKey) -> Session | None:
        return self._sessions.get(key)

    def in_tenant(self, tenant: str) -> list[Session]:
        sessions = self._sessions.values()
        if tenant == WILDCARD:
            return sorted(sessions, key=lambda s: (s.create_time, s.key.name))
        return sorted((s for s in sessions if s.key.tenant == tenant), key=lambda s: (s.create_time, s.key.name))

    def remove(self, key: SessionKey) -> Session | None:
        session = self._sessions.pop(key, None)
        if session is not None:
            self._per_tenant[key.tenant] -= 1
            if not self._per_tenant[key.tenant]:
                del self._per_tenant[key.tenant]
            session.close()
        return session

    def expired(self, now: float) -> list[Session]:
        return [s for s in self._sessions.values() if s.expire_time <= now]

    def __len__(self) -> int:
        return len(self._sessions)

    async def flush(self) -> None:
        return None
