"""Connection faults: reset, close, garbage, truncated body, malformed chunk and hang, validated when programmed."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from simulatord.errors import SpecErrors
from simulatord.responding.timing import MAX_DELAY_SECONDS, Delay, Dribble
from simulatord.responding.wire import End, NoRawConnection, Out, unsupported

if TYPE_CHECKING:
    from simulatord.responding.behaviour import Context, Proceed
    from simulatord.responding.reply import Reply


class FaultKind(StrEnum):
    """What goes wrong (the FaultKind enum's names, lower case)."""

    RESET = "reset"
    CLOSE = "close"
    GARBAGE = "garbage"
    TRUNCATED_BODY = "truncated_body"
    MALFORMED_CHUNK = "malformed_chunk"
    HANG = "hang"


# Kinds that may send part of the response first.
_PARTIAL = (FaultKind.RESET, FaultKind.TRUNCATED_BODY, FaultKind.MALFORMED_CHUNK)
DEFAULT_GARBAGE = b"NOT-HTTP simulatord garbage \x00\xff\xfe\r\n\r\n"
# A chunk-size line must be hexadecimal (RFC 9112 section 7.1); clients reject this one.
MALFORMED_CHUNK = b"zz-not-a-chunk-size\r\nsimulatord\r\n"
# HTTP/2 has no chunked coding: the closest fault is a malformed frame, here a DATA frame on stream 0
# (RFC 9113 section 6.1: a connection error of type PROTOCOL_ERROR). A frame too large would not do:
# clients wait for its end and then see only the close.
MALFORMED_H2_FRAME = b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x"


@dataclass(frozen=True)
class Fault:
    """A programmed fault; `after_body_bytes` as programmed (None: the kind's default)."""

    kind: FaultKind
    after_body_bytes: int | None = None
    garbage: bytes = DEFAULT_GARBAGE
    hang_for: float = 0.0  # 0: the daemon's maximum

    @property
    def sends_body(self) -> bool:
        """Whether part of the response goes out before the fault."""
        if self.kind is FaultKind.RESET:
            return self.after_body_bytes is not None
        return self.kind in _PARTIAL

    def cut(self, size: int) -> int | None:
        """How many bytes of a `size`-byte body go out first; None: none of the response does. Checked against
        the body when programmed; a templated body is only known once rendered, so the cut is kept inside it."""
        if not self.sends_body:
            return None
        if self.kind is FaultKind.TRUNCATED_BODY:
            wanted = size // 2 if self.after_body_bytes is None else self.after_body_bytes
            return max(0, min(wanted, size - 1))
        return min(self.after_body_bytes or 0, size)


def fault(
    kind: str,
    after_body_bytes: int | None,
    garbage: bytes,
    hang_for: float,
    body_size: int | None,
    where: str,
    errors: SpecErrors,
) -> Fault | None:
    """Validates a fault against the response body it belongs to (`body_size` None: a template renders it, so
    it is only known per request); `where` is the Fault message's path."""
    if kind not in FaultKind.__members__.values():
        errors.add(f"{where}.kind", f"must be one of {', '.join(k.name for k in FaultKind)}")
        return None
    kind = FaultKind(kind)
    ok = True
    if after_body_bytes is not None:
        if kind not in _PARTIAL:
            errors.add(f"{where}.after_body_bytes", "only applies to RESET, TRUNCATED_BODY and MALFORMED_CHUNK")
            ok = False
        elif after_body_bytes < 0:
            errors.add(f"{where}.after_body_bytes", f"must not be negative, got {after_body_bytes}")
            ok = False
        elif body_size is not None and (
            after_body_bytes > body_size or (kind is FaultKind.TRUNCATED_BODY and after_body_bytes == body_size)
        ):
            limit = "less than" if kind is FaultKind.TRUNCATED_BODY else "at most"
            errors.add(
                f"{where}.after_body_bytes", f"must be {limit} the body's size ({body_size}), got {after_body_bytes}"
            )
            ok = False
    if kind is FaultKind.TRUNCATED_BODY and body_size == 0:
        errors.add(f"{where}.kind", "TRUNCATED_BODY needs a non-empty body to truncate")
        ok = False
    if garbage and kind is not FaultKind.GARBAGE:
        errors.add(f"{where}.garbage", "only applies to GARBAGE")
        ok = False
    if hang_for and kind is not FaultKind.HANG:
        errors.add(f"{where}.hang_for", "only applies to HANG")
        ok = False
    if not 0 <= hang_for <= MAX_DELAY_SECONDS:
        errors.add(f"{where}.hang_for", f"must be between 0 and {MAX_DELAY_SECONDS:.0f} seconds")
        ok = False
    return Fault(kind, after_body_bytes, garbage or DEFAULT_GARBAGE, hang_for) if ok else None


async def perform(fault: Fault, reply: Reply, out: Out, body_delay: float, dribble: Dribble | None) -> End:
    """Runs the fault for one request; returns how the response ended."""
    kind = fault.kind
    if kind is FaultKind.HANG:
        limit = min(fault.hang_for or out.max_seconds, out.max_seconds)
        if not await out.sleep(limit) and out.gone:
            return End.CLIENT_DISCONNECTED
        out.connection().close()  # the server gives up: the client sees the connection close unanswered
        return End.ABORTED
    conn = out.connection()
    if kind is FaultKind.CLOSE:
        conn.close()
        return End.ABORTED
    if kind is FaultKind.GARBAGE:
        conn.write(fault.garbage)
        await conn.flush()
        conn.close()
        return End.ABORTED
    body = reply.body
    cut = fault.cut(len(body))
    if cut is None:  # reset before any byte of the response
        await conn.reset()
        return End.ABORTED
    # Without a Content-Length, HTTP/1.1 frames the body in chunks: the malformed one follows valid ones.
    await out.start(reply, None if kind is FaultKind.MALFORMED_CHUNK else len(body))
    if not await out.sleep(body_delay) or not await out.send_body(body[:cut], dribble):
        return await out.interrupted(reply)
    await conn.flush()
    if kind is FaultKind.RESET:
        await conn.reset()
    elif kind is FaultKind.TRUNCATED_BODY:
        conn.close()
    else:
        conn.write(MALFORMED_H2_FRAME if out.wire.http_version == "2" else MALFORMED_CHUNK)
        await conn.flush()
        conn.close()
    return End.ABORTED


@dataclass(frozen=True)
class FaultDelivery:
    """The behaviour that delivers a response by breaking it as programmed."""

    fault: Fault
    body_delay: Delay | None = None
    dribble: Dribble | None = None
    name = "fault"

    async def apply(self, reply: Reply, context: Context, proceed: Proceed) -> End:
        out = context.out()
        body_delay = self.body_delay.sample() if self.body_delay is not None else 0.0
        try:
            return await perform(self.fault, reply, out, body_delay, self.dribble)
        except NoRawConnection as exc:
            return await unsupported(out, reply, exc)
