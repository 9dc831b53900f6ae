"""Delivers replies whose timing, faults or streaming were programmed; plain replies never come through here."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass

from simulatord.errors import SpecErrors
from simulatord.responding import faults, streaming
from simulatord.responding.faults import Fault
from simulatord.responding.reply import Reply, ResponseSpec
from simulatord.responding.streaming import StreamSpec
from simulatord.responding.timing import Delay, Dribble
from simulatord.responding.wire import ABORTED, CLIENT_DISCONNECTED, COMPLETE, NoRawConnection, Out, Wire

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shaping:
    """How a response is delivered beyond status, headers and body. A ResponseSpec without one is plain."""

    header_delay: Delay | None = None
    body_delay: Delay | None = None
    dribble: Dribble | None = None
    fault: Fault | None = None
    stream: StreamSpec | None = None


def attach(spec: ResponseSpec, shaping: Shaping, where: str, errors: SpecErrors) -> ResponseSpec:
    """Checks what the parts of a shaped response say together and returns the spec that carries them."""
    if shaping == Shaping():
        return spec  # nothing programmed: the response stays on the plain path
    headers = spec.headers
    if shaping.stream is not None:
        field = "sse" if shaping.stream.kind == "sse" else "chunked"
        if spec.body:
            errors.add(f"{where}.{field}", "a streamed response takes its body from its pieces: leave body_* unset")
        if shaping.fault is not None:
            errors.add(f"{where}.fault", f"cannot be combined with {field}; use {field}.abort_after instead")
        if shaping.dribble is not None:
            errors.add(f"{where}.dribble", f"cannot be combined with {field}: give the pieces delays instead")
        for i, (name, _) in enumerate(headers):
            if name.lower() in ("content-length", "transfer-encoding"):
                errors.add(f"{where}.headers[{i}]", f"{name} is set by the daemon for a streamed response")
        if shaping.stream.kind == "sse":
            # The defaults go into the spec now, so no request pays for them.
            names = {name.lower() for name, _ in headers}
            headers = headers + tuple((n, v) for n, v in streaming.SSE_HEADERS if n not in names)
    elif (
        shaping.fault is not None
        and shaping.fault.after_body_bytes is None
        and (shaping.body_delay is not None or shaping.dribble is not None)
    ):
        errors.add(f"{where}.fault", "this fault sends no body, so body_delay and dribble cannot apply")
    return dataclasses.replace(spec, headers=headers, shaping=shaping)


async def deliver(reply: Reply, wire: Wire) -> str:
    """Sends a shaped reply; returns how it ended and leaves what was sent in the reply, for the journal."""
    shaping: Shaping = reply.shaping
    out = Out(reply, wire)
    try:
        return await _deliver(shaping, out)
    except NoRawConnection as exc:
        # Say so loudly rather than answer something the stub did not program.
        log.error("cannot perform a fault: %s", exc)
        if out.started:
            return ABORTED
        body = json.dumps({"error": str(exc), "reason": "FAULT_UNSUPPORTED"}).encode()
        out.reply.status, out.reply.headers = 500, [("content-type", "application/json")]
        await out.start(len(body))
        await out.body(body)
        await out.end()
        return COMPLETE
    finally:
        out.close()


async def _deliver(shaping: Shaping, out: Out) -> str:
    if shaping.header_delay is not None and not await out.sleep(shaping.header_delay.sample()):
        return CLIENT_DISCONNECTED
    body_delay = shaping.body_delay.sample() if shaping.body_delay is not None else 0.0
    if shaping.fault is not None:
        return await faults.perform(shaping.fault, out, body_delay, shaping.dribble)
    body = out.reply.body
    await out.start(None if shaping.stream is not None else len(body))
    if not await out.sleep(body_delay):
        return CLIENT_DISCONNECTED
    if shaping.stream is not None:
        return await streaming.run(shaping.stream, out)
    if not await out.send_body(body, shaping.dribble):
        return CLIENT_DISCONNECTED
    await out.end()
    return COMPLETE
