"""Builders for a session's built-in OpenAI or Anthropic simulation: replies, rules and the `LlmSimulation` message.

Each returns a plain `simulatord.v1` message, so a raw message is accepted wherever a helper's result is. With
`from simulatord_client import llm, contains`::

    weather = llm.openai(
        llm.rule(llm.error("rate_limited", retry_after=0.05), "Sunny.", last_user=contains("weather"), times=2),
        llm.rule(llm.tool_call("get_weather", {"city": "Paris"}), tools=["get_weather"], tool_result=False),
        default="I don't know.",
        limits={"requests_per_minute": 60},
    )
    with sim.session(llm=weather) as s:
        client = openai.OpenAI(base_url=s.openai_url, api_key="test")
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from simulatord.v1 import llm_pb2, stub_pb2
from simulatord_client.builders import FieldSpec, fields
from simulatord_client.durations import DurationLike, duration

_V = TypeVar("_V")

#: A reply: a str (the assistant's text), an LlmReply from `text()`, `reply()`, `tool_call()`... or `error()`,
#: a bare LlmToolCall (a reply making that one call) or a bare LlmError.
ReplyLike = str | llm_pb2.LlmReply | llm_pb2.LlmToolCall | llm_pb2.LlmError
#: A condition on a string of the conversation: a str (equals) or a StringMatcher from `contains()`, `regex()`...
TextMatch = str | stub_pb2.StringMatcher
#: Rate limits: an LlmLimits message or `{"requests_per_minute": n, "tokens_per_minute": n}`.
LimitsLike = llm_pb2.LlmLimits | Mapping[str, int]

_ERRORS: dict[str, llm_pb2.LlmErrorKind.ValueType] = {
    "bad_request": llm_pb2.LLM_ERROR_KIND_BAD_REQUEST,
    "unauthorized": llm_pb2.LLM_ERROR_KIND_UNAUTHORIZED,
    "permission_denied": llm_pb2.LLM_ERROR_KIND_PERMISSION_DENIED,
    "not_found": llm_pb2.LLM_ERROR_KIND_NOT_FOUND,
    "rate_limited": llm_pb2.LLM_ERROR_KIND_RATE_LIMITED,
    "quota_exceeded": llm_pb2.LLM_ERROR_KIND_QUOTA_EXCEEDED,
    "server_error": llm_pb2.LLM_ERROR_KIND_SERVER_ERROR,
    "unavailable": llm_pb2.LLM_ERROR_KIND_UNAVAILABLE,
    "overloaded": llm_pb2.LLM_ERROR_KIND_OVERLOADED,
}
# The kinds whose answers carry `retry-after`; elsewhere the daemon would drop the value, so refuse it here.
_RETRYABLE = ("rate_limited", "overloaded", "unavailable")
# StreamAbort also has END, but an LLM stream that ends cleanly mid-answer is not one of LlmStreamTrouble's kinds.
_ABORTS: dict[str, stub_pb2.StreamAbort.ValueType] = {
    "reset": stub_pb2.STREAM_ABORT_RESET,
    "close": stub_pb2.STREAM_ABORT_CLOSE,
}
_ENDPOINTS = ("chat.completions", "responses", "embeddings", "messages")
_RULE_ID = re.compile(r"[A-Za-z0-9_.-]{1,63}")


def _choice(table: Mapping[str, _V], name: str, what: str) -> _V:
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; one of {', '.join(table)}") from None


# --- pacing and trouble --------------------------------------------------------------------------


def timing(
    first_token: DurationLike | None = None,
    tokens_per_second: float = 0.0,
    jitter: float = 0.0,
    seed: int | None = None,
) -> llm_pb2.LlmTiming:
    """Pacing of a streamed reply: `first_token` (seconds) before the first token, then `tokens_per_second`
    (0: as fast as the wire), each gap varied by up to `jitter` (0 to 1) of itself, reproducibly with `seed`.

    Example: `llm.timing(first_token=0.2, tokens_per_second=50, jitter=0.1, seed=1)`.
    """
    if tokens_per_second < 0:
        raise ValueError(f"tokens_per_second must be 0 or more, got {tokens_per_second}")
    if not 0.0 <= jitter <= 1.0:
        raise ValueError(f"jitter is a fraction of each gap, from 0 to 1; got {jitter}")
    out = llm_pb2.LlmTiming(tokens_per_second=tokens_per_second, jitter=jitter)
    if first_token is not None:
        out.first_token.CopyFrom(duration(first_token))
    if seed is not None:
        out.seed = seed
    return out


def trouble(
    *,
    abort_after_tokens: int = 0,
    abort: str = "reset",
    stall_after_tokens: int = 0,
    ping_interval: DurationLike | None = None,
) -> llm_pb2.LlmStreamTrouble:
    """Trouble while a reply streams: end the connection after `abort_after_tokens` (`abort`: `"reset"` or
    `"close"`), or hold the stream open after `stall_after_tokens`, with a keep-alive every `ping_interval`.

    Example: `llm.reply("a long answer", trouble=llm.trouble(abort_after_tokens=3, abort="close"))`.
    """
    if abort_after_tokens and stall_after_tokens:
        raise ValueError("a stream either aborts or stalls: give abort_after_tokens or stall_after_tokens, not both")
    if abort_after_tokens < 0 or stall_after_tokens < 0:
        raise ValueError("abort_after_tokens and stall_after_tokens count tokens: 0 or more")
    out = llm_pb2.LlmStreamTrouble(
        abort_after_tokens=abort_after_tokens,
        abort=_choice(_ABORTS, abort, "abort"),
        stall_after_tokens=stall_after_tokens,
    )
    if ping_interval is not None:
        out.ping_interval.CopyFrom(duration(ping_interval))
    return out


# --- replies -------------------------------------------------------------------------------------


def tool_call(
    name: str, arguments: Mapping[str, Any] | str | None = None, *, id: str | None = None
) -> llm_pb2.LlmToolCall:
    """One tool call; `arguments` is a dict (sent as JSON text) or JSON text sent as written; `id` None: the
    provider's format (`call_…`, `toolu_…`). As a reply on its own it is a reply making this one call.

    Example: `llm.tool_call("get_weather", {"city": "Paris"})`.
    """
    if not name:
        raise ValueError("a tool call needs the tool's name")
    if arguments is None:
        text = ""
    elif isinstance(arguments, str):
        text = arguments
    else:
        # Compact and in the given order, as the providers send arguments; non-ASCII kept as is.
        text = json.dumps(dict(arguments), separators=(",", ":"), ensure_ascii=False)
    return llm_pb2.LlmToolCall(id=id or "", name=name, arguments=text)


def _usage(usage: tuple[int, int] | llm_pb2.LlmUsage) -> llm_pb2.LlmUsage:
    if isinstance(usage, llm_pb2.LlmUsage):
        return usage
    input_tokens, output_tokens = usage
    return llm_pb2.LlmUsage(input_tokens=input_tokens, output_tokens=output_tokens)


def reply(
    text: str = "",
    *,
    tool_calls: Iterable[llm_pb2.LlmToolCall] = (),
    thinking: str = "",
    refusal: str = "",
    stop_reason: str = "",
    usage: tuple[int, int] | llm_pb2.LlmUsage | None = None,
    timing: llm_pb2.LlmTiming | None = None,
    trouble: llm_pb2.LlmStreamTrouble | None = None,
) -> llm_pb2.LlmReply:
    """What the simulated model answers: `text`, `tool_calls`, `thinking` (combined, output in that order),
    or a `refusal`; `stop_reason` in the provider's words overrides the implied one; `usage` is an
    `(input_tokens, output_tokens)` pair overriding the counted usage (0 keeps the count); `timing` and
    `trouble` shape it when streamed.

    Example: `llm.reply("Let me check.", tool_calls=[llm.tool_call("get_weather", {"city": "Paris"})])`.
    """
    if text and refusal:
        # The refusal replaces the text: a reply with both would send only one of them.
        raise TypeError("give text or refusal, not both (a refusal is the reply's whole answer)")
    out = llm_pb2.LlmReply(
        text=text, tool_calls=list(tool_calls), thinking=thinking, refusal=refusal, stop_reason=stop_reason
    )
    if usage is not None:
        out.usage.CopyFrom(_usage(usage))
    if timing is not None:
        out.timing.CopyFrom(timing)
    if trouble is not None:
        out.trouble.CopyFrom(trouble)
    return out


def text(value: str) -> llm_pb2.LlmReply:
    """A reply of plain text: `llm.text("Hi")` (a str is accepted wherever a reply is, and means the same)."""
    return llm_pb2.LlmReply(text=value)


def error(
    kind: str,
    *,
    retry_after: DurationLike | None = None,
    message: str | None = None,
    after_tokens: int = 0,
) -> llm_pb2.LlmReply:
    """A reply that is the provider's error, in its exact status and body shape. `kind`: `bad_request`,
    `unauthorized`, `permission_denied`, `not_found`, `rate_limited`, `quota_exceeded`, `server_error`,
    `unavailable` or `overloaded`. `retry_after` (seconds; for `rate_limited`, `overloaded`, `unavailable`)
    sets `retry-after`; `after_tokens` streams that many tokens first and sends the error as an event.

    Example: `llm.rule(llm.error("rate_limited", retry_after=0.05), "Hello!")` — a 429, then the answer.
    """
    out = llm_pb2.LlmError(kind=_choice(_ERRORS, kind, "LLM error kind"), message=message or "")
    if retry_after is not None:
        if kind not in _RETRYABLE:
            raise ValueError(f"retry_after applies to {', '.join(_RETRYABLE)} errors, not {kind!r}")
        out.retry_after.CopyFrom(duration(retry_after))
    if after_tokens < 0:
        raise ValueError(f"after_tokens must be 0 or more, got {after_tokens}")
    out.after_tokens = after_tokens
    return llm_pb2.LlmReply(error=out)


def to_reply(item: ReplyLike) -> llm_pb2.LlmReply:
    """The LlmReply for a str (its text), an LlmReply, an LlmToolCall (that one call) or an LlmError."""
    if isinstance(item, str):
        return text(item)
    if isinstance(item, llm_pb2.LlmReply):
        return item
    if isinstance(item, llm_pb2.LlmToolCall):
        return llm_pb2.LlmReply(tool_calls=[item])
    if isinstance(item, llm_pb2.LlmError):
        return llm_pb2.LlmReply(error=item)
    raise TypeError(
        f"a reply is a str, an LlmReply (llm.reply(), llm.error()...) or an LlmToolCall, not {type(item).__name__}"
    )


# --- rules ---------------------------------------------------------------------------------------


def _text_match(value: TextMatch) -> stub_pb2.StringMatcher:
    if isinstance(value, str):
        return stub_pb2.StringMatcher(equals=value)
    if isinstance(value, stub_pb2.StringMatcher):
        return value
    raise TypeError(
        f"a text condition is a str or a StringMatcher (contains(), regex()...), not {type(value).__name__}"
    )


def rule(
    *replies: ReplyLike,
    id: str = "",
    model: TextMatch | None = None,
    system: TextMatch | None = None,
    last_user: TextMatch | None = None,
    tools: Sequence[str] = (),
    turn: int = 0,
    tool_result: bool | None = None,
    tool_result_for: str = "",
    headers: FieldSpec | None = None,
    stream: bool | None = None,
    endpoint: str = "",
    times: int = 0,
) -> llm_pb2.LlmRule:
    """A scripted answer: requests whose conversation meets every given condition get the next of `replies`
    (the last repeats). Conditions: `model`, `system` (the system prompt), `last_user` (the last user message's
    text) as a str (equals) or `contains()` / `regex()` / `prefix()`; `tools` that must all be offered; the
    `turn` (user messages so far, from 1); `tool_result` (whether the conversation ends with one) and
    `tool_result_for` (a result for that tool); `headers` as for stubs; `stream`; `endpoint`
    (`chat.completions`, `responses`, `embeddings`, `messages`). `times` caps how many requests it answers.

    Example: `llm.rule(llm.error("overloaded"), "Hi!", last_user=contains("hello"), id="greet")`.
    """
    if not replies:
        raise ValueError("a rule needs at least one reply (a str, llm.reply(), llm.error()...)")
    if id and not _RULE_ID.fullmatch(id):
        raise ValueError(f"a rule id is 1-63 characters of A-Za-z0-9_.-, got {id!r}")
    if endpoint and endpoint not in _ENDPOINTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(_ENDPOINTS)}")
    if turn < 0 or times < 0:
        raise ValueError("turn and times must be 0 (any, unlimited) or more")
    if isinstance(tools, str):
        # A lone name would otherwise become one condition per letter.
        raise TypeError(f"tools is a list of tool names: tools=[{tools!r}]")
    condition = llm_pb2.LlmMatcher(
        tools=list(tools), turn=turn, tool_result_for=tool_result_for, endpoint=endpoint, headers=fields(headers)
    )
    if model is not None:
        condition.model.CopyFrom(_text_match(model))
    if system is not None:
        condition.system.CopyFrom(_text_match(system))
    if last_user is not None:
        condition.last_user_message.CopyFrom(_text_match(last_user))
    if tool_result is not None:
        condition.tool_result = tool_result
    if stream is not None:
        condition.stream = stream
    out = llm_pb2.LlmRule(id=id, replies=[to_reply(item) for item in replies], times=times)
    # An empty matcher and an unset one mean the same ("every request"); leave it unset so the message is minimal.
    if condition.ByteSize():
        out.match.CopyFrom(condition)
    return out


# --- simulations ---------------------------------------------------------------------------------


def _limits(limits: LimitsLike) -> llm_pb2.LlmLimits:
    if isinstance(limits, llm_pb2.LlmLimits):
        return limits
    known = ("requests_per_minute", "tokens_per_minute")
    unknown = set(limits) - set(known)
    if unknown:
        raise ValueError(f"unknown limit(s) {', '.join(sorted(unknown))}; the limits are {', '.join(known)}")
    return llm_pb2.LlmLimits(**{key: int(value) for key, value in limits.items()})


def simulation(
    provider: llm_pb2.LlmProvider.ValueType,
    *rules: llm_pb2.LlmRule,
    default: ReplyLike | None = None,
    models: Iterable[str] = (),
    strict: bool = True,
    limits: LimitsLike | None = None,
    timing: llm_pb2.LlmTiming | None = None,
) -> llm_pb2.LlmSimulation:
    """The LlmSimulation for `provider` (an LlmProvider value); `openai()` and `anthropic()` name it for you."""
    if isinstance(models, str):
        raise TypeError(f"models is a list of model names: models=[{models!r}]")
    for item in rules:
        if not isinstance(item, llm_pb2.LlmRule):
            # A reply passed where a rule belongs (`llm.openai("Hi")`) would otherwise fail deep in protobuf.
            raise TypeError(
                f"rules come from llm.rule(...), not {type(item).__name__}; a reply for every request is default=..."
            )
    chosen = [item.id for item in rules if item.id]
    repeated = sorted({rule_id for rule_id in chosen if chosen.count(rule_id) > 1})
    if repeated:
        raise ValueError(f"rule ids must be unique; repeated: {', '.join(repeated)}")
    out = llm_pb2.LlmSimulation(
        provider=provider,
        rules=list(rules),
        contract=llm_pb2.LLM_CONTRACT_STRICT if strict else llm_pb2.LLM_CONTRACT_LENIENT,
        models=list(models),
    )
    if default is not None:
        out.default_reply.CopyFrom(to_reply(default))
    if limits is not None:
        out.limits.CopyFrom(_limits(limits))
    if timing is not None:
        out.timing.CopyFrom(timing)
    return out


def openai(
    *rules: llm_pb2.LlmRule,
    default: ReplyLike | None = None,
    models: Iterable[str] = (),
    strict: bool = True,
    limits: LimitsLike | None = None,
    timing: llm_pb2.LlmTiming | None = None,
) -> llm_pb2.LlmSimulation:
    """A session simulating the OpenAI API (`/v1/chat/completions`, `/v1/responses`, `/v1/embeddings`,
    `/v1/models`): `rules` tried in order, `default` when none matches (None: a fixed text), `models` the known
    model names (empty: any), `strict` answering requests the real API rejects with its 400, `limits` the
    rate limits (`{"requests_per_minute": 3, "tokens_per_minute": 1000}`), `timing` pacing every stream.

    Example: `sim.session(llm=llm.openai(llm.rule("Hello!", last_user=contains("hi"))))`, then
    `openai.OpenAI(base_url=s.openai_url, api_key="test")`.
    """
    return simulation(
        llm_pb2.LLM_PROVIDER_OPENAI,
        *rules,
        default=default,
        models=models,
        strict=strict,
        limits=limits,
        timing=timing,
    )


def anthropic(
    *rules: llm_pb2.LlmRule,
    default: ReplyLike | None = None,
    models: Iterable[str] = (),
    strict: bool = True,
    limits: LimitsLike | None = None,
    timing: llm_pb2.LlmTiming | None = None,
) -> llm_pb2.LlmSimulation:
    """A session simulating the Anthropic API (`/v1/messages`, `/v1/messages/count_tokens`, `/v1/models`);
    the keywords are those of `openai()`.

    Example: `sim.session(llm=llm.anthropic(llm.rule(llm.reply("4", thinking="2+2"))))`, then
    `anthropic.Anthropic(base_url=s.anthropic_url, api_key="test")`.
    """
    return simulation(
        llm_pb2.LLM_PROVIDER_ANTHROPIC,
        *rules,
        default=default,
        models=models,
        strict=strict,
        limits=limits,
        timing=timing,
    )
