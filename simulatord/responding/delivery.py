"""How a response is delivered beyond status, headers and body: the timing, fault and stream behaviours,
checked together when programmed."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulatord.errors import SpecErrors
from simulatord.responding import streaming
from simulatord.responding.behaviour import Behaviour, with_behaviours
from simulatord.responding.faults import Fault, FaultDelivery
from simulatord.responding.reply import ResponseSpec
from simulatord.responding.streaming import StreamDelivery, StreamKind, StreamSpec
from simulatord.responding.timing import Delay, Dribble, Wait
from simulatord.responding.wire import End

if TYPE_CHECKING:
    from simulatord.responding.behaviour import Context, Proceed
    from simulatord.responding.reply import Reply


@dataclass(frozen=True)
class PacedBody:
    """The behaviour that sends a complete body late (`body_delay`) and/or slowly (`dribble`)."""

    body_delay: Delay | None
    dribble: Dribble | None
    name = "paced_body"

    @property
    def field(self) -> str:
        """The Response field that programmed it, for error messages."""
        return "dribble" if self.dribble is not None else "body_delay"

    async def apply(self, reply: Reply, context: Context, proceed: Proceed) -> End:
        out = context.out()
        await out.start(reply, len(reply.body))
        if self.body_delay is not None and not await out.sleep(self.body_delay.sample()):
            return await out.interrupted(reply)
        if not await out.send_body(reply.body, self.dribble):
            return await out.interrupted(reply)
        await out.end()
        return End.COMPLETE


def shape(
    spec: ResponseSpec,
    header_delay: Delay | None,
    body_delay: Delay | None,
    dribble: Dribble | None,
    fault: Fault | None,
    stream: StreamSpec | None,
    where: str,
    errors: SpecErrors,
) -> ResponseSpec:
    """Checks what the delivery parts of a response say together and returns the spec with their behaviours."""
    headers = spec.headers
    if stream is not None:
        field = stream.kind.value
        if spec.body:
            errors.add(f"{where}.{field}", "a streamed response takes its body from its pieces: leave body_* unset")
        if fault is not None:
            errors.add(f"{where}.fault", f"cannot be combined with {field}; use {field}.abort_after instead")
        if dribble is not None:
            errors.add(f"{where}.dribble", f"cannot be combined with {field}: give the pieces delays instead")
        if stream.kind is StreamKind.SSE:
            # The defaults go into the spec now, so no request pays for them.
            names = {name.lower() for name, _ in headers}
            headers = headers + tuple((n, v) for n, v in streaming.SSE_HEADERS if n not in names)
    elif fault is not None and not fault.sends_body and (body_delay is not None or dribble is not None):
        errors.add(f"{where}.fault", "this fault sends no body, so body_delay and dribble cannot apply")
    behaviours: list[Behaviour] = []
    if header_delay is not None:
        behaviours.append(Wait("header_delay", header_delay))
    if stream is not None:
        behaviours.append(StreamDelivery(stream, body_delay))
    elif fault is not None:
        behaviours.append(FaultDelivery(fault, body_delay, dribble))
    elif body_delay is not None or dribble is not None:
        behaviours.append(PacedBody(body_delay, dribble))
    if headers is not spec.headers:
        spec = dataclasses.replace(spec, headers=headers)
    return with_behaviours(spec, *behaviours)
