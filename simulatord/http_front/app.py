"""Builds the Quart application: simulated traffic at its ASGI edge, the daemon's own pages as Quart views."""

from __future__ import annotations

from typing import Any

from quart import Quart

from simulatord import __version__
from simulatord.http_front.edge import SimulatedTraffic
from simulatord.sessions.service import Simulator


def create_app(simulator: Simulator, host_suffix: str, max_body_bytes: int, max_stream_seconds: float = 600.0) -> Quart:
    app = Quart("simulatord")
    app.config["MAX_CONTENT_LENGTH"] = max_body_bytes
    app.url_map.strict_slashes = False

    @app.get("/")
    async def index() -> dict[str, Any]:
        return {
            "service": "simulatord",
            "version": __version__,
            "sessions": len(simulator.store),
            "how": "create a session over gRPC (simulatord.v1.SimulatorService) and send requests to its base_url",
        }

    @app.errorhandler(404)
    async def not_found(_: Exception) -> tuple[dict[str, str], int]:
        return {
            "error": "this request addresses no session",
            "reason": "NO_SESSION",
            "hint": "use a session's base_url (/tenants/{tenant}/sessions/{session}/...), "
            "its host name, or the x-simulatord-session header",
        }, 404

    app.asgi_app = SimulatedTraffic(app.asgi_app, simulator, host_suffix, max_body_bytes, max_stream_seconds)  # type: ignore[assignment, arg-type]
    return app
