"""Recording: an answer a proxy stub forwarded becomes a stub of the session, programmed as a client would have."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from google.protobuf import json_format, struct_pb2

from simulatord.control.convert import stubs
from simulatord.control.convert.scalars import duration
from simulatord.errors import NotFound, SpecErrors
from simulatord.matching.request import HttpRequest
from simulatord.responding import streaming
from simulatord.responding.proxy import Proxy, ProxyMode, Recording, RecordOptions
from simulatord.serving.recording import REDACTED
from simulatord.sessions.session import Session
from simulatord.sessions.stubs import Stub
from simulatord.v1 import stub_pb2

# An always-recording proxy in a long loop must not grow one stub without end.
MAX_RECORDED_RESPONSES = 1000
_INT32_MIN = -(2**31)
_LINE = re.compile(r"\r\n|\r|\n")


def record(session: Session, stub: Stub, proxy: Proxy, recording: Recording) -> tuple[str, str]:
    """Adds (RECORD_ONCE) or extends (RECORD_ALWAYS) the stub recorded for this request; returns its name, or
    why nothing was recorded."""
    options = proxy.record
    matcher = request_matcher(recording.request, options)
    answer = response(recording, options)
    once = proxy.mode is ProxyMode.RECORD_ONCE
    priority = stub.priority if once else max(_INT32_MIN, stub.priority - 1)
    digest = hashlib.sha256(matcher.SerializeToString(deterministic=True) + str(priority).encode()).hexdigest()
    stub_id = f"rec-{digest[:16]}"
    try:
        existing: Stub | None = session.get_stub(stub_id)
    except NotFound:
        existing = None
    if existing is not None and once:
        return "", ""  # the first answer is kept: a concurrent twin of the first request arrived meanwhile
    if existing is not None:
        msg = stub_pb2.Stub()
        msg.CopyFrom(stubs.stub_to_template(existing))
        if len(msg.responses) >= MAX_RECORDED_RESPONSES:
            return "", f"the recorded stub {existing.name} holds {MAX_RECORDED_RESPONSES} responses already"
        msg.responses.append(answer)
    else:
        msg = stub_pb2.Stub(
            description=f"recorded from {recording.url}", request=matcher, responses=[answer], priority=priority
        )
    errors = SpecErrors()
    built = stubs.stub(
        msg, session.key.name, stub_id, "recorded stub", "stub_id", errors, recording.request.receive_time
    )
    if errors.violations:
        first = errors.violations[0]
        return "", f"the recorded stub was refused: {first.field}: {first.description}"
    if existing is not None:
        session.replace_stub(built)
    else:
        session.add_stubs([built])
    return built.name, ""


def request_matcher(request: HttpRequest, options: RecordOptions) -> stub_pb2.RequestMatcher:
    """The method, the exact path, the query parameters unless ignored, and the chosen headers and body fields."""
    out = stub_pb2.RequestMatcher(method=request.method, path=stub_pb2.PathMatcher(exact=request.path))
    if not options.ignore_query:
        for name, value in request.query:
            out.query.append(stub_pb2.FieldMatcher(name=name, value=stub_pb2.StringMatcher(equals=value)))
    for name in options.match_headers:
        values = request.header_values(name)
        if not values:
            out.headers.append(stub_pb2.FieldMatcher(name=name, absent=True))
        elif name in options.redact:  # a secret is neither written down nor required: only its presence
            out.headers.append(stub_pb2.FieldMatcher(name=name))
        else:
            for value in values:
                out.headers.append(stub_pb2.FieldMatcher(name=name, value=stub_pb2.StringMatcher(equals=value)))
    if options.match_body:
        out.body.append(stub_pb2.BodyMatcher(equals=request.body))
    for expression, query in options.match_json_paths:
        nodes = query.findall(request.json()) if request.has_json else []
        path = stub_pb2.JsonPathMatcher(expression=expression)
        if nodes:
            path.equals.CopyFrom(_json_value(nodes[0]))
            out.body.append(stub_pb2.BodyMatcher(json_path=path))
        else:
            out.none_of.append(stub_pb2.RequestMatcher(body=[stub_pb2.BodyMatcher(json_path=path)]))
    return out


def response(recording: Recording, options: RecordOptions) -> stub_pb2.Response:
    """The answer as the upstream sent it (secrets redacted), SSE events with the time before each."""
    headers = [
        stub_pb2.Header(name=name, value=REDACTED if name in options.redact else value)
        for name, value in recording.headers
    ]
    out = stub_pb2.Response(status=recording.status, headers=headers)
    if recording.events is None:
        out.body_bytes = recording.body
        return out
    scale = options.timing_scale
    abort_after = len(recording.events) if recording.aborted else 0
    events = [_sse_event(raw) for raw, _ in recording.events]
    if all(event is not None for event in events):
        out.sse.abort_after = abort_after
        for event, (_, wait) in zip(events, recording.events, strict=True):
            assert event is not None
            if wait * scale > 0:
                event.delay.CopyFrom(duration(wait * scale))
            out.sse.events.append(event)
    else:  # the upstream's own spelling of its events is kept byte for byte
        out.chunked.abort_after = abort_after
        for raw, wait in recording.events:
            chunk = stub_pb2.Chunk(data=raw)
            if wait * scale > 0:
                chunk.delay.CopyFrom(duration(wait * scale))
            out.chunked.chunks.append(chunk)
    return out


def _sse_event(raw: bytes) -> stub_pb2.SseEvent | None:
    """The event an SSE block holds, if programming it gives back exactly these bytes; None otherwise."""
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        return None
    fields: dict[str, list[str]] = {"event": [], "data": [], "id": [], "retry": [], "": []}
    for line in _LINE.split(text.rstrip("\r\n")):
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name not in fields:
            return None
        fields[name].append(value)
    if any(len(fields[name]) > 1 for name in ("event", "id", "retry")):
        return None
    event = stub_pb2.SseEvent(
        event=(fields["event"] or [""])[0],
        data="\n".join(fields["data"]),
        id=(fields["id"] or [""])[0],
        comment="\n".join(fields[""]),
    )
    retry = None
    if fields["retry"]:
        if not fields["retry"][0].isdigit():
            return None
        retry = int(fields["retry"][0])
        event.retry.CopyFrom(duration(retry / 1000))
    encoded = streaming.sse_event(event.event, event.data, event.id, retry, event.comment, "", SpecErrors())
    return event if encoded == raw else None


def _json_value(node: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    json_format.ParseDict(node, value)
    return value
