"""Rate limits: token buckets per session (and per key), refilled in real time, and the headers they add."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from simulatord.matching.request import HttpRequest
from simulatord.responding.reply import Reply, ResponseSpec

# Buckets keyed by a header value could grow without bound under a load test with random keys;
# past this many, full buckets (which carry no information) are dropped.
MAX_BUCKETS = 10_000


@dataclass(frozen=True)
class RateLimitRule:
    """A stub's rate limit as programmed. `bucket` is already resolved (the stub's own when unnamed)."""

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

    def apply(self, reply: Reply) -> Reply:
        reply.headers = [*reply.headers, *self.headers()]
        return reply


def default_response() -> ResponseSpec:
    body = {"error": "rate limit exceeded", "reason": "RATE_LIMITED"}
    return ResponseSpec(429, (("content-type", "application/json"),), json.dumps(body).encode())


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
