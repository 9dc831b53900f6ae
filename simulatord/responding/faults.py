"""Connection faults: reset, close, garbage, truncated body, malformed chunk and hang, validated when programmed."""

from __future__ import annotations

from dataclasses import dataclass

from simulatord.errors import SpecErrors
from simulatord.responding.timing import MAX_DELAY_SECONDS, Dribble
from simulatord.responding.wire import ABORTED, CLIENT_DISCONNECTED, Out

KINDS = ("reset", "close", "garbage", "truncated_body", "malformed_chunk", "hang")
# Kinds that may send part of the response first.
_PARTIAL = ("reset", "truncated_body", "malformed_chunk")
DEFAULT_GARBAGE = b"NOT-HTTP simulatord garbage \x00\xff\xfe\r\n\r\n"
# A chunk-size line must be hexadecimal (RFC 9112 section 7.1); clients reject this one.
MALFORMED_CHUNK = b"zz-not-a-chunk-size\r\nsimulatord\r\n"
# HTTP/2 has no chunked coding: the closest fault is a malformed frame, here a DATA frame on stream 0
# (RFC 9113 section 6.1: a connection error of type PROTOCOL_ERROR). A frame too large would not do:
# clients wait for its end and then see only the close.
MALFORMED_H2_FRAME = b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x"


@dataclass(frozen=True)
class Fault:
    """A programmed fault; `after_body_bytes` is None when nothing of the response is sent first."""

    kind: str
    after_body_bytes: int | None = None
    garbage: bytes = DEFAULT_GARBAGE
    hang_for: float = 0.0  # 0: the daemon's maximum


def fault(
    kind: str,
    after_body_bytes: int | None,
    garbage: bytes,
    hang_for: float,
    body_size: int,
    where: str,
    errors: SpecErrors,
) -> Fault | None:
    """Validates a fault against the response body it belongs to; `where` is the Fault message's path."""
    if kind not in KINDS:
        errors.add(f"{where}.kind", f"must be one of {', '.join(k.upper() for k in KINDS)}")
        return None
    ok = True
    if after_body_bytes is not None:
        if kind not in _PARTIAL:
            errors.add(f"{where}.after_body_bytes", "only applies to RESET, TRUNCATED_BODY and MALFORMED_CHUNK")
            ok = False
        elif after_body_bytes < 0:
            errors.add(f"{where}.after_body_bytes", f"must not be negative, got {after_body_bytes}")
            ok = False
        elif after_body_bytes > body_size or (kind == "truncated_body" and after_body_bytes == body_size):
            limit = "less than" if kind == "truncated_body" else "at most"
            errors.add(
                f"{where}.after_body_bytes", f"must be {limit} the body's size ({body_size}), got {after_body_bytes}"
            )
            ok = False
    if kind == "truncated_body" and body_size == 0:
        errors.add(f"{where}.kind", "TRUNCATED_BODY needs a non-empty body to truncate")
        ok = False
    if garbage and kind != "garbage":
        errors.add(f"{where}.garbage", "only applies to GARBAGE")
        ok = False
    if hang_for and kind != "hang":
        errors.add(f"{where}.hang_for", "only applies to HANG")
        ok = False
    if not 0 <= hang_for <= MAX_DELAY_SECONDS:
        errors.add(f"{where}.hang_for", f"must be between 0 and {MAX_DELAY_SECONDS:.0f} seconds")
        ok = False
    if after_body_bytes is None and kind in ("truncated_body", "malformed_chunk"):
        after_body_bytes = body_size // 2 if kind == "truncated_body" else 0
    return Fault(kind, after_body_bytes, garbage or DEFAULT_GARBAGE, hang_for) if ok else None


async def perform(fault: Fault, out: Out, body_delay: float, dribble: Dribble | None) -> str:
    """Runs the fault for one request; returns how the response ended."""
    kind = fault.kind
    if kind == "hang":
        limit = min(fault.hang_for or out.max_seconds, out.max_seconds)
        if not await out.sleep(limit):
            return CLIENT_DISCONNECTED
        out.connection().close()  # the server gives up: the client sees the connection close unanswered
        return ABORTED
    conn = out.connection()
    if kind == "close":
        conn.close()
        return ABORTED
    if kind == "garbage":
        conn.write(fault.garbage)
        await conn.flush()
        conn.close()
        return ABORTED
    if fault.after_body_bytes is None:  # reset before any byte of the response
        await conn.reset()
        return ABORTED
    body = out.reply.body
    # Without a Content-Length, HTTP/1.1 frames the body in chunks: the malformed one follows valid ones.
    await out.start(None if kind == "malformed_chunk" else len(body))
    if not await out.sleep(body_delay) or not await out.send_body(body[: fault.after_body_bytes], dribble):
        return CLIENT_DISCONNECTED
    await conn.flush()
    if kind == "reset":
        await conn.reset()
    elif kind == "truncated_body":
        conn.close()
    else:
        conn.write(MALFORMED_H2_FRAME if out.wire.http_version == "2" else MALFORMED_CHUNK)
        await conn.flush()
        conn.close()
    return ABORTED
