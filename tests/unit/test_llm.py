"""The LLM simulation's pure parts without a server: the token rule, reading conversations and their refusals,
rules that explain their misses, and LlmSimulation messages validated with their field paths."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from google.protobuf import json_format

from simulatord.control.convert.llm import simulation
from simulatord.errors import SpecErrors
from simulatord.llm import anthropic, openai, tokens
from simulatord.llm.answer import answer, filler
from simulatord.llm.conversation import Conversation, Refused, read
from simulatord.llm.rules import Rule, match, select
from simulatord.llm.spec import DEFAULT_REPLY, Endpoint, Matcher, Provider, ReplySpec, RuleSpec, ToolCall
from simulatord.matching.matchers import StringOp, StringTest
from simulatord.matching.request import HttpRequest
from simulatord.v1 import llm_pb2

OPENAI, ANTHROPIC = Provider.OPENAI, Provider.ANTHROPIC


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def chat(*messages: dict[str, Any], **fields: Any) -> Conversation:
    return read(Endpoint.CHAT, OPENAI, body(model="gpt-4o", messages=list(messages), **fields), strict=True)


def messages(*items: dict[str, Any], **fields: Any) -> Conversation:
    fields.setdefault("max_tokens", 100)
    return read(Endpoint.MESSAGES, ANTHROPIC, body(model="claude", messages=list(items), **fields), strict=True)


# --- the token rule ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "pieces"),
    [
        ("Hello, world!", ["Hello", ",", " world", "!"]),
        ('{"city": "Paris"}', ["{", '"', "city", '"', ":", ' "', "Paris", '"', "}"]),
        ("  two  spaces ", ["  two", "  spaces", " "]),
        ("", []),
    ],
)
def test_tokens_split_at_words_and_marks_and_join_back(text: str, pieces: list[str]) -> None:
    assert tokens.split(text) == pieces
    assert "".join(tokens.split(text)) == text
    assert tokens.count(text) == len(pieces)


def test_filler_has_exactly_the_tokens_asked_for() -> None:
    assert [tokens.count(filler(n)) for n in (0, 1, 7, 40)] == [0, 1, 7, 40]


# --- reading conversations -----------------------------------------------------------------------


def test_chat_conversation_fields() -> None:
    c = chat(
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Weather?"}]},
        {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "wx"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        tools=[{"type": "function", "function": {"name": "wx", "parameters": {}}}],
        stream=True,
        stream_options={"include_usage": True},
        n=2,
    )
    assert (c.model, c.system, c.last_user, c.turn, c.message_count) == ("gpt-4o", "Be brief.", "Weather?", 1, 4)
    assert (c.tools, c.tool_result_for, c.stream, c.include_usage, c.n) == (("wx",), "wx", True, True, 2)
    assert c.input_tokens > 0


@pytest.mark.parametrize(
    ("request_body", "status", "message"),
    [
        (b"{not json", 400, "We could not parse the JSON body"),
        (body(messages=[]), 400, "you must provide a model parameter"),
        (body(model="m"), 400, "Missing required parameter: 'messages'."),
        (body(model="m", messages=[]), 400, "Invalid 'messages': empty array"),
        (body(model="m", messages=[{"role": "user", "content": "x"}], stream_options={}), 400, "'stream_options'"),
        (body(model="m", messages=[{"role": "tool", "tool_call_id": "call_9"}]), 400, "must be a response"),
        (body(model="m", messages=[{"role": "robot"}]), 400, "Invalid value: 'robot'"),
        (body(model="m", messages=[{"role": "user", "content": "x"}], n=0), 400, "'n'"),
    ],
)
def test_chat_refusals_are_the_apis_own(request_body: bytes, status: int, message: str) -> None:
    with pytest.raises(Refused) as refused:
        read(Endpoint.CHAT, OPENAI, request_body, strict=True)
    assert refused.value.status == status
    assert message in refused.value.message


def test_tool_calls_left_unanswered_are_refused_in_strict_mode_only() -> None:
    call = {"role": "assistant", "tool_calls": [{"id": "call_1", "function": {"name": "wx"}}]}
    request = body(model="m", messages=[{"role": "user", "content": "x"}, call, {"role": "user", "content": "y"}])
    with pytest.raises(Refused, match="did not have response messages: call_1"):
        read(Endpoint.CHAT, OPENAI, request, strict=True)
    assert read(Endpoint.CHAT, OPENAI, request, strict=False).turn == 2


@pytest.mark.parametrize(
    ("request_body", "message"),
    [
        (body(model="c", messages=[{"role": "user", "content": "x"}]), "max_tokens: Field required"),
        (body(max_tokens=5, messages=[]), "model: Field required"),
        (body(model="c", max_tokens=5, messages=[{"role": "system", "content": "x"}]), 'Unexpected role "system"'),
        (body(model="c", max_tokens=5, messages=[{"role": "assistant", "content": "x"}]), "first message"),
        (
            body(
                model="c",
                max_tokens=5,
                messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x"}]}],
            ),
            "unexpected `tool_use_id` found in `tool_result` blocks: toolu_x",
        ),
        (
            body(
                model="c",
                max_tokens=2000,
                messages=[{"role": "user", "content": "x"}],
                thinking={"type": "enabled", "budget_tokens": 10},
            ),
            "budget_tokens",
        ),
    ],
)
def test_messages_refusals_are_the_apis_own(request_body: bytes, message: str) -> None:
    with pytest.raises(Refused) as refused:
        read(Endpoint.MESSAGES, ANTHROPIC, request_body, strict=True)
    assert refused.value.status == 400
    assert message in refused.value.message


def test_anthropic_tool_result_ends_the_conversation_without_a_new_turn() -> None:
    c = messages(
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "wx", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]},
        system=[{"type": "text", "text": "Be brief."}],
    )
    assert (c.turn, c.last_user, c.tool_result_for, c.system) == (1, "Weather in Paris?", "wx", "Be brief.")


def test_responses_input_as_a_string_or_items() -> None:
    as_text = read(Endpoint.RESPONSES, OPENAI, body(model="m", input="Hi", instructions="Sys"), strict=True)
    assert (as_text.last_user, as_text.system, as_text.turn) == ("Hi", "Sys", 1)
    items = [
        {"role": "user", "content": "Hi"},
        {"type": "function_call", "call_id": "call_1", "name": "wx", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "18C"},
    ]
    assert read(Endpoint.RESPONSES, OPENAI, body(model="m", input=items), strict=True).tool_result_for == "wx"
    with pytest.raises(Refused, match="No tool call found"):
        read(Endpoint.RESPONSES, OPENAI, body(model="m", input=items[2:]), strict=True)


# --- rules -----------------------------------------------------------------------------------------


def equals(value: str) -> StringTest:
    return StringTest(StringOp.EQUALS, value)


def test_a_matcher_names_each_field_that_differs() -> None:
    c = chat({"role": "user", "content": "hello"}, stream=True)
    matcher = Matcher(model=equals("gpt-5"), last_user=equals("hello"), tools=("wx",), stream=False, turn=2)
    result = match(matcher, c, HttpRequest("POST", "/v1/chat/completions"))
    assert [m.field for m in result.mismatches] == ["model", "tools", "turn", "stream"]
    assert result.checked == 5
    assert match(Matcher(last_user=equals("hello")), c, HttpRequest("POST", "/")).matched


def test_rules_answer_in_sequence_then_repeat_the_last_and_run_out_after_times() -> None:
    replies = (ReplySpec(text="one"), ReplySpec(text="two"))
    rule = Rule(RuleSpec("r", Matcher(), replies, times=3), "s/llm/rules/r")
    c = chat({"role": "user", "content": "x"})
    taken = []
    for _ in range(4):
        chosen, misses = select((rule,), c, HttpRequest("POST", "/"))
        taken.append(chosen.take().text if chosen else [m.mismatches[-1].field for m in misses])
    assert taken == ["one", "two", "two", ["times"]]


# --- answers in the providers' formats -------------------------------------------------------------


def test_openai_stream_is_chunks_then_done_with_usage_when_asked() -> None:
    c = chat({"role": "user", "content": "x"}, stream=True, stream_options={"include_usage": True})
    ans = answer(ReplySpec(text="Hi there"), c, random.Random(1), *openai.CALL_ID)
    events = openai.Turn(c, ans, random.Random(1), 0).chat_events()
    datas = [e.data.decode().removeprefix("data: ").strip() for e in events]
    assert datas[-1] == "[DONE]"
    chunks = [json.loads(d) for d in datas[:-1]]
    assert [ch["choices"][0]["delta"].get("content") for ch in chunks[:-2]] == ["", "Hi", " there"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 2
    assert [e.tokens for e in events] == [0, 1, 1, 0, 0, 0]


def test_anthropic_stream_events_in_order_with_a_tool_call() -> None:
    c = messages({"role": "user", "content": "x"}, stream=True)
    reply = ReplySpec(text="Let me look.", tool_calls=(ToolCall("toolu_1", "wx", '{"city":"Paris"}'),))
    ans = answer(reply, c, random.Random(1), *anthropic.CALL_ID)
    names = [
        e.data.decode().split("\n")[0].removeprefix("event: ")
        for e in anthropic.Turn(c, ans, random.Random(1)).events()
    ]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-4:] == ["content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    assert names.count("content_block_start") == 2


def test_max_tokens_cuts_the_text_and_says_so() -> None:
    c = messages({"role": "user", "content": "x"}, max_tokens=2)
    ans = answer(ReplySpec(text="one two three four"), c, random.Random(1), *anthropic.CALL_ID)
    message = anthropic.Turn(c, ans, random.Random(1)).message()
    assert (message["content"][0]["text"], message["stop_reason"]) == ("one two", "max_tokens")


def test_embeddings_are_deterministic_unit_vectors() -> None:
    c = read(Endpoint.EMBEDDINGS, OPENAI, body(model="text-embedding-3-small", input=["a", "b"], dimensions=8), True)
    first, again = openai.embeddings(c), openai.embeddings(c)
    vectors = [item["embedding"] for item in first["data"]]
    assert first == again and len(vectors) == 2 and vectors[0] != vectors[1]
    assert all(len(v) == 8 and abs(sum(x * x for x in v) - 1) < 1e-9 for v in vectors)


# --- LlmSimulation messages --------------------------------------------------------------------------


def violations(message: dict[str, Any]) -> list[str]:
    errors = SpecErrors()
    simulation(json_format.ParseDict(message, llm_pb2.LlmSimulation()), "session.llm", errors)
    return [v.field for v in errors.violations]


def test_a_valid_simulation_converts() -> None:
    errors = SpecErrors()
    msg = json_format.ParseDict(
        {
            "provider": "LLM_PROVIDER_ANTHROPIC",
            "rules": [{"id": "greet", "match": {"lastUserMessage": {"contains": "hi"}}, "replies": [{"text": "Hi!"}]}],
            "models": ["claude-sonnet-4-5"],
        },
        llm_pb2.LlmSimulation(),
    )
    spec = simulation(msg, "session.llm", errors)
    assert errors.violations == []
    assert (spec.provider, [r.id for r in spec.rules], spec.strict, spec.default) == (
        ANTHROPIC,
        ["greet"],
        True,
        DEFAULT_REPLY,
    )


@pytest.mark.parametrize(
    ("message", "fields"),
    [
        ({}, ["session.llm.provider"]),
        ({"provider": 1, "rules": [{}]}, ["session.llm.rules[0].replies"]),
        ({"provider": 1, "rules": [{"id": "a b", "replies": [{}]}]}, ["session.llm.rules[0].id"]),
        (
            {"provider": 1, "rules": [{"id": "a", "replies": [{}]}, {"id": "a", "replies": [{}]}]},
            ["session.llm.rules[1].id"],
        ),
        (
            {"provider": 1, "rules": [{"replies": [{"text": "x", "error": {"kind": 5}}]}]},
            ["session.llm.rules[0].replies[0].error"],
        ),
        (
            {"provider": 1, "rules": [{"replies": [{"toolCalls": [{"name": "", "arguments": "[1]"}]}]}]},
            [
                "session.llm.rules[0].replies[0].tool_calls[0].name",
                "session.llm.rules[0].replies[0].tool_calls[0].arguments",
            ],
        ),
        ({"provider": 1, "defaultReply": {"stopReason": "end_turn"}}, ["session.llm.default_reply.stop_reason"]),
        (
            {"provider": 2, "rules": [{"match": {"endpoint": "chat.completions"}, "replies": [{}]}]},
            ["session.llm.rules[0].match.endpoint"],
        ),
        (
            {"provider": 1, "rules": [{"match": {"model": {"regex": "("}}, "replies": [{}]}]},
            ["session.llm.rules[0].match.model.regex"],
        ),
        ({"provider": 1, "timing": {"jitter": 2}}, ["session.llm.timing.jitter"]),
        (
            {"provider": 1, "defaultReply": {"trouble": {"abortAfterTokens": 1, "stallAfterTokens": 1}}},
            ["session.llm.default_reply.trouble.stall_after_tokens"],
        ),
        ({"provider": 1, "models": ["two words"]}, ["session.llm.models[0]"]),
        (
            {"provider": 1, "defaultReply": {"error": {"kind": 7, "retryAfter": "1s"}}},
            ["session.llm.default_reply.error.retry_after"],
        ),
    ],
)
def test_invalid_simulations_name_their_fields(message: dict[str, Any], fields: list[str]) -> None:
    assert violations(message) == fields
