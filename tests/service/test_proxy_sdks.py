"""Record and replay judged by code nobody here wrote: the official OpenAI and Anthropic SDKs stream a recording of
an LLM session, replayed after the upstream session is gone."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import openai
import pytest

from simulatord.v1 import stub_pb2
from simulatord_client import Session, Simulator, llm
from simulatord_client.embedded import EmbeddedDaemon


@pytest.fixture(scope="module")
def sim(daemon: EmbeddedDaemon) -> Iterator[Simulator]:
    with Simulator(daemon.grpc_address) as simulator:
        yield simulator


def recording_proxy(upstream: Session) -> stub_pb2.Stub:
    """Records each distinct conversation once: the model and the messages are part of the recorded matcher."""
    proxy = stub_pb2.Proxy(upstream=upstream.url, mode=stub_pb2.PROXY_MODE_RECORD_ONCE)
    proxy.record.match_json_paths.extend(["$.model", "$.messages"])
    return stub_pb2.Stub(priority=-10, responses=[stub_pb2.Response(proxy=proxy)])


def test_an_openai_stream_recorded_through_a_proxy_replays_to_the_sdk_without_its_upstream(
    sim: Simulator, tenant: str
) -> None:
    upstream = sim.session(tenant=tenant, llm=llm.openai(llm.rule("Hello from the real thing, streamed.")))
    upstream.open()
    with sim.session(tenant=tenant) as s:
        s.add(recording_proxy(upstream))
        client = openai.OpenAI(base_url=s.url + "/v1", api_key="sk-real", max_retries=0)

        def ask(text: str) -> tuple[str, list[str]]:
            stream = client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": text}], stream=True
            )
            pieces = [chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices]
            return "".join(pieces), pieces

        live, live_pieces = ask("hi")
        other, _ = ask("something else")
        assert live == other == "Hello from the real thing, streamed." and len(live_pieces) > 3
        upstream.close()

        assert ask("hi") == (live, live_pieces)  # the same chunks, parsed by the SDK from the recording
        assert ask("something else")[0] == live
        with pytest.raises(openai.NotFoundError):  # never recorded: forwarded, and the upstream session is gone
            ask("a third question")
        recorded = [x for x in s.list_stubs() if x.description.startswith("recorded from")]
        assert sorted(r.responses[0].status for r in recorded) == [200, 200, 404]  # what the upstream said, kept
        assert sum(bool(r.responses[0].sse.events) for r in recorded) == 2
        assert all("sk-real" not in str(r) for r in recorded)


def test_an_anthropic_stream_recorded_through_a_proxy_replays_to_the_sdk(sim: Simulator, tenant: str) -> None:
    upstream = sim.session(tenant=tenant, llm=llm.anthropic(llm.rule("Recorded words from Claude.")))
    upstream.open()
    with sim.session(tenant=tenant) as s:
        s.add(recording_proxy(upstream))
        client = anthropic.Anthropic(base_url=s.url, api_key="sk-ant-real", max_retries=0)

        def ask() -> tuple[str, list[str]]:
            with client.messages.stream(
                model="claude-sonnet-4-5", max_tokens=100, messages=[{"role": "user", "content": "hi"}]
            ) as stream:
                events = [event.type for event in stream]
                return stream.get_final_text(), events

        live = ask()
        upstream.close()
        assert ask() == live and live[0] == "Recorded words from Claude."
        [recorded] = [x for x in s.list_stubs() if x.description.startswith("recorded from")]
        assert {e.event for e in recorded.responses[0].sse.events} >= {"message_start", "message_stop"}
        assert "sk-ant-real" not in str(recorded)
