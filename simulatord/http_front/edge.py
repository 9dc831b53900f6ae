"""The ASGI edge for simulated traffic: freezes each request once, runs the pipeline, sends and records."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from simulatord.http_front import websocket
from simulatord.http_front.connection import AsgiWire
from simulatord.http_front.routing import Route, route
from simulatord.matching.request import HttpRequest
from simulatord.responding import pipeline
from simulatord.responding.delivery import deliver
from simulatord.responding.reply import Reply
from simulatord.sessions.service import Simulator
from simulatord.sessions.session import Selection

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


async def read_body(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks) if len(chunks) != 1 else chunks[0]


def _json_reply(status: int, payload: dict[str, Any]) -> Reply:
    return Reply(status, [("content-type", "application/json")], json.dumps(payload).encode())


class SimulatedTraffic:
    """ASGI middleware: requests that address a session are served here; everything else goes to Quart."""

    def __init__(
        self,
        inner: ASGIApp,
        simulator: Simulator,
        host_suffix: str,
        max_body_bytes: int,
        max_stream_seconds: float = 600.0,
    ) -> None:
        self.inner = inner
        self.simulator = simulator
        self.host_suffix = host_suffix
        self.max_body_bytes = max_body_bytes
        self.max_stream_seconds = max_stream_seconds  # bound on streams and hangs that do not end by themselves

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":  # WebSocket upgrades addressed to a session go to WebSocket stubs
                # uvicorn's websockets-sansio protocol keeps header names as the client cased them; routing,
                # matching and the journal expect them lower case, as ASGI asks and hypercorn delivers them.
                scope["headers"] = [(n.lower(), v) for n, v in scope["headers"]]
                target = route(scope["path"], scope["headers"], self.host_suffix)
                if target is not None:
                    await websocket.serve(self.simulator, target, scope, receive, send)
                    return
            await self.inner(scope, receive, send)
            return
        target = route(scope["path"], scope["headers"], self.host_suffix)
        if target is None:
            await self.inner(scope, receive, send)
            return
        await self.serve(target, scope, receive, send)

    async def serve(self, target: Route, scope: Scope, receive: Receive, send: Send) -> None:
        received = time.time()
        session = self.simulator.store.find(target.key)
        if session is None:
            await _send(
                send,
                _json_reply(
                    404,
                    {
                        "error": f"session {target.key.name} not found",
                        "reason": "SESSION_NOT_FOUND",
                    },
                ),
            )
            return
        try:
            body = await read_body(receive, self.max_body_bytes)
        except ClientGone:
            return
        except BodyTooLarge:
            reply = _json_reply(
                413,
                {
                    "error": f"request body exceeds the daemon's limit of {self.max_body_bytes} bytes",
                    "reason": "BODY_TOO_LARGE",
                },
            )
            request = self.freeze(target, scope, b"", received)
            await _send(send, reply)
            self.simulator.record(session, request, Selection(None, None, {}), reply, 0, "complete")
            return
        request = self.freeze(target, scope, body, received)
        plan = await pipeline.run(session, request)
        if plan.reply.shaping is None:
            end = await _send(send, plan.reply)
        else:  # programmed timing, faults or streams; plain replies never pay for them
            end = await deliver(plan.reply, AsgiWire(scope, receive, send, self.max_stream_seconds))
        self.simulator.record(session, request, plan.selection, plan.reply, len(body), end)

    @staticmethod
    def freeze(target: Route, scope: Scope, body: bytes, received: float) -> HttpRequest:
        return HttpRequest(
            method=scope["method"],
            path=target.path,
            query_string=scope["query_string"].decode("latin-1"),
            headers=tuple([(n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]]),
            body=body,
            receive_time=received,
            http_version=scope.get("http_version", "1.1"),
            routing=target.routing,
        )


async def _send(send: Send, reply: Reply) -> str:
    """Sends a reply; returns how it ended (complete or client_disconnected)."""
    stream = reply.stream
    try:
        await send({"type": "http.response.start", "status": reply.status, "headers": reply.asgi_headers()})
        if stream is None:
            await send({"type": "http.response.body", "body": reply.body})
            return "complete"
        sent = 0
        async for chunk in stream:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            sent += len(chunk)
            reply.events_sent += 1
        reply.notes["body_bytes_sent"] = sent
        await send({"type": "http.response.body", "body": b""})
        return "complete"
    except OSError:
        return "client_disconnected"
