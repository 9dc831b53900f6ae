"""The ASGI edge for simulated traffic: routes each request to its session, freezes it once, hands it to serving."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from simulatord.http_front.connection import AsgiWire
from simulatord.http_front.routing import Route, header_problem, route
from simulatord.http_front.websocket import AsgiSocket
from simulatord.matching.request import HttpRequest, Routing
from simulatord.responding.wire import send_plain
from simulatord.serving import DataPlane, answers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size  # bytes received before the limit was passed


class BodyTooSlow(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


class ClientGone(Exception):
    pass


class SlowBodies:
    """The bodies being read and when each must be complete. One task looks every so often and stops the reads
    past their deadline: a timer per request (asyncio.timeout) would cost the plain path a third of its time."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        # Time in ticks of the reaper: a read begun at tick t may run until tick t + `_ticks`.
        self._interval = min(1.0, timeout / 4)
        self._ticks = math.ceil(timeout / self._interval) + 1
        self._tick = 0
        self._deadlines: dict[asyncio.Task[Any], int] = {}
        self._stopped: set[asyncio.Task[Any]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reaper: asyncio.Task[None] | None = None

    def begin(self) -> asyncio.Task[Any]:
        """Starts the clock of the current task's read; returns the task, for `end`."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
            self._reaper = self._loop.create_task(self._reap())
        task = asyncio.current_task(self._loop)
        assert task is not None
        self._deadlines[task] = self._tick + self._ticks
        return task

    def stopped(self, task: asyncio.Task[Any]) -> bool:
        """Whether the task's cancellation was this reaper's, for its deadline; if so it is undone."""
        if task not in self._stopped:
            return False
        self._stopped.discard(task)
        task.uncancel()
        return True

    def end(self, task: asyncio.Task[Any]) -> None:
        self._deadlines.pop(task, None)
        self._stopped.discard(task)  # a read that ended as the reaper stopped it: its cancel was never seen

    async def _reap(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self._tick += 1
            for task, deadline in list(self._deadlines.items()):
                if deadline <= self._tick and task not in self._stopped:
                    self._stopped.add(task)
                    task.cancel()


async def read_body(receive: Receive, limit: int, slow: SlowBodies, announced: bool = True) -> bytes:
    """The whole body, within `limit` bytes and the daemon's read timeout (a trickling client holds a
    connection, and a few hundred of them every descriptor). A request that announces no body cannot trickle
    its end is already there, so its first message is read without the bookkeeping; should a body follow after
    all (HTTP/2 needs no header for one), the rest is read bounded like any other."""
    chunks: list[bytes] = []
    size = 0
    if not announced:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size = len(chunk)
        if size > limit:
            raise BodyTooLarge(size)
        if not message.get("more_body", False):
            return chunk  # type: ignore[no-any-return]
        chunks.append(chunk)
    task = slow.begin()
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(size)
                chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks) if len(chunks) != 1 else chunks[0]
    except asyncio.CancelledError:
        if slow.stopped(task):
            raise BodyTooSlow(size) from None
        raise
    finally:
        slow.end(task)


def freeze(target: Route, scope: Scope, body: bytes, received: float, method: str = "") -> HttpRequest:
    """The immutable record of one request: everything below the edge reads this, never the ASGI scope."""
    return HttpRequest(
        method=method or scope["method"],
        path=target.path,
        query_string=scope["query_string"].decode("latin-1"),
        headers=tuple([(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]]),
        body=body,
        receive_time=received,
        http_version=scope.get("http_version", "1.1"),
        routing=target.routing,
    )


class SimulatedTraffic:
    """ASGI middleware: requests that address a session are served here; everything else goes to Quart."""

    def __init__(
        self,
        inner: ASGIApp,
        plane: DataPlane,
        host_suffix: str,
        max_body_bytes: int,
        max_stream_seconds: float = 600.0,
        read_timeout: float = 30.0,
    ) -> None:
        self.inner = inner
        self.plane = plane
        self.host_suffix = host_suffix
        self.max_body_bytes = max_body_bytes
        self.max_stream_seconds = max_stream_seconds  # bound on streams and hangs that do not end by themselves
        self.read_timeout = read_timeout
        self.slow_bodies = SlowBodies(read_timeout)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "websocket":
            # uvicorn's websockets-sansio protocol keeps header names as the client cased them; routing,
            # matching and the journal expect them lower case, as ASGI asks and hypercorn delivers them.
            scope["headers"] = [(n.lower(), v) for n, v in scope["headers"]]
        target = (
            route(scope["path"], scope["headers"], self.host_suffix, scope.get("raw_path"))
            if kind in ("http", "websocket")
            else None
        )
        if target is None:
            problem = header_problem(scope["headers"]) if kind in ("http", "websocket") else None
            if problem is None:
                await self.inner(scope, receive, send)
            elif kind == "http":
                wire = AsgiWire(scope, receive, send, self.max_stream_seconds)
                await send_plain(answers.malformed_session_header(problem), wire)
            else:
                socket = AsgiSocket(scope, receive, send)
                if await socket.connected():
                    await socket.refuse(answers.malformed_session_header(problem))
        elif kind == "http":
            await self.serve(target, scope, receive, send)
        else:
            await self.websocket(target, scope, receive, send)

    async def serve(self, target: Route, scope: Scope, receive: Receive, send: Send) -> None:
        received = time.time()
        wire = AsgiWire(scope, receive, send, self.max_stream_seconds, self.plane.shutdown)
        session = self.plane.find(target.key)
        if session is None:
            owner = await self.plane.owner(target.key)
            session = self.plane.find(target.key)  # taken over from an owner that is gone, in `owner`
            if session is None:
                await self._elsewhere(owner, target, scope, receive, wire)
                return
        if target.ambiguous_framing:
            request = freeze(target, scope, b"", received)
            await self.plane.answer(session, request, answers.ambiguous_framing(), wire)
            return
        try:
            body = await read_body(receive, self.max_body_bytes, self.slow_bodies, target.announces_body)
        except ClientGone:
            return
        except BodyTooLarge as exc:
            request = freeze(target, scope, b"", received)
            reply = answers.body_too_large(self.max_body_bytes)
            await self.plane.answer(session, request, reply, wire, body_size=exc.size)
            return
        except BodyTooSlow as exc:
            request = freeze(target, scope, b"", received)
            reply = answers.body_too_slow(self.read_timeout)
            await self.plane.answer(session, request, reply, wire, body_size=exc.size)
            return
        await self.plane.http(session, freeze(target, scope, body, received), wire)

    async def _elsewhere(
        self, owner: str | None, target: Route, scope: Scope, receive: Receive, wire: AsgiWire
    ) -> None:
        """A request for a session this replica does not hold: relayed to the replica that owns it, if any.
        What the relay refuses itself (a body too large or too slow) is answered here and recorded nowhere."""
        if owner is None:
            await send_plain(answers.no_such_session(target.key), wire)
            return
        if target.ambiguous_framing:
            await send_plain(answers.ambiguous_framing(), wire)
            return
        try:
            body = await read_body(receive, self.max_body_bytes, self.slow_bodies, target.announces_body)
        except ClientGone:
            return
        except BodyTooLarge:
            await send_plain(answers.body_too_large(self.max_body_bytes), wire)
            return
        except BodyTooSlow:
            await send_plain(answers.body_too_slow(self.read_timeout), wire)
            return
        await self.plane.relay(owner, dict(scope), body, wire)

    async def websocket(self, target: Route, scope: Scope, receive: Receive, send: Send) -> None:
        received = time.time()
        socket = AsgiSocket(scope, receive, send)
        if not await socket.connected():
            return
        session = self.plane.find(target.key)
        owner = await self.plane.owner(target.key) if session is None else None
        session = session or self.plane.find(target.key)
        if session is None:
            if owner is None:
                await socket.refuse(answers.no_such_session(target.key))
            else:
                named = target.key.name if target.routing is Routing.HOST else None
                await self.plane.relay_websocket(owner, dict(scope), socket, named)
            return
        await self.plane.websocket(session, freeze(target, scope, b"", received, method="GET"), socket)
