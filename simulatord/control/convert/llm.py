"""LlmSimulation messages into the domain's simulation spec, and recorded LLM requests back into LlmExchange."""

from __future__ import annotations

from simulatord.control.convert.matchers import field_matchers, string_matcher
from simulatord.control.convert.scalars import seconds
from simulatord.errors import SpecErrors
from simulatord.llm import spec
from simulatord.llm.simulation import LlmRecord
from simulatord.matching.matchers import FieldSource
from simulatord.responding.streaming import Abort
from simulatord.v1 import llm_pb2, stub_pb2

_PROVIDERS = {
    llm_pb2.LLM_PROVIDER_OPENAI: spec.Provider.OPENAI,
    llm_pb2.LLM_PROVIDER_ANTHROPIC: spec.Provider.ANTHROPIC,
}
_ERRORS = {
    llm_pb2.LLM_ERROR_KIND_BAD_REQUEST: spec.ErrorKind.BAD_REQUEST,
    llm_pb2.LLM_ERROR_KIND_UNAUTHORIZED: spec.ErrorKind.UNAUTHORIZED,
    llm_pb2.LLM_ERROR_KIND_PERMISSION_DENIED: spec.ErrorKind.PERMISSION_DENIED,
    llm_pb2.LLM_ERROR_KIND_NOT_FOUND: spec.ErrorKind.NOT_FOUND,
    llm_pb2.LLM_ERROR_KIND_RATE_LIMITED: spec.ErrorKind.RATE_LIMITED,
    llm_pb2.LLM_ERROR_KIND_QUOTA_EXCEEDED: spec.ErrorKind.QUOTA_EXCEEDED,
    llm_pb2.LLM_ERROR_KIND_SERVER_ERROR: spec.ErrorKind.SERVER_ERROR,
    llm_pb2.LLM_ERROR_KIND_UNAVAILABLE: spec.ErrorKind.UNAVAILABLE,
    llm_pb2.LLM_ERROR_KIND_OVERLOADED: spec.ErrorKind.OVERLOADED,
}
_ABORTS = {
    stub_pb2.STREAM_ABORT_UNSPECIFIED: Abort.RESET,
    stub_pb2.STREAM_ABORT_RESET: Abort.RESET,
    stub_pb2.STREAM_ABORT_CLOSE: Abort.CLOSE,
    stub_pb2.STREAM_ABORT_END: Abort.END,
}


def _timing(msg: llm_pb2.LlmTiming, where: str, errors: SpecErrors) -> spec.Timing:
    seed = msg.seed if msg.HasField("seed") else None
    return spec.timing(seconds(msg.first_token), msg.tokens_per_second, msg.jitter, seed, where, errors)


def _reply(msg: llm_pb2.LlmReply, where: str, errors: SpecErrors) -> spec.ReplySpec:
    error = None
    if msg.HasField("error"):
        e = msg.error
        retry = seconds(e.retry_after) if e.HasField("retry_after") else None
        error = spec.error(_ERRORS.get(e.kind), e.message, retry, e.after_tokens, f"{where}.error", errors)
    trouble = msg.trouble
    value = spec.ReplySpec(
        text=msg.text,
        tool_calls=tuple(
            spec.tool_call(c.id, c.name, c.arguments, f"{where}.tool_calls[{i}]", errors)
            for i, c in enumerate(msg.tool_calls)
        ),
        thinking=msg.thinking,
        refusal=msg.refusal,
        error=error,
        stop_reason=msg.stop_reason,
        input_tokens=msg.usage.input_tokens,
        output_tokens=msg.usage.output_tokens,
        timing=_timing(msg.timing, f"{where}.timing", errors),
        trouble=spec.trouble(
            trouble.abort_after_tokens,
            _ABORTS.get(trouble.abort, Abort.RESET),
            trouble.stall_after_tokens,
            seconds(trouble.ping_interval),
            f"{where}.trouble",
            errors,
        ),
    )
    return value  # what combines with what is checked by the simulation, which knows the provider


def _matcher(msg: llm_pb2.LlmMatcher, where: str, errors: SpecErrors) -> spec.Matcher:
    return spec.Matcher(
        model=string_matcher(msg.model, f"{where}.model", errors) if msg.HasField("model") else None,
        system=string_matcher(msg.system, f"{where}.system", errors) if msg.HasField("system") else None,
        last_user=string_matcher(msg.last_user_message, f"{where}.last_user_message", errors)
        if msg.HasField("last_user_message")
        else None,
        tools=tuple(msg.tools),
        turn=msg.turn,
        tool_result=msg.tool_result if msg.HasField("tool_result") else None,
        tool_result_for=msg.tool_result_for,
        headers=tuple(field_matchers(FieldSource.HEADERS, msg.headers, f"{where}.headers", errors)),
        stream=msg.stream if msg.HasField("stream") else None,
        endpoint=msg.endpoint,
    )


def simulation(msg: llm_pb2.LlmSimulation, where: str, errors: SpecErrors) -> spec.SimulationSpec:
    """Validates a whole LlmSimulation; `where` is its field path (`session.llm`)."""
    provider = _PROVIDERS.get(msg.provider)
    rules = [
        (
            rule.id,
            _matcher(rule.match, f"{where}.rules[{i}].match", errors),
            [_reply(r, f"{where}.rules[{i}].replies[{j}]", errors) for j, r in enumerate(rule.replies)],
            rule.times,
        )
        for i, rule in enumerate(msg.rules)
    ]
    default = _reply(msg.default_reply, f"{where}.default_reply", errors) if msg.HasField("default_reply") else None
    limits = spec.Limits(msg.limits.requests_per_minute, msg.limits.tokens_per_minute)
    return spec.simulation(
        provider,
        rules,
        default,
        msg.contract != llm_pb2.LLM_CONTRACT_LENIENT,
        tuple(msg.models),
        limits,
        _timing(msg.timing, f"{where}.timing", errors),
        where,
        errors,
    )


def record_to_proto(record: LlmRecord) -> llm_pb2.LlmExchange:
    return llm_pb2.LlmExchange(
        endpoint=record.endpoint,
        model=record.model,
        message_count=record.message_count,
        tools=record.tools,
        rule=record.rule,
        stream=record.stream,
        turn=record.turn,
        usage=llm_pb2.LlmUsage(input_tokens=record.input_tokens, output_tokens=record.output_tokens),
        refusal_reason=record.refusal_reason,
    )
