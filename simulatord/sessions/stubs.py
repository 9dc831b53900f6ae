"""A programmed stub at run time: its compiled matcher, its response sequence and its counters."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from simulatord.errors import SpecErrors
from simulatord.matching.matchers import RequestMatcher
from simulatord.names import ID_RULE, new_id, valid_id
from simulatord.responding import ratelimit
from simulatord.responding.behaviour import with_behaviours
from simulatord.responding.proxy import Proxy
from simulatord.responding.ratelimit import RATE_LIMIT_HEADERS, RateLimitRule
from simulatord.responding.reply import ResponseSpec
from simulatord.responding.websocket import ACCEPT_UPGRADE, Conversation, check_upgrade_response

if TYPE_CHECKING:
    from simulatord.webhooks.spec import CallbackSpec

MAX_SCENARIO_NAME = 100


class SequenceEnd(StrEnum):
    """What a stub answers once its responses are used up."""

    REPEAT_LAST = "repeat_last"
    CYCLE = "cycle"
    STOP_MATCHING = "stop_matching"


@dataclass(eq=False)
class Stub:
    """One stub of one session. `source` is the definition as programmed, opaque here, echoed to clients."""

    id: str
    name: str
    matcher: RequestMatcher
    responses: tuple[ResponseSpec, ...]
    description: str = ""
    after_last: SequenceEnd = SequenceEnd.REPEAT_LAST
    priority: int = 0
    times: int = 0
    expect_at_least: int | None = None
    expect_at_most: int | None = None
    required_state: str = ""
    next_state: str = ""
    create_time: float = 0.0
    source: object = None
    order: int = 0  # creation order within the session; newer stubs win ties
    match_count: int = field(default=0)
    rate_limit: RateLimitRule | None = None  # None: the stub pays nothing for rate limiting per request
    rate_limited_count: int = 0
    websocket: Conversation | None = None  # set: the stub answers WebSocket upgrades only
    scenario: str = ""  # which named scenario required_state/next_state refer to; empty: the session's state
    callbacks: tuple[CallbackSpec, ...] = ()  # webhooks sent each time the stub matches

    @property
    def proxies(self) -> tuple[Proxy, ...]:
        """The proxies among its responses' behaviours."""
        return tuple(b for spec in self.responses for b in spec.behaviours if isinstance(b, Proxy))

    @property
    def exhausted(self) -> bool:
        if self.times and self.match_count >= self.times:
            return True
        return self.after_last is SequenceEnd.STOP_MATCHING and self.match_count >= len(self.responses)

    def take_response(self) -> ResponseSpec:
        """The response for the next match, advancing the sequence."""
        index = self.match_count
        self.match_count += 1
        count = len(self.responses)
        if index >= count:
            index = index % count if self.after_last is SequenceEnd.CYCLE else count - 1
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


def check_id(value: str, where: str, errors: SpecErrors) -> None:
    if value and not valid_id(value):
        errors.add(where, f"{value!r} {ID_RULE}")


def check_scenario(name: str, where: str, errors: SpecErrors) -> str:
    """Scenario names are free text, but bounded and printable: they show in near misses and listings."""
    if len(name) > MAX_SCENARIO_NAME or not name.isprintable():
        errors.add(where, f"must be at most {MAX_SCENARIO_NAME} printable characters")
    return name


def stub(
    *,
    session_name: str,
    stub_id: str,
    matcher: RequestMatcher,
    responses: Sequence[ResponseSpec],
    description: str = "",
    after_last: SequenceEnd = SequenceEnd.REPEAT_LAST,
    priority: int = 0,
    times: int = 0,
    expect_at_least: int | None = None,
    expect_at_most: int | None = None,
    required_state: str = "",
    next_state: str = "",
    scenario: str = "",
    rate_limit: RateLimitRule | None = None,
    websocket: Conversation | None = None,
    source: object = None,
    now: float = 0.0,
    where: str = "stub",
    id_where: str = "stub_id",
    errors: SpecErrors,
) -> Stub:
    """Validates what only the stub as a whole can tell and builds it; problems go to `errors`."""
    check_id(stub_id, id_where, errors)
    stub_id = stub_id or new_id("stub")
    if not responses and websocket is None:
        errors.add(f"{where}.responses", "must hold at least one response")
    if times < 0:
        errors.add(f"{where}.times", "must not be negative")
    if (expect_at_least is not None and expect_at_least < 0) or (expect_at_most is not None and expect_at_most < 0):
        errors.add(f"{where}.expect", "counts must not be negative")
    if expect_at_least is not None and expect_at_most is not None and expect_at_least > expect_at_most:
        errors.add(f"{where}.expect", f"at_least ({expect_at_least}) exceeds at_most ({expect_at_most})")
    check_scenario(scenario, f"{where}.scenario", errors)
    answers = tuple(responses) or ACCEPT_UPGRADE
    if websocket is not None:
        for i, spec in enumerate(answers):
            check_upgrade_response(spec, f"{where}.responses[{i}]", errors)
    if rate_limit is not None:  # every answer of a rate-limited stub reports the bucket
        answers = tuple(with_behaviours(spec, RATE_LIMIT_HEADERS) for spec in answers)
        rate_limit = ratelimit.private(rate_limit, stub_id)
    name = f"{session_name}/stubs/{stub_id}"
    return Stub(
        id=stub_id,
        name=name,
        matcher=matcher,
        responses=answers,
        description=description,
        after_last=after_last,
        priority=priority,
        times=times,
        expect_at_least=expect_at_least,
        expect_at_most=expect_at_most,
        required_state=required_state,
        next_state=next_state,
        create_time=now,
        source=source,
        rate_limit=rate_limit,
        websocket=websocket,
        scenario=scenario,
    )
