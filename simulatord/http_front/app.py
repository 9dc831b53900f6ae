"""Builds the HTTP front: simulated traffic at its ASGI edge, the daemon's own pages as a Quart app.

Simulated traffic never reaches Quart, so Quart (and Flask and Werkzeug under it) is imported, and the Quart app
built, on the first request that addresses no session; the edge answers the ASGI lifespan itself. A daemon
that only serves sessions never loads Quart, which keeps start-up short.
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from simulatord import __version__
from simulatord.http_front.dashboard import DashboardAccess
from simulatord.http_front.edge import ASGIApp, Receive, Scope, Send, SimulatedTraffic
from simulatord.serving import DataPlane

if TYPE_CHECKING:
    from quart import Quart


def create_app(
    plane: DataPlane,
    host_suffix: str,
    max_body_bytes: int,
    max_stream_seconds: float = 600.0,
    read_timeout: float = 30.0,
    on_serving: Callable[[], object] | None = None,
    dashboard: DashboardAccess | None = None,
) -> SimulatedTraffic:
    """The ASGI app the server runs; `on_serving` is called when the server has started it (lifespan startup).
    Without `dashboard` the daemon's pages are the JSON index and /metrics only."""
    pages = OwnPages(lambda: build_pages(plane, max_body_bytes, dashboard), on_serving)
    return SimulatedTraffic(pages, plane, host_suffix, max_body_bytes, max_stream_seconds, read_timeout)


def build_pages(plane: DataPlane, max_body_bytes: int, dashboard: DashboardAccess | None = None) -> Quart:
    """The Quart app for what addresses no session: the daemon's index page (the dashboard for a browser when
    it is on), /metrics, the dashboard's API, and the 404 page."""
    from quart import Quart, Response

    from simulatord.http_front.metrics import exposition

    app = Quart("simulatord")
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.url_map.strict_slashes = False

    if dashboard is not None:
        # Imported here, like Quart: a daemon nobody opens in a browser never loads the dashboard.
        from simulatord.http_front.dashboard import routes

        routes.add_routes(app, plane, dashboard)

    @app.get("/")
    async def index() -> dict[str, Any] | Response:
        if dashboard is not None and routes.wants_html():
            return routes.page()
        return {
            "service": "simulatord",
            "version": __version__,
            "sessions": len(plane.store),
            "how": "create a session over gRPC (simulatord.v1.SimulatorService) and send requests to its base_url",
        }

    @app.get("/metrics")
    async def metrics() -> Response:
        body, content_type = exposition(plane)
        return Response(body, content_type=content_type)

    @app.errorhandler(404)
    async def not_found(_: Exception) -> tuple[dict[str, str], int]:
        return {
            "error": "this request addresses no session",
            "reason": "NO_SESSION",
            "hint": "use a session's base_url (/tenants/{tenant}/sessions/{session}/...), "
            "its host name, or the x-simulatord-session header",
        }, 404

    return app


class OwnPages:
    """ASGI app behind the edge: answers the lifespan itself and serves HTTP and WebSocket scopes with the
    Quart app, which it builds (and starts, as Quart's own lifespan would) on the first one."""

    def __init__(self, build: Callable[[], Quart], on_serving: Callable[[], object] | None = None) -> None:
        self._build = build
        self._on_serving = on_serving
        self._quart: Quart | None = None
        self._building = asyncio.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the Quart app has been built (some request addressed no session)."""
        return self._quart is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        quart = self._quart if self._quart is not None else await self._load()
        await cast("ASGIApp", quart)(scope, receive, send)

    async def _load(self) -> Quart:
        async with self._building:  # concurrent first requests build it once
            if self._quart is None:
                # Quart takes a while to import: off the event loop, so sessions and gRPC are served meanwhile.
                await asyncio.to_thread(importlib.import_module, "quart")
                quart = self._build()
                await quart.startup()
                self._quart = quart
            return self._quart

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if self._on_serving is not None:
                        self._on_serving()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                else:
                    await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    async with self._building:
                        if self._quart is not None:  # stopped as Quart's own lifespan would stop it
                            await self._quart.shutdown()
                except Exception as exc:
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                return
