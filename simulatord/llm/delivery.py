"""Streaming a simulated model's events at a model's pace: time to first token, tokens per second, jitter, trouble."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Sequence

from simulatord.llm.spec import Timing, Trouble
from simulatord.llm.sse import Event
from simulatord.responding.reply import Reply
from simulatord.responding.streaming import DEADLINE, GONE, abort, pause
from simulatord.responding.wire import End, Out


def _gap(timing: Timing, tokens: int, first: bool, rng: random.Random) -> float:
    base = timing.first_token if first else (tokens / timing.tokens_per_second if timing.tokens_per_second else 0.0)
    if base and timing.jitter:
        base *= 1 + rng.uniform(-timing.jitter, timing.jitter)
    return base


async def stream(
    events: Sequence[Event], out: Out, reply: Reply, timing: Timing, trouble: Trouble, ping: bytes, rng: random.Random
) -> tuple[End, int]:
    """Sends the headers, then each event after the wait its tokens imply; framing events go at once. Aborts
    or stalls after the programmed number of output tokens. Returns how the stream ended and the output
    tokens that went out."""
    await out.start(reply, None)
    deadline = asyncio.get_running_loop().time() + out.max_seconds
    sent = 0
    first = True
    for event in events:
        if event.tokens:
            wait = _gap(timing, event.tokens, first, rng)
            first = False
            if wait > 0:
                outcome = await pause(out, wait, deadline, trouble.ping_interval, ping)
                if outcome == GONE:
                    return await out.interrupted(reply), sent
                if outcome == DEADLINE:
                    break
        await out.body(event.data)
        out.events += 1
        sent += event.tokens
        if trouble.abort_after_tokens and sent >= trouble.abort_after_tokens:
            return await abort(out, trouble.abort), sent
        if trouble.stall_after_tokens and sent >= trouble.stall_after_tokens:
            if await pause(out, math.inf, deadline, trouble.ping_interval, ping) == GONE:
                return await out.interrupted(reply), sent
            break  # the daemon's bound on a stream's length ended the stall
    await out.end()
    return End.COMPLETE, sent
