"""The built-in LLM simulations against the official `openai` and `anthropic` SDKs (the oracle), on a real daemon.

Where an SDK is lenient (it would parse a stream that the real API never sends), the wire is also checked with
httpx against what the providers send: event names and order, id prefixes, `data: [DONE]`, request ids and the
rate-limit headers. Timing assertions are lower bounds only.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import openai
import pytest

from simulatord.v1 import exchange_pb2
from simulatord_client import AsyncSimulator, Exchange, Session, Simulator, contains, llm
from simulatord_client.embedded import EmbeddedDaemon

GPT = "gpt-4o"
CLAUDE = "claude-sonnet-4-5"
WEATHER_TOOL_OPENAI: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_TOOL_ANTHROPIC: Any = {
    "name": "get_weather",
    "description": "Weather in a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ABORTED = exchange_pb2.RESPONSE_END_ABORTED
ABORT_CAUSES = {"reset": httpx2.ReadError, "close": httpx2.RemoteProtocolError}


@pytest.fixture(scope="module")
def sim(daemon: EmbeddedDaemon) -> Iterator[Simulator]:
    with Simulator(daemon.grpc_address) as simulator:
        yield simulator


def oai(s: Session, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(base_url=s.openai_url, api_key="test", max_retries=options.pop("max_retries", 0), **options)


def ant(s: Session, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=s.anthropic_url, api_key="test", max_retries=options.pop("max_retries", 0), **options
    )


def user(text: str) -> Any:
    return [{"role": "user", "content": text}]


def sse(text: str) -> list[tuple[str, str]]:
    """(event name, data) for each event of an SSE body; comments come as ("", ": comment")."""
    out: list[tuple[str, str]] = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = "", ""
        for line in block.split("\n"):
            if line.startswith(":"):
                out.append(("", line))
            elif line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
        if data:
            out.append((name, data))
    return out


def only_llm(exchanges: list[Exchange]) -> list[Exchange]:
    return [e for e in exchanges if e.llm is not None]


def finished(s: Session, count: int) -> list[Exchange]:
    """The journal once `count` exchanges are recorded (a stream is recorded when it ends)."""
    return s.wait_for(count, timeout=5)


# --- 1. Chat Completions -------------------------------------------------------------------------


def test_openai_chat_non_streaming_n2_json_and_headers(sim: Simulator, tenant: str) -> None:
    script = llm.openai(
        llm.rule('{"answer": 42}', id="json", last_user=contains("json")), limits={"requests_per_minute": 50}
    )
    with sim.session(tenant=tenant, llm=script) as s:
        client = oai(s)
        raw = client.chat.completions.with_raw_response.create(
            model=GPT, messages=user("json please"), n=2, response_format={"type": "json_object"}
        )
        completion = raw.parse()
        assert completion.id.startswith("chatcmpl-")
        assert completion.object == "chat.completion"
        assert completion.model == GPT
        assert completion.system_fingerprint and completion.system_fingerprint.startswith("fp_")
        assert abs(completion.created - time.time()) < 120
        assert [c.index for c in completion.choices] == [0, 1]
        for choice in completion.choices:
            assert json.loads(choice.message.content or "") == {"answer": 42}
            assert choice.finish_reason == "stop"
            assert choice.message.role == "assistant"
        assert completion.usage is not None
        assert completion.usage.completion_tokens > 0
        assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
        assert raw.headers["x-request-id"].startswith("req_")
        assert raw.headers["x-ratelimit-limit-requests"] == "50"
        assert raw.headers["x-ratelimit-remaining-requests"] == "49"
        again = client.chat.completions.with_raw_response.create(model=GPT, messages=user("json again"))
        assert again.headers["x-ratelimit-remaining-requests"] == "48"
        assert again.headers["x-request-id"] != raw.headers["x-request-id"]
        assert int(again.headers["x-ratelimit-remaining-tokens"]) < int(raw.headers["x-ratelimit-remaining-tokens"])
        [first, second] = [e.llm for e in only_llm(s.exchanges())]
        assert first is not None and second is not None
        assert (first.endpoint, first.model, first.rule, first.turn, first.stream) == (
            "chat.completions",
            GPT,
            "json",
            1,
            False,
        )
        assert first.output_tokens == completion.usage.completion_tokens


def test_openai_chat_stream_sync_with_usage(sim: Simulator, tenant: str, http: httpx.Client) -> None:
    script = llm.openai(default="Hello there, friend!")
    with sim.session(tenant=tenant, llm=script) as s:
        client = oai(s)
        chunks = list(
            client.chat.completions.create(
                model=GPT, messages=user("hi"), stream=True, stream_options={"include_usage": True}
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Hello there, friend!"
        assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
        assert chunks[0].choices[0].delta.role == "assistant"
        # The usage chunk comes last, with no choices; the others carry `usage: null`.
        assert chunks[-1].choices == [] and chunks[-1].usage is not None
        assert chunks[-1].usage.completion_tokens == 5  # Hello / there / , / friend / !
        assert all(c.usage is None for c in chunks[:-1])
        assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] == "stop"

        # The wire: `data:` lines without event names, then the usage chunk, then `data: [DONE]`.
        with http.stream(
            "POST",
            s.openai_url + "/chat/completions",
            json={"model": GPT, "messages": user("hi"), "stream": True, "stream_options": {"include_usage": True}},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["x-request-id"].startswith("req_")
            body = response.read().decode()
        assert body.endswith("data: [DONE]\n\n")
        events = sse(body)
        assert all(name == "" for name, _ in events)
        assert events[-1][1] == "[DONE]"
        usage_chunk = json.loads(events[-2][1])
        assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] == 5
        assert all(json.loads(data)["usage"] is None for _, data in events[:-2])

        # Without include_usage there is no usage chunk and no `usage` key.
        plain = http.post(
            s.openai_url + "/chat/completions", json={"model": GPT, "messages": user("hi"), "stream": True}
        ).text
        plain_events = sse(plain)
        assert plain_events[-1][1] == "[DONE]"
        assert all("usage" not in json.loads(data) for _, data in plain_events[:-1])


def test_openai_chat_stream_helper_sync_n2(sim: Simulator, tenant: str) -> None:
    with sim.session(tenant=tenant, llm=llm.openai(default='{"ok": true}')) as s:
        client = oai(s)
        with client.chat.completions.stream(
            model=GPT, messages=user("hi"), n=2, response_format={"type": "json_object"}
        ) as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_completion()
        assert "content.delta" in kinds and kinds.count("content.done") == 2
        assert [json.loads(c.message.content or "") for c in final.choices] == [{"ok": True}, {"ok": True}]
        assert [c.finish_reason for c in final.choices] == ["stop", "stop"]
        assert final.id.startswith("chatcmpl-")


def test_openai_chat_streams_async(daemon: EmbeddedDaemon, tenant: str) -> None:
    async def scenario() -> None:
        async with (
            AsyncSimulator(daemon.grpc_address) as asim,
            asim.session(tenant=tenant, llm=llm.openai(default="Async hello!")) as s,
        ):
            client = openai.AsyncOpenAI(base_url=s.openai_url, api_key="test", max_retries=0)
            stream = await client.chat.completions.create(
                model=GPT, messages=user("hi"), stream=True, stream_options={"include_usage": True}
            )
            pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
            assert "".join(pieces) == "Async hello!"
            async with client.chat.completions.stream(model=GPT, messages=user("again")) as helper:
                deltas = [e.delta async for e in helper if e.type == "content.delta"]
                final = await helper.get_final_completion()
            assert "".join(deltas) == final.choices[0].message.content == "Async hello!"
            plain = await client.chat.completions.create(model=GPT, messages=user("plain"))
            assert plain.choices[0].message.content == "Async hello!"
            calls = [e.llm for e in await s.exchanges() if e.llm]
            assert [c.stream for c in calls] == [True, True, False]
            await client.close()

    asyncio.run(scenario())


# --- 2. Chat tool-call round trip ---------------------------------------------------------------


def test_openai_tool_call_round_trip_streamed(sim: Simulator, tenant: str, http: httpx.Client) -> None:
    script = llm.openai(
        llm.rule(llm.tool_call("get_weather", {"city": "Paris"}), id="ask", tools=["get_weather"], tool_result=False),
        llm.rule("Sunny, 18C in Paris.", id="answer", tool_result_for="get_weather"),
    )
    with sim.session(tenant=tenant, llm=script) as s:
        client = oai(s)
        messages: Any = user("Weather in Paris?")
        with client.chat.completions.stream(model=GPT, messages=messages, tools=[WEATHER_TOOL_OPENAI]) as stream:
            kinds = [event.type for event in stream]
            first = stream.get_final_completion()
        assert "tool_calls.function.arguments.delta" in kinds
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        [call] = choice.message.tool_calls or []
        assert call.id.startswith("call_") and call.type == "function"
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "Paris"}
        messages += [
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 18, "sky": "sunny"}'},
        ]
        second = client.chat.completions.create(model=GPT, messages=messages, tools=[WEATHER_TOOL_OPENAI])
        assert second.choices[0].message.content == "Sunny, 18C in Paris."
        assert second.choices[0].finish_reason == "stop"
        calls = [e.llm for e in only_llm(s.exchanges())]
        assert [(c.rule, c.tools, c.turn, c.message_count) for c in calls if c] == [
            ("ask", ("get_weather",), 1, 1),
            ("answer", ("get_weather",), 1, 3),
        ]
        # The wire: the first tool-call chunk names the call, the rest carry argument pieces only.
        body = http.post(
            s.openai_url + "/chat/completions",
            json={"model": GPT, "messages": user("Weather?"), "tools": [WEATHER_TOOL_OPENAI], "stream": True},
        ).text
        deltas = [json.loads(d)["choices"][0]["delta"] for _, d in sse(body)[:-1]]
        calls_wire = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
        assert calls_wire[0]["id"].startswith("call_") and calls_wire[0]["function"]["name"] == "get_weather"
        assert all("id" not in c and "name" not in c["function"] for c in calls_wire[1:])
        assert len(calls_wire) > 2
        assert json.loads("".join(c["function"]["arguments"] for c in calls_wire)) == {"city": "Paris"}


# --- 3. Responses API ---------------------------------------------------------------------------


def test_openai_responses_non_streaming_and_stream(sim: Simulator, tenant: str) -> None:
    script = llm.openai(
        llm.rule("Sunny in Paris.", id="answer", tool_result_for="get_weather"),
        llm.rule(llm.tool_call("get_weather", {"city": "Paris"}), id="call", tools=["get_weather"]),
        default="Bonjour tout le monde.",
    )
    with sim.session(tenant=tenant, llm=script) as s:
        client = oai(s)
        response = client.responses.create(model=GPT, input="Say hello", instructions="Be French.")
        assert response.id.startswith("resp_")
        assert response.status == "completed"
        assert response.output_text == "Bonjour tout le monde."
        assert response.usage is not None and response.usage.output_tokens == 5
        assert response.instructions == "Be French."

        with client.responses.stream(model=GPT, input="Say hello") as stream:
            kinds = [event.type for event in stream]
            final = stream.get_final_response()
        assert kinds[:2] == ["response.created", "response.in_progress"]
        assert kinds[-1] == "response.completed"
        assert kinds.count("response.output_text.delta") == 5
        assert kinds.index("response.output_text.delta") < kinds.index("response.output_text.done")
        assert final.output_text == "Bonjour tout le monde."

        tools: Any = [
            {"type": "function", "name": "get_weather", "parameters": WEATHER_TOOL_OPENAI["function"]["parameters"]}
        ]
        events = list(client.responses.create(model=GPT, input="Weather?", tools=tools, stream=True))
        numbers = [e.sequence_number for e in events]
        assert numbers == list(range(len(events)))
        arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
        assert json.loads(arguments) == {"city": "Paris"}
        added = [e for e in events if e.type == "response.output_item.added"]
        completed = events[-1]
        assert completed.type == "response.completed"
        [item] = completed.response.output
        assert item.type == "function_call"
        assert item.call_id.startswith("call_") and item.name == "get_weather"
        assert json.loads(item.arguments) == {"city": "Paris"}
        # The item keeps its id from `output_item.added` to the completed response, as the real stream does.
        assert [a.item.id for a in added] == [item.id]
        assert item.id is not None and item.id.startswith("fc_")
        # The SDK's own accumulator sees the same call.
        with client.responses.stream(model=GPT, input="Weather?", tools=tools) as helper:
            for _ in helper:
                pass
            streamed = helper.get_final_response()
        [call] = [o for o in streamed.output if o.type == "function_call"]
        assert json.loads(call.arguments) == {"city": "Paris"}
        # The round trip: the call goes back as input with its output; the second turn is matched by it.
        second = client.responses.create(
            model=GPT,
            tools=tools,
            input=[
                {"role": "user", "content": "Weather?"},
                call.model_dump(exclude_none=True),
                {"type": "function_call_output", "call_id": call.call_id, "output": '{"sky": "sunny"}'},
            ],
        )
        assert second.output_text == "Sunny in Paris."
        assert [e.llm.rule for e in only_llm(s.exchanges()) if e.llm][-1] == "answer"


def test_openai_responses_error_mid_stream_is_response_failed(sim: Simulator, tenant: str) -> None:
    script = llm.openai(llm.rule(llm.error("server_error", after_tokens=2)))
    with sim.session(tenant=tenant, llm=script) as s:
        events = list(oai(s).responses.create(model=GPT, input="hi", stream=True))
        kinds = [e.type for e in events]
        assert kinds[0] == "response.created"
        assert kinds.count("response.output_text.delta") == 2
        assert kinds[-1] == "response.failed"
        assert "response.completed" not in kinds
        failed = events[-1]
        assert failed.type == "response.failed"
        assert failed.response.status == "failed"
        assert failed.response.error is not None and failed.response.error.code == "server_error"


# --- 4. Embeddings ------------------------------------------------------------------------------


def test_openai_embeddings_deterministic_dimensions_unit_length(
    sim: Simulator, tenant: str, http: httpx.Client
) -> None:
    with sim.session(tenant=tenant, llm=llm.openai()) as s:
        client = oai(s)
        # The SDK asks for base64 and decodes it itself.
        first = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta"], dimensions=256)
        again = client.embeddings.create(model="text-embedding-3-small", input="alpha", dimensions=256)
        full = client.embeddings.create(model="text-embedding-3-small", input="alpha")
        assert [d.index for d in first.data] == [0, 1]
        alpha, beta = (d.embedding for d in first.data)
        assert len(alpha) == len(beta) == 256
        assert len(full.data[0].embedding) == 1536
        assert again.data[0].embedding == alpha
        assert alpha != beta
        for vector in (alpha, beta, full.data[0].embedding):
            assert math.isclose(math.sqrt(sum(v * v for v in vector)), 1.0, rel_tol=1e-4)
        assert first.usage.prompt_tokens == first.usage.total_tokens == 2
        requested = json.loads(s.exchanges()[0].body)
        assert requested["encoding_format"] == "base64"
        # Floats when asked for floats (the SDK's default is base64): the same vector, to float32 precision.
        floats = http.post(
            s.openai_url + "/embeddings",
            json={"model": "text-embedding-3-small", "input": "alpha", "dimensions": 256},
        ).json()
        assert floats["object"] == "list" and floats["data"][0]["object"] == "embedding"
        assert floats["data"][0]["embedding"] == pytest.approx(alpha, abs=1e-6)
        calls = [e.llm for e in only_llm(s.exchanges()) if e.llm]
        assert [c.endpoint for c in calls] == ["embeddings"] * 4
        assert [c.output_tokens for c in calls] == [0] * 4  # embeddings have input tokens only


# --- 5. Models and token counting -----------------------------------------------------------------


def test_models_list_both_providers(sim: Simulator, tenant: str) -> None:
    with sim.session(tenant=tenant, llm=llm.openai(models=["gpt-4o", "gpt-4o-mini"])) as s:
        assert [m.id for m in oai(s).models.list()] == ["gpt-4o", "gpt-4o-mini"]
    with sim.session(tenant=tenant, llm=llm.openai()) as s:
        assert GPT in [m.id for m in oai(s).models.list()]
    with sim.session(tenant=tenant, llm=llm.anthropic()) as s:
        page = ant(s).models.list()
        ids = [m.id for m in page]
        assert CLAUDE in ids
        assert all(m.type == "model" for m in page.data)


def test_anthropic_count_tokens_matches_usage(sim: Simulator, tenant: str) -> None:
    with sim.session(tenant=tenant, llm=llm.anthropic(default="Hi.")) as s:
        client = ant(s)
        counted = client.messages.count_tokens(
            model=CLAUDE, system="Be brief.", messages=user("How many tokens is this?"), tools=[WEATHER_TOOL_ANTHROPIC]
        )
        assert counted.input_tokens > 0
        message = client.messages.create(
            model=CLAUDE,
            max_tokens=100,
            system="Be brief.",
            messages=user("How many tokens is this?"),
            tools=[WEATHER_TOOL_ANTHROPIC],
        )
        assert message.usage.input_tokens == counted.input_tokens
        assert [e.llm.endpoint for e in only_llm(s.exchanges()) if e.llm] == ["messages.count_tokens", "messages"]


# --- 6. Anthropic Messages ------------------------------------------------------------------------


def test_thinking_is_sent_only_where_the_request_can_see_it(sim: Simulator, tenant: str) -> None:
    """The real APIs send no thinking block unless the request enables thinking, and Chat Completions none at
    all: a script with thinking must not teach a client to expect one."""
    reply = llm.reply("4", thinking="2 + 2 = 4")
    with sim.session(tenant=tenant, llm=llm.anthropic(default=reply)) as s:
        plain = ant(s).messages.create(model=CLAUDE, max_tokens=100, messages=user("2+2?"))
        thinking = ant(s).messages.create(
            model=CLAUDE,
            max_tokens=2048,
            thinking={"type": "enabled", "budget_tokens": 1024},
            messages=user("2+2?"),
        )
        assert [b.type for b in plain.content] == ["text"] and plain.usage.output_tokens == 1
        assert [b.type for b in thinking.content] == ["thinking", "text"] and thinking.usage.output_tokens == 6
    with sim.session(tenant=tenant, llm=llm.openai(default=reply)) as s:
        completion = oai(s).chat.completions.create(model=GPT, messages=user("2+2?"))
        assert completion.usage is not None and completion.usage.completion_tokens == 1


def test_anthropic_messages_non_streaming_and_stream_sync(sim: Simulator, tenant: str, http: httpx.Client) -> None:
    script = llm.anthropic(default="Hello from Claude.", limits={"requests_per_minute": 20})
    with sim.session(tenant=tenant, llm=script) as s:
        client = ant(s)
        raw = client.messages.with_raw_response.create(model=CLAUDE, max_tokens=100, messages=user("hi"))
        message = raw.parse()
        assert message.id.startswith("msg_")
        assert (message.role, message.model, message.stop_reason) == ("assistant", CLAUDE, "end_turn")
        assert [b.text for b in message.content if b.type == "text"] == ["Hello from Claude."]
        assert message.usage.output_tokens == 4
        assert raw.headers["request-id"].startswith("req_")
        assert raw.headers["anthropic-ratelimit-requests-limit"] == "20"
        assert raw.headers["anthropic-ratelimit-requests-remaining"] == "19"

        with client.messages.stream(model=CLAUDE, max_tokens=100, messages=user("hi")) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == "Hello from Claude."
        assert final.usage.output_tokens == 4 and final.stop_reason == "end_turn"
        assert final.id.startswith("msg_")

        with http.stream(
            "POST",
            s.anthropic_url + "/v1/messages",
            json={"model": CLAUDE, "max_tokens": 100, "messages": user("hi"), "stream": True},
            headers={"x-api-key": "test", "anthropic-version": "2023-06-01"},
        ) as response:
            assert response.headers["anthropic-ratelimit-requests-remaining"] == "17"
            assert response.headers["request-id"].startswith("req_")
            events = sse(response.read().decode())
        names = [name for name, _ in events]
        assert names == [
            "message_start",
            "content_block_start",
            "ping",
            *["content_block_delta"] * 4,
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
        for name, data in events:
            assert json.loads(data)["type"] == name  # the event name and the data's type agree
        start = json.loads(events[0][1])["message"]
        assert start["content"] == [] and start["stop_reason"] is None
        delta = json.loads(events[-2][1])
        assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] == 4


def test_anthropic_thinking_and_tool_use_streamed_async(daemon: EmbeddedDaemon, tenant: str) -> None:
    script = llm.anthropic(
        llm.rule(
            llm.reply(
                "Let me check.",
                thinking="The user wants the weather in Paris.",
                tool_calls=[llm.tool_call("get_weather", {"city": "Paris", "unit": "C"})],
            ),
            id="think",
            tools=["get_weather"],
            tool_result=False,
        ),
        llm.rule("It is sunny.", id="answer", tool_result_for="get_weather"),
    )

    async def scenario() -> None:
        async with AsyncSimulator(daemon.grpc_address) as asim, asim.session(tenant=tenant, llm=script) as s:
            client = anthropic.AsyncAnthropic(base_url=s.anthropic_url, api_key="test", max_retries=0)
            messages: Any = user("Weather in Paris?")
            json_pieces: list[str] = []
            async with client.messages.stream(
                model=CLAUDE,
                max_tokens=2048,
                thinking={"type": "enabled", "budget_tokens": 1024},
                tools=[WEATHER_TOOL_ANTHROPIC],
                messages=messages,
            ) as stream:
                async for event in stream:
                    if event.type == "input_json":
                        json_pieces.append(event.partial_json)
                final = await stream.get_final_message()
            thinking, text, use = final.content
            assert thinking.type == "thinking" and thinking.thinking == "The user wants the weather in Paris."
            assert thinking.signature  # opaque, but never empty
            assert text.type == "text" and text.text == "Let me check."
            assert use.type == "tool_use" and use.id.startswith("toolu_")
            assert (use.name, use.input) == ("get_weather", {"city": "Paris", "unit": "C"})
            assert len(json_pieces) > 2 and json.loads("".join(json_pieces)) == use.input
            assert final.stop_reason == "tool_use"
            # The answer goes back with the thinking block (signature and all), as the API requires.
            messages += [
                {"role": "assistant", "content": final.content},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}]},
            ]
            second = await client.messages.create(
                model=CLAUDE,
                max_tokens=2048,
                thinking={"type": "enabled", "budget_tokens": 1024},
                tools=[WEATHER_TOOL_ANTHROPIC],
                messages=messages,
            )
            assert [b.text for b in second.content if b.type == "text"] == ["It is sunny."]
            # Non-streamed, the same thinking carries the same signature.
            again = await client.messages.create(
                model=CLAUDE,
                max_tokens=2048,
                thinking={"type": "enabled", "budget_tokens": 1024},
                tools=[WEATHER_TOOL_ANTHROPIC],
                messages=user("Weather in Paris?"),
            )
            assert again.content[0].type == "thinking" and again.content[0].signature == thinking.signature
            rules = [e.llm.rule for e in await s.exchanges() if e.llm]
            assert rules == ["think", "answer", "think"]
            await client.close()

    asyncio.run(scenario())


def test_anthropic_text_stream_async(daemon: EmbeddedDaemon, tenant: str) -> None:
    async def scenario() -> None:
        async with (
            AsyncSimulator(daemon.grpc_address) as asim,
            asim.session(tenant=tenant, llm=llm.anthropic(default="Async Claude here.")) as s,
        ):
            client = anthropic.AsyncAnthropic(base_url=s.anthropic_url, api_key="test", max_retries=0)
            async with client.messages.stream(model=CLAUDE, max_tokens=100, messages=user("hi")) as stream:
                text = "".join([piece async for piece in stream.text_stream])
                final = await stream.get_final_message()
            assert text == "Async Claude here."
            assert final.content[0].type == "text" and final.content[0].text == text
            raw = await client.messages.create(model=CLAUDE, max_tokens=100, messages=user("hi"), stream=True)
            kinds = [event.type async for event in raw]
            assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
            await client.close()

    asyncio.run(scenario())


# --- 7. Retries ---------------------------------------------------------------------------------


def test_openai_sdk_retries_429_honouring_retry_after(sim: Simulator, tenant: str, http: httpx.Client) -> None:
    script = llm.openai(llm.rule(llm.error("rate_limited", retry_after=0.05), "Hello!", id="flaky"))
    with sim.session(tenant=tenant, llm=script) as s:
        client = oai(s, max_retries=2)
        started = time.monotonic()
        completion = client.chat.completions.create(model=GPT, messages=user("hi"))
        elapsed = time.monotonic() - started
        assert completion.choices[0].message.content == "Hello!"
        exchanges = only_llm(s.exchanges())
        assert [e.status for e in exchanges] == [429, 200]
        assert [e.llm.rule for e in exchanges if e.llm] == ["flaky", "flaky"]
        assert elapsed >= 0.05
    # The wire: whole seconds rounded up, and the milliseconds both SDKs read first.
    script = llm.openai(llm.rule(llm.error("rate_limited", retry_after=0.05)))
    with sim.session(tenant=tenant, llm=script) as s:
        response = http.post(s.openai_url + "/chat/completions", json={"model": GPT, "messages": user("hi")})
        assert response.status_code == 429
        assert (response.headers["retry-after"], response.headers["retry-after-ms"]) == ("1", "50")
        assert response.json()["error"]["code"] == "rate_limit_exceeded"
        assert response.headers["x-request-id"].startswith("req_")


def test_anthropic_sdk_retries_529_overloaded(sim: Simulator, tenant: str) -> None:
    script = llm.anthropic(llm.rule(llm.error("overloaded", retry_after=0.05), "Back again.", id="busy"))
    with sim.session(tenant=tenant, llm=script) as s:
        client = ant(s, max_retries=2)
        started = time.monotonic()
        message = client.messages.create(model=CLAUDE, max_tokens=100, messages=user("hi"))
        elapsed = time.monotonic() - started
        assert [b.text for b in message.content if b.type == "text"] == ["Back again."]
        exchanges = only_llm(s.exchanges())
        assert [e.status for e in exchanges] == [529, 200]
        assert elapsed >= 0.05
        first = exchanges[0].exchange.response
        headers = {h.name.lower(): h.value for h in first.headers}
        assert (headers["retry-after"], headers["retry-after-ms"]) == ("1", "50")
    # With no retries the SDK raises the 529 as its own class.
    with sim.session(tenant=tenant, llm=llm.anthropic(default=llm.error("overloaded"))) as s:
        with pytest.raises(anthropic.OverloadedError) as caught:
            ant(s).messages.create(model=CLAUDE, max_tokens=10, messages=user("hi"))
        assert caught.value.status_code == 529
        assert "retry-after" not in caught.value.response.headers
        body = caught.value.body
        assert isinstance(body, dict) and body["error"] == {"type": "overloaded_error", "message": "Overloaded"}


def test_quota_exceeded_is_429_without_retry_after(sim: Simulator, tenant: str) -> None:
    with sim.session(tenant=tenant, llm=llm.openai(default=llm.error("quota_exceeded"))) as s:
        with pytest.raises(openai.RateLimitError) as caught:
            oai(s).chat.completions.create(model=GPT, messages=user("hi"))
        error = caught.value
        assert error.status_code == 429
        assert (error.type, error.code) == ("insufficient_quota", "insufficient_quota")
        assert "retry-after" not in error.response.headers and "retry-after-ms" not in error.response.headers
        assert "exceeded your current quota" in error.message
    with sim.session(tenant=tenant, llm=llm.anthropic(default=llm.error("quota_exceeded"))) as s:
        with pytest.raises(anthropic.EnforcedSpendLimitReachedError) as caught_a:  # a RateLimitError
            ant(s).messages.create(model=CLAUDE, max_tokens=10, messages=user("hi"))
        assert caught_a.value.status_code == 429
        assert "retry-after" not in caught_a.value.response.headers
        assert isinstance(caught_a.value.body, dict) and caught_a.value.body["error"]["type"] == "rate_limit_error"


# --- 8. Aborted streams and mid-stream errors ----------------------------------------------------


@pytest.mark.parametrize("how", ["reset", "close"])
def test_openai_aborted_stream_raises_in_the_sdk(sim: Simulator, tenant: str, how: str) -> None:
    reply = llm.reply("one two three four five six seven", trouble=llm.trouble(abort_after_tokens=3, abort=how))
    with sim.session(tenant=tenant, llm=llm.openai(default=reply)) as s:
        received: list[str] = []
        with pytest.raises(openai.APIConnectionError) as caught:
            for chunk in oai(s).chat.completions.create(model=GPT, messages=user("hi"), stream=True):
                if chunk.choices:
                    received.append(chunk.choices[0].delta.content or "")
        # Both SDKs talk through httpx2: a reset is its ReadError, a close mid-body its RemoteProtocolError.
        assert type(caught.value.__cause__) is ABORT_CAUSES[how]
        assert "".join(received) == "one two three"
        [exchange] = finished(s, 1)
        assert exchange.exchange.response.end == ABORTED
        assert exchange.llm is not None and exchange.llm.output_tokens == 3  # what went out, not the seven


@pytest.mark.parametrize("how", ["reset", "close"])
def test_anthropic_aborted_stream_raises_in_the_sdk(sim: Simulator, tenant: str, how: str) -> None:
    reply = llm.reply("one two three four five six seven", trouble=llm.trouble(abort_after_tokens=3, abort=how))
    with sim.session(tenant=tenant, llm=llm.anthropic(default=reply)) as s:
        received: list[str] = []
        with (
            pytest.raises(anthropic.APIConnectionError) as caught,
            ant(s).messages.stream(model=CLAUDE, max_tokens=100, messages=user("hi")) as stream,
        ):
            for piece in stream.text_stream:
                received.append(piece)
        # Both SDKs talk through httpx2: a reset is its ReadError, a close mid-body its RemoteProtocolError.
        assert type(caught.value.__cause__) is ABORT_CAUSES[how]
        assert "".join(received) == "one two three"
        [exchange] = finished(s, 1)
        assert exchange.exchange.response.end == ABORTED


def test_anthropic_error_event_mid_stream(sim: Simulator, tenant: str, http: httpx.Client) -> None:
    script = llm.anthropic(default=llm.error("overloaded", after_tokens=2))
    with sim.session(tenant=tenant, llm=script) as s:
        received: list[str] = []
        with (
            pytest.raises(anthropic.APIStatusError) as caught,
            ant(s).messages.stream(model=CLAUDE, max_tokens=100, messages=user("hi")) as stream,
        ):
            for piece in stream.text_stream:
                received.append(piece)
        assert len(received) == 2
        body = caught.value.body
        assert isinstance(body, dict) and body["type"] == "error"
        assert body["error"]["type"] == "overloaded_error"
        text = http.post(
            s.anthropic_url + "/v1/messages",
            json={"model": CLAUDE, "max_tokens": 100, "messages": user("hi"), "stream": True},
        ).text
        names = [name for name, _ in sse(text)]
        assert names[-1] == "error" and "message_stop" not in names and "message_delta" not in names
        assert names.count("content_block_delta") == 2


def test_openai_error_line_mid_stream(sim: Simulator, tenant: str, http: httpx.Client) -> None:
    script = llm.openai(default=llm.error("server_error", after_tokens=2))
    with sim.session(tenant=tenant, llm=script) as s:
        received: list[str] = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in oai(s).chat.completions.create(model=GPT, messages=user("hi"), stream=True):
                if chunk.choices:
                    received.append(chunk.choices[0].delta.content or "")
        assert len([r for r in received if r]) == 2
        assert not isinstance(caught.value, openai.APIConnectionError)
        assert isinstance(caught.value.body, dict) and caught.value.body["type"] == "server_error"
        assert "The server had an error" in caught.value.message
        events = sse(
            http.post(
                s.openai_url + "/chat/completions", json={"model": GPT, "messages": user("hi"), "stream": True}
            ).text
        )
        assert set(json.loads(events[-1][1])) == {"error"}
        assert all(data != "[DONE]" for _, data in events)


# --- 9. Strict contract ---------------------------------------------------------------------------


def test_anthropic_strict_refusals(sim: Simulator, tenant: str, http: httpx.Client) -> None:
    with sim.session(tenant=tenant, llm=llm.anthropic(default="ok")) as s:
        response = http.post(
            s.anthropic_url + "/v1/messages", json={"model": CLAUDE, "messages": user("hi")}
        )  # no max_tokens: the SDK would not send this
        assert response.status_code == 400
        body = response.json()
        assert body["type"] == "error" and body["error"] == {
            "type": "invalid_request_error",
            "message": "max_tokens: Field required",
        }
        assert body["request_id"] == response.headers["request-id"]
        client = ant(s)
        orphan: Any = [
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01nothing", "content": "x"}]}
        ]
        with pytest.raises(anthropic.BadRequestError, match="unexpected `tool_use_id`"):
            client.messages.create(model=CLAUDE, max_tokens=10, messages=orphan)
        with pytest.raises(anthropic.BadRequestError, match='first message must use the "user" role') as caught:
            client.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "assistant", "content": "hi"}])
        assert isinstance(caught.value.body, dict) and caught.value.body["error"]["type"] == "invalid_request_error"
        reasons = [e.llm.refusal_reason for e in only_llm(s.exchanges()) if e.llm]
        assert reasons[0] == "max_tokens: Field required"
        assert "tool_use_id" in reasons[1] and "user" in reasons[2]
        assert [e.status for e in only_llm(s.exchanges())] == [400, 400, 400]
    with sim.session(tenant=tenant, llm=llm.anthropic(default="ok", strict=False)) as s:
        assert http.post(s.anthropic_url + "/v1/messages", json={"model": CLAUDE, "messages": user("hi")}).is_success
        client = ant(s)
        assert client.messages.create(model=CLAUDE, max_tokens=10, messages=orphan).content[0].type == "text"
        client.messages.create(model=CLAUDE, max_tokens=10, messages=[{"role": "assistant", "content": "hi"}])
        assert not any(e.llm.refused for e in only_llm(s.exchanges()) if e.llm)


def test_openai_strict_refusals(sim: Simulator, tenant: str) -> None:
    orphan_tool: Any = [*user("hi"), {"role": "tool", "tool_call_id": "call_nothing", "content": "x"}]
    with sim.session(tenant=tenant, llm=llm.openai(default="ok", models=[GPT])) as s:
        client = oai(s)
        with pytest.raises(openai.BadRequestError, match="'stream_options' parameter is only allowed") as caught:
            client.chat.completions.create(model=GPT, messages=user("hi"), stream_options={"include_usage": True})
        assert (caught.value.type, caught.value.param) == ("invalid_request_error", "stream_options")
        with pytest.raises(openai.BadRequestError, match="role 'tool' must be a response to a preceeding message"):
            client.chat.completions.create(model=GPT, messages=orphan_tool)
        with pytest.raises(openai.NotFoundError, match="The model `gpt-9` does not exist") as missing:
            client.chat.completions.create(model="gpt-9", messages=user("hi"))
        assert missing.value.code == "model_not_found"
        reasons = [e.llm.refusal_reason for e in only_llm(s.exchanges()) if e.llm]
        assert len(reasons) == 3 and all(reasons)
        assert [e.status for e in only_llm(s.exchanges())] == [400, 400, 404]
    with sim.session(tenant=tenant, llm=llm.openai(default="ok", strict=False)) as s:
        client = oai(s)
        client.chat.completions.create(model=GPT, messages=user("hi"), stream_options={"include_usage": True})
        assert client.chat.completions.create(model=GPT, messages=orphan_tool).choices[0].message.content == "ok"
        assert client.chat.completions.create(model="gpt-9", messages=user("hi")).model == "gpt-9"
        assert not any(e.llm.refused for e in only_llm(s.exchanges()) if e.llm)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_malformed_json_is_the_providers_400(sim: Simulator, tenant: str, http: httpx.Client, provider: str) -> None:
    script = llm.openai() if provider == "openai" else llm.anthropic()
    with sim.session(tenant=tenant, llm=script) as s:
        url = s.openai_url + "/chat/completions" if provider == "openai" else s.anthropic_url + "/v1/messages"
        for body in (b'{"model": "x", "messages": [', b"\xff\xfe", b"[1, 2]", b"", b'"text"'):
            response = http.post(url, content=body, headers={"content-type": "application/json"})
            assert response.status_code == 400, body
            error = response.json()
            if provider == "openai":
                assert set(error) == {"error"}
                assert error["error"]["type"] == "invalid_request_error"
                assert set(error["error"]) == {"message", "type", "param", "code"}
            else:
                assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
                assert error["request_id"].startswith("req_")
        assert all(e.llm.refused for e in only_llm(s.exchanges()) if e.llm)
        assert len(only_llm(s.exchanges())) == 5


# --- 10. Rate limits ----------------------------------------------------------------------------


def test_openai_rate_limit_counts_down_then_429(sim: Simulator, tenant: str) -> None:
    with sim.session(tenant=tenant, llm=llm.openai(default="ok", limits={"requests_per_minute": 2})) as s:
        client = oai(s)
        remaining = [
            client.chat.completions.with_raw_response.create(model=GPT, messages=user("hi")).headers[
                "x-ratelimit-remaining-requests"
            ]
            for _ in range(2)
        ]
        assert remaining == ["1", "0"]
        with pytest.raises(openai.RateLimitError) as caught:
            client.chat.completions.create(model=GPT, messages=user("hi"))
        headers = caught.value.response.headers
        assert 0 < int(headers["retry-after"]) <= 60
        assert headers["x-ratelimit-remaining-requests"] == "0"  # the 429 says so too, as OpenAI's does
        assert headers["x-request-id"].startswith("req_")
        assert caught.value.code == "rate_limit_exceeded"
        last = only_llm(s.exchanges())[-1]
        assert last.status == 429 and last.llm is not None and last.llm.refused


def test_anthropic_rate_limit_counts_down_then_429(sim: Simulator, tenant: str) -> None:
    with sim.session(tenant=tenant, llm=llm.anthropic(default="ok", limits={"requests_per_minute": 2})) as s:
        client = ant(s)
        remaining = [
            client.messages.with_raw_response.create(model=CLAUDE, max_tokens=10, messages=user("hi")).headers[
                "anthropic-ratelimit-requests-remaining"
            ]
            for _ in range(2)
        ]
        assert remaining == ["1", "0"]
        with pytest.raises(anthropic.RateLimitError) as caught:
            client.messages.create(model=CLAUDE, max_tokens=10, messages=user("hi"))
        assert 0 < int(caught.value.response.headers["retry-after"]) <= 60
        assert caught.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
        body = caught.value.body
        assert isinstance(body, dict) and body["error"]["type"] == "rate_limit_error"


# --- 11. Timing -----------------------------------------------------------------------------------


def test_first_token_delay_is_honoured(sim: Simulator, tenant: str) -> None:
    reply = llm.reply("Slow start.", timing=llm.timing(first_token=0.2))
    with sim.session(tenant=tenant, llm=llm.openai(default=reply)) as s:
        started = time.monotonic()
        first_delta = None
        for chunk in oai(s).chat.completions.create(model=GPT, messages=user("hi"), stream=True):
            if chunk.choices and chunk.choices[0].delta.content:
                first_delta = time.monotonic() - started
                break
        assert first_delta is not None and first_delta >= 0.2
    with sim.session(tenant=tenant, llm=llm.anthropic(default="Slow start.", timing=llm.timing(first_token=0.2))) as s:
        started = time.monotonic()
        with ant(s).messages.stream(model=CLAUDE, max_tokens=100, messages=user("hi")) as stream:
            next(iter(stream.text_stream))
            assert time.monotonic() - started >= 0.2


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_stall_with_pings_keeps_the_client_reading(sim: Simulator, tenant: str, provider: str) -> None:
    reply = llm.reply("one two three four", trouble=llm.trouble(stall_after_tokens=2, ping_interval=0.05))
    script = llm.openai(default=reply) if provider == "openai" else llm.anthropic(default=reply)
    ping = ": ping" if provider == "openai" else "event: ping"
    with sim.session(tenant=tenant, llm=script) as s:
        if provider == "openai":
            url, body = s.openai_url + "/chat/completions", {"model": GPT, "messages": user("hi"), "stream": True}
        else:
            url = s.anthropic_url + "/v1/messages"
            body = {"model": CLAUDE, "max_tokens": 100, "messages": user("hi"), "stream": True}
        # A read timeout 8 times the ping interval: only the pings keep it from firing while the stream stalls.
        with (
            httpx.Client(timeout=httpx.Timeout(5.0, read=0.4)) as client,
            client.stream("POST", url, json=body) as response,
        ):
            lines: list[str] = []
            started = time.monotonic()
            for line in response.iter_lines():
                lines.append(line)
                if sum(1 for seen in lines if seen == ping) >= 10:
                    break
            elapsed = time.monotonic() - started
        texts = [line for line in lines if '"text' in line or '"content":"' in line]
        pings_after_text = lines[lines.index(texts[-1]) :].count(ping)
        assert pings_after_text >= 8
        assert elapsed >= 0.4  # the stall outlasted one read timeout, and the client kept reading
        if provider == "anthropic":
            assert 'data: {"type": "ping"}' in lines or 'data: {"type":"ping"}' in lines


# --- 12. Near misses ------------------------------------------------------------------------------


def test_unmatched_request_gets_the_default_and_near_misses(sim: Simulator, tenant: str) -> None:
    script = llm.openai(
        llm.rule("It is sunny.", id="weather", last_user=contains("weather")),
        llm.rule("Hi!", id="claude-only", model="gpt-4o-mini"),
        default="I don't know.",
    )
    with sim.session(tenant=tenant, llm=script) as s:
        completion = oai(s).chat.completions.create(model=GPT, messages=user("What time is it?"))
        assert completion.choices[0].message.content == "I don't know."
        [exchange] = only_llm(s.exchanges())
        assert exchange.llm is not None and exchange.llm.rule == ""
        misses = {m.stub_id: m for m in exchange.near_misses}
        assert set(misses) == {"weather", "claude-only"}
        assert misses["weather"].stub == f"{s.name}/llm/rules/weather"
        assert [m.field for m in misses["weather"].mismatches] == ["last_user_message"]
        assert misses["weather"].mismatches[0].actual.strip("'\"") == "What time is it?"
        assert [m.field for m in misses["claude-only"].mismatches] == ["model"]
