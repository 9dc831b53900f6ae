"""WebSocket traffic of a session: the upgrade through the same pipeline as HTTP, then the conversation of a
WebSocket stub (messages on connect, rules answering incoming messages, control-plane pushes), every frame
recorded. The front end adapts its server's WebSocket to `Socket`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from simulatord.matching.request import HttpRequest
from simulatord.responding import behaviour, templating
from simulatord.responding.reply import Reply
from simulatord.responding.websocket import Conversation, OutMessage
from simulatord.responding.wire import End
from simulatord.serving import answers, chain
from simulatord.serving.recording import frame_request, record, record_frame
from simulatord.sessions.connections import Connection, Push
from simulatord.sessions.journal import Direction, ExchangeKind, Frame
from simulatord.sessions.session import Session
from simulatord.sessions.stubs import Stub

log = logging.getLogger(__name__)

# Headers the WebSocket handshake owns; a stub's response headers must not repeat them on the 101.
HANDSHAKE_HEADERS = frozenset(
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
ACCEPTING = (101, 200)  # a stub's status that accepts the upgrade; anything else refuses it with that answer


@dataclass(frozen=True)
class Incoming:
    """One event from the client: a text or binary message, or the connection ending (`closed`)."""

    text: str | None = None
    data: bytes | None = None
    closed: bool = False
    code: int = 1005
    reason: str = ""


class Socket(Protocol):
    """A WebSocket as the front end's server offers it, from the upgrade request on."""

    async def accept(self, subprotocol: str | None, headers: Sequence[tuple[str, str]]) -> None: ...

    async def refuse(self, reply: Reply) -> None:
        """Answers the upgrade with an ordinary HTTP response (or the nearest the server can do)."""

    async def receive(self) -> Incoming: ...

    async def send_text(self, text: str) -> None: ...

    async def send_bytes(self, data: bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


async def serve(session: Session, request: HttpRequest, socket: Socket, clock: Callable[[], float]) -> None:
    selection = session.select(request, websocket=True)
    stub, spec = selection.stub, selection.response
    if stub is None or spec is None or stub.websocket is None:
        reply = answers.unmatched(session.key, session.unmatched_status, request, selection.near_misses)
        await socket.refuse(reply)
        record(session, request, reply, clock(), near_misses=selection.near_misses, kind=ExchangeKind.WEBSOCKET_UPGRADE)
        return
    conversation = stub.websocket

    async def accept_or_refuse(reply: Reply) -> End:
        if reply.status not in ACCEPTING:  # the stub refuses the upgrade with an ordinary HTTP answer
            await socket.refuse(reply)
            return End.COMPLETE
        headers = [(n, v) for n, v in reply.headers if n.lower() not in HANDSHAKE_HEADERS]
        await socket.accept(conversation.subprotocol or None, headers)
        reply.status, reply.headers, reply.body = 101, headers, b""
        return End.COMPLETE

    reply = spec.render()
    ran: list[str] = []
    if spec.behaviours:
        context = chain.context(session, request, selection, stub, None, accept_or_refuse)
        _, reply = await behaviour.run(spec.behaviours, reply, context)
        ran = context.ran
    else:
        await accept_or_refuse(reply)
    upgrade = record(
        session, request, reply, clock(), stub_name=stub.name, behaviours=ran, kind=ExchangeKind.WEBSOCKET_UPGRADE
    )
    if reply.status == 101:
        connection = Connection(upgrade.sequence, stub.name, request, dict(selection.captures), stub.match_count)
        await Conversing(session, stub, conversation, connection, socket, clock).run()


class Conversing:
    """One open connection: a reader answering incoming messages and a writer draining the outbox, in order."""

    def __init__(
        self,
        session: Session,
        stub: Stub,
        conversation: Conversation,
        connection: Connection,
        socket: Socket,
        clock: Callable[[], float],
    ) -> None:
        self.session = session
        self.stub = stub
        self.conversation = conversation
        self.connection = connection
        self.socket = socket
        self.clock = clock
        self.frame_request = frame_request(connection.request)

    def record(self, frame: Frame) -> None:
        record_frame(self.session, self.frame_request, self.stub.name, frame, self.clock())

    async def run(self) -> None:
        outbox = self.connection.outbox
        for message in self.conversation.on_connect:
            outbox.put_nowait(Push(message, None, origin="on_connect"))
        if self.conversation.close_after_connect is not None:
            outbox.put_nowait(Push(None, self.conversation.close_after_connect, origin="close_after_connect"))
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
            incoming = await self.socket.receive()
            if incoming.closed:
                self.record(
                    Frame(self.connection.id, Direction.INBOUND, close_code=incoming.code, close_reason=incoming.reason)
                )
                return
            payload = incoming.data if incoming.data is not None else (incoming.text or "").encode()
            if incoming.text is not None:
                self.record(Frame(self.connection.id, Direction.INBOUND, text=incoming.text, size=len(payload)))
            else:
                self.record(Frame(self.connection.id, Direction.INBOUND, binary=payload, size=len(payload)))
            self.answer(incoming.text, payload)

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
                    self.connection.outbox.put_nowait(Push(reply, None, origin, message))
                if rule.close is not None:
                    self.connection.outbox.put_nowait(Push(None, rule.close, origin))
                return

    async def write(self) -> None:
        outbox = self.connection.outbox
        while True:
            push = await outbox.get()
            if push.message is not None:
                await self.send_message(push.message, push)
            if push.close is not None:
                if push.close.delay > 0:
                    await asyncio.sleep(push.close.delay)
                await self.socket.close(push.close.code, push.close.reason)
                close = push.close
                self.record(
                    Frame(
                        self.connection.id,
                        Direction.OUTBOUND,
                        close_code=close.code,
                        close_reason=close.reason,
                        origin=push.origin,
                    )
                )
                return

    async def send_message(self, message: OutMessage, push: Push) -> None:
        if message.delay > 0:
            await asyncio.sleep(message.delay)
        if message.binary is not None:
            await self.socket.send_bytes(message.binary)
            self.record(
                Frame(
                    self.connection.id,
                    Direction.OUTBOUND,
                    binary=message.binary,
                    size=len(message.binary),
                    origin=push.origin,
                )
            )
            return
        text = await self.render(message, push) if message.templated else message.text or ""
        await self.socket.send_text(text)
        self.record(
            Frame(self.connection.id, Direction.OUTBOUND, text=text, size=len(text.encode()), origin=push.origin)
        )

    async def render(self, message: OutMessage, push: Push) -> str:
        connection = self.connection
        values = templating.variables(
            connection.request,
            connection.captures,
            connection.match,
            connection.id,
            self.session.state_of(self.stub.scenario),
            None,
            self.clock(),
            message=push.incoming,
        )
        return await templating.render_message(message.text_template, message.json_template, values)
