"""What replies need from the HTTP edge (ASGI send and receive, the raw connection) and a sender that counts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from simulatord.responding.reply import encode_headers

if TYPE_CHECKING:
    from simulatord.responding.reply import Reply
    from simulatord.responding.timing import Dribble

log = logging.getLogger(__name__)


class End(StrEnum):
    """How a response ended, as the journal records it."""

    COMPLETE = "complete"
    CLIENT_DISCONNECTED = "client_disconnected"
    ABORTED = "aborted"  # on purpose: a programmed fault


class NoRawConnection(RuntimeError):
    """The HTTP server does not let faults reach the connection (e.g. an unknown hypercorn version)."""


class Connection(Protocol):
    """The raw connection under a request, for faults that HTTP framing cannot express."""

    def write(self, data: bytes) -> None:
        """Writes bytes as they are, bypassing HTTP framing."""

    async def flush(self) -> None:
        """Returns once everything sent so far has been handed to the operating system."""

    def close(self) -> None:
        """Closes the connection in order (FIN)."""

    async def reset(self) -> None:
        """Aborts the connection with a TCP reset (RST); returns once the socket is gone."""


class Shutdown:
    """Tells the deliveries in progress that the daemon is stopping, so that their waits and streams end now
    (answered 503 if nothing was sent yet) instead of being cut off by the server unrecorded."""

    def __init__(self) -> None:
        self.stopping = False
        self._waiting: set[Out] = set()

    def begin(self) -> None:
        self.stopping = True
        for out in list(self._waiting):
            out._wake.set()

    def watch(self, out: Out) -> None:
        self._waiting.add(out)

    def forget(self, out: Out) -> None:
        self._waiting.discard(out)


class Wire(Protocol):
    """The edge's side of one request: ASGI send and receive, the raw connection, the daemon's stream bound."""

    http_version: str
    max_seconds: float  # no stream or hang lasts longer than this
    shutdown: Shutdown | None
    send: Callable[[MutableMapping[str, Any]], Awaitable[None]]
    receive: Callable[[], Awaitable[MutableMapping[str, Any]]]

    def connection(self) -> Connection:
        """The raw connection; raises NoRawConnection when the server does not expose it."""
        ...


async def send_plain(reply: Reply, wire: Wire) -> End:
    """Sends a complete reply in two ASGI messages: the plain path, taken by every reply nothing shapes."""
    try:
        await wire.send({"type": "http.response.start", "status": reply.status, "headers": reply.asgi_headers()})
        await wire.send({"type": "http.response.body", "body": reply.body})
    except OSError:
        return End.CLIENT_DISCONNECTED
    return End.COMPLETE


class Out:
    """Sends one reply piece by piece over a wire, watching for the client leaving, and counts what was sent."""

    def __init__(self, wire: Wire) -> None:
        self.wire = wire
        self.max_seconds = wire.max_seconds
        self.started = False
        self.bytes = 0
        self.events = 0
        self.gone = False
        self._wake = asyncio.Event()  # set when the client leaves or the daemon stops
        self._shutdown = wire.shutdown
        if self._shutdown is not None:
            self._shutdown.watch(self)
        # The request body has been read to its end, so the next ASGI message can only be
        # http.disconnect: a task waits for it while we sleep and send.
        self._watcher = asyncio.ensure_future(self._watch())

    async def _watch(self) -> None:
        while True:
            message = await self.wire.receive()
            if message.get("type") == "http.disconnect":
                self.gone = True
                self._wake.set()
                return

    @property
    def stopping(self) -> bool:
        return self._shutdown is not None and self._shutdown.stopping

    async def sleep(self, seconds: float) -> bool:
        """Waits; False as soon as the client disconnects or the daemon stops (see `interrupted`)."""
        if seconds > 0 and not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), seconds)
        return not self._wake.is_set()

    async def interrupted(self, reply: Reply) -> End:
        """How a delivery ends when a wait was cut short: the client left, or the daemon is stopping, which is
        answered with a 503 when nothing was sent yet and otherwise by closing the connection."""
        if self.gone:
            return End.CLIENT_DISCONNECTED
        message = "the daemon stopped before this response was complete"
        if not self.started:
            headers = [("retry-after", "1"), ("connection", "close")]
            return await self.whole(reply.explain(503, "DAEMON_STOPPING", message, headers))
        reply.error = message
        with contextlib.suppress(NoRawConnection):
            self.connection().close()
        return End.ABORTED

    async def start(self, reply: Reply, content_length: int | None) -> None:
        """Sends the status line and headers; without a Content-Length HTTP/1.1 uses chunked coding."""
        headers = [(n, v) for n, v in encode_headers(reply.headers) if n != b"content-length"]
        if content_length is not None:
            headers.append((b"content-length", str(content_length).encode()))
        await self.wire.send({"type": "http.response.start", "status": reply.status, "headers": headers})
        self.started = True

    async def body(self, data: bytes) -> None:
        if data:
            await self.wire.send({"type": "http.response.body", "body": data, "more_body": True})
            self.bytes += len(data)

    async def send_body(self, data: bytes, dribble: Dribble | None) -> bool:
        """Sends body bytes, slowly when dribbled; False when the client left on the way."""
        if dribble is None:
            await self.body(data)
            return not self._wake.is_set()
        pause, parts = dribble.pieces(data)
        for part in parts:
            if not await self.sleep(pause):
                return False
            await self.body(part)
        return not self._wake.is_set()

    async def end(self) -> None:
        await self.wire.send({"type": "http.response.body", "body": b"", "more_body": False})

    async def whole(self, reply: Reply) -> End:
        """Sends a complete reply (after a wait that needed the watcher, say)."""
        await self.start(reply, len(reply.body))
        await self.body(reply.body)
        if self.gone:
            return End.CLIENT_DISCONNECTED
        await self.end()
        return End.COMPLETE

    def connection(self) -> Connection:
        return self.wire.connection()

    def close(self, reply: Reply) -> None:
        """Stops the watcher and leaves in `reply` the journal's view of it: what was actually sent."""
        self._watcher.cancel()
        if self._shutdown is not None:
            self._shutdown.forget(self)
        reply.sent_bytes = self.bytes
        reply.events_sent = self.events
        if not self.started:  # no status line left: the journal records status 0 and no headers
            reply.status = 0
            reply.headers = []


async def unsupported(out: Out, reply: Reply, exc: NoRawConnection) -> End:
    """Says loudly that a fault cannot be performed here, rather than answer something nobody programmed."""
    log.error("cannot perform a fault: %s", exc)
    message = f"the fault could not be performed: {exc}"
    if out.started:
        reply.error = message
        return End.ABORTED
    return await out.whole(reply.explain(500, "FAULT_UNSUPPORTED", message))
