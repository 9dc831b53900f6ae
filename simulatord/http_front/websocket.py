"""Serves WebSocket upgrades addressed to a session: selects a WebSocket stub, converses, records every frame."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from simulatord.http_front.routing import Route
from simulatord.matching.request import HttpRequest
from simulatord.responding import pipeline, templating
from simulatord.responding.reply import Reply, encode_headers
from simulatord.sessions import websockets as ws
from simulatord.sessions.service import Simulator
from simulatord.sessions.session import Session
from simulatord.sessions.stubs import Stub

log = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# Headers the WebSocket handshake owns; a stub's response headers must not repeat them on the 101.
_HANDSHAKE_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "connection",
        "upgrade",
        "sec-websocket-accept",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "transfer-encoding",
    }
)


def freeze(target: Route, scope: Scope, received: float) -> HttpRequest:
    return HttpRequest(
        method="GET",
        path=target.path,
        query_string=scope.get("query_string", b"").decode("latin-1"),
        headers=tuple((n.decode("latin-1"), v.decode("latin-1")) for n, v in scope["headers"]),
        body=b"",
        receive_time=received,
        http_version=scope.get("http_version", "1.1"),
        routing=target.routing,
    )


async def _reject(scope: Scope, send: Send, reply: Reply) -> None:
    """Answers the upgrade with an HTTP response when the server can (ASGI extension), else a plain 403."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {"type": "websocket.http.response.start", "status": reply.status, "headers": encode_headers(reply.headers)}
        )
        await send({"type": "websocket.http.response.body", "body": reply.body})
    else:
        await send({"type": "websocket.close", "code": 1008})


async def serve(simulator: Simulator, target: Route, scope: Scope, receive: Receive, send: Send) -> None:
    received = time.time()
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    session = simulator.store.find(target.key)
    if session is None:
        body = {"error": f"session {target.key.name} not found", "reason": "SESSION_NOT_FOUND"}
        await _reject(scope, send, Reply(404, [("content-type", "application/json")], json.dumps(body).encode()))
        return
    request = freeze(target, scope, received)
    selection = session.select(request, websocket=True)
    stub = selection.stub
    if stub is None or selection.response is None:
        reply = pipeline.render_miss(session, request, selection.near_misses)
        await _reject(scope, send, reply)
        ws.record_upgrade(
            session, request, "", selection.near_misses, reply.status, reply.headers, len(reply.body), time.time()
        )
        return
    spec = selection.response
    reply = pipeline.render(spec)
    if spec.template is not None:
        reply = spec.template.render_reply(
            reply,
            request,
            selection.captures,
            stub.match_count,
            session.journal.next_sequence,
            session.state_of(stub.scenario),
        )
    if selection.rate is not None:
        reply = selection.rate.apply(reply)
    if reply.delay > 0:
        await asyncio.sleep(reply.delay)
    if reply.status not in (101, 200):  # the stub refuses the upgrade with an ordinary HTTP answer
        await _reject(scope, send, reply)
        ws.record_upgrade(session, request, stub.name, (), reply.status, reply.headers, len(reply.body), time.time())
        return
    conversation: ws.Conversation = stub.websocket
    headers = [(n, v) for n, v in reply.headers if n.lower() not in _HANDSHAKE_HEADERS]
    await send(
        {
            "type": "websocket.accept",
            "subprotocol": conversation.subprotocol or None,
            "headers": [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers],
        }
    )
    upgrade = ws.record_upgrade(session, request, stub.name, (), 101, headers, 0, time.time())
    connection = ws.Connection(upgrade.sequence, stub.name, request, dict(selection.captures), stub.match_count)
    await Conversing(session, stub, conversation, connection, receive, send).run()


class Conversing:
    """One open connection: a reader answering incoming messages and a writer draining the outbox, in order."""

    def __init__(
        self,
        session: Session,
        stub: Stub,
        conversation: ws.Conversation,
        connection: ws.Connection,
        receive: Receive,
        send: Send,
    ) -> None:
        self.session = session
        self.stub = stub
        self.conversation = conversation
        self.connection = connection
        self.receive = receive
        self.send = send
        self.frame_request = ws.frame_request(connection.request)

    def record(self, frame: ws.Frame) -> None:
        ws.record_frame(self.session, self.frame_request, self.stub.name, frame, time.time())

    async def run(self) -> None:
        outbox = self.connection.outbox
        for message in self.conversation.on_connect:
            outbox.put_nowait(ws.Push(message, None, origin="on_connect"))
        if self.conversation.close_after_connect is not None:
            outbox.put_nowait(ws.Push(None, self.conversation.close_after_connect, origin="close_after_connect"))
        self.session.connections.add(self.connection)
        reader = asyncio.create_task(self.read())
        writer = asyncio.create_task(self.write())
        try:
            done, _ = await asyncio.wait([reader, writer], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    log.error("WebSocket connection %s failed", self.connection.id, exc_info=task.exception())
        finally:
            self.session.connections.remove(self.connection)
            for task in (reader, writer):
                task.cancel()
            for task in (reader, writer):
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def read(self) -> None:
        while True:
            message = await self.receive()
            if message["type"] == "websocket.disconnect":
                code = int(message.get("code", 1005))
                reason = str(message.get("reason") or "")
                self.record(ws.Frame(self.connection.id, "inbound", close_code=code, close_reason=reason))
                return
            if message["type"] != "websocket.receive":
                continue
            text, data = message.get("text"), message.get("bytes")
            payload = data if data is not None else (text or "").encode()
            if text is not None:
                self.record(ws.Frame(self.connection.id, "inbound", text=text, size=len(payload)))
            else:
                self.record(ws.Frame(self.connection.id, "inbound", binary=bytes(payload), size=len(payload)))
            self.answer(text, bytes(payload))

    def answer(self, text: str | None, payload: bytes) -> None:
        """Queues the replies of the first rule matching this message (rules see it as a request body)."""
        as_body = HttpRequest(method="GET", path=self.connection.request.path, body=payload)
        for index, rule in enumerate(self.conversation.rules):
            if rule.matches(as_body):
                origin = f"rules[{index}]"
                message = {
                    "text": text if text is not None else as_body.text,
                    "json": as_body.json() if as_body.has_json else None,
                }
                for reply in rule.replies:
                    self.connection.outbox.put_nowait(ws.Push(reply, None, origin, message))
                if rule.close is not None:
                    self.connection.outbox.put_nowait(ws.Push(None, rule.close, origin))
                return

    async def write(self) -> None:
        outbox = self.connection.outbox
        while True:
            push = await outbox.get()
            if push.message is not None:
                await self.send_message(push)
            if push.close is not None:
                if push.close.delay > 0:
                    await asyncio.sleep(push.close.delay)
                await self.send({"type": "websocket.close", "code": push.close.code, "reason": push.close.reason})
                self.record(
                    ws.Frame(
                        self.connection.id,
                        "outbound",
                        close_code=push.close.code,
                        close_reason=push.close.reason,
                        origin=push.origin,
                    )
                )
                return

    async def send_message(self, push: ws.Push) -> None:
        message = push.message
        assert message is not None
        if message.delay > 0:
            await asyncio.sleep(message.delay)
        text = message.text
        if message.text_template is not None or message.json_template is not None:
            text = self.render(message, push.incoming)
        if message.binary is not None:
            await self.send({"type": "websocket.send", "bytes": message.binary})
            self.record(
                ws.Frame(
                    self.connection.id, "outbound", binary=message.binary, size=len(message.binary), origin=push.origin
                )
            )
            return
        text = text or ""
        await self.send({"type": "websocket.send", "text": text})
        self.record(ws.Frame(self.connection.id, "outbound", text=text, size=len(text.encode()), origin=push.origin))

    def render(self, message: ws.OutMessage, incoming: dict[str, Any] | None) -> str:
        connection = self.connection
        values = templating.context(
            connection.request,
            connection.captures,
            connection.match,
            connection.id,
            self.session.state_of(self.stub.scenario),
            None,
            time.time(),
            message=incoming,
        )
        try:
            if message.json_template is not None:
                return message.json_template.render_bytes(values).decode()
            return str(message.text_template.render(values))
        except Exception as exc:  # a template is user code: say what failed instead of dropping the message
            return json.dumps(
                {"error": f"message template failed: {type(exc).__name__}: {exc}", "reason": "TEMPLATE_ERROR"}
            )
