"""The live dashboard of the daemon's own pages: what it is given by the daemon (this module, cheap to import), its
routes (routes.py, loaded with the Quart app), its JSON (convert.py) and its assets (index.html, dashboard.js,
dashboard.css, shipped as package data)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from simulatord.names import SessionKey
from simulatord.sessions.journal import Exchange, ExchangeFilter


class Viewer(Protocol):
    """Whom a dashboard token identifies: the tenants it may use (the control plane's Grant is one)."""

    @property
    def visible(self) -> frozenset[str] | None: ...  # None: every tenant

    def may_use(self, tenant: str) -> bool: ...


# The control plane's credentials check, passed in by the daemon (http_front may not import control): takes
# `authorization` metadata, answers the Viewer, raises Unauthenticated for a missing or unknown token.
Identify = Callable[[Iterable[tuple[str, str]]], Viewer]
Watch = Callable[[SessionKey, ExchangeFilter, int], AsyncIterator[Exchange | int]]


@dataclass
class DashboardAccess:
    """What the dashboard needs beyond the data plane: the journal's watch (as WatchExchanges follows it), how
    sessions are addressed, the credentials of `--auth` (None: open), and a stop signal that ends live streams
    before the HTTP server drains (otherwise every open browser tab would hold the daemon's stop for the
    server's whole grace period)."""

    watch: Watch
    base_url: Callable[[SessionKey], str]
    identify: Identify | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
