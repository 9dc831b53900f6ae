"""The daemon's own pages: a Quart app loaded on first need, so that start-up and session traffic never load it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from simulatord.http_front.app import OwnPages, build_pages
from simulatord.serving import DataPlane
from simulatord.sessions.store import MemoryStore
from tests.helpers import SERVER

# Modules only some daemons need: the Quart stack for its own pages, Jinja for response templates, JSONPath for
# body matchers, and gRPC reflection and rich error details. None of them may be imported by starting the daemon.
LAZY = (
    "quart",
    "flask",
    "werkzeug",
    "jinja2",
    "jsonpath",
    "re2",
    "grpc_reflection.v1alpha.reflection",
    "grpc_status.rpc_status",
)


def _plane() -> DataPlane:
    return DataPlane(MemoryStore())


def _http_scope(path: str = "/") -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "state": {},
        "extensions": {},
    }


async def _get(app: Any, path: str = "/") -> tuple[int, dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # no disconnect while the app answers
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_http_scope(path), receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, json.loads(body)


async def _lifespan(app: Any, *events: str) -> list[str]:
    incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for event in events:
        incoming.put_nowait({"type": event})
    answers: list[str] = []

    async def send(message: dict[str, Any]) -> None:
        answers.append(message["type"])

    await asyncio.wait_for(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, incoming.get, send), 5)
    return answers


async def _serve_until_ready(server_name: str) -> None:
    from simulatord import server
    from simulatord.config import Settings

    stop = asyncio.Event()
    settings = Settings(http_port=0, grpc_port=0, server=server_name)
    await asyncio.wait_for(server.run(settings, on_ready=lambda _: stop.set(), stop=stop), 30)


def test_starting_the_daemon_loads_none_of_the_modules_only_some_daemons_need() -> None:
    script = f"""
import asyncio, sys
from tests.unit.test_own_pages import LAZY, _serve_until_ready
asyncio.run(_serve_until_ready({SERVER!r}))
print(sorted(m for m in LAZY if m in sys.modules))
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=False, cwd=root)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_lifespan_startup_tells_the_daemon_it_is_serving_without_loading_quart() -> None:
    started: list[int] = []
    pages = OwnPages(lambda: build_pages(_plane(), 1000), on_serving=lambda: started.append(1))
    answers = asyncio.run(_lifespan(pages, "lifespan.startup", "lifespan.shutdown"))
    assert answers == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    assert started == [1] and not pages.loaded


def test_the_first_page_request_builds_quart_once_and_later_ones_reuse_it() -> None:
    plane = _plane()
    builds: list[object] = []

    def build() -> Any:
        builds.append(1)
        return build_pages(plane, 1000)

    async def scenario() -> None:
        pages = OwnPages(build)
        assert not pages.loaded
        (status, index), (missing, _) = await asyncio.gather(_get(pages, "/"), _get(pages, "/nowhere"))
        assert pages.loaded and len(builds) == 1
        assert status == 200 and index["service"] == "simulatord" and index["sessions"] == 0
        assert missing == 404
        assert (await _get(pages, "/"))[0] == 200 and len(builds) == 1
        assert await _lifespan(pages, "lifespan.startup", "lifespan.shutdown") == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]

    asyncio.run(scenario())


def test_a_failing_serving_callback_fails_the_lifespan_startup() -> None:
    def broken() -> None:
        raise RuntimeError("no")

    answers = asyncio.run(_lifespan(OwnPages(lambda: build_pages(_plane(), 1000), broken), "lifespan.startup"))
    assert answers == ["lifespan.startup.failed"]
