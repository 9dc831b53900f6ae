"""Response messages into ResponseSpecs with their behaviours: template, delay, timing, faults and streams."""

from __future__ import annotations

import functools
from typing import Any, Literal

from simulatord.control.convert.scalars import oneof, seconds
from simulatord.errors import SpecErrors
from simulatord.responding import delivery, faults, streaming, templating, timing
from simulatord.responding import proxy as proxying
from simulatord.responding.behaviour import Behaviour, with_behaviours
from simulatord.responding.reply import ResponseSpec, response_spec
from simulatord.v1 import stub_pb2

_FAULT_KINDS = {
    stub_pb2.FAULT_KIND_RESET: faults.FaultKind.RESET,
    stub_pb2.FAULT_KIND_CLOSE: faults.FaultKind.CLOSE,
    stub_pb2.FAULT_KIND_GARBAGE: faults.FaultKind.GARBAGE,
    stub_pb2.FAULT_KIND_TRUNCATED_BODY: faults.FaultKind.TRUNCATED_BODY,
    stub_pb2.FAULT_KIND_MALFORMED_CHUNK: faults.FaultKind.MALFORMED_CHUNK,
    stub_pb2.FAULT_KIND_HANG: faults.FaultKind.HANG,
}
_STREAM_AFTER_LAST = {
    stub_pb2.STREAM_AFTER_LAST_UNSPECIFIED: streaming.AfterLast.END,
    stub_pb2.STREAM_AFTER_LAST_END: streaming.AfterLast.END,
    stub_pb2.STREAM_AFTER_LAST_HOLD_OPEN: streaming.AfterLast.HOLD_OPEN,
    stub_pb2.STREAM_AFTER_LAST_REPEAT: streaming.AfterLast.REPEAT,
}
_STREAM_ABORT = {
    stub_pb2.STREAM_ABORT_UNSPECIFIED: streaming.Abort.RESET,
    stub_pb2.STREAM_ABORT_RESET: streaming.Abort.RESET,
    stub_pb2.STREAM_ABORT_CLOSE: streaming.Abort.CLOSE,
    stub_pb2.STREAM_ABORT_END: streaming.Abort.END,
}
_DELIVERY_FIELDS: tuple[Literal["header_delay", "body_delay", "dribble", "fault", "sse", "chunked"], ...] = (
    "header_delay",
    "body_delay",
    "dribble",
    "fault",
    "sse",
    "chunked",
)


def response(msg: stub_pb2.Response, where: str, errors: SpecErrors) -> ResponseSpec:
    """Validates and compiles one response; every behaviour it programs joins its chain now."""
    kind, body = oneof(msg, "body", where, errors)
    spec = response_spec(msg.status, [(h.name, h.value) for h in msg.headers], kind, body, where, errors)
    behaviours: list[Behaviour] = []
    wait = timing.fixed_delay(seconds(msg.delay), f"{where}.delay", errors)
    if wait is not None:
        behaviours.append(wait)
    if msg.HasField("template"):  # compiled now, so a request only renders
        seed = msg.template.seed if msg.template.HasField("seed") else None
        events = _event_templates(msg.sse, f"{where}.sse", errors) if msg.WhichOneof("stream") == "sse" else ()
        behaviours.append(
            templating.compile_response(spec, kind, body, msg.template.status, seed, where, errors, events)
        )
    spec = with_behaviours(spec, *behaviours)
    if any(msg.HasField(name) for name in _DELIVERY_FIELDS):
        spec = _delivered(msg, spec, where, errors)
    if msg.HasField("proxy"):
        spec = with_behaviours(spec, _proxy(msg, spec, where, errors))
    return spec


_PROXY_MODES = {
    stub_pb2.PROXY_MODE_UNSPECIFIED: proxying.ProxyMode.TRANSPARENT,
    stub_pb2.PROXY_MODE_TRANSPARENT: proxying.ProxyMode.TRANSPARENT,
    stub_pb2.PROXY_MODE_RECORD_ONCE: proxying.ProxyMode.RECORD_ONCE,
    stub_pb2.PROXY_MODE_RECORD_ALWAYS: proxying.ProxyMode.RECORD_ALWAYS,
}
# What the upstream's answer replaces; `delay` and `header_delay` wait before forwarding, so they stay.
_NOT_WITH_PROXY: tuple[Literal["body_delay", "dribble", "fault", "sse", "chunked", "template"], ...] = (
    "body_delay",
    "dribble",
    "fault",
    "sse",
    "chunked",
    "template",
)


def _proxy(msg: stub_pb2.Response, spec: ResponseSpec, where: str, errors: SpecErrors) -> proxying.Proxy:
    for name in _NOT_WITH_PROXY:
        if msg.HasField(name):
            errors.add(f"{where}.{name}", "cannot be combined with proxy: the upstream's answer is sent as it arrives")
    at = f"{where}.proxy"
    proxy = msg.proxy
    if proxy.mode not in _PROXY_MODES:
        errors.add(f"{at}.mode", f"unknown ProxyMode value {proxy.mode}")
    record = proxy.record
    options = proxying.record_options(
        list(record.match_headers),
        list(record.match_json_paths),
        record.match_body,
        record.ignore_query,
        list(record.redact_headers),
        record.keep_secrets,
        record.timing_scale if record.HasField("timing_scale") else None,
        f"{at}.record",
        errors,
    )
    return proxying.proxy(
        spec,
        proxy.upstream,
        _PROXY_MODES.get(proxy.mode, proxying.ProxyMode.TRANSPARENT),
        tuple((h.name, h.value) for h in proxy.request_headers),
        seconds(proxy.timeout) if proxy.HasField("timeout") else None,
        options,
        at,
        errors,
    )


def delay(msg: stub_pb2.Delay, where: str, errors: SpecErrors) -> timing.Delay | None:
    return timing.delay(
        msg.WhichOneof("kind") or "",
        where,
        errors,
        fixed=seconds(msg.fixed),
        low=seconds(msg.uniform.min),
        high=seconds(msg.uniform.max),
        median=seconds(msg.lognormal.median),
        sigma=msg.lognormal.sigma,
        seed=msg.seed if msg.HasField("seed") else None,
        cap=seconds(msg.cap),
    )


def _optional_delay(parent: Any, name: str, where: str, errors: SpecErrors) -> timing.Delay | None:
    return delay(getattr(parent, name), f"{where}.{name}", errors) if parent.HasField(name) else None


def _event_templates(
    msg: stub_pb2.SseStream, where: str, errors: SpecErrors
) -> tuple[templating.EventTemplate | None, ...]:
    """The events whose data holds template markers, compiled now; the others stay as programmed."""
    out: list[templating.EventTemplate | None] = []
    for i, event in enumerate(msg.events):
        compiled = templating.compile_text(event.data, f"{where}.events[{i}].data", errors)
        if compiled is None:
            out.append(None)
            continue
        retry = round(seconds(event.retry) * 1000) if event.HasField("retry") else None
        encode = functools.partial(_encode_event, event.event, event_id=event.id, retry=retry, comment=event.comment)
        out.append(templating.EventTemplate(compiled, encode))
    if not any(out):
        return ()
    return tuple(out)


def _encode_event(event: str, data: str, *, event_id: str, retry: int | None, comment: str) -> bytes:
    # The event's fixed fields were checked when programmed; only its rendered data is new here.
    return streaming.sse_event(event, data, event_id, retry, comment, "", SpecErrors())


def sse_stream(msg: stub_pb2.SseStream, where: str, errors: SpecErrors) -> streaming.StreamSpec | None:
    pieces = []
    for i, event in enumerate(msg.events):
        at = f"{where}.events[{i}]"
        retry = round(seconds(event.retry) * 1000) if event.HasField("retry") else None
        data = streaming.sse_event(event.event, event.data, event.id, retry, event.comment, at, errors)
        pieces.append(streaming.Piece(data, seconds(event.delay)))
    return streaming.stream(
        streaming.StreamKind.SSE,
        pieces,
        _optional_delay(msg, "event_delay", where, errors),
        seconds(msg.keep_alive),
        _STREAM_AFTER_LAST.get(msg.after_last, ""),
        msg.abort_after,
        _STREAM_ABORT.get(msg.abort, ""),
        where,
        errors,
    )


def chunked_stream(msg: stub_pb2.ChunkedStream, where: str, errors: SpecErrors) -> streaming.StreamSpec | None:
    pieces = []
    for chunk in msg.chunks:
        pieces.append(streaming.Piece(bytes(chunk.data), seconds(chunk.delay)))
    return streaming.stream(
        streaming.StreamKind.CHUNKED,
        pieces,
        _optional_delay(msg, "chunk_delay", where, errors),
        0.0,
        _STREAM_AFTER_LAST.get(msg.after_last, ""),
        msg.abort_after,
        _STREAM_ABORT.get(msg.abort, ""),
        where,
        errors,
    )


def _body_size(spec: ResponseSpec) -> int | None:
    """The body's size as programmed; None when a template renders it per request."""
    rendered = any(isinstance(b, templating.ResponseTemplate) and b.renders_body for b in spec.behaviours)
    return None if rendered else len(spec.body)


def fault(msg: stub_pb2.Fault, body_size: int | None, where: str, errors: SpecErrors) -> faults.Fault | None:
    return faults.fault(
        _FAULT_KINDS.get(msg.kind, ""),
        msg.after_body_bytes if msg.HasField("after_body_bytes") else None,
        bytes(msg.garbage),
        seconds(msg.hang_for),
        body_size,
        where,
        errors,
    )


def _delivered(msg: stub_pb2.Response, spec: ResponseSpec, where: str, errors: SpecErrors) -> ResponseSpec:
    kind = msg.WhichOneof("stream")
    stream = None
    if kind == "sse":
        stream = sse_stream(msg.sse, f"{where}.sse", errors)
    elif kind == "chunked":
        stream = chunked_stream(msg.chunked, f"{where}.chunked", errors)
    dribble = None
    if msg.HasField("dribble"):
        dribble = timing.dribble(msg.dribble.chunk_bytes, seconds(msg.dribble.duration), f"{where}.dribble", errors)
    return delivery.shape(
        spec,
        header_delay=_optional_delay(msg, "header_delay", where, errors),
        body_delay=_optional_delay(msg, "body_delay", where, errors),
        dribble=dribble,
        fault=fault(msg.fault, _body_size(spec), f"{where}.fault", errors) if msg.HasField("fault") else None,
        stream=stream,
        where=where,
        errors=errors,
    )
