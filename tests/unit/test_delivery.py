"""The behaviour chain as pure code over an in-memory wire: order, waits, paced bodies, streams, faults, limits."""

from __future__ import annotations

import pytest

from simulatord.errors import SpecErrors
from simulatord.responding import behaviour, faults, ratelimit, streaming, templating
from simulatord.responding.behaviour import ORDER, with_behaviours
from simulatord.responding.delivery import PacedBody, shape
from simulatord.responding.faults import FaultDelivery
from simulatord.responding.reply import ResponseSpec, response_spec
from simulatord.responding.timing import Delay, DelayKind, Dribble, Wait, fixed_delay
from simulatord.responding.wire import End
from tests.unit.chain_support import REQUEST, MemoryConnection, MemoryWire, serve


def wait(name: str, seconds: float) -> Wait:
    return Wait(name, Delay(DelayKind.FIXED, seconds))


def test_behaviours_join_the_chain_in_its_fixed_order_whatever_order_they_are_added_in() -> None:
    spec = with_behaviours(ResponseSpec(), PacedBody(None, Dribble(1, 0.01)), wait("header_delay", 0.0))
    spec = with_behaviours(spec, ratelimit.RATE_LIMIT_HEADERS, wait("delay", 0.0))
    assert [b.name for b in spec.behaviours] == ["rate_limit", "delay", "header_delay", "paced_body"]
    assert [b.name for b in spec.behaviours] == sorted((b.name for b in spec.behaviours), key=ORDER.index)


def test_a_behaviour_missing_from_the_order_is_refused() -> None:
    class Unregistered:
        name = "unregistered"

        async def apply(self, *args: object) -> End:
            raise AssertionError

    with pytest.raises(ValueError):
        behaviour.ordered([Unregistered()])  # type: ignore[list-item]


def test_a_wait_then_the_whole_reply_through_the_same_sender() -> None:
    spec = with_behaviours(ResponseSpec(202, (("x-a", "1"),), b"hello"), wait("header_delay", 0.02))
    served = serve(spec)
    assert (served.end, served.ran) == (End.COMPLETE, ["header_delay"])
    assert served.wire.status == 202 and served.wire.body == b"hello"
    assert served.wire.headers[b"content-length"] == b"5"
    assert (served.reply.status, served.reply.sent_bytes) == (202, 5)


def test_a_client_that_leaves_during_a_wait_gets_nothing_and_the_journal_says_so() -> None:
    spec = with_behaviours(ResponseSpec(body=b"late"), wait("delay", 5.0))
    served = serve(spec, leave_after=0.02)
    assert served.end is End.CLIENT_DISCONNECTED
    assert served.wire.sent == []
    assert (served.reply.status, served.reply.headers, served.reply.body_size) == (0, [], 0)


def test_a_dribbled_body_goes_out_in_chunks_after_its_body_delay() -> None:
    spec = with_behaviours(ResponseSpec(body=b"abcdefg"), PacedBody(Delay(DelayKind.FIXED, 0.01), Dribble(3, 0.03)))
    served = serve(spec)
    assert served.ran == ["paced_body"]
    assert served.wire.pieces == [b"abc", b"def", b"g"]
    assert served.wire.headers[b"content-length"] == b"7"
    assert served.reply.body_size == 7


def test_an_sse_stream_counts_its_events_and_frames_itself() -> None:
    errors = SpecErrors()
    pieces = [streaming.Piece(b"data: 1\n\n"), streaming.Piece(b"data: 2\n\n"), streaming.Piece(b"data: 3\n\n")]
    stream = streaming.stream("sse", pieces, None, 0.0, "end", 2, "end", "s", errors)
    spec = shape(ResponseSpec(), None, None, None, None, stream, "r", errors)
    assert not errors.violations
    served = serve(spec)
    assert (served.end, served.ran) == (End.COMPLETE, ["sse"])
    assert served.wire.pieces == [b"data: 1\n\n", b"data: 2\n\n"]  # aborted after 2, ending cleanly
    assert b"content-length" not in served.wire.headers
    assert served.wire.headers[b"content-type"] == b"text/event-stream"
    assert (served.reply.events_sent, served.reply.body_size) == (2, 18)


@pytest.mark.parametrize(
    ("kind", "after", "written", "ended", "body"),
    [
        ("reset", None, [], "reset", b""),
        ("close", None, [], "close", b""),
        ("garbage", None, [faults.DEFAULT_GARBAGE], "close", b""),
        ("truncated_body", 3, [], "close", b"abc"),
        ("reset", 2, [], "reset", b"ab"),
        ("malformed_chunk", 1, [faults.MALFORMED_CHUNK], "close", b"a"),
    ],
)
def test_faults_break_the_connection_as_programmed(
    kind: str, after: int | None, written: list[bytes], ended: str, body: bytes
) -> None:
    errors = SpecErrors()
    fault = faults.fault(kind, after, b"", 0.0, 6, "f", errors)
    assert fault is not None and not errors.violations
    wire = MemoryWire(raw=MemoryConnection())
    served = serve(with_behaviours(ResponseSpec(body=b"abcdef"), FaultDelivery(fault)), wire=wire)
    assert (served.end, served.ran) == (End.ABORTED, ["fault"])
    assert wire.raw is not None and (wire.raw.written, wire.raw.ended) == (written, ended)
    assert wire.body == body
    assert served.reply.body_size == len(body)
    assert served.reply.status == (200 if body else 0)  # no status line went out: the journal records 0


def test_a_fault_on_a_templated_body_cuts_the_body_as_rendered() -> None:
    """The body's size is only known per request, so the default cut (half) and a programmed one beyond the
    rendered body are taken from the body the client is sent."""
    errors = SpecErrors()
    source = "{{ 'x' * 100 }}"
    spec = response_spec(200, (), "body_text", source, "r", errors)
    template = templating.compile_response(spec, "body_text", source, "", None, "r", errors)
    half = faults.fault("truncated_body", None, b"", 0.0, None, "f", errors)
    beyond = faults.fault("truncated_body", 500, b"", 0.0, None, "f", errors)
    assert half is not None and beyond is not None and not errors.violations
    for fault, sent in ((half, 50), (beyond, 99)):
        wire = MemoryWire(raw=MemoryConnection())
        served = serve(with_behaviours(spec, template, FaultDelivery(fault)), wire=wire)
        assert (served.end, served.ran) == (End.ABORTED, ["template", "fault"])
        assert wire.headers[b"content-length"] == b"100" and wire.body == b"x" * sent


def test_a_fault_the_server_cannot_perform_is_answered_with_a_500_that_says_so() -> None:
    fault = faults.fault("reset", None, b"", 0.0, 0, "f", SpecErrors())
    assert fault is not None
    served = serve(with_behaviours(ResponseSpec(), FaultDelivery(fault)))  # a wire without a raw connection
    assert served.end is End.COMPLETE
    assert served.wire.status == 500 and b"FAULT_UNSUPPORTED" in served.wire.body
    assert served.reply.status == 500


def test_rate_limit_headers_report_the_decision_and_a_refusal_says_when_to_retry() -> None:
    buckets = ratelimit.Buckets(clock=lambda: 100.0)
    errors = SpecErrors()
    rule = ratelimit.private(ratelimit.rule(1, 10.0, "", "", None, "r", errors), "s1")
    assert not errors.violations and rule.bucket == "stub:s1"
    spec = with_behaviours(ResponseSpec(body=b"ok"), ratelimit.RATE_LIMIT_HEADERS)
    allowed = serve(spec, rate=buckets.take(rule, REQUEST))
    assert dict(allowed.reply.headers)["x-ratelimit-remaining"] == "0"
    assert "retry-after" not in dict(allowed.reply.headers)
    refused = serve(rule.response, rate=buckets.take(rule, REQUEST))
    headers = dict(refused.reply.headers)
    assert refused.wire.status == 429 and headers["retry-after"] == "10" and headers["x-ratelimit-limit"] == "1"


def test_a_template_that_fails_answers_500_and_skips_the_rest_of_the_chain() -> None:
    errors = SpecErrors()
    spec = response_spec(200, (), "body_text", "x", "r", errors)
    broken = templating.compile_response(spec, "body_text", "x", "{{ 1 / 0 }}", None, "r", errors)
    fault = faults.fault("reset", None, b"", 0.0, 1, "f", errors)
    assert fault is not None and not errors.violations
    served = serve(with_behaviours(spec, broken, wait("header_delay", 0.0), FaultDelivery(fault)))
    assert served.ran == ["template"]
    assert served.wire.status == 500 and b"ZeroDivisionError" in served.wire.body
    assert served.reply.status == 500


def test_a_zero_delay_adds_no_behaviour() -> None:
    errors = SpecErrors()
    assert fixed_delay(0.0, "d", errors) is None
    assert fixed_delay(-1.0, "d", errors) is None
    assert [v.field for v in errors.violations] == ["d"]
