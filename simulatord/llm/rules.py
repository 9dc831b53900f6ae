"""Rules at run time: matching a conversation with explained mismatches, and each rule's place in its replies."""

from __future__ import annotations

from dataclasses import dataclass

from simulatord.llm.conversation import Conversation
from simulatord.llm.spec import Matcher, ReplySpec, RuleSpec
from simulatord.matching.matchers import MatchResult, Mismatch, StringTest, show
from simulatord.matching.near_misses import NearMiss
from simulatord.matching.request import HttpRequest


def _string(field: str, test: StringTest | None, value: str, out: list[Mismatch]) -> int:
    if test is None:
        return 0
    if not test.test(value):
        out.append(Mismatch(field, test.describe(), show(value)))
    return 1


def match(matcher: Matcher, conversation: Conversation, request: HttpRequest) -> MatchResult:
    """Every condition of `matcher` checked against the conversation, each miss named by its field."""
    out: list[Mismatch] = []
    checked = _string("model", matcher.model, conversation.model, out)
    checked += _string("system", matcher.system, conversation.system, out)
    checked += _string("last_user_message", matcher.last_user, conversation.last_user, out)
    if matcher.endpoint:
        checked += 1
        if matcher.endpoint != conversation.endpoint.value:
            out.append(Mismatch("endpoint", repr(matcher.endpoint), conversation.endpoint.value))
    if matcher.tools:
        checked += 1
        missing = [t for t in matcher.tools if t not in conversation.tools]
        if missing:
            out.append(Mismatch("tools", f"offers {', '.join(matcher.tools)}", ", ".join(conversation.tools) or "none"))
    if matcher.turn:
        checked += 1
        if matcher.turn != conversation.turn:
            out.append(Mismatch("turn", str(matcher.turn), str(conversation.turn)))
    ends_with_result = conversation.tool_result_for is not None
    if matcher.tool_result is not None:
        checked += 1
        if matcher.tool_result != ends_with_result:
            expected = "ends with a tool result" if matcher.tool_result else "ends without a tool result"
            out.append(Mismatch("tool_result", expected, "a tool result" if ends_with_result else "no tool result"))
    if matcher.tool_result_for:
        checked += 1
        if conversation.tool_result_for != matcher.tool_result_for:
            actual = "no tool result" if not ends_with_result else f"a result for {conversation.tool_result_for!r}"
            out.append(Mismatch("tool_result_for", f"a result for {matcher.tool_result_for!r}", actual))
    if matcher.stream is not None:
        checked += 1
        if matcher.stream != conversation.stream:
            out.append(Mismatch("stream", str(matcher.stream).lower(), str(conversation.stream).lower()))
    for test in matcher.headers:
        checked += 1
        if not test.test(request):
            out.extend(test.explain(request))
    return MatchResult(tuple(out), checked)


@dataclass(eq=False)
class Rule:
    """A programmed rule and how many requests it has answered; its next reply follows from that count."""

    spec: RuleSpec
    name: str  # the resource name the journal and near misses use
    answered: int = 0

    @property
    def exhausted(self) -> bool:
        return bool(self.spec.times) and self.answered >= self.spec.times

    def take(self) -> ReplySpec:
        replies = self.spec.replies
        reply = replies[min(self.answered, len(replies) - 1)]
        self.answered += 1
        return reply


def select(
    rules: tuple[Rule, ...], conversation: Conversation, request: HttpRequest, limit: int = 3
) -> tuple[Rule | None, tuple[NearMiss, ...]]:
    """The first available rule that matches, advanced; otherwise the nearest misses, closest first."""
    scored: list[tuple[float, int, Rule, MatchResult]] = []
    for order, rule in enumerate(rules):
        result = match(rule.spec.matcher, conversation, request)
        if result.matched and not rule.exhausted:
            return rule, ()
        if rule.exhausted:
            times = f"at most {rule.spec.times} answers"
            result = MatchResult((*result.mismatches, Mismatch("times", times, "exhausted")), result.checked + 1)
        scored.append((result.distance, order, rule, result))
    scored.sort(key=lambda s: (s[0], s[1]))
    return None, tuple(NearMiss(r.name, "", res.mismatches) for _, _, r, res in scored[:limit])
