"""WebSocket domain: compiled conversations of WebSocket stubs and the open connections of a session."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulatord.errors import FailedPrecondition, NotFound
from simulatord.matching.matchers import BodyTest
from simulatord.matching.request import HttpRequest
from simulatord.responding.templating import JsonTemplate
from simulatord.sessions.journal import Exchange, NearMiss

if TYPE_CHECKING:  # the session module imports this one for Connections
    from simulatord.sessions.session import Session

DEFAULT_CLOSE_CODE = 1000
GOING_AWAY = 1001


@dataclass(frozen=True)
class OutMessage:
    """One message to send: text or bytes, optionally a template rendered at send time."""

    text: str | None = None
    binary: bytes | None = None
    delay: float = 0.0
    text_template: Any = None  # a compiled jinja Template for `text`
    json_template: JsonTemplate | None = None


@dataclass(frozen=True)
class CloseSpec:
    code: int = DEFAULT_CLOSE_CODE
    reason: str = ""
    delay: float = 0.0


@dataclass(frozen=True)
class Rule:
    """Answers incoming messages that pass every test (an empty list passes everything)."""

    tests: tuple[BodyTest, ...]
    replies: tuple[OutMessage, ...]
    close: CloseSpec | None = None

    def matches(self, message: HttpRequest) -> bool:
        return all(test.test(message) for test in self.tests)


@dataclass(frozen=True)
class Conversation:
    """A WebSocket stub's behaviour once connected."""

    subprotocol: str = ""
    on_connect: tuple[OutMessage, ...] = ()
    rules: tuple[Rule, ...] = ()
    close_after_connect: CloseSpec | None = None

    def accepts(self, request: HttpRequest) -> bool:
        """A stub with a subprotocol only answers clients that offer it."""
        if not self.subprotocol:
            return True
        offered = ",".join(request.header_values("sec-websocket-protocol"))
        return self.subprotocol in (p.strip() for p in offered.split(","))


@dataclass(frozen=True)
class Frame:
    """A recorded WebSocket frame (the journal stores it on an Exchange of kind `websocket_frame`)."""

    connection: int
    direction: str  # "inbound" or "outbound"
    text: str | None = None
    binary: bytes | None = None
    close_code: int | None = None
    close_reason: str = ""
    size: int = 0
    origin: str = ""


# --- live connections --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Push:
    """Something the control plane asked an open connection to do."""

    message: OutMessage | None
    close: CloseSpec | None
    origin: str = "control"
    incoming: dict[str, Any] | None = None  # the message a rule answers (`message` in templates)


@dataclass(eq=False)
class Connection:
    """One open WebSocket of a session; the serving task drains `outbox`."""

    id: int  # the sequence number of its upgrade exchange
    stub_name: str
    request: HttpRequest
    captures: dict[str, str]
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


# --- the journal -------------------------------------------------------------------------------------


def record_upgrade(
    session: Session,
    request: HttpRequest,
    stub_name: str,
    near_misses: tuple[NearMiss, ...],
    status: int,
    headers: Sequence[tuple[str, str]],
    body_size: int,
    now: float,
) -> Exchange:
    """Records an upgrade request; when accepted (101) its sequence number names the connection."""
    return session.journal.append(
        Exchange(
            sequence=0,
            request=request,
            body_size=0,
            body_truncated=False,
            stub_name=stub_name,
            near_misses=near_misses,
            status=status,
            response_headers=tuple(headers),
            response_body_size=body_size,
            duration=max(0.0, now - request.receive_time),
            kind="websocket_upgrade",
        )
    )


def frame_request(request: HttpRequest) -> HttpRequest:
    """What a frame's exchange shows as its request: the upgrade's method, path and query, nothing heavy."""
    return dataclasses.replace(request, headers=(), body=b"")


def record_frame(session: Session, request: HttpRequest, stub_name: str, frame: Frame, now: float) -> Exchange:
    limit = session.limits.max_body_bytes
    if frame.text is not None and len(frame.text) > limit:
        frame = dataclasses.replace(frame, text=frame.text[:limit])
    elif frame.binary is not None and len(frame.binary) > limit:
        frame = dataclasses.replace(frame, binary=frame.binary[:limit])
    return session.journal.append(
        Exchange(
            sequence=0,
            request=dataclasses.replace(request, receive_time=now),
            body_size=0,
            body_truncated=False,
            stub_name=stub_name,
            near_misses=(),
            status=0,
            response_headers=(),
            response_body_size=0,
            duration=0.0,
            kind="websocket_frame",
            frame=frame,
        )
    )


# --- the control plane -------------------------------------------------------------------------------


def push(session: Session, stub: str, connection: int, push_: Push) -> list[int]:
    """Queues a message and/or close to the addressed open connections; returns their ids."""
    stub_name = ""
    if stub:
        stub_id = stub.rsplit("/stubs/", 1)[1] if "/stubs/" in stub else stub
        if "/stubs/" in stub and stub.rsplit("/stubs/", 1)[0] != session.key.name:
            raise NotFound(f"stub {stub} is not in session {session.key.name}", "STUB_NOT_FOUND", {"stub": stub})
        stub_name = session.get_stub(stub_id).name
    targets = session.connections.select(stub_name, connection)
    if not targets:
        scope = f"connection {connection}" if connection else f"stub {stub_name}" if stub_name else "the session"
        raise FailedPrecondition(
            f"no open WebSocket connection for {scope} in {session.key.name}",
            "NO_WEBSOCKET_CONNECTION",
            {"session": session.key.name, "stub": stub_name, "connection": str(connection or "")},
        )
    for target in targets:
        target.outbox.put_nowait(push_)
    return [target.id for target in targets]
