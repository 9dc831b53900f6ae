"""Builders for what a stub does beyond a plain answer: timing, faults, streams, templates, rate limits, WebSockets.

Each returns a plain `simulatord.v1` message (a `stub_pb2.Response`, a piece of one, or a whole Stub). With
`from simulatord_client import behaviours as b`: `b.sse(["one", "two", "three", "four"], abort_after=3)` is an
SSE stream reset after 3 events, `b.fault("reset")` a TCP reset instead of an answer,
`b.timed(b.text("slow"), header_delay=b.lognormal(0.05, 0.5, seed=7))` a text answer after a long-tailed delay
that repeats run after run, `b.templated(b.text("hello {{ path.name }}"))` an answer rendered per request,
`b.rate_limit(10, 60)` a token bucket for `Stub.rate_limit`, and
`b.websocket_stub("/chat", rules=[b.ws_rule(b.ws_text("pong"), equals="ping")])` a WebSocket endpoint.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import stub_pb2
from simulatord_client.builders import HeadersOut, headers_out, json_value, path_matcher
from simulatord_client.durations import duration
from simulatord_client.stub_refs import StubRefLike, stub_name

_V = TypeVar("_V")

_FAULTS: dict[str, stub_pb2.FaultKind.ValueType] = {
    "reset": stub_pb2.FAULT_KIND_RESET,
    "close": stub_pb2.FAULT_KIND_CLOSE,
    "garbage": stub_pb2.FAULT_KIND_GARBAGE,
    "truncated_body": stub_pb2.FAULT_KIND_TRUNCATED_BODY,
    "malformed_chunk": stub_pb2.FAULT_KIND_MALFORMED_CHUNK,
    "hang": stub_pb2.FAULT_KIND_HANG,
}
_AFTER_LAST: dict[str, stub_pb2.StreamAfterLast.ValueType] = {
    "end": stub_pb2.STREAM_AFTER_LAST_END,
    "hold_open": stub_pb2.STREAM_AFTER_LAST_HOLD_OPEN,
    "repeat": stub_pb2.STREAM_AFTER_LAST_REPEAT,
}
_ABORT: dict[str, stub_pb2.StreamAbort.ValueType] = {
    "reset": stub_pb2.STREAM_ABORT_RESET,
    "close": stub_pb2.STREAM_ABORT_CLOSE,
    "end": stub_pb2.STREAM_ABORT_END,
}


def _choice(table: Mapping[str, _V], name: str, what: str) -> _V:
    try:
        return table[name]
    except KeyError:
        raise ValueError(f"unknown {what} {name!r}; one of {', '.join(table)}") from None


# --- delays --------------------------------------------------------------------------------------


def _delay(seed: int | None, cap: float | None, **kind: Any) -> stub_pb2.Delay:
    out = stub_pb2.Delay(**kind)
    if seed is not None:
        out.seed = seed
    if cap is not None:
        out.cap.CopyFrom(duration(cap))
    return out


def fixed(seconds: float) -> stub_pb2.Delay:
    """A delay of exactly `seconds`."""
    return _delay(None, None, fixed=duration(seconds))


def uniform(low: float, high: float, *, seed: int | None = None, cap: float | None = None) -> stub_pb2.Delay:
    """A delay uniformly distributed between `low` and `high` seconds; a seed makes the draws repeat."""
    return _delay(seed, cap, uniform=stub_pb2.UniformDelay(min=duration(low), max=duration(high)))


def lognormal(median: float, sigma: float, *, seed: int | None = None, cap: float | None = None) -> stub_pb2.Delay:
    """A long-tailed delay: `median` seconds, `sigma` the spread of ln(delay)."""
    return _delay(seed, cap, lognormal=stub_pb2.LognormalDelay(median=duration(median), sigma=sigma))


def dribble(chunk_bytes: int, seconds: float) -> stub_pb2.Dribble:
    """Send the body `chunk_bytes` at a time, spread over `seconds`."""
    return stub_pb2.Dribble(chunk_bytes=chunk_bytes, duration=duration(seconds))


# --- responses -----------------------------------------------------------------------------------


def text(body: str, status: int = 200, headers: HeadersOut | None = None) -> stub_pb2.Response:
    """A plain-text answer."""
    return stub_pb2.Response(status=status, headers=headers_out(headers), body_text=body)


def json(value: Any, status: int = 200, headers: HeadersOut | None = None) -> stub_pb2.Response:
    """A JSON answer."""
    return stub_pb2.Response(status=status, headers=headers_out(headers), body_json=json_value(value))


def status(code: int, headers: HeadersOut | None = None) -> stub_pb2.Response:
    """An answer without a body."""
    return stub_pb2.Response(status=code, headers=headers_out(headers))


def timed(
    response: stub_pb2.Response,
    *,
    delay: float | None = None,
    header_delay: stub_pb2.Delay | None = None,
    body_delay: stub_pb2.Delay | float | None = None,
    dribble: stub_pb2.Dribble | None = None,
) -> stub_pb2.Response:
    """A copy of `response` with timing: a fixed `delay`, a drawn `header_delay`, a `body_delay`, a dribble."""
    out = stub_pb2.Response()
    out.CopyFrom(response)
    if delay is not None:
        out.delay.CopyFrom(duration(delay))
    if header_delay is not None:
        out.header_delay.CopyFrom(header_delay)
    if body_delay is not None:
        out.body_delay.CopyFrom(fixed(body_delay) if isinstance(body_delay, int | float) else body_delay)
    if dribble is not None:
        out.dribble.CopyFrom(dribble)
    return out


def fault(
    kind: str,
    *,
    body: bytes | str = b"",
    status: int = 200,
    headers: HeadersOut | None = None,
    after_body_bytes: int | None = None,
    garbage: bytes = b"",
    hang_for: float | None = None,
) -> stub_pb2.Response:
    """A response that fails: `reset`, `close`, `garbage`, `truncated_body`, `malformed_chunk` or `hang`.

    `body`, `status` and `headers` matter to the faults that send part of a response first
    (`truncated_body`, `malformed_chunk`, and `reset` with `after_body_bytes`)."""
    spec = stub_pb2.Fault(kind=_choice(_FAULTS, kind, "fault"), garbage=garbage)
    if after_body_bytes is not None:
        spec.after_body_bytes = after_body_bytes
    if hang_for is not None:
        spec.hang_for.CopyFrom(duration(hang_for))
    out = stub_pb2.Response(status=status, headers=headers_out(headers), fault=spec)
    if body:
        out.body_bytes = body.encode() if isinstance(body, str) else body
    return out


def event(
    data: str = "",
    *,
    event: str = "",
    id: str = "",
    retry: float | None = None,
    comment: str = "",
    delay: float = 0.0,
) -> stub_pb2.SseEvent:
    """One Server-Sent Event; `retry` and `delay` in seconds."""
    out = stub_pb2.SseEvent(data=data, event=event, id=id, comment=comment)
    if retry is not None:
        out.retry.CopyFrom(duration(retry))
    if delay:
        out.delay.CopyFrom(duration(delay))
    return out


def sse(
    events: Iterable[stub_pb2.SseEvent | str | Mapping[str, Any]],
    *,
    status: int = 200,
    headers: HeadersOut | None = None,
    event_delay: stub_pb2.Delay | float | None = None,
    keep_alive: float | None = None,
    after_last: str = "end",
    abort_after: int = 0,
    abort: str = "reset",
) -> stub_pb2.Response:
    """A Server-Sent Events response. Events are SseEvent messages, data strings or `event()` keyword dicts."""
    stream = stub_pb2.SseStream(
        events=[
            e if isinstance(e, stub_pb2.SseEvent) else event(e) if isinstance(e, str) else event(**e) for e in events
        ],
        after_last=_choice(_AFTER_LAST, after_last, "after_last"),
        abort_after=abort_after,
        abort=_choice(_ABORT, abort, "abort"),
    )
    if event_delay is not None:
        stream.event_delay.CopyFrom(fixed(event_delay) if isinstance(event_delay, int | float) else event_delay)
    if keep_alive is not None:
        stream.keep_alive.CopyFrom(duration(keep_alive))
    return stub_pb2.Response(status=status, headers=headers_out(headers), sse=stream)


def chunked(
    chunks: Iterable[bytes | str | tuple[bytes | str, float]],
    *,
    status: int = 200,
    headers: HeadersOut | None = None,
    chunk_delay: stub_pb2.Delay | float | None = None,
    after_last: str = "end",
    abort_after: int = 0,
    abort: str = "reset",
) -> stub_pb2.Response:
    """A body sent chunk by chunk; a chunk is bytes, text, or a `(data, delay_seconds)` pair."""
    pieces = []
    for chunk in chunks:
        data, wait = chunk if isinstance(chunk, tuple) else (chunk, 0.0)
        piece = stub_pb2.Chunk(data=data.encode() if isinstance(data, str) else data)
        if wait:
            piece.delay.CopyFrom(duration(wait))
        pieces.append(piece)
    stream = stub_pb2.ChunkedStream(
        chunks=pieces,
        after_last=_choice(_AFTER_LAST, after_last, "after_last"),
        abort_after=abort_after,
        abort=_choice(_ABORT, abort, "abort"),
    )
    if chunk_delay is not None:
        stream.chunk_delay.CopyFrom(fixed(chunk_delay) if isinstance(chunk_delay, int | float) else chunk_delay)
    return stub_pb2.Response(status=status, headers=headers_out(headers), chunked=stream)


# --- templates -----------------------------------------------------------------------------------


def templated(response: stub_pb2.Response, *, status_template: str = "", seed: int | None = None) -> stub_pb2.Response:
    """A copy of `response` whose header values and body (text, or the strings of a JSON value) are Jinja
    templates rendered per request; `status_template` renders the status, and a `seed` makes `random` repeat.

    Example: `b.templated(b.json({"id": "{{ path.id | int }}"}, 201, headers={"location": "/u/{{ path.id }}"}))`.
    """
    out = stub_pb2.Response()
    out.CopyFrom(response)
    out.template.CopyFrom(stub_pb2.ResponseTemplate(status=status_template, seed=seed))
    return out


# --- rate limits ---------------------------------------------------------------------------------


def rate_limit(
    limit: int,
    period: float,
    *,
    key_header: str = "",
    bucket: str = "",
    response: stub_pb2.Response | None = None,
) -> stub_pb2.RateLimit:
    """A token bucket of `limit` requests refilled over `period` seconds, for `Stub.rate_limit`."""
    return stub_pb2.RateLimit(
        limit=limit, period=duration(period), key_header=key_header, bucket=bucket, response=response
    )


# --- WebSockets ----------------------------------------------------------------------------------


def ws_text(text: str, *, delay: float = 0.0, template: bool = False) -> stub_pb2.WebSocketMessage:
    """A text message, sent after `delay` seconds; with `template` it is rendered like a templated body."""
    return stub_pb2.WebSocketMessage(text=text, delay=duration(delay), template=template)


def ws_json(value: Any, *, delay: float = 0.0, template: bool = False) -> stub_pb2.WebSocketMessage:
    """A text message holding the JSON value `value`; with `template` its strings are templates."""
    return stub_pb2.WebSocketMessage(json=json_value(value), delay=duration(delay), template=template)


def ws_binary(data: bytes, *, delay: float = 0.0) -> stub_pb2.WebSocketMessage:
    """A binary message."""
    return stub_pb2.WebSocketMessage(binary=data, delay=duration(delay))


def ws_close(code: int = 1000, reason: str = "", *, delay: float = 0.0) -> stub_pb2.WebSocketClose:
    """Closes the connection with `code` and `reason`."""
    return stub_pb2.WebSocketClose(code=code, reason=reason, delay=duration(delay))


def ws_rule(
    *replies: stub_pb2.WebSocketMessage,
    equals: str | bytes | None = None,
    contains: str | None = None,
    regex: str | None = None,
    json_subset: Any = None,
    close: stub_pb2.WebSocketClose | None = None,
) -> stub_pb2.WebSocketRule:
    """Answers incoming messages that satisfy every given condition (none given: any message)."""
    matchers: list[stub_pb2.BodyMatcher] = []
    if equals is not None:
        matchers.append(stub_pb2.BodyMatcher(equals=equals.encode() if isinstance(equals, str) else equals))
    if contains is not None:
        matchers.append(stub_pb2.BodyMatcher(contains=contains))
    if regex is not None:
        matchers.append(stub_pb2.BodyMatcher(regex=regex))
    if json_subset is not None:
        matchers.append(stub_pb2.BodyMatcher(json_subset=json_value(json_subset)))
    return stub_pb2.WebSocketRule(message=matchers, replies=list(replies), close=close)


def websocket_stub(
    path: str,
    *,
    on_connect: Iterable[stub_pb2.WebSocketMessage] = (),
    rules: Iterable[stub_pb2.WebSocketRule] = (),
    close_after_connect: stub_pb2.WebSocketClose | None = None,
    subprotocol: str = "",
    request: stub_pb2.RequestMatcher | None = None,
    **fields: Any,
) -> stub_pb2.Stub:
    """A stub answering WebSocket upgrades on `path` (a template when it holds `{name}` segments); `request`
    adds other conditions and `fields` other Stub fields (`priority`, `rate_limit`, ...)."""
    matcher = stub_pb2.RequestMatcher()
    if request is not None:
        matcher.CopyFrom(request)
    matcher.path.CopyFrom(path_matcher(path))
    return stub_pb2.Stub(
        request=matcher,
        websocket=stub_pb2.WebSocketBehaviour(
            subprotocol=subprotocol,
            on_connect=list(on_connect),
            rules=list(rules),
            close_after_connect=close_after_connect,
        ),
        **fields,
    )


def push_request(
    session: str,
    message: stub_pb2.WebSocketMessage | None = None,
    *,
    close: stub_pb2.WebSocketClose | None = None,
    stub: StubRefLike = "",
    connection: int = 0,
) -> pb.SendWebSocketMessageRequest:
    """A SendWebSocketMessage request: push `message` and/or `close` to the open connections of `session`
    (a session name), of one of its stubs (a StubRef, name or id) or one `connection`."""
    return pb.SendWebSocketMessageRequest(
        parent=session,
        stub=stub_name(session, stub) if stub else "",
        connection=connection,
        message=message,
        close=close,
    )
