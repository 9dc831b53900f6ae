"""A programmed stub at run time: its compiled matcher, its response sequence and its counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from simulatord.matching.matchers import RequestMatcher
from simulatord.responding.reply import ResponseSpec

AFTER_LAST = ("repeat_last", "cycle", "stop_matching")


@dataclass(eq=False)
class Stub:
    """One stub of one session. `source` is the definition as programmed, echoed back to clients."""

    id: str
    name: str
    matcher: RequestMatcher
    responses: tuple[ResponseSpec, ...]
    description: str = ""
    after_last: str = "repeat_last"
    priority: int = 0
    times: int = 0
    expect_at_least: int | None = None
    expect_at_most: int | None = None
    required_state: str = ""
    next_state: str = ""
    create_time: float = 0.0
    source: Any = None
    order: int = 0  # creation order within the session; newer stubs win ties
    match_count: int = field(default=0)
    # Optional behaviours; None means the stub pays nothing for them on the request path.
    rate_limit: Any = None  # a responding.ratelimit.RateLimitRule
    rate_limited_count: int = 0
    websocket: Any = None  # a sessions.websockets.Conversation: the stub answers WebSocket upgrades only
    scenario: str = ""  # which named scenario required_state/next_state refer to; empty: the session's state

    @property
    def exhausted(self) -> bool:
        if self.times and self.match_count >= self.times:
            return True
        return self.after_last == "stop_matching" and self.match_count >= len(self.responses)

    def take_response(self) -> ResponseSpec:
        """The response for the next match, advancing the sequence."""
        index = self.match_count
        self.match_count += 1
        count = len(self.responses)
        if index >= count:
            index = index % count if self.after_last == "cycle" else count - 1
        return self.responses[index]

    def expectation_text(self) -> str:
        low, high = self.expect_at_least, self.expect_at_most
        if low is not None and high is not None:
            return f"exactly {low}" if low == high else f"between {low} and {high}"
        if low is not None:
            return f"at least {low}"
        if high is not None:
            return f"at most {high}"
        return "at least 1 (no expectation set)"

    def expectation_met(self) -> bool:
        if self.expect_at_least is not None and self.match_count < self.expect_at_least:
            return False
        return not (self.expect_at_most is not None and self.match_count > self.expect_at_most)

    @property
    def has_expectation(self) -> bool:
        return self.expect_at_least is not None or self.expect_at_most is not None
