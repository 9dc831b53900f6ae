"""An LLM simulation as programmed: provider, rules, replies, limits and timing, validated when the session is made."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from simulatord.errors import SpecErrors
from simulatord.matching.matchers import FieldValueTest, StringTest
from simulatord.responding.streaming import Abort
from simulatord.responding.timing import MAX_DELAY_SECONDS

MAX_RULES = 1000
MAX_REPLIES = 1000
MAX_TEXT = 4 * 1024 * 1024
_RULE_ID = re.compile(r"[A-Za-z0-9_.-]{1,63}")
DEFAULT_TEXT = "This is a simulated reply."


class Provider(StrEnum):
    OPENAI = "openai"
    ANTHROPIC = "anthropic"


class Endpoint(StrEnum):
    """The API operations a simulation answers, by the names the journal and rules use."""

    CHAT = "chat.completions"
    RESPONSES = "responses"
    EMBEDDINGS = "embeddings"
    MODELS = "models"
    MESSAGES = "messages"
    COUNT_TOKENS = "messages.count_tokens"


ENDPOINTS: dict[Provider, tuple[Endpoint, ...]] = {
    Provider.OPENAI: (Endpoint.CHAT, Endpoint.RESPONSES, Endpoint.EMBEDDINGS, Endpoint.MODELS),
    Provider.ANTHROPIC: (Endpoint.MESSAGES, Endpoint.COUNT_TOKENS, Endpoint.MODELS),
}

STOP_REASONS: dict[Provider, frozenset[str]] = {
    Provider.OPENAI: frozenset({"stop", "length", "tool_calls", "content_filter", "function_call"}),
    Provider.ANTHROPIC: frozenset(
        {
            "end_turn",
            "max_tokens",
            "stop_sequence",
            "tool_use",
            "refusal",
            "pause_turn",
            "model_context_window_exceeded",
        }
    ),
}


class ErrorKind(StrEnum):
    BAD_REQUEST = "bad_request"
    UNAUTHORIZED = "unauthorized"
    PERMISSION_DENIED = "permission_denied"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXCEEDED = "quota_exceeded"
    SERVER_ERROR = "server_error"
    UNAVAILABLE = "unavailable"
    OVERLOADED = "overloaded"


@dataclass(frozen=True)
class ToolCall:
    id: str  # empty: generated in the provider's format
    name: str
    arguments: str  # a JSON object's text, sent as written


@dataclass(frozen=True)
class ErrorSpec:
    kind: ErrorKind
    message: str = ""  # empty: the provider's usual message
    retry_after: float | None = None
    after_tokens: int = 0  # streams only: this many output tokens first, then the error as an event


@dataclass(frozen=True)
class Timing:
    """Pacing of a stream; zero fields are unset, and a reply's unset fields take the simulation's."""

    first_token: float = 0.0
    tokens_per_second: float = 0.0
    jitter: float = 0.0
    seed: int | None = None

    def over(self, base: Timing) -> Timing:
        return Timing(
            self.first_token or base.first_token,
            self.tokens_per_second or base.tokens_per_second,
            self.jitter or base.jitter,
            self.seed if self.seed is not None else base.seed,
        )


@dataclass(frozen=True)
class Trouble:
    abort_after_tokens: int = 0
    abort: Abort = Abort.RESET
    stall_after_tokens: int = 0
    ping_interval: float = 0.0


@dataclass(frozen=True)
class ReplySpec:
    """One scripted answer: text, thinking and tool calls, or a refusal, or an error."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    thinking: str = ""
    refusal: str = ""
    error: ErrorSpec | None = None
    stop_reason: str = ""
    input_tokens: int = 0  # 0: counted
    output_tokens: int = 0  # 0: counted
    timing: Timing = Timing()
    trouble: Trouble = Trouble()


DEFAULT_REPLY = ReplySpec(text=DEFAULT_TEXT)


@dataclass(frozen=True)
class Matcher:
    """Conditions on the parsed conversation and the request; every condition set must hold."""

    model: StringTest | None = None
    system: StringTest | None = None
    last_user: StringTest | None = None
    tools: tuple[str, ...] = ()
    turn: int = 0
    tool_result: bool | None = None
    tool_result_for: str = ""
    headers: tuple[FieldValueTest, ...] = ()
    stream: bool | None = None
    endpoint: str = ""


@dataclass(frozen=True)
class RuleSpec:
    id: str
    matcher: Matcher
    replies: tuple[ReplySpec, ...]
    times: int = 0  # 0: unlimited


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int = 0
    tokens_per_minute: int = 0


@dataclass(frozen=True)
class SimulationSpec:
    provider: Provider
    rules: tuple[RuleSpec, ...] = ()
    default: ReplySpec = DEFAULT_REPLY
    strict: bool = True
    models: tuple[str, ...] = ()
    limits: Limits = Limits()
    timing: Timing = Timing()


# --- validation ----------------------------------------------------------------------------------


def _seconds(value: float, where: str, errors: SpecErrors) -> float:
    if not (math.isfinite(value) and 0 <= value <= MAX_DELAY_SECONDS):
        errors.add(where, f"must be between 0 and {MAX_DELAY_SECONDS:.0f} seconds, got {value:g}")
        return 0.0
    return value


def timing(
    first_token: float, tokens_per_second: float, jitter: float, seed: int | None, where: str, errors: SpecErrors
) -> Timing:
    first_token = _seconds(first_token, f"{where}.first_token", errors)
    if not (math.isfinite(tokens_per_second) and 0 <= tokens_per_second <= 1_000_000):
        errors.add(f"{where}.tokens_per_second", f"must be between 0 and 1000000, got {tokens_per_second:g}")
        tokens_per_second = 0.0
    if not (math.isfinite(jitter) and 0 <= jitter <= 1):
        errors.add(f"{where}.jitter", f"must be between 0 and 1, got {jitter:g}")
        jitter = 0.0
    return Timing(first_token, tokens_per_second, jitter, seed)


def trouble(
    abort_after_tokens: int, abort: Abort, stall_after_tokens: int, ping_interval: float, where: str, errors: SpecErrors
) -> Trouble:
    for name, value in (("abort_after_tokens", abort_after_tokens), ("stall_after_tokens", stall_after_tokens)):
        if value < 0:
            errors.add(f"{where}.{name}", f"must not be negative, got {value}")
    if abort_after_tokens and stall_after_tokens:
        errors.add(f"{where}.stall_after_tokens", "excludes abort_after_tokens: a stream either stalls or aborts")
    if abort is Abort.END:
        errors.add(f"{where}.abort", "must be RESET or CLOSE (ending the stream normally is no abort)")
    ping_interval = _seconds(ping_interval, f"{where}.ping_interval", errors)
    if ping_interval and ping_interval < 0.01:
        errors.add(f"{where}.ping_interval", "must be at least 10 milliseconds")
    return Trouble(max(abort_after_tokens, 0), abort, max(stall_after_tokens, 0), ping_interval)


def tool_call(call_id: str, name: str, arguments: str, where: str, errors: SpecErrors) -> ToolCall:
    if not name:
        errors.add(f"{where}.name", "is required")
    elif not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", name):
        errors.add(f"{where}.name", "must be 1-128 characters of A-Z, a-z, 0-9, '_' and '-', as tool names are")
    if call_id and not re.fullmatch(r"[A-Za-z0-9_-]{1,128}", call_id):
        errors.add(f"{where}.id", "must be 1-128 characters of A-Z, a-z, 0-9, '_' and '-'")
    arguments = arguments or "{}"
    try:
        if not isinstance(json.loads(arguments), dict):
            errors.add(f"{where}.arguments", "must be a JSON object")
    except ValueError as exc:
        errors.add(f"{where}.arguments", f"is not JSON: {exc}")
    return ToolCall(call_id, name, arguments)


def error(
    kind: ErrorKind | None, message: str, retry_after: float | None, after_tokens: int, where: str, errors: SpecErrors
) -> ErrorSpec:
    if kind is None:
        errors.add(f"{where}.kind", "is required")
        kind = ErrorKind.SERVER_ERROR
    if retry_after is not None:
        retry_after = _seconds(retry_after, f"{where}.retry_after", errors)
        if kind not in (ErrorKind.RATE_LIMITED, ErrorKind.OVERLOADED, ErrorKind.UNAVAILABLE):
            errors.add(f"{where}.retry_after", "only RATE_LIMITED, OVERLOADED and UNAVAILABLE answer with retry-after")
    if after_tokens < 0:
        errors.add(f"{where}.after_tokens", f"must not be negative, got {after_tokens}")
    return ErrorSpec(kind, message, retry_after, max(after_tokens, 0))


def reply(value: ReplySpec, provider: Provider, where: str, errors: SpecErrors) -> ReplySpec:
    """Checks what combines: an error excludes everything else, a refusal excludes text."""
    if value.error is not None and (value.text or value.tool_calls or value.thinking or value.refusal):
        errors.add(f"{where}.error", "excludes text, tool_calls, thinking and refusal: an error is the whole answer")
    if value.refusal and (value.text or value.tool_calls):
        errors.add(f"{where}.refusal", "replaces the text and tool calls: set one or the other")
    if value.stop_reason and value.stop_reason not in STOP_REASONS[provider]:
        allowed = ", ".join(sorted(STOP_REASONS[provider]))
        errors.add(f"{where}.stop_reason", f"{value.stop_reason!r} is not a {provider.value} stop reason ({allowed})")
    for name, size in (("text", len(value.text)), ("thinking", len(value.thinking)), ("refusal", len(value.refusal))):
        if size > MAX_TEXT:
            errors.add(f"{where}.{name}", f"must be at most {MAX_TEXT} characters")
    if value.input_tokens < 0 or value.output_tokens < 0:
        errors.add(f"{where}.usage", "token counts must not be negative")
    ids = [c.id for c in value.tool_calls if c.id]
    if len(ids) != len(set(ids)):
        errors.add(f"{where}.tool_calls", "call ids must be unique within a reply")
    return value


def matcher(value: Matcher, provider: Provider, where: str, errors: SpecErrors) -> Matcher:
    if value.turn < 0:
        errors.add(f"{where}.turn", f"must not be negative, got {value.turn}")
    names = [e.value for e in ENDPOINTS[provider] if e not in (Endpoint.MODELS, Endpoint.COUNT_TOKENS)]
    if value.endpoint and value.endpoint not in names:
        errors.add(f"{where}.endpoint", f"{value.endpoint!r} is not a {provider.value} endpoint ({', '.join(names)})")
    for i, name in enumerate(value.tools):
        if not name:
            errors.add(f"{where}.tools[{i}]", "must not be empty")
    return value


def simulation(
    provider: Provider | None,
    rules: Sequence[tuple[str, Matcher, Sequence[ReplySpec], int]],
    default: ReplySpec | None,
    strict: bool,
    models: Sequence[str],
    limits: Limits,
    base_timing: Timing,
    where: str,
    errors: SpecErrors,
) -> SimulationSpec:
    """Validates a whole simulation; `where` is the LlmSimulation message's path. Replies are checked against
    the provider, so a stop reason of the other provider is refused when programmed, not sent."""
    if provider is None:
        errors.add(f"{where}.provider", "is required: OPENAI or ANTHROPIC")
        provider = Provider.OPENAI
    if len(rules) > MAX_RULES:
        errors.add(f"{where}.rules", f"must hold at most {MAX_RULES} rules")
    built: list[RuleSpec] = []
    seen: set[str] = set()
    for i, (rule_id, rule_matcher, replies, times) in enumerate(rules):
        at = f"{where}.rules[{i}]"
        rule_id = rule_id or f"rule-{i}"
        if not _RULE_ID.fullmatch(rule_id):
            errors.add(f"{at}.id", "must be 1-63 characters of A-Z, a-z, 0-9, '_', '.' and '-'")
        elif rule_id in seen:
            errors.add(f"{at}.id", f"{rule_id!r} is already the id of an earlier rule")
        seen.add(rule_id)
        if not replies:
            errors.add(f"{at}.replies", "must hold at least one reply")
        elif len(replies) > MAX_REPLIES:
            errors.add(f"{at}.replies", f"must hold at most {MAX_REPLIES} replies")
        if times < 0:
            errors.add(f"{at}.times", f"must not be negative, got {times}")
        checked = tuple(reply(r, provider, f"{at}.replies[{j}]", errors) for j, r in enumerate(replies))
        built.append(RuleSpec(rule_id, matcher(rule_matcher, provider, f"{at}.match", errors), checked, max(times, 0)))
    for i, model in enumerate(models):
        if not model or len(model) > 256 or any(c.isspace() for c in model):
            errors.add(f"{where}.models[{i}]", "must be a model name: 1-256 characters, no spaces")
    for name, value in (
        ("requests_per_minute", limits.requests_per_minute),
        ("tokens_per_minute", limits.tokens_per_minute),
    ):
        if value < 0:
            errors.add(f"{where}.limits.{name}", f"must not be negative, got {value}")
    return SimulationSpec(
        provider=provider,
        rules=tuple(built),
        default=reply(default, provider, f"{where}.default_reply", errors) if default is not None else DEFAULT_REPLY,
        strict=strict,
        models=tuple(models),
        limits=limits,
        timing=base_timing,
    )
