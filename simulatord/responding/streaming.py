"""Streamed bodies: Server-Sent Events and chunked bodies, with delays, keep-alives, repetition and aborts."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from simulatord.errors import SpecErrors
from simulatord.responding.timing import MAX_DELAY_SECONDS, Delay
from simulatord.responding.wire import End, NoRawConnection, Out, unsupported

if TYPE_CHECKING:
    from simulatord.responding.behaviour import Context, Proceed
    from simulatord.responding.reply import Reply


class StreamKind(StrEnum):
    """Which stream (the Response's `stream` oneof field names); also the behaviour's name."""

    SSE = "sse"
    CHUNKED = "chunked"


class AfterLast(StrEnum):
    """What a stream does after its last piece."""

    END = "end"
    HOLD_OPEN = "hold_open"
    REPEAT = "repeat"


class Abort(StrEnum):
    """How `abort_after` ends a stream."""

    RESET = "reset"
    CLOSE = "close"
    END = "end"


KEEP_ALIVE = b": keep-alive\n\n"
SSE_HEADERS = (("content-type", "text/event-stream"), ("cache-control", "no-cache"))


@dataclass(frozen=True)
class Piece:
    """One event or chunk, encoded when programmed, and the wait before it."""

    data: bytes
    delay: float = 0.0


@dataclass(frozen=True)
class StreamSpec:
    """A programmed stream of events or chunks."""

    kind: StreamKind
    pieces: tuple[Piece, ...]
    gap: Delay | None = None  # drawn before every piece
    keep_alive: float = 0.0  # SSE only; 0: never
    after_last: AfterLast = AfterLast.END
    abort_after: int = 0
    abort: Abort = Abort.RESET


def sse_event(
    event: str, data: str, event_id: str, retry_ms: int | None, comment: str, where: str, errors: SpecErrors
) -> bytes:
    """Encodes one event in the text/event-stream format (WHATWG HTML, server-sent events)."""
    for name, value in (("event", event), ("id", event_id)):
        if "\n" in value or "\r" in value:
            errors.add(f"{where}.{name}", "must not contain line breaks")
    if "\0" in event_id:
        errors.add(f"{where}.id", "must not contain NUL")
    if retry_ms is not None and retry_ms < 0:
        errors.add(f"{where}.retry", "must not be negative")
    lines = [f": {line}" if line else ":" for line in comment.splitlines()] if comment else []
    if event_id:
        lines.append(f"id: {event_id}")
    if event:
        lines.append(f"event: {event}")
    if retry_ms is not None:
        lines.append(f"retry: {retry_ms}")
    # A client only dispatches an event whose data is not empty: a typed event gets a `data:` line even so.
    if data or event:
        lines.extend(f"data: {line}" for line in (data.splitlines() or [""]))
    if not lines:
        lines.append(":")  # an empty event still takes its place in the stream, as an empty comment
    return ("\n".join(lines) + "\n\n").encode()


def stream(
    kind: str,
    pieces: list[Piece],
    gap: Delay | None,
    keep_alive: float,
    after_last: str,
    abort_after: int,
    abort: str,
    where: str,
    errors: SpecErrors,
) -> StreamSpec | None:
    """Validates a stream; `where` is the SseStream or ChunkedStream message's path."""
    noun = "events" if kind == StreamKind.SSE else "chunks"
    ok = True
    if not pieces:
        errors.add(f"{where}.{noun}", "must hold at least one")
        ok = False
    for i, piece in enumerate(pieces):
        if kind == StreamKind.CHUNKED and not piece.data:
            errors.add(f"{where}.{noun}[{i}].data", "must not be empty (an empty chunk would end the body)")
            ok = False
        if not 0 <= piece.delay <= MAX_DELAY_SECONDS:
            errors.add(f"{where}.{noun}[{i}].delay", f"must be between 0 and {MAX_DELAY_SECONDS:.0f} seconds")
            ok = False
    if not (math.isfinite(keep_alive) and 0 <= keep_alive <= MAX_DELAY_SECONDS):
        errors.add(f"{where}.keep_alive", f"must be between 0 and {MAX_DELAY_SECONDS:.0f} seconds")
        ok = False
    if abort_after < 0:
        errors.add(f"{where}.abort_after", f"must not be negative, got {abort_after}")
        ok = False
    elif abort_after > len(pieces) and after_last != AfterLast.REPEAT:
        errors.add(f"{where}.abort_after", f"exceeds the {len(pieces)} {noun} programmed and after_last is not REPEAT")
        ok = False
    if after_last not in AfterLast.__members__.values():
        errors.add(f"{where}.after_last", "unknown StreamAfterLast value")
        ok = False
    if abort not in Abort.__members__.values():
        errors.add(f"{where}.abort", "unknown StreamAbort value")
        ok = False
    # Without any wait a repeating stream would write as fast as the socket drains and starve the daemon.
    if after_last == AfterLast.REPEAT and gap is None and not any(p.delay > 0 for p in pieces):
        errors.add(f"{where}.after_last", f"REPEAT needs a delay: on one of the {noun} or a {noun[:-1]}_delay")
        ok = False
    if not ok:
        return None
    return StreamSpec(
        StreamKind(kind), tuple(pieces), gap, keep_alive, AfterLast(after_last), abort_after, Abort(abort)
    )


OK, GONE, DEADLINE = "ok", "gone", "deadline"  # what `pause` says of a wait


async def pause(
    out: Out, seconds: float, deadline: float, keep_alive: float, keep_alive_bytes: bytes = KEEP_ALIVE
) -> str:
    """Waits up to `seconds` but never past `deadline` (loop time), writing `keep_alive_bytes` every
    `keep_alive` seconds (0: never); says whether the client left, the deadline came, or the wait ran out."""
    loop = asyncio.get_running_loop()
    target = loop.time() + seconds
    end = min(target, deadline)
    while (remaining := end - loop.time()) > 0:
        step = min(remaining, keep_alive) if keep_alive else remaining
        if not await out.sleep(step):
            return GONE
        if keep_alive and end - loop.time() > 1e-3:  # woke early to keep the connection warm
            await out.body(keep_alive_bytes)
    if out.gone or out.stopping:
        return GONE
    return DEADLINE if target > deadline else OK


async def abort(out: Out, how: Abort) -> End:
    """Ends the connection under a stream on purpose: a TCP reset, or a close without finishing the body."""
    conn = out.connection()
    await conn.flush()
    if how is Abort.RESET:
        await conn.reset()
    else:
        conn.close()
    return End.ABORTED


class _Run:
    """One stream being sent: waits that send keep-alives and end at the daemon's bound."""

    def __init__(self, spec: StreamSpec, out: Out, reply: Reply) -> None:
        self.spec = spec
        self.out = out
        self.reply = reply
        self.deadline = asyncio.get_running_loop().time() + out.max_seconds

    async def pause(self, seconds: float) -> str:
        return await pause(self.out, seconds, self.deadline, self.spec.keep_alive)

    async def run(self) -> End:
        spec, out = self.spec, self.out
        while True:
            for piece in spec.pieces:
                wait = piece.delay + (spec.gap.sample() if spec.gap is not None else 0.0)
                outcome = await self.pause(wait)
                if outcome == GONE:
                    return await out.interrupted(self.reply)
                if outcome == DEADLINE:
                    await out.end()
                    return End.COMPLETE
                await out.body(piece.data)
                out.events += 1
                if spec.abort_after and out.events >= spec.abort_after:
                    return await self.abort()
            if spec.after_last is AfterLast.REPEAT:
                continue
            if spec.after_last is AfterLast.HOLD_OPEN and await self.pause(math.inf) == GONE:
                return await out.interrupted(self.reply)
            await out.end()
            return End.COMPLETE

    async def abort(self) -> End:
        if self.spec.abort is Abort.END:
            await self.out.end()
            return End.COMPLETE
        return await abort(self.out, self.spec.abort)


async def run(spec: StreamSpec, out: Out, reply: Reply) -> End:
    """Sends the stream's pieces (the headers are already sent); returns how it ended."""
    return await _Run(spec, out, reply).run()


@dataclass(frozen=True)
class StreamDelivery:
    """The behaviour that delivers a response as a stream, after an optional pause once the headers are out."""

    stream: StreamSpec
    body_delay: Delay | None = None

    @property
    def name(self) -> str:
        return self.stream.kind.value

    def _rendered(self, reply: Reply) -> StreamSpec:
        """The stream with the pieces a template rendered for this request."""
        if reply.pieces is None:
            return self.stream
        pieces = tuple(
            piece if data is None else Piece(data, piece.delay)
            for piece, data in zip(self.stream.pieces, reply.pieces, strict=True)
        )
        return dataclasses.replace(self.stream, pieces=pieces)

    async def apply(self, reply: Reply, context: Context, proceed: Proceed) -> End:
        out = context.out()
        try:
            await out.start(reply, None)
            if self.body_delay is not None and not await out.sleep(self.body_delay.sample()):
                return await out.interrupted(reply)
            return await run(self._rendered(reply), out, reply)
        except NoRawConnection as exc:
            return await unsupported(out, reply, exc)
