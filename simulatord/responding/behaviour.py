"""The behaviour chain: every programmed step between rendering a reply and delivering it has one interface.

A behaviour is middleware around delivery: it may rewrite the reply (a template, rate-limit headers), wait
(delays), deliver the reply itself in its own way (faults, streams, paced bodies), or act after delivery. The
chain of a response is fixed when it is programmed, in the order of `ORDER`; a response without behaviours
never builds a chain. Adding a behaviour is one module with a class that has `name` and `apply`, and its name
in `ORDER`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from simulatord.matching.request import HttpRequest
from simulatord.responding.reply import Reply, ResponseSpec
from simulatord.responding.wire import End, Out, Wire

if TYPE_CHECKING:
    from simulatord.responding.proxy import Forward, ProxyRecord
    from simulatord.responding.ratelimit import RateDecision

Proceed = Callable[[Reply], Awaitable[End]]

# The chain order. Rewrites come first, so waits and deliveries see the final reply; at most one of the
# delivering behaviours (the last group) is programmed on a response, which validation guarantees.
ORDER: tuple[str, ...] = (
    "template",
    "rate_limit",
    "delay",
    "header_delay",
    "fault",
    "sse",
    "chunked",
    "paced_body",
    "proxy",
)


class Behaviour(Protocol):
    """One programmed step of a response's chain."""

    @property
    def name(self) -> str:
        """Its entry in ORDER, as the exchange records it."""
        ...

    async def apply(self, reply: Reply, context: Context, proceed: Proceed) -> End:
        """Does its part and, unless it delivers the reply itself, hands the reply on to `proceed`."""
        ...


@dataclass(eq=False)
class Context:
    """What behaviours may read about the request being served, and the way out to the client."""

    request: HttpRequest
    captures: Mapping[str, str]
    match: int  # the stub's match count, this request included
    sequence: int  # the sequence number the exchange is expected to get
    state: str  # the stub's scenario state once this request has moved it
    rate: RateDecision | None  # the rate-limit decision, for rate-limited stubs
    wire: Wire | None  # None for a WebSocket upgrade, which is accepted or refused, never streamed
    terminal: Proceed  # the end of the chain: plain delivery (HTTP) or accept/refuse (WebSocket)
    ran: list[str] = field(default_factory=list)  # names of the behaviours entered, in order
    reply: Reply | None = None  # the reply as last handed on, which is what the client got
    forward: Forward | None = None  # how a proxy reaches its upstream; None where nothing may be proxied
    proxied: ProxyRecord | None = None  # what a proxy did, for the journal
    _out: Out | None = None

    def out(self) -> Out:
        """The piecewise sender, made by the first behaviour that needs it and shared by the ones after."""
        if self._out is None:
            if self.wire is None:
                raise RuntimeError("this exchange has no HTTP response to shape")
            self._out = Out(self.wire)
        return self._out

    async def finish(self, reply: Reply) -> End:
        """Delivers `reply` as the chain's end would; a behaviour that cannot go on (a template that failed)
        hands its explanation straight here, skipping the rest of the chain."""
        self.reply = reply
        if self._out is not None:  # a wait already watches the client: send through the same sender
            return await self._out.whole(reply)
        return await self.terminal(reply)


def ordered(behaviours: Iterable[Behaviour]) -> tuple[Behaviour, ...]:
    """The behaviours of one response in chain order; a name missing from ORDER is a programming error."""
    return tuple(sorted(behaviours, key=lambda b: ORDER.index(b.name)))


def with_behaviours(spec: ResponseSpec, *behaviours: Behaviour) -> ResponseSpec:
    """The spec with more behaviours, its chain kept in order."""
    if not behaviours:
        return spec
    return dataclasses.replace(spec, behaviours=ordered((*spec.behaviours, *behaviours)))


async def run(behaviours: tuple[Behaviour, ...], reply: Reply, context: Context) -> tuple[End, Reply]:
    """Runs the chain; returns how delivery ended and the reply delivered, with what was actually sent."""

    async def step(index: int, current: Reply) -> End:
        context.reply = current
        if index == len(behaviours):
            return await context.finish(current)
        behaviour = behaviours[index]
        context.ran.append(behaviour.name)
        return await behaviour.apply(current, context, lambda nxt: step(index + 1, nxt))

    try:
        end = await step(0, reply)
    finally:
        delivered = context.reply or reply
        if context._out is not None:
            context._out.close(delivered)
    return end, delivered
