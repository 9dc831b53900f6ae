"""The raw connection under an ASGI request, reached through the server's objects, for faults ASGI cannot express.

ASGI has no message for "reset the connection" or "write bytes that are not HTTP", and neither server puts
the socket or the transport in the scope. hypercorn hands the application its HTTPStream's bound
`app_send`, and from there the chain HTTPStream -> protocol (H11Protocol or H2Protocol) -> TCPServer ->
StreamWriter -> transport is plain attributes (hypercorn 0.17-0.18). uvicorn hands it the bound `send` of
its RequestResponseCycle, which holds the transport (uvicorn 0.30-0.54, httptools and h11 protocols).
Only fault paths walk these; the service tests pin them down under both servers, and if an upgrade breaks
one the fault fails loudly instead of silently answering something else.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from simulatord.responding.wire import NoRawConnection, Shutdown

_FLUSH_TIMEOUT = 2.0
_LINGER_SECONDS = 1.0
# SO_LINGER on with a zero timeout: close() discards unsent data and sends RST instead of FIN.
_LINGER_ABORT = struct.pack("ii", 1, 0)


class RawConnection:
    """One request's connection: raw writes, flush, orderly close and reset."""

    def __init__(self, transport: Any, protocol: Any, stream_id: int, cycle: Any = None) -> None:
        self.transport = transport
        self.protocol = protocol
        self.stream_id = stream_id
        self.cycle = cycle  # uvicorn's RequestResponseCycle; None under hypercorn

    @classmethod
    def of(cls, send: Callable[..., Awaitable[None]]) -> RawConnection:
        owner = getattr(send, "__self__", None)
        if owner is not None and hasattr(owner, "flow") and hasattr(owner, "transport"):  # uvicorn
            return cls(owner.transport, None, 0, owner)
        try:
            stream = send.__self__  # type: ignore[attr-defined]  # hypercorn's HTTPStream
            protocol = stream.send.__self__  # H11Protocol or H2Protocol
            server = protocol.send.__self__  # TCPServer
            transport = server.writer.transport
            stream_id = stream.stream_id
        except AttributeError as exc:
            raise NoRawConnection(f"the HTTP server does not expose its connections to faults: {exc}") from exc
        return cls(transport, protocol, stream_id)

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    async def flush(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _FLUSH_TIMEOUT
        # HTTP/2: hypercorn queues DATA per stream and a sender task frames it, so wait for that queue first.
        buffer = getattr(self.protocol, "stream_buffers", {}).get(self.stream_id)
        if buffer is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(buffer.drain(), _FLUSH_TIMEOUT)
        await asyncio.sleep(0)  # let a writer woken by the drain hand its frame to the transport
        # Transports signal "below the high-water mark", never "empty", so this polls (fault paths only).
        while self.transport.get_write_buffer_size() and not self.transport.is_closing():
            if loop.time() > deadline:
                break
            await asyncio.sleep(0.005)

    def _abandon(self) -> None:
        # uvicorn answers an application that returns without a complete response: a 500, or a close of its
        # own. The connection is the fault's now, so tell the cycle the client is gone and it stays quiet.
        if self.cycle is not None:
            self.cycle.disconnected = True

    def close(self) -> None:
        self._abandon()
        # FIN first: close() alone sends RST when bytes from the peer are still unread (RFC 1122 4.2.2.13),
        # which happens with HTTP/2, whose clients keep sending WINDOW_UPDATE and SETTINGS acknowledgements.
        if not self.transport.can_write_eof():  # TLS: close() sends close_notify, then closes
            self.transport.close()
            return
        with contextlib.suppress(OSError, RuntimeError):
            self.transport.write_eof()
        # A lingering close, as Apache httpd does: the socket stays readable for a moment so the peer's
        # last frames are consumed and the FIN is not overtaken by a RST. hypercorn may close sooner.
        asyncio.get_running_loop().call_later(_LINGER_SECONDS, self.transport.close)

    async def reset(self) -> None:
        self._abandon()
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ABORT)
        # abort() closes without write_eof, whose FIN would precede the RST and read as a clean EOF. The
        # socket itself is closed by a callback the loop runs next; yielding lets it run before hypercorn,
        # seeing the application return, shuts the socket down (uvloop would send that FIN first).
        self.transport.abort()
        await asyncio.sleep(0)
        await asyncio.sleep(0)


class AsgiWire:
    """The Wire a reply is delivered over: ASGI send and receive themselves, and the raw connection on demand."""

    __slots__ = ("http_version", "max_seconds", "receive", "send", "shutdown")

    def __init__(
        self,
        scope: Mapping[str, Any],
        receive: Callable[[], Awaitable[MutableMapping[str, Any]]],
        send: Callable[[MutableMapping[str, Any]], Awaitable[None]],
        max_seconds: float,
        shutdown: Shutdown | None = None,
    ) -> None:
        self.http_version = str(scope.get("http_version", "1.1"))
        self.max_seconds = max_seconds
        self.receive = receive
        self.send = send
        self.shutdown = shutdown

    def connection(self) -> RawConnection:
        return RawConnection.of(self.send)
