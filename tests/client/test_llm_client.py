"""The LLM client helpers: `llm` builders produce the intended messages, sessions carry them, exchanges expose them."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import anthropic
import openai
import pytest

from simulatord.v1 import exchange_pb2, llm_pb2, stub_pb2
from simulatord_client import AsyncSimulator, Exchange, LlmCall, Simulator, absent, contains, llm, regex
from simulatord_client.session_core import SessionCore

# --- replies -------------------------------------------------------------------------------------


def test_text_and_str_are_the_same_reply() -> None:
    assert llm.text("Hi") == llm_pb2.LlmReply(text="Hi")
    assert llm.to_reply("Hi") == llm.text("Hi")


def test_tool_call_sends_a_dict_as_compact_json_in_order() -> None:
    call = llm.tool_call("get_weather", {"city": "Paris", "unit": "°C"})
    assert call.name == "get_weather"
    assert call.id == ""
    assert call.arguments == '{"city":"Paris","unit":"°C"}'
    assert json.loads(call.arguments) == {"city": "Paris", "unit": "°C"}


def test_tool_call_keeps_json_text_and_a_chosen_id() -> None:
    call = llm.tool_call("lookup", '{"q": 1}', id="call_1")
    assert (call.id, call.arguments) == ("call_1", '{"q": 1}')
    assert llm.tool_call("now").arguments == ""  # the daemon sends `{}`
    with pytest.raises(ValueError, match="name"):
        llm.tool_call("")


def test_a_tool_call_alone_is_a_reply_making_it() -> None:
    call = llm.tool_call("get_weather", {"city": "Paris"})
    assert llm.to_reply(call) == llm_pb2.LlmReply(tool_calls=[call])


def test_reply_sets_every_part() -> None:
    pacing = llm.timing(first_token=0.2, tokens_per_second=50, jitter=0.1, seed=1)
    abort = llm.trouble(abort_after_tokens=3, abort="close")
    out = llm.reply(
        "Checking.",
        tool_calls=[llm.tool_call("get_weather", {"city": "Paris"})],
        thinking="The user wants weather.",
        stop_reason="tool_use",
        usage=(12, 34),
        timing=pacing,
        trouble=abort,
    )
    assert out.text == "Checking."
    assert [c.name for c in out.tool_calls] == ["get_weather"]
    assert out.thinking == "The user wants weather."
    assert out.stop_reason == "tool_use"
    assert (out.usage.input_tokens, out.usage.output_tokens) == (12, 34)
    assert out.timing == pacing
    assert out.trouble == abort
    assert not out.HasField("error")


def test_reply_leaves_unset_parts_unset() -> None:
    out = llm.reply(refusal="I can't help with that.")
    assert out.refusal == "I can't help with that."
    assert out.text == ""
    for part in ("usage", "timing", "trouble", "error"):
        assert not out.HasField(part)
    assert llm.reply(usage=llm_pb2.LlmUsage(output_tokens=5)).usage.output_tokens == 5


def test_text_and_refusal_together_are_refused() -> None:
    with pytest.raises(TypeError, match="text or refusal"):
        llm.reply("Sure!", refusal="No.")


def test_error_maps_each_kind() -> None:
    kinds = {
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
    for name, kind in kinds.items():
        out = llm.error(name)
        assert out.error.kind == kind
        assert not out.error.HasField("retry_after")
        assert (out.text, out.error.message, out.error.after_tokens) == ("", "", 0)


def test_error_with_retry_after_message_and_tokens_first() -> None:
    out = llm.error("rate_limited", retry_after=0.05, message="slow down", after_tokens=4).error
    assert out.retry_after.ToNanoseconds() == 50_000_000
    assert (out.message, out.after_tokens) == ("slow down", 4)
    assert llm.error("overloaded", retry_after=timedelta(seconds=2)).error.retry_after.seconds == 2


def test_unknown_error_kind_is_a_value_error_listing_the_kinds() -> None:
    with pytest.raises(ValueError, match=r"unknown LLM error kind 'RATE_LIMITED'; one of bad_request, .*overloaded"):
        llm.error("RATE_LIMITED")
    with pytest.raises(ValueError, match="unknown LLM error kind 'teapot'"):
        llm.error("teapot")


def test_retry_after_only_where_the_provider_sends_it() -> None:
    with pytest.raises(ValueError, match="retry_after applies to rate_limited, overloaded, unavailable"):
        llm.error("bad_request", retry_after=1)
    with pytest.raises(ValueError, match="after_tokens"):
        llm.error("server_error", after_tokens=-1)


def test_a_raw_error_message_is_a_reply() -> None:
    raw = llm_pb2.LlmError(kind=llm_pb2.LLM_ERROR_KIND_SERVER_ERROR)
    assert llm.to_reply(raw) == llm_pb2.LlmReply(error=raw)
    with pytest.raises(TypeError, match="a reply is a str"):
        llm.to_reply(42)  # type: ignore[arg-type]


# --- timing and trouble --------------------------------------------------------------------------


def test_timing_fields() -> None:
    out = llm.timing(first_token=0.2, tokens_per_second=50, jitter=0.1, seed=1)
    assert out.first_token.ToNanoseconds() == 200_000_000
    assert (out.tokens_per_second, out.seed) == (50, 1)
    assert out.jitter == pytest.approx(0.1)
    unseeded = llm.timing(tokens_per_second=10)
    assert not unseeded.HasField("seed")
    assert not unseeded.HasField("first_token")
    assert llm.timing(seed=0).HasField("seed")  # 0 is a seed, not "unset"


def test_timing_checks_its_ranges() -> None:
    with pytest.raises(ValueError, match="jitter"):
        llm.timing(jitter=1.5)
    with pytest.raises(ValueError, match="tokens_per_second"):
        llm.timing(tokens_per_second=-1)


def test_trouble_abort_and_stall() -> None:
    reset = llm.trouble(abort_after_tokens=5)
    assert (reset.abort_after_tokens, reset.abort) == (5, stub_pb2.STREAM_ABORT_RESET)
    assert llm.trouble(abort_after_tokens=1, abort="close").abort == stub_pb2.STREAM_ABORT_CLOSE
    stall = llm.trouble(stall_after_tokens=2, ping_interval=0.5)
    assert (stall.stall_after_tokens, stall.ping_interval.ToNanoseconds()) == (2, 500_000_000)
    assert not llm.trouble(stall_after_tokens=2).HasField("ping_interval")


def test_trouble_refuses_bad_combinations() -> None:
    with pytest.raises(ValueError, match="unknown abort 'end'; one of reset, close"):
        llm.trouble(abort_after_tokens=1, abort="end")
    with pytest.raises(ValueError, match="aborts or stalls"):
        llm.trouble(abort_after_tokens=1, stall_after_tokens=1)


# --- rules ---------------------------------------------------------------------------------------


def test_rule_conditions() -> None:
    out = llm.rule(
        "Hello!",
        id="greet",
        model="gpt-4o",
        system=contains("pirate"),
        last_user=regex(r"^hi\b", ignore_case=True),
        tools=["get_weather", "search"],
        turn=2,
        tool_result=False,
        tool_result_for="search",
        headers={"x-api-key": contains("test"), "x-debug": absent()},
        stream=True,
        endpoint="chat.completions",
        times=3,
    )
    assert (out.id, out.times) == ("greet", 3)
    assert list(out.replies) == [llm.text("Hello!")]
    m = out.match
    assert m.model == stub_pb2.StringMatcher(equals="gpt-4o")
    assert m.system == contains("pirate")
    assert m.last_user_message == regex(r"^hi\b", ignore_case=True)
    assert list(m.tools) == ["get_weather", "search"]
    assert (m.turn, m.tool_result_for, m.endpoint) == (2, "search", "chat.completions")
    assert m.HasField("tool_result") and m.tool_result is False
    assert m.HasField("stream") and m.stream is True
    assert [(h.name, h.absent) for h in m.headers] == [("x-api-key", False), ("x-debug", True)]
    assert m.headers[0].value == contains("test")


def test_rule_without_conditions_matches_everything() -> None:
    out = llm.rule("Hi")
    assert not out.HasField("match")
    assert (out.id, out.times) == ("", 0)


def test_rule_replies_in_order_of_any_kind() -> None:
    call = llm.tool_call("get_weather", {"city": "Paris"})
    out = llm.rule(llm.error("rate_limited", retry_after=0.05), "Sunny.", llm.reply(thinking="hm", text="ok"), call)
    assert out.replies[0].error.kind == llm_pb2.LLM_ERROR_KIND_RATE_LIMITED
    assert [r.text for r in out.replies[1:3]] == ["Sunny.", "ok"]
    assert list(out.replies[3].tool_calls) == [call]


def test_rule_unset_booleans_stay_unset() -> None:
    m = llm.rule("x", turn=1).match
    assert not m.HasField("tool_result")
    assert not m.HasField("stream")


def test_rule_refuses_what_the_daemon_would() -> None:
    with pytest.raises(ValueError, match="at least one reply"):
        llm.rule(model="gpt-4o")
    with pytest.raises(ValueError, match="1-63 characters"):
        llm.rule("x", id="no spaces")
    with pytest.raises(ValueError, match=r"unknown endpoint 'completions'; one of chat\.completions"):
        llm.rule("x", endpoint="completions")
    with pytest.raises(TypeError, match=r"tools=\['search'\]"):
        llm.rule("x", tools="search")
    with pytest.raises(TypeError, match="StringMatcher"):
        llm.rule("x", model=3)  # type: ignore[arg-type]


# --- simulations ---------------------------------------------------------------------------------


def test_openai_simulation() -> None:
    greet = llm.rule("Hello!", last_user=contains("hi"))
    out = llm.openai(
        greet, default="Hmm.", models=["gpt-4o"], limits={"requests_per_minute": 3, "tokens_per_minute": 1000}
    )
    assert out.provider == llm_pb2.LLM_PROVIDER_OPENAI
    assert list(out.rules) == [greet]
    assert out.default_reply == llm.text("Hmm.")
    assert out.contract == llm_pb2.LLM_CONTRACT_STRICT
    assert list(out.models) == ["gpt-4o"]
    assert (out.limits.requests_per_minute, out.limits.tokens_per_minute) == (3, 1000)
    assert not out.HasField("timing")


def test_anthropic_simulation_lenient_with_timing() -> None:
    pacing = llm.timing(tokens_per_second=100)
    out = llm.anthropic(strict=False, timing=pacing, default=llm.error("overloaded"))
    assert out.provider == llm_pb2.LLM_PROVIDER_ANTHROPIC
    assert out.contract == llm_pb2.LLM_CONTRACT_LENIENT
    assert out.timing == pacing
    assert out.default_reply.error.kind == llm_pb2.LLM_ERROR_KIND_OVERLOADED
    assert not out.HasField("limits")
    assert not llm.anthropic().HasField("default_reply")


def test_simulation_refuses_mistakes() -> None:
    with pytest.raises(ValueError, match=r"unknown limit.*requests_per_second.*requests_per_minute, tokens_per_minute"):
        llm.openai(limits={"requests_per_second": 1})
    with pytest.raises(ValueError, match="repeated: a"):
        llm.openai(llm.rule("1", id="a"), llm.rule("2", id="a"))
    with pytest.raises(TypeError, match="default="):
        llm.openai("Hi")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"models=\['gpt-4o'\]"):
        llm.anthropic(models="gpt-4o")


# --- sessions and exchanges ----------------------------------------------------------------------


def test_session_options_carry_the_simulation() -> None:
    simulation = llm.openai(llm.rule("Hello!"))
    core = SessionCore("t", llm=simulation)
    assert core._create.session.llm == simulation
    assert not SessionCore("t")._create.session.HasField("llm")
    with pytest.raises(TypeError, match=r"llm= takes llm.openai\(...\)"):
        SessionCore("t", llm=llm.rule("x"))  # type: ignore[arg-type]


def test_sdk_base_urls() -> None:
    core = SessionCore("t")
    core.info.name = "tenants/t/sessions/s"
    core.info.base_url = "http://127.0.0.1:8080/tenants/t/sessions/s"
    assert core.openai_url == "http://127.0.0.1:8080/tenants/t/sessions/s/v1"
    assert core.anthropic_url == "http://127.0.0.1:8080/tenants/t/sessions/s"


def test_exchange_exposes_the_llm_call() -> None:
    message = exchange_pb2.Exchange(
        sequence=1,
        llm=llm_pb2.LlmExchange(
            endpoint="messages",
            model="claude-sonnet-4-5",
            message_count=3,
            tools=["get_weather"],
            rule="weather",
            stream=True,
            turn=2,
            usage=llm_pb2.LlmUsage(input_tokens=20, output_tokens=7),
        ),
    )
    call = Exchange.from_message(message).llm
    assert call == LlmCall(
        endpoint="messages",
        model="claude-sonnet-4-5",
        message_count=3,
        tools=("get_weather",),
        rule="weather",
        stream=True,
        turn=2,
        input_tokens=20,
        output_tokens=7,
        refusal_reason="",
    )
    assert not call.refused
    refused = Exchange.from_message(exchange_pb2.Exchange(llm=llm_pb2.LlmExchange(refusal_reason="max_tokens missing")))
    assert refused.llm is not None and refused.llm.refused
    assert Exchange.from_message(exchange_pb2.Exchange(sequence=2)).llm is None


# --- against a real daemon -----------------------------------------------------------------------


def test_openai_session_answers_the_sdk(simulator: Simulator) -> None:
    script = llm.openai(
        llm.rule(llm.error("rate_limited", retry_after=0.01), "Hello!", id="greet", last_user=contains("hi"))
    )
    with simulator.session(tenant="client-llm", llm=script) as s:
        client = openai.OpenAI(base_url=s.openai_url, api_key="test", max_retries=2)
        completion = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi there"}])
        assert completion.choices[0].message.content == "Hello!"
        calls = [e.llm for e in s.exchanges()]
        # The SDK retried the 429 itself: two exchanges, both answered by the rule.
        assert [(c.endpoint, c.model, c.rule, c.turn) for c in calls if c] == [
            ("chat.completions", "gpt-4o", "greet", 1),
            ("chat.completions", "gpt-4o", "greet", 1),
        ]


def test_anthropic_session_tool_call_async(simulatord_address: str) -> None:
    script = llm.anthropic(
        llm.rule(llm.tool_call("get_weather", {"city": "Paris"}), id="ask", tools=["get_weather"], tool_result=False),
        llm.rule("Sunny in Paris.", id="answer", tool_result_for="get_weather"),
    )
    tools: list[anthropic.types.ToolParam] = [
        {"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}
    ]

    async def scenario() -> None:
        async with AsyncSimulator(simulatord_address) as sim, sim.session(tenant="client-llm", llm=script) as s:
            client = anthropic.AsyncAnthropic(base_url=s.anthropic_url, api_key="test", max_retries=0)
            messages: list[anthropic.types.MessageParam] = [{"role": "user", "content": "Weather in Paris?"}]
            first = await client.messages.create(
                model="claude-sonnet-4-5", max_tokens=100, messages=messages, tools=tools
            )
            [use] = [block for block in first.content if block.type == "tool_use"]
            assert (use.name, use.input, first.stop_reason) == ("get_weather", {"city": "Paris"}, "tool_use")
            messages += [
                {"role": "assistant", "content": first.content},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18C sunny"}]},
            ]
            second = await client.messages.create(
                model="claude-sonnet-4-5", max_tokens=100, messages=messages, tools=tools
            )
            assert [block.text for block in second.content if block.type == "text"] == ["Sunny in Paris."]
            recorded = [e.llm for e in await s.exchanges()]
            assert [(c.rule, c.tools, c.turn) for c in recorded if c] == [
                ("ask", ("get_weather",), 1),
                ("answer", ("get_weather",), 1),
            ]
            await client.close()

    asyncio.run(scenario())
