"""A session's LLM simulation at run time: route, read, refuse or rate-limit, pick a rule, answer, account.

The stages are small functions over an immutable request, in the order the real APIs apply them: the body is
read (and refused as the provider would), the model checked, the rate limit counted, a rule selected, and the
answer delivered as a JSON body or a paced event stream.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from simulatord.llm import anthropic, delivery, openai
from simulatord.llm.answer import Answer
from simulatord.llm.answer import answer as make_answer
from simulatord.llm.conversation import Conversation, Refused, read
from simulatord.llm.rules import Rule, select
from simulatord.llm.spec import Endpoint, ErrorKind, ErrorSpec, Provider, SimulationSpec
from simulatord.llm.sse import Event
from simulatord.matching.near_misses import NearMiss
from simulatord.matching.request import HttpRequest
from simulatord.responding.reply import Reply
from simulatord.responding.wire import End, Out, Wire, send_plain

ROUTES: dict[Provider, dict[tuple[str, str], Endpoint]] = {
    Provider.OPENAI: {
        ("POST", "/v1/chat/completions"): Endpoint.CHAT,
        ("POST", "/v1/responses"): Endpoint.RESPONSES,
        ("POST", "/v1/embeddings"): Endpoint.EMBEDDINGS,
        ("GET", "/v1/models"): Endpoint.MODELS,
    },
    Provider.ANTHROPIC: {
        ("POST", "/v1/messages"): Endpoint.MESSAGES,
        ("POST", "/v1/messages/count_tokens"): Endpoint.COUNT_TOKENS,
        ("GET", "/v1/models"): Endpoint.MODELS,
    },
}
# Rules without an endpoint answer conversations; embeddings take only rules that name them.
CONVERSATIONAL = frozenset({Endpoint.CHAT, Endpoint.RESPONSES, Endpoint.MESSAGES})
WINDOW_SECONDS = 60.0
# What the rate-limit headers report when the simulation sets no limit (none is enforced then).
UNLIMITED_REQUESTS = 10_000
UNLIMITED_TOKENS = 2_000_000
JSON = ("content-type", "application/json")
SSE = (("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"))


@dataclass(frozen=True, slots=True)
class LlmRecord:
    """What the journal keeps of a simulated LLM request (the proto's LlmExchange)."""

    endpoint: str
    model: str = ""
    message_count: int = 0
    tools: tuple[str, ...] = ()
    rule: str = ""
    stream: bool = False
    turn: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    refusal_reason: str = ""


@dataclass(frozen=True)
class Served:
    """How the simulation answered: the reply as sent, how delivery ended, and what the journal records."""

    reply: Reply
    end: End
    record: LlmRecord
    answered_by: str = ""  # the rule's (or the default's) resource name; empty when refused
    near_misses: tuple[NearMiss, ...] = ()


@dataclass(slots=True)
class _Window:
    """Fixed one-minute windows from the first request, as the limits count requests and tokens."""

    start: float | None = None
    requests: int = 0
    tokens: int = 0

    def roll(self, now: float) -> None:
        if self.start is None:
            self.start = now
        elif now >= self.start + WINDOW_SECONDS:
            self.start += WINDOW_SECONDS * math.floor((now - self.start) / WINDOW_SECONDS)
            self.requests = self.tokens = 0

    def reset_in(self, now: float) -> float:
        return (self.start or now) + WINDOW_SECONDS - now


def _retry_headers(seconds: float) -> list[tuple[str, str]]:
    """`retry-after` in whole seconds as the providers send it, and milliseconds when that is not exact
    (both official SDKs read `retry-after-ms` first)."""
    headers = [("retry-after", str(max(math.ceil(seconds), 0)))]
    if seconds != math.ceil(seconds):
        headers.append(("retry-after-ms", str(max(round(seconds * 1000), 1))))
    return headers


def _record(conversation: Conversation, **outcome: Any) -> LlmRecord:
    fields: dict[str, Any] = {
        "endpoint": conversation.endpoint.value,
        "model": conversation.model,
        "message_count": conversation.message_count,
        "tools": conversation.tools,
        "stream": conversation.stream,
        "turn": conversation.turn,
        "input_tokens": conversation.input_tokens,
    }
    return LlmRecord(**(fields | outcome))


@dataclass(eq=False)
class Simulation:
    """One session's simulated provider: its rules' positions, rate window and random ids."""

    spec: SimulationSpec
    session_name: str
    clock: Callable[[], float] = time.time
    source: object = None  # the LlmSimulation message as programmed, for clients that read the session back
    rules: tuple[Rule, ...] = field(init=False)
    _window: _Window = field(default_factory=_Window, init=False)
    _rng: random.Random = field(default_factory=random.Random, init=False)

    def __post_init__(self) -> None:
        self.rules = tuple(Rule(r, f"{self.session_name}/llm/rules/{r.id}") for r in self.spec.rules)
        self._routes = ROUTES[self.spec.provider]
        self._models = self.spec.models or (
            openai.DEFAULT_MODELS if self.spec.provider is Provider.OPENAI else anthropic.DEFAULT_MODELS
        )

    @property
    def default_name(self) -> str:
        return f"{self.session_name}/llm/default"

    def endpoint(self, request: HttpRequest) -> Endpoint | None:
        """The endpoint a request addresses, or None when it is not one the provider has."""
        return self._routes.get((request.method, request.path.rstrip("/") or "/"))

    def reset(self) -> None:
        """Rules start again from their first reply, and the rate window from the next request."""
        for rule in self.rules:
            rule.answered = 0
        self._window = _Window()

    # --- stages ----------------------------------------------------------------------------------

    async def serve(self, endpoint: Endpoint, request: HttpRequest, wire: Wire) -> Served:
        provider = self.spec.provider
        now = self.clock()
        if provider is Provider.OPENAI:
            request_id, base = "", openai.request_headers(self._rng)
        else:
            request_id = anthropic.request_id(self._rng)
            base = anthropic.request_headers(request_id)
        try:
            conversation = read(endpoint, provider, request.body, self.spec.strict)
            self._check_model(conversation)
        except Refused as refusal:
            reply = self._refusal(refusal, base, request_id)
            record = LlmRecord(endpoint.value, refusal_reason=refusal.message)
            return Served(reply, await send_plain(reply, wire), record)
        if endpoint in (Endpoint.MODELS, Endpoint.COUNT_TOKENS):
            payload = (
                anthropic.count_tokens(conversation)
                if endpoint is Endpoint.COUNT_TOKENS
                else (openai.models if provider is Provider.OPENAI else anthropic.models)(self._models)
            )
            reply = Reply(200, [JSON, *base], json.dumps(payload).encode())
            return Served(reply, await send_plain(reply, wire), _record(conversation))

        limited = self._limited(conversation, now)
        if limited is not None:
            kind_message, retry = limited
            # The providers' 429 carries the rate-limit headers too (remaining 0, the reset): clients back off by them.
            headers = [*base, *self._rate_headers(now)]
            reply = self._error(
                ErrorSpec(ErrorKind.RATE_LIMITED, kind_message, retry), conversation, headers, request_id
            )
            return Served(reply, await send_plain(reply, wire), _record(conversation, refusal_reason=kind_message))

        rule, misses = select(self._eligible(endpoint), conversation, request)
        reply_spec = rule.take() if rule is not None else self.spec.default
        answered_by = rule.name if rule is not None else self.default_name
        rule_id = rule.spec.id if rule is not None else ""
        headers = [*base, *self._rate_headers(now)]

        error = reply_spec.error
        if error is not None and not (conversation.stream and error.after_tokens):
            reply = self._error(error, conversation, headers, request_id)
            record = _record(conversation, rule=rule_id)
            return Served(reply, await send_plain(reply, wire), record, answered_by, misses)

        if endpoint is Endpoint.EMBEDDINGS:  # input tokens only, as the provider counts them
            reply = Reply(200, [JSON, *headers], json.dumps(openai.embeddings(conversation)).encode())
            return Served(
                reply, await send_plain(reply, wire), _record(conversation, rule=rule_id), answered_by, misses
            )
        ans = make_answer(reply_spec, conversation, self._rng, *self._call_id())
        self._window.tokens += ans.output_tokens
        output = ans.output_tokens * conversation.n
        record = _record(conversation, rule=rule_id, input_tokens=ans.input_tokens, output_tokens=output)
        if not conversation.stream:
            reply = Reply(200, [JSON, *headers], json.dumps(self._body(conversation, ans, now)).encode())
            return Served(reply, await send_plain(reply, wire), record, answered_by, misses)

        failure = self._error_payload(error, conversation, request_id) if error is not None else None
        events = self._events(conversation, ans, now, failure)
        reply = Reply(200, [*SSE, *headers])
        timing = reply_spec.timing.over(self.spec.timing)
        rng = random.Random(timing.seed) if timing.seed is not None else self._rng
        ping = openai.PING if provider is Provider.OPENAI else anthropic.PING
        out = Out(wire)
        try:
            end, sent = await delivery.stream(events, out, reply, timing, reply_spec.trouble, ping, rng)
        finally:
            out.close(reply)
        if end is not End.COMPLETE:  # the journal counts what went out, not what was scripted
            record = dataclasses.replace(record, output_tokens=sent)
        return Served(reply, end, record, answered_by, misses)

    def _eligible(self, endpoint: Endpoint) -> tuple[Rule, ...]:
        if endpoint in CONVERSATIONAL:
            return tuple(r for r in self.rules if r.spec.matcher.endpoint in ("", endpoint.value))
        return tuple(r for r in self.rules if r.spec.matcher.endpoint == endpoint.value)

    def _check_model(self, conversation: Conversation) -> None:
        if not self.spec.models or conversation.endpoint is Endpoint.MODELS or conversation.model in self.spec.models:
            return
        model = conversation.model
        if self.spec.provider is Provider.OPENAI:
            message = f"The model `{model}` does not exist or you do not have access to it."
            raise Refused(404, message, None, "model_not_found")
        raise Refused(404, f"model: {model}")

    def _limited(self, conversation: Conversation, now: float) -> tuple[str, float] | None:
        """Counts the request against the limits; a message and the wait when it is over one."""
        limits, window = self.spec.limits, self._window
        window.roll(now)
        wait = window.reset_in(now)
        rpm, tpm = limits.requests_per_minute, limits.tokens_per_minute
        if rpm and window.requests >= rpm:
            return f"Rate limit reached for requests per minute: limit {rpm}, used {window.requests}.", wait
        if tpm and window.tokens + conversation.input_tokens > tpm:
            return (
                f"Rate limit reached for tokens per minute: limit {tpm}, used {window.tokens}, "
                f"requested {conversation.input_tokens}.",
                wait,
            )
        window.requests += 1
        window.tokens += conversation.input_tokens
        return None

    def _rate_headers(self, now: float) -> list[tuple[str, str]]:
        limits, window = self.spec.limits, self._window
        rpm = limits.requests_per_minute or UNLIMITED_REQUESTS
        tpm = limits.tokens_per_minute or UNLIMITED_TOKENS
        remaining_requests, remaining_tokens = max(rpm - window.requests, 0), max(tpm - window.tokens, 0)
        if self.spec.provider is Provider.OPENAI:
            return openai.rate_headers(rpm, remaining_requests, tpm, remaining_tokens, window.reset_in(now))
        return anthropic.rate_headers(rpm, remaining_requests, tpm, remaining_tokens, now + window.reset_in(now))

    def _call_id(self) -> tuple[str, int]:
        return openai.CALL_ID if self.spec.provider is Provider.OPENAI else anthropic.CALL_ID

    # --- bodies ----------------------------------------------------------------------------------

    def _refusal(self, refusal: Refused, headers: list[tuple[str, str]], request_id: str) -> Reply:
        if self.spec.provider is Provider.OPENAI:
            payload = openai.refused(refusal.status, refusal.message, refusal.param, refusal.code)
        else:
            payload = anthropic.refused(refusal.status, refusal.message, request_id)
        reply = Reply(refusal.status, [JSON, *headers], json.dumps(payload).encode())
        reply.error = refusal.message
        return reply

    def _error_payload(
        self, error: ErrorSpec, conversation: Conversation, request_id: str
    ) -> tuple[int, dict[str, Any]]:
        if self.spec.provider is Provider.OPENAI:
            return openai.error(error.kind, error.message, conversation.model)
        return anthropic.error(error.kind, error.message, conversation.model, request_id)

    def _error(
        self, error: ErrorSpec, conversation: Conversation, headers: list[tuple[str, str]], request_id: str
    ) -> Reply:
        status, payload = self._error_payload(error, conversation, request_id)
        retry = error.retry_after
        if retry is None and error.kind is ErrorKind.RATE_LIMITED:
            retry = 1.0
        extra = _retry_headers(retry) if retry is not None else []
        return Reply(status, [JSON, *headers, *extra], json.dumps(payload).encode())

    def _body(self, conversation: Conversation, ans: Answer, now: float) -> dict[str, Any]:
        if self.spec.provider is Provider.ANTHROPIC:
            return anthropic.Turn(conversation, ans, self._rng).message()
        turn = openai.Turn(conversation, ans, self._rng, now)
        return turn.chat() if conversation.endpoint is Endpoint.CHAT else turn.response()

    def _events(
        self, conversation: Conversation, ans: Answer, now: float, failure: tuple[int, dict[str, Any]] | None
    ) -> list[Event]:
        if self.spec.provider is Provider.ANTHROPIC:
            return anthropic.Turn(conversation, ans, self._rng).events(failure)
        turn = openai.Turn(conversation, ans, self._rng, now)
        return turn.chat_events(failure) if conversation.endpoint is Endpoint.CHAT else turn.response_events(failure)
