"""Rate limits: token buckets per session (and per key), refilled in real time, and the headers they add."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulatord.errors import SpecErrors
from simulatord.matching.request import HttpRequest
from simulatord.names import ID_RULE, valid_id
from simulatord.responding.behaviour import with_behaviours
from simulatord.responding.reply import Reply, ResponseSpec
from simulatord.responding.wire import End

if TYPE_CHECKING:
    from simulatord.responding.behaviour import Context, Proceed

# Buckets keyed by a header value could grow without bound under a load test with random keys;
# past this many, full buckets (which carry no information) are dropped.
MAX_BUCKETS = 10_000
MAX_PERIOD_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class RateLimitRule:
    """A stub's rate limit as programmed; `bucket` is `named:{name}`, `stub:{id}`, or empty until a stub owns it."""

    limit: int
    period: float
    key_header: str
    bucket: str
    response: ResponseSpec  # what an exhausted bucket answers


@dataclass(slots=True)
class TokenBucket:
    """`limit` tokens at most, refilled continuously at limit/period tokens per second."""

    limit: int
    period: float
    tokens: float
    updated: float

    @property
    def rate(self) -> float:
        return self.limit / self.period

    def refill(self, now: float) -> None:
        if now > self.updated:
            self.tokens = min(float(self.limit), self.tokens + (now - self.updated) * self.rate)
            self.updated = now


@dataclass(frozen=True, slots=True)
class RateDecision:
    """The outcome for one request: allowed or not, and the numbers the x-ratelimit headers report."""

    allowed: bool
    limit: int
    remaining: int
    reset: float  # seconds until the bucket is full again
    retry_after: float  # seconds until the next token (0 when allowed)

    def headers(self) -> list[tuple[str, str]]:
        out = [
            ("x-ratelimit-limit", str(self.limit)),
            ("x-ratelimit-remaining", str(self.remaining)),
            ("x-ratelimit-reset", str(math.ceil(self.reset))),
        ]
        if not self.allowed:
            # Retry-After is whole seconds (RFC 9110); round up so a client that obeys it succeeds.
            out.insert(0, ("retry-after", str(max(1, math.ceil(self.retry_after)))))
        return out


@dataclass(frozen=True)
class RateLimitHeaders:
    """The behaviour of a rate-limited stub's responses: report the bucket in x-ratelimit-* headers."""

    name = "rate_limit"

    async def apply(self, reply: Reply, context: Context, proceed: Proceed) -> End:
        if context.rate is not None:
            reply.headers = [*reply.headers, *context.rate.headers()]
        return await proceed(reply)


RATE_LIMIT_HEADERS = RateLimitHeaders()


def default_response() -> ResponseSpec:
    body = {"error": "rate limit exceeded", "reason": "RATE_LIMITED"}
    return ResponseSpec(429, (("content-type", "application/json"),), json.dumps(body).encode())


def rule(
    limit: int,
    period: float,
    key_header: str,
    bucket: str,
    response: ResponseSpec | None,
    where: str,
    errors: SpecErrors,
) -> RateLimitRule:
    """Validates a stub's rate limit; `where` is the RateLimit message's path. An unnamed bucket is the
    stub's own, which the stub resolves (`private`)."""
    if limit < 1:
        errors.add(f"{where}.limit", "must be at least 1")
    if not (math.isfinite(period) and 0 < period <= MAX_PERIOD_SECONDS):
        errors.add(f"{where}.period", f"must be positive and at most {MAX_PERIOD_SECONDS:.0f} seconds")
    key_header = key_header.strip().lower()
    if any(c in key_header for c in " :\r\n\t"):
        errors.add(f"{where}.key_header", f"{key_header!r} is not a header name")
    if bucket and not valid_id(bucket):
        errors.add(f"{where}.bucket", f"{bucket!r} {ID_RULE}")
    return RateLimitRule(
        limit=max(limit, 1),
        period=period if period > 0 else 1.0,
        key_header=key_header,
        # Named buckets are shared by the stubs naming them.
        bucket=f"named:{bucket}" if bucket else "",
        response=response or default_response(),
    )


def private(rule: RateLimitRule, stub_id: str) -> RateLimitRule:
    """The rule as one stub applies it: an unnamed bucket becomes the stub's own, and every answer, the
    limited one included, reports the bucket in its headers."""
    return dataclasses.replace(
        rule,
        bucket=rule.bucket or f"stub:{stub_id}",
        response=with_behaviours(rule.response, RATE_LIMIT_HEADERS),
    )


class Buckets:
    """The token buckets of one session, keyed by (bucket name, key header value)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._clock = clock

    def take(self, rule: RateLimitRule, request: HttpRequest) -> RateDecision:
        """Takes one token for this request if there is one; either way says what the headers report."""
        now = self._clock()
        key = (rule.bucket, (request.header(rule.key_header) or "") if rule.key_header else "")
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._drop_full(now)
            bucket = self._buckets[key] = TokenBucket(rule.limit, rule.period, float(rule.limit), now)
        else:
            bucket.refill(now)
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        missing = bucket.limit - bucket.tokens
        return RateDecision(
            allowed=allowed,
            limit=bucket.limit,
            remaining=int(bucket.tokens),
            reset=missing / bucket.rate,
            retry_after=0.0 if allowed else (1.0 - bucket.tokens) / bucket.rate,
        )

    def _drop_full(self, now: float) -> None:
        for key, bucket in list(self._buckets.items()):
            bucket.refill(now)
            if bucket.tokens >= bucket.limit:
                del self._buckets[key]

    def clear(self) -> None:
        self._buckets.clear()

    def __len__(self) -> int:
        return len(self._buckets)
