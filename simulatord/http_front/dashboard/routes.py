"""The dashboard's routes on the Quart app: its page and assets, a read-only JSON API under /_dashboard/api (a
prefix no session route can take: sessions live under /tenants/...), and a Server-Sent Events stream per session
fed by the journal's watch."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from importlib import resources
from typing import TYPE_CHECKING, Any

from quart import Response, request

from simulatord.errors import InvalidArgument, NotFound, PermissionDenied, SimulatorError, Unauthenticated
from simulatord.http_front.dashboard import DashboardAccess, Viewer
from simulatord.http_front.dashboard.convert import (
    exchange_detail,
    exchange_summary,
    session_detail,
    session_to_json,
)
from simulatord.names import WILDCARD, SessionKey, valid_id
from simulatord.serving import DataPlane
from simulatord.sessions.journal import Exchange, ExchangeFilter
from simulatord.sessions.session import Session

if TYPE_CHECKING:
    from quart import Quart

PREFIX = "/_dashboard"
_ASSETS = {"index.html": "text/html", "dashboard.js": "text/javascript", "dashboard.css": "text/css"}
_STATUS = {Unauthenticated: 401, PermissionDenied: 403, NotFound: 404, InvalidArgument: 400}


def _asset(name: str) -> bytes:
    return resources.files("simulatord.http_front.dashboard").joinpath(name).read_bytes()


def wants_html() -> bool:
    """Whether the request's Accept prefers HTML (a browser) to JSON (curl, httpx, scripts: `*/*`)."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html"


def page() -> Response:
    return Response(_asset("index.html"), content_type="text/html; charset=utf-8")


def add_routes(app: Quart, plane: DataPlane, access: DashboardAccess) -> None:
    """Registers the dashboard on `app`; `/` itself is the app's own route, which calls `page()` for browsers."""
    assets = {name: _asset(name) for name in _ASSETS}  # read once: they are part of the installed package

    def viewer() -> Viewer | None:
        """The caller's tenants with `--auth` (a `token` query parameter, since EventSource cannot set headers,
        or `authorization: Bearer`); None: open daemon, every tenant."""
        if access.identify is None:
            return None
        token = request.args.get("token", "")
        header = request.headers.get("authorization", "")
        if token:
            return access.identify([("authorization", f"Bearer {token}")])
        if header:
            return access.identify([("authorization", header)])
        raise Unauthenticated(
            "this daemon requires a token: add ?token=<token> or send 'authorization: Bearer <token>'",
            "TOKEN_MISSING",
        )

    def session_of(tenant: str, session: str) -> Session:
        if not (valid_id(tenant) and valid_id(session)):
            raise NotFound(f"session tenants/{tenant}/sessions/{session} not found", "SESSION_NOT_FOUND")
        who = viewer()
        if who is not None and not who.may_use(tenant):
            raise PermissionDenied(f"this token may not use tenant {tenant!r}", "TENANT_FORBIDDEN", {"tenant": tenant})
        return plane.store.get(SessionKey(tenant, session))

    @app.errorhandler(SimulatorError)
    async def refused(error: SimulatorError) -> tuple[dict[str, str], int]:
        status = next((code for kind, code in _STATUS.items() if isinstance(error, kind)), 500)
        return {"error": error.message, "reason": error.reason}, status

    @app.get(f"{PREFIX}/")
    async def dashboard_page() -> Response:
        return page()

    @app.get(f"{PREFIX}/<name>")
    async def asset(name: str) -> Response:
        if name not in assets:
            raise NotFound(f"no dashboard asset {name!r}", "NOT_FOUND")
        return Response(assets[name], content_type=f"{_ASSETS[name]}; charset=utf-8")

    @app.get(f"{PREFIX}/api/tenants")
    async def tenants() -> dict[str, Any]:
        who = viewer()
        visible = None if who is None else who.visible
        grouped: dict[str, list[dict[str, Any]]] = {}
        for session in plane.store.in_tenant(WILDCARD):
            if visible is None or session.key.tenant in visible:
                grouped.setdefault(session.key.tenant, []).append(session_to_json(session))
        return {
            "auth": access.identify is not None,
            "tenants": [{"tenant": t, "sessions": grouped[t]} for t in sorted(grouped)],
        }

    @app.get(f"{PREFIX}/api/tenants/<tenant>/sessions/<session>")
    async def session_info(tenant: str, session: str) -> dict[str, Any]:
        found = session_of(tenant, session)
        return session_detail(found, access.base_url(found.key))

    @app.get(f"{PREFIX}/api/tenants/<tenant>/sessions/<session>/exchanges")
    async def exchanges(tenant: str, session: str) -> dict[str, Any]:
        journal = session_of(tenant, session).journal
        return {
            "exchanges": [exchange_summary(e) for e in journal],
            "evicted": journal.evicted_count,
            "last_sequence": journal.last_sequence,
        }

    @app.get(f"{PREFIX}/api/tenants/<tenant>/sessions/<session>/exchanges/<int:sequence>")
    async def exchange(tenant: str, session: str, sequence: int) -> dict[str, Any]:
        found = session_of(tenant, session)
        recorded = found.journal.get(sequence)
        if recorded is None:
            name = found.key.exchange_name(sequence)
            raise NotFound(f"exchange {name} not found (never recorded, or evicted)", "EXCHANGE_NOT_FOUND")
        return exchange_detail(recorded, found, access.base_url(found.key))

    @app.get(f"{PREFIX}/api/tenants/<tenant>/sessions/<session>/events")
    async def events(tenant: str, session: str) -> Response:
        found = session_of(tenant, session)
        start = _start(request.args.get("from", ""), request.headers.get("last-event-id", ""))
        response = Response(
            _stream(found, start, access),
            content_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )
        response.timeout = None  # a live stream: Quart's response timeout would cut it after a minute
        return response


def _start(given: str, last_event_id: str) -> int:
    """Where a stream starts: after the last event the browser saw (EventSource resends it as Last-Event-ID on
    reconnecting), else `from` (1: everything kept, as WatchExchanges' start_sequence; 0: only new)."""
    try:
        if last_event_id:
            return int(last_event_id) + 1
        return int(given) if given else 1
    except ValueError:
        raise InvalidArgument("from: must be a sequence number", "INVALID_ARGUMENT") from None


def _event(kind: str, data: object, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def _stream(session: Session, start: int, access: DashboardAccess) -> AsyncIterator[bytes]:
    """Exchanges from `start` on, live, with the session's state and stub counters after each burst; ends when
    the session goes or the daemon stops."""
    base_url = access.base_url(session.key)
    journal = session.journal
    yield b"retry: 2000\n\n"
    yield _event("session", session_detail(session, base_url))
    watcher = access.watch(session.key, ExchangeFilter(), start)
    stopping = asyncio.ensure_future(access.stopping.wait())
    following: asyncio.Future[Exchange | int] | None = None
    try:
        while True:
            following = asyncio.ensure_future(anext(watcher))
            await asyncio.wait((following, stopping), return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                yield _event("end", {"reason": "the daemon is stopping"})
                return
            try:
                item = following.result()
            except StopAsyncIteration:
                yield _event("end", {"reason": f"session {journal.closed or 'closed'}"})
                return
            if isinstance(item, int):
                yield _event("evicted", {"count": item})
                continue
            yield _event("exchange", exchange_summary(item), item.sequence)
            if item.sequence >= journal.last_sequence:  # the end of a burst: match counts and state moved
                yield _event("session", session_detail(session, base_url))
    finally:
        # Also when the browser left (Quart cancels this generator): the watch must not outlive the stream.
        stopping.cancel()
        if following is not None and not following.done():
            following.cancel()
            with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                await following
        # Watches are async generators (typed as iterators by the Simulator): close it now, not when collected.
        close = getattr(watcher, "aclose", None)
        if close is not None:
            await close()
