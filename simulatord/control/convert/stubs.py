"""Stub messages into domain Stubs (matcher, responses, rate limit, WebSocket behaviour) and back."""

from __future__ import annotations

from simulatord.control.convert.matchers import request_matcher
from simulatord.control.convert.responses import response
from simulatord.control.convert.scalars import seconds, timestamp
from simulatord.control.convert.websockets import conversation
from simulatord.errors import SpecErrors
from simulatord.responding import ratelimit
from simulatord.sessions import stubs
from simulatord.sessions.stubs import SequenceEnd, Stub
from simulatord.v1 import stub_pb2

_SEQUENCE_END = {
    stub_pb2.SEQUENCE_END_UNSPECIFIED: SequenceEnd.REPEAT_LAST,
    stub_pb2.SEQUENCE_END_REPEAT_LAST: SequenceEnd.REPEAT_LAST,
    stub_pb2.SEQUENCE_END_CYCLE: SequenceEnd.CYCLE,
    stub_pb2.SEQUENCE_END_STOP_MATCHING: SequenceEnd.STOP_MATCHING,
}


def rate_limit(msg: stub_pb2.RateLimit, where: str, errors: SpecErrors) -> ratelimit.RateLimitRule:
    limited = response(msg.response, f"{where}.response", errors) if msg.HasField("response") else None
    return ratelimit.rule(msg.limit, seconds(msg.period), msg.key_header, msg.bucket, limited, where, errors)


def stub(
    msg: stub_pb2.Stub,
    session_name: str,
    stub_id: str,
    where: str,
    id_where: str,
    errors: SpecErrors,
    now: float,
) -> Stub:
    """Validates and compiles a stub definition; every problem is added to `errors`."""
    if msg.after_last not in _SEQUENCE_END:
        errors.add(f"{where}.after_last", f"unknown SequenceEnd value {msg.after_last}")
    source = stub_pb2.Stub()
    source.CopyFrom(msg)
    source.ClearField("match_count")
    source.ClearField("rate_limited_count")
    source.ClearField("create_time")
    built = stubs.stub(
        session_name=session_name,
        stub_id=stub_id,
        matcher=request_matcher(msg.request, f"{where}.request", errors),
        responses=[response(r, f"{where}.responses[{i}]", errors) for i, r in enumerate(msg.responses)],
        description=msg.description,
        after_last=_SEQUENCE_END.get(msg.after_last, SequenceEnd.REPEAT_LAST),
        priority=msg.priority,
        times=msg.times,
        expect_at_least=msg.expect.at_least if msg.expect.HasField("at_least") else None,
        expect_at_most=msg.expect.at_most if msg.expect.HasField("at_most") else None,
        required_state=msg.required_state,
        next_state=msg.next_state,
        scenario=msg.scenario,
        rate_limit=rate_limit(msg.rate_limit, f"{where}.rate_limit", errors) if msg.HasField("rate_limit") else None,
        websocket=conversation(msg.websocket, f"{where}.websocket", errors) if msg.HasField("websocket") else None,
        source=source,
        now=now,
        where=where,
        id_where=id_where,
        errors=errors,
    )
    source.name = built.name
    if msg.callbacks:  # the webhook code loads with the first stub or delivery that needs it
        from simulatord.control.convert.webhooks import callbacks

        built.callbacks = callbacks(msg.callbacks, f"{where}.callbacks", errors)
    return built


def stub_to_proto(value: Stub) -> stub_pb2.Stub:
    out = stub_pb2.Stub()
    if isinstance(value.source, stub_pb2.Stub):
        out.CopyFrom(value.source)
    out.name = value.name
    out.match_count = value.match_count
    out.rate_limited_count = value.rate_limited_count
    out.create_time.CopyFrom(timestamp(value.create_time))
    return out


def stub_to_template(value: Stub) -> stub_pb2.Stub:
    """The stub as it was programmed: what CreateSession takes to make it again (no name, no counters)."""
    out = stub_pb2.Stub()
    if isinstance(value.source, stub_pb2.Stub):
        out.CopyFrom(value.source)
    for output_only in ("name", "match_count", "rate_limited_count", "create_time"):
        out.ClearField(output_only)
    return out
