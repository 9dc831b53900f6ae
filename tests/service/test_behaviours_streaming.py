"""Server-Sent Events and chunked bodies against a real daemon: what real httpx clients read, what the journal says."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import grpc
import httpx
import pytest

from simulatord.v1 import exchange_pb2, stub_pb2
from simulatord_client import behaviours as b
from tests.service.shaping_support import MAX_STREAM_SECONDS, Control, program, shaping_control, shaping_daemon, stub
from tests.service.test_bad_input import details

__all__ = ["shaping_control", "shaping_daemon"]  # fixtures used by name below

ABORTED = exchange_pb2.RESPONSE_END_ABORTED
COMPLETE = exchange_pb2.RESPONSE_END_COMPLETE
GONE = exchange_pb2.RESPONSE_END_CLIENT_DISCONNECTED


def parse_sse(lines: Iterator[str]) -> Iterator[dict[str, str]]:
    """A minimal text/event-stream parser (WHATWG rules for the fields used here); comments come as `:`."""
    event: dict[str, str] = {}
    for line in lines:
        if not line:
            if event:
                yield event
            event = {}
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data" and "data" in event:
            event["data"] += "\n" + value
        else:
            event[name] = value


def fresh() -> httpx.Client:
    return httpx.Client(timeout=5)


# --- SSE ------------------------------------------------------------------------------------------


def test_sse_events_carry_every_field(shaping_control: Control) -> None:
    response = b.sse(
        [
            b.event("hello", event="greeting", id="1", retry=2.5),
            b.event("line one\nline two", id="2"),
            b.event(comment="just a comment"),
            {"data": '{"n": 3}', "event": "json"},
        ]
    )
    sim = program(shaping_control, stub("/events", response))
    with fresh() as client, client.stream("GET", sim.url("/events")) as reply:
        assert reply.headers["content-type"] == "text/event-stream"
        assert reply.headers["cache-control"] == "no-cache"
        assert "content-length" not in reply.headers
        events = list(parse_sse(reply.iter_lines()))
        raw_size = reply.num_bytes_downloaded
    assert events == [
        {"id": "1", "event": "greeting", "retry": "2500", "data": "hello"},
        {"id": "2", "data": "line one\nline two"},
        {"": "just a comment"},
        {"event": "json", "data": '{"n": 3}'},
    ]
    (exchange,) = sim.exchanges(path="/events")
    assert (exchange.response.event_count, exchange.response.end) == (4, COMPLETE)
    assert exchange.response.body_size == raw_size


def test_templated_sse_renders_each_event_data_from_the_request(shaping_control: Control) -> None:
    """A template on a streamed response renders its events' data per request, as it renders bodies: the
    markers are never sent literally (they once were, silently)."""
    response = b.templated(
        b.sse(
            [
                b.event('{"model": "{{ request.json.model }}", "n": {{ sequence }}}', event="chunk"),
                b.event("{{ request.json.model | upper }} done", id="2"),
                b.event("[DONE]"),
            ]
        )
    )
    sim = program(shaping_control, stub("/chat", response))
    with fresh() as client, client.stream("POST", sim.url("/chat"), json={"model": "gpt-x"}) as reply:
        events = list(parse_sse(reply.iter_lines()))
    assert events == [
        {"event": "chunk", "data": '{"model": "gpt-x", "n": 1}'},
        {"id": "2", "data": "GPT-X done"},
        {"data": "[DONE]"},
    ]


def test_templated_sse_event_with_a_syntax_error_is_refused_when_programmed(shaping_control: Control) -> None:
    response = b.templated(b.sse([b.event("fine"), b.event("{{ request.json.model ")]))
    with pytest.raises(grpc.RpcError) as caught:
        program(shaping_control, stub("/chat", response))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value)[1] == ["stubs[0].responses[0].sse.events[1].data"]


def test_sse_aborted_after_3_events_by_reset(shaping_control: Control) -> None:
    response = b.sse([f"event {i}" for i in range(1, 6)], abort_after=3, event_delay=0.02)
    sim = program(shaping_control, stub("/abort", response))
    received = []
    with (
        fresh() as client,
        client.stream("GET", sim.url("/abort")) as reply,
        pytest.raises(httpx.ReadError, match="reset"),
    ):
        for event in parse_sse(reply.iter_lines()):
            received.append(event["data"])
    assert received == ["event 1", "event 2", "event 3"]
    (exchange,) = sim.exchanges(path="/abort")
    assert (exchange.response.event_count, exchange.response.end) == (3, ABORTED)


def test_sse_aborted_by_close_leaves_the_body_unfinished(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/close", b.sse(["a", "b", "c"], abort_after=2, abort="close")))
    with (
        fresh() as client,
        client.stream("GET", sim.url("/close")) as reply,
        pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"),
    ):
        reply.read()
    (exchange,) = sim.exchanges(path="/close")
    assert (exchange.response.event_count, exchange.response.end) == (2, ABORTED)


def test_sse_ended_early_on_purpose_is_complete(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/end", b.sse(["a", "b", "c"], abort_after=2, abort="end")))
    with fresh() as client, client.stream("GET", sim.url("/end")) as reply:
        assert [e["data"] for e in parse_sse(reply.iter_lines())] == ["a", "b"]
    (exchange,) = sim.exchanges(path="/end")
    assert (exchange.response.event_count, exchange.response.end) == (2, COMPLETE)


def test_a_client_disconnect_is_detected_and_recorded(shaping_control: Control) -> None:
    response = b.sse(["one", "two", b.event("three", delay=30)], after_last="hold_open")
    sim = program(shaping_control, stub("/leave", response))
    with fresh() as client, client.stream("GET", sim.url("/leave")) as reply:
        events = parse_sse(reply.iter_lines())
        assert [next(events)["data"], next(events)["data"]] == ["one", "two"]
    # Leaving the block closed the connection while the daemon waited for event three.
    (exchange,) = sim.exchanges(path="/leave")
    assert (exchange.response.event_count, exchange.response.end) == (2, GONE)
    assert exchange.response.duration.ToNanoseconds() / 1e9 < MAX_STREAM_SECONDS - 0.5, "noticed at once"


def test_per_event_delays_and_a_delay_distribution(shaping_control: Control) -> None:
    response = b.sse(
        [b.event("first"), b.event("second", delay=0.3), b.event("third")],
        event_delay=b.uniform(0.05, 0.1, seed=1),
    )
    sim = program(shaping_control, stub("/timed", response))
    arrivals = []
    with fresh() as client, client.stream("GET", sim.url("/timed")) as reply:
        started = time.monotonic()
        for event in parse_sse(reply.iter_lines()):
            arrivals.append((event["data"], time.monotonic() - started))
    assert [name for name, _ in arrivals] == ["first", "second", "third"]
    gaps = [later - earlier for (_, earlier), (_, later) in itertools.pairwise(arrivals)]
    assert 0.3 + 0.04 < gaps[0] < 0.3 + 1.0, gaps
    assert 0.04 < gaps[1] < 1.0, gaps


def test_keep_alive_comments_while_holding_open(shaping_control: Control) -> None:
    response = b.sse(["only"], after_last="hold_open", keep_alive=0.2)
    sim = program(shaping_control, stub("/hold", response))
    lines = []
    with fresh() as client, client.stream("GET", sim.url("/hold")) as reply:
        started = time.monotonic()
        for line in reply.iter_lines():
            lines.append(line)
            if lines.count(": keep-alive") == 3:
                break
        elapsed = time.monotonic() - started
    assert lines[0] == "data: only"
    assert 0.5 < elapsed < MAX_STREAM_SECONDS
    (exchange,) = sim.exchanges(path="/hold")
    assert (exchange.response.event_count, exchange.response.end) == (1, GONE), "keep-alives are not events"


def test_an_endless_stream_is_ended_by_the_daemons_bound(shaping_control: Control) -> None:
    response = b.sse([b.event("tick", delay=0.25)], after_last="repeat")
    sim = program(shaping_control, stub("/ticks", response))
    started = time.monotonic()
    with fresh() as client, client.stream("GET", sim.url("/ticks")) as reply:
        ticks = [e["data"] for e in parse_sse(reply.iter_lines())]
    elapsed = time.monotonic() - started
    assert MAX_STREAM_SECONDS - 0.3 < elapsed < MAX_STREAM_SECONDS + 2
    assert set(ticks) == {"tick"} and 3 <= len(ticks) <= 8
    (exchange,) = sim.exchanges(path="/ticks")
    assert (exchange.response.event_count, exchange.response.end) == (len(ticks), COMPLETE)


def test_repeat_with_abort_after_counts_across_rounds(shaping_control: Control) -> None:
    response = b.sse(["a", b.event("b", delay=0.01)], after_last="repeat", abort_after=5, abort="end")
    sim = program(shaping_control, stub("/rounds", response))
    with fresh() as client, client.stream("GET", sim.url("/rounds")) as reply:
        assert [e["data"] for e in parse_sse(reply.iter_lines())] == ["a", "b", "a", "b", "a"]


def test_sse_after_a_header_delay_drawn_from_a_seeded_lognormal(shaping_control: Control) -> None:
    response = b.timed(b.sse(["x"]), header_delay=b.lognormal(0.1, 0.3, seed=11, cap=0.5))
    sim = program(shaping_control, stub("/ln", response))
    started = time.monotonic()
    with fresh() as client:
        assert client.get(sim.url("/ln")).text == "data: x\n\n"
    assert 0.03 < time.monotonic() - started < 3.0


# --- chunked --------------------------------------------------------------------------------------


def test_chunks_arrive_one_by_one(shaping_control: Control) -> None:
    response = b.chunked([b"alpha-", ("beta-", 0.3), ("gamma", 0.3)], headers={"content-type": "text/plain"})
    sim = program(shaping_control, stub("/chunks", response))
    arrivals = []
    with fresh() as client, client.stream("GET", sim.url("/chunks")) as reply:
        assert reply.headers["transfer-encoding"] == "chunked"
        started = time.monotonic()
        for chunk in reply.iter_raw():
            arrivals.append((chunk, time.monotonic() - started))
    assert b"".join(c for c, _ in arrivals) == b"alpha-beta-gamma"
    assert arrivals[-1][1] > 0.5
    (exchange,) = sim.exchanges(path="/chunks")
    assert (exchange.response.event_count, exchange.response.body_size, exchange.response.end) == (3, 16, COMPLETE)


def test_a_chunked_body_reset_mid_way(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/cut", b.chunked(["one", "two", "three"], abort_after=2)))
    received = bytearray()
    with fresh() as client, client.stream("GET", sim.url("/cut")) as reply, pytest.raises(httpx.ReadError):
        for chunk in reply.iter_raw():
            received.extend(chunk)
    assert bytes(received) == b"onetwo"
    (exchange,) = sim.exchanges(path="/cut")
    assert (exchange.response.event_count, exchange.response.end) == (2, ABORTED)


# --- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "field"),
    [
        (b.sse([]), "sse.events"),
        (b.sse(["a"], abort_after=-1), "sse.abort_after"),
        (b.sse(["a"], abort_after=2), "sse.abort_after"),
        (b.sse([b.event("x", event="bad\nname")]), "sse.events[0].event"),
        (b.sse([b.event("x", id="1\r2")]), "sse.events[0].id"),
        (b.sse([b.event("x", retry=-1)]), "sse.events[0].retry"),
        (b.sse([b.event("x", delay=-1)]), "sse.events[0].delay"),
        (b.sse(["a"], keep_alive=-1), "sse.keep_alive"),
        (b.sse(["a"], after_last="repeat"), "sse.after_last"),
        (b.sse(["a"], event_delay=b.uniform(2, 1)), "sse.event_delay.uniform.max"),
        (b.sse(["a"], headers={"content-length": "10"}), "headers[0]"),
        (b.chunked([b""]), "chunked.chunks[0].data"),
        (b.chunked(["a"], abort_after=-3), "chunked.abort_after"),
        (b.timed(b.chunked(["a"]), dribble=b.dribble(1, 1)), "dribble"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_bad_streams_are_rejected_with_field_paths(
    shaping_control: Control, response: stub_pb2.Response, field: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        program(shaping_control, stub("/x", response))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(caught.value)[1] == [f"stubs[0].responses[0].{field}"]


def test_a_stream_with_a_body_is_rejected(shaping_control: Control) -> None:
    response = b.sse(["a"])
    response.body_text = "and a body"
    with pytest.raises(grpc.RpcError) as caught:
        program(shaping_control, stub("/x", response))
    assert details(caught.value)[1] == ["stubs[0].responses[0].sse"]
