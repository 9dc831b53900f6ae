"""Builders for responses with timing, faults and streams: each returns a `stub_pb2.Response` or a piece of one.

For example `b.sse(["one", "two", "three", "four"], abort_after=3)` is an SSE stream reset after 3 events,
`b.fault("reset")` a TCP reset instead of an answer, and
`b.timed(b.text("slow"), header_delay=b.lognormal(0.05, 0.5, seed=7))` a text answer after a long-tailed delay
that repeats run after run (with `from simulatord_client import behaviours as b`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from google.protobuf import json_format

from simulatord.v1 import stub_pb2
from simulatord_client.durations import duration

_V = TypeVar("_V")
Headers = Mapping[str, str] | Sequence[tuple[str, str]] | None

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


def _headers(headers: Headers) -> list[stub_pb2.Header]:
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return [stub_pb2.Header(name=n, value=v) for n, v in items]


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


def text(body: str, status: int = 200, headers: Headers = None) -> stub_pb2.Response:
    return stub_pb2.Response(status=status, headers=_headers(headers), body_text=body)


def json(value: Any, status: int = 200, headers: Headers = None) -> stub_pb2.Response:
    out = stub_pb2.Response(status=status, headers=_headers(headers))
    json_format.ParseDict(value, out.body_json)
    return out


def status(code: int, headers: Headers = None) -> stub_pb2.Response:
    return stub_pb2.Response(status=code, headers=_headers(headers))


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
    headers: Headers = None,
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
    out = stub_pb2.Response(status=status, headers=_headers(headers), fault=spec)
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
    headers: Headers = None,
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
    return stub_pb2.Response(status=status, headers=_headers(headers), sse=stream)


def chunked(
    chunks: Iterable[bytes | str | tuple[bytes | str, float]],
    *,
    status: int = 200,
    headers: Headers = None,
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
    return stub_pb2.Response(status=status, headers=_headers(headers), chunked=stream)
