"""Delays drawn per request (fixed, uniform or lognormal, reproducible with a seed) and slow "dribbled" bodies."""

from __future__ import annotations

import asyncio
import math
import random
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from simulatord.errors import SpecErrors
from simulatord.responding.wire import End

if TYPE_CHECKING:
    from simulatord.responding.behaviour import Context, Proceed
    from simulatord.responding.reply import Reply

MAX_DELAY_SECONDS = 600.0
MAX_SIGMA = 10.0


class DelayKind(StrEnum):
    """A delay's distribution (the Delay message's oneof field names)."""

    FIXED = "fixed"
    UNIFORM = "uniform"
    LOGNORMAL = "lognormal"


@dataclass(frozen=True, eq=False)
class Delay:
    """A delay distribution with its own generator, so a seeded delay repeats its draws run after run."""

    kind: DelayKind
    a: float  # fixed: the delay; uniform: the lower bound; lognormal: ln(median)
    b: float = 0.0  # uniform: the upper bound; lognormal: sigma
    cap: float = MAX_DELAY_SECONDS
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def sample(self) -> float:
        if self.kind is DelayKind.FIXED:
            return self.a
        uniform = self.kind is DelayKind.UNIFORM
        value = self.rng.uniform(self.a, self.b) if uniform else self.rng.lognormvariate(self.a, self.b)
        return min(max(value, 0.0), self.cap)


def _seconds_ok(value: float, where: str, errors: SpecErrors, positive: bool = False) -> bool:
    if not math.isfinite(value) or value < 0 or (positive and value == 0) or value > MAX_DELAY_SECONDS:
        low = "positive" if positive else "between 0"
        errors.add(where, f"must be {low} and at most {MAX_DELAY_SECONDS:.0f} seconds, got {value:g}")
        return False
    return True


def delay(
    kind: str,
    where: str,
    errors: SpecErrors,
    *,
    fixed: float = 0.0,
    low: float = 0.0,
    high: float = 0.0,
    median: float = 0.0,
    sigma: float = 0.0,
    seed: int | None = None,
    cap: float = 0.0,
) -> Delay | None:
    """Validates a delay distribution; `where` is the Delay message's field path. None when invalid."""
    ok = True
    if cap:
        ok = _seconds_ok(cap, f"{where}.cap", errors, positive=True)
    bound = cap or MAX_DELAY_SECONDS
    rng = random.Random(seed)  # seed None: from the OS
    if kind == DelayKind.FIXED:
        if _seconds_ok(fixed, f"{where}.fixed", errors) and ok:
            return Delay(DelayKind.FIXED, min(fixed, bound), cap=bound, rng=rng)
        return None
    if kind == DelayKind.UNIFORM:
        ok = _seconds_ok(low, f"{where}.uniform.min", errors) and ok
        ok = _seconds_ok(high, f"{where}.uniform.max", errors) and ok
        if ok and high < low:
            errors.add(f"{where}.uniform.max", f"must not be less than min ({low:g}s), got {high:g}s")
            ok = False
        return Delay(DelayKind.UNIFORM, low, high, bound, rng) if ok else None
    if kind == DelayKind.LOGNORMAL:
        ok = _seconds_ok(median, f"{where}.lognormal.median", errors, positive=True) and ok
        if not (math.isfinite(sigma) and 0 <= sigma <= MAX_SIGMA):
            errors.add(f"{where}.lognormal.sigma", f"must be between 0 and {MAX_SIGMA:g}, got {sigma:g}")
            ok = False
        return Delay(DelayKind.LOGNORMAL, math.log(median), sigma, bound, rng) if ok else None
    errors.add(where, "set one of fixed, uniform or lognormal")
    return None


@dataclass(frozen=True)
class Dribble:
    """A body sent `chunk_bytes` at a time, the writes evenly spaced so the last leaves after `duration`."""

    chunk_bytes: int
    duration: float

    def pieces(self, body: bytes) -> tuple[float, list[bytes]]:
        """The pause before each write and the writes."""
        size = self.chunk_bytes
        parts = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
        return self.duration / len(parts), parts


def dribble(chunk_bytes: int, duration: float, where: str, errors: SpecErrors) -> Dribble | None:
    ok = True
    if chunk_bytes < 1:
        errors.add(f"{where}.chunk_bytes", f"must be at least 1, got {chunk_bytes}")
        ok = False
    ok = _seconds_ok(duration, f"{where}.duration", errors, positive=True) and ok
    return Dribble(chunk_bytes, duration) if ok else None


# --- behaviours ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Wait:
    """A wait before the response starts: `delay` (fixed seconds) or `header_delay` (a drawn delay).

    Over HTTP the wait watches the connection, so a client that gives up is recorded as having left."""

    name: str  # "delay" or "header_delay"
    delay: Delay

    async def apply(self, reply: Reply, context: Context, proceed: Proceed) -> End:
        seconds = self.delay.sample()
        if context.wire is None:
            await asyncio.sleep(seconds)
        elif not await (out := context.out()).sleep(seconds):
            return await out.interrupted(reply)
        return await proceed(reply)


def fixed_delay(seconds: float, where: str, errors: SpecErrors) -> Wait | None:
    """The `delay` of a response: None when zero (a plain response stays plain)."""
    if not _seconds_ok(seconds, where, errors) or seconds == 0:
        return None
    return Wait("delay", Delay(DelayKind.FIXED, seconds))
