"""Runs a response's behaviour chain as pure code: a wire that keeps what the chain sent, no server."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from simulatord.matching.request import HttpRequest
from simulatord.responding import behaviour
from simulatord.responding.behaviour import Context
from simulatord.responding.ratelimit import RateDecision
from simulatord.responding.reply import Reply, ResponseSpec
from simulatord.responding.wire import End, NoRawConnection, Shutdown, send_plain


@dataclass
class MemoryConnection:
    """The raw connection under a MemoryWire: keeps the bytes written around HTTP framing and how it ended."""

    written: list[bytes] = field(default_factory=list)
    ended: str = ""  # "", "close" or "reset"

    def write(self, data: bytes) -> None:
        self.written.append(data)

    async def flush(self) -> None:
        pass

    def close(self) -> None:
        self.ended = "close"

    async def reset(self) -> None:
        self.ended = "reset"


@dataclass
class MemoryWire:
    """An ASGI peer in memory: `sent` keeps every message; the client never leaves unless `gone` is set.
    Without a `raw` connection it behaves like a server that exposes none (faults answer FAULT_UNSUPPORTED)."""

    http_version: str = "1.1"
    max_seconds: float = 5.0
    sent: list[MutableMapping[str, Any]] = field(default_factory=list)
    gone: asyncio.Event = field(default_factory=asyncio.Event)
    raw: MemoryConnection | None = None
    shutdown: Shutdown | None = None

    async def send(self, message: MutableMapping[str, Any]) -> None:
        self.sent.append(message)

    async def receive(self) -> MutableMapping[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    def connection(self) -> MemoryConnection:
        if self.raw is None:
            raise NoRawConnection("this MemoryWire has no raw connection")
        return self.raw

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.sent if m["type"] == "http.response.body")

    @property
    def status(self) -> int:
        return int(next(m["status"] for m in self.sent if m["type"] == "http.response.start"))

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(next(m["headers"] for m in self.sent if m["type"] == "http.response.start"))

    @property
    def pieces(self) -> list[bytes]:
        """The body messages that carried bytes, one per write."""
        return [m["body"] for m in self.sent if m["type"] == "http.response.body" and m.get("body")]


@dataclass
class Served:
    end: End
    reply: Reply
    ran: list[str]
    wire: MemoryWire


REQUEST = HttpRequest(method="GET", path="/")


def serve(
    spec: ResponseSpec,
    request: HttpRequest = REQUEST,
    *,
    captures: Mapping[str, str] | None = None,
    match: int = 1,
    sequence: int = 1,
    state: str = "",
    rate: RateDecision | None = None,
    wire: MemoryWire | None = None,
    leave_after: float | None = None,
) -> Served:
    """Runs `spec`'s chain over a MemoryWire as the HTTP pipeline would; returns what happened. With
    `leave_after`, the client disconnects that many seconds in."""

    async def run() -> Served:
        nonlocal wire
        wire = wire or MemoryWire()
        if leave_after is not None:
            asyncio.get_running_loop().call_later(leave_after, wire.gone.set)
        context = Context(
            request=request,
            captures=captures or {},
            match=match,
            sequence=sequence,
            state=state,
            rate=rate,
            wire=wire,
            terminal=lambda reply: send_plain(reply, wire),
        )
        end, reply = await behaviour.run(spec.behaviours, spec.render(), context)
        return Served(end, reply, context.ran, wire)

    return asyncio.run(run())
