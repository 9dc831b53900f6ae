"""The ASGI edge for simulated traffic: routes each request to its session, freezes it once, hands it to serving."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from simulatord.http_front.connection import AsgiWire
from simulatord.http_front.routing import Route, route
from simulatord.http_front.websocket import AsgiSocket
from simulatord.matching.request import HttpRequest
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


async def read_body(receive: Receive, limit: int, timeout: float) -> bytes:
    """The whole body, within `limit` bytes and `timeout` seconds (a trickling client holds a connection)."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout):
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
    except TimeoutError:
        raise BodyTooSlow(size) from None


def _smuggling(headers: list[tuple[bytes, bytes]]) -> bool:
    """Both Content-Length and Transfer-Encoding: RFC 9112 6.3 says to treat it as an error and close."""
    names = {name for name, _ in headers}
    return b"content-length" in names and b"transfer-encoding" in names


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
            await self.inner(scope, receive, send)
        elif kind == "http":
            await self.serve(target, scope, receive, send)
        else:
            await self.websocket(target, scope, receive, send)

    async def serve(self, target: Route, scope: Scope, receive: Receive, send: Send) -> None:
        received = time.time()
        wire = AsgiWire(scope, receive, send, self.max_stream_seconds, self.plane.shutdown)
        session = self.plane.find(target.key)
        if session is None:
            await send_plain(answers.no_such_session(target.key), wire)
            return
        if _smuggling(scope["headers"]):
            request = freeze(target, scope, b"", received)
            await self.plane.answer(session, request, answers.ambiguous_framing(), wire)
            return
        try:
            body = await read_body(receive, self.max_body_bytes, self.read_timeout)
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

    async def websocket(self, target: Route, scope: Scope, receive: Receive, send: Send) -> None:
        received = time.time()
        socket = AsgiSocket(scope, receive, send)
        if not await socket.connected():
            return
        session = self.plane.find(target.key)
        if session is None:
            await socket.refuse(answers.no_such_session(target.key))
            return
        await self.plane.websocket(session, freeze(target, scope, b"", received, method="GET"), socket)
