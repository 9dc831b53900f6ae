"""The open WebSocket connections of one session, and what the control plane asks them to do."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from simulatord.errors import SpecErrors
from simulatord.matching.request import HttpRequest
from simulatord.responding.websocket import GOING_AWAY, CloseSpec, OutMessage


@dataclass(frozen=True)
class Push:
    """Something to send on an open connection: a message, a close, or both."""

    message: OutMessage | None
    close: CloseSpec | None
    origin: str = "control"
    incoming: Mapping[str, Any] | None = None  # the message a rule answers (`message` in templates)


def push(message: OutMessage | None, close: CloseSpec | None, connection: int, errors: SpecErrors) -> Push:
    """Validates what the control plane asks to send; `connection` 0 means every addressed connection."""
    if message is None and close is None:
        errors.add("message", "set message, close or both")
    if connection < 0:
        errors.add("connection", "must not be negative")
    return Push(message, close)


@dataclass(eq=False)
class Connection:
    """One open WebSocket of a session; the serving task drains `outbox`."""

    id: int  # the sequence number of its upgrade exchange
    stub_name: str
    request: HttpRequest
    captures: Mapping[str, str]
    match: int = 0  # the stub's match count when it accepted this connection, for templates
    outbox: asyncio.Queue[Push] = field(default_factory=asyncio.Queue)


class Connections:
    """The open WebSockets of one session."""

    def __init__(self) -> None:
        self._open: dict[int, Connection] = {}

    def add(self, connection: Connection) -> None:
        self._open[connection.id] = connection

    def remove(self, connection: Connection) -> None:
        self._open.pop(connection.id, None)

    def select(self, stub_name: str = "", connection: int = 0) -> list[Connection]:
        return [
            c
            for c in self._open.values()
            if (not stub_name or c.stub_name == stub_name) and (not connection or c.id == connection)
        ]

    def close_all(self, code: int = GOING_AWAY, reason: str = "session closed") -> None:
        for connection in list(self._open.values()):
            connection.outbox.put_nowait(Push(None, CloseSpec(code, reason), origin="session"))

    def __iter__(self) -> Iterator[Connection]:
        return iter(list(self._open.values()))

    def __len__(self) -> int:
        return len(self._open)
