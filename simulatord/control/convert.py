"""Proto <-> domain conversion, in one place; validation errors carry proto field paths."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2

from simulatord.errors import SpecErrors
from simulatord.matching import matchers as m
from simulatord.names import ID_RULE, SessionKey, new_id, valid_id
from simulatord.responding import delivery, faults, ratelimit, streaming, templating, timing
from simulatord.responding.reply import MAX_DELAY_SECONDS, ResponseSpec, response_spec
from simulatord.sessions import websockets as ws
from simulatord.sessions.journal import Exchange, ExchangeFilter, JournalLimits
from simulatord.sessions.service import Addressing
from simulatord.sessions.session import Session
from simulatord.sessions.stubs import Stub
from simulatord.v1 import exchange_pb2, session_pb2, stub_pb2

_AFTER_LAST = {
    stub_pb2.SEQUENCE_END_UNSPECIFIED: "repeat_last",
    stub_pb2.SEQUENCE_END_REPEAT_LAST: "repeat_last",
    stub_pb2.SEQUENCE_END_CYCLE: "cycle",
    stub_pb2.SEQUENCE_END_STOP_MATCHING: "stop_matching",
}
_MATCH_STATE = {
    exchange_pb2.MATCH_STATE_UNSPECIFIED: "",
    exchange_pb2.MATCH_STATE_MATCHED: "matched",
    exchange_pb2.MATCH_STATE_UNMATCHED: "unmatched",
}
_ROUTING = {
    "path_prefix": exchange_pb2.ROUTING_PATH_PREFIX,
    "host": exchange_pb2.ROUTING_HOST,
    "header": exchange_pb2.ROUTING_HEADER,
}
_END = {
    "complete": exchange_pb2.RESPONSE_END_COMPLETE,
    "client_disconnected": exchange_pb2.RESPONSE_END_CLIENT_DISCONNECTED,
    "aborted": exchange_pb2.RESPONSE_END_ABORTED,
}
MAX_TTL_SECONDS = 7 * 24 * 3600


# --- scalars -------------------------------------------------------------------------------------


def seconds(value: duration_pb2.Duration) -> float:
    return value.seconds + value.nanos / 1e9


def duration(secs: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(secs * 1e9))
    return d


def timestamp(epoch: float) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    t.FromNanoseconds(int(epoch * 1e9))
    return t


def _integral(value: Any) -> Any:
    """google.protobuf.Value keeps every number as a double; JSON users expect 1, not 1.0."""
    if isinstance(value, float) and value.is_integer() and math.isfinite(value) and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def from_value(value: struct_pb2.Value) -> Any:
    return _integral(json_format.MessageToDict(value))


def to_value(obj: Any) -> struct_pb2.Value:
    value = struct_pb2.Value()
    json_format.ParseDict(obj, value)
    return value


def check_id(value: str, where: str, errors: SpecErrors) -> None:
    if value and not valid_id(value):
        errors.add(where, f"{value!r} {ID_RULE}")


LABEL_KEY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_./-]{0,62})?")
LABEL_VALUE = re.compile(r"[A-Za-z0-9_./-]{0,63}")


def check_labels(labels: Mapping[str, str], where: str, errors: SpecErrors) -> None:
    """Keys and values that label selectors (`key=value,key`) can always express."""
    for key, value in sorted(labels.items()):
        if not LABEL_KEY.fullmatch(key):
            errors.add(f"{where}[{key!r}]", "label keys are 1-63 characters of A-Z, a-z, 0-9, '_', '.', '/', '-'")
        elif not LABEL_VALUE.fullmatch(value):
            errors.add(
                f"{where}[{key!r}]", f"label value {value!r} may hold up to 63 of A-Z, a-z, 0-9, '_', '.', '/', '-'"
            )


def ttl_seconds(value: duration_pb2.Duration, where: str, errors: SpecErrors) -> float | None:
    secs = seconds(value)
    if secs < 0 or secs > MAX_TTL_SECONDS:
        errors.add(where, f"must be between 0 and {MAX_TTL_SECONDS} seconds")
        return None
    return secs or None


# --- matchers ------------------------------------------------------------------------------------


def string_matcher(msg: stub_pb2.StringMatcher, where: str, errors: SpecErrors) -> m.StringTest:
    kind = msg.WhichOneof("kind")
    return m.string_test(kind or "", getattr(msg, kind) if kind else "", msg.ignore_case, where, errors)


def field_matchers(source: str, items: Any, where: str, errors: SpecErrors) -> list[m.FieldValueTest]:
    out = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        value = string_matcher(item.value, f"{at}.value", errors) if item.HasField("value") else None
        out.append(m.field_value_test(source, item.name, value, item.absent, at, errors))
    return out


def body_matchers(items: Any, where: str, errors: SpecErrors) -> list[m.BodyTest]:
    out = []
    for i, item in enumerate(items):
        at, label = f"{where}[{i}]", f"body[{i}]"
        kind = item.WhichOneof("kind") or ""
        if kind == "equals":
            out.append(m.body_test(kind, bytes(item.equals), at, errors, label=label))
        elif kind in ("contains", "regex"):
            out.append(m.body_test(kind, getattr(item, kind), at, errors, label=label))
        elif kind in ("json_equals", "json_subset"):
            out.append(m.body_test(kind, from_value(getattr(item, kind)), at, errors, label=label))
        elif kind == "json_path":
            jp = item.json_path
            if not jp.expression:
                errors.add(f"{at}.json_path.expression", "must not be empty")
                continue
            out.append(
                m.body_test(
                    kind,
                    jp.expression,
                    at,
                    errors,
                    node_equals=from_value(jp.equals) if jp.HasField("equals") else None,
                    has_node_equals=jp.HasField("equals"),
                    node_value=string_matcher(jp.value, f"{at}.json_path.value", errors)
                    if jp.HasField("value")
                    else None,
                    label=label,
                )
            )
        else:
            out.append(m.body_test("", None, at, errors))
    return out


def request_matcher(msg: stub_pb2.RequestMatcher, where: str, errors: SpecErrors, depth: int = 0) -> m.RequestMatcher:
    if depth > 8:
        errors.add(where, "nests all_of/any_of/none_of more than 8 levels deep")
        return m.request_matcher()
    method = msg.method.strip()
    if method and not method.replace("-", "").isalpha():
        errors.add(f"{where}.method", f"{method!r} is not an HTTP method")
    path = None
    if msg.HasField("path"):
        kind = msg.path.WhichOneof("kind") or ""
        path = m.path_test(kind, getattr(msg.path, kind) if kind else "", f"{where}.path", errors)
    return m.request_matcher(
        method=method,
        path=path,
        query=field_matchers("query", msg.query, f"{where}.query", errors),
        headers=field_matchers("headers", msg.headers, f"{where}.headers", errors),
        body=body_matchers(msg.body, f"{where}.body", errors),
        all_of=[request_matcher(x, f"{where}.all_of[{i}]", errors, depth + 1) for i, x in enumerate(msg.all_of)],
        any_of=[request_matcher(x, f"{where}.any_of[{i}]", errors, depth + 1) for i, x in enumerate(msg.any_of)],
        none_of=[request_matcher(x, f"{where}.none_of[{i}]", errors, depth + 1) for i, x in enumerate(msg.none_of)],
    )


# --- stubs ---------------------------------------------------------------------------------------


def response(msg: stub_pb2.Response, where: str, errors: SpecErrors) -> ResponseSpec:
    kind = msg.WhichOneof("body")
    body: Any = None
    if kind == "body_json":
        body = from_value(msg.body_json)
    elif kind is not None:
        body = getattr(msg, kind)
    spec = response_spec(
        msg.status,
        [(h.name, h.value) for h in msg.headers],
        kind,
        body,
        seconds(msg.delay),
        where,
        errors,
    )
    if msg.HasField("template"):  # compiled now, so a request only renders
        seed = msg.template.seed if msg.template.HasField("seed") else None
        compiled = templating.compile_response(spec, kind, body, msg.template.status, seed, where, errors)
        spec = dataclasses.replace(spec, template=compiled)
    return shaped(msg, spec, where, errors)


def stub(
    msg: stub_pb2.Stub,
    key: SessionKey,
    stub_id: str,
    where: str,
    id_where: str,
    errors: SpecErrors,
    now: float,
) -> Stub:
    """Validates and compiles a stub definition; every problem is added to `errors`."""
    check_id(stub_id, id_where, errors)
    stub_id = stub_id or new_id("stub")
    if not msg.responses and not msg.HasField("websocket"):
        errors.add(f"{where}.responses", "must hold at least one response")
    if msg.after_last not in _AFTER_LAST:
        errors.add(f"{where}.after_last", f"unknown SequenceEnd value {msg.after_last}")
    if msg.times < 0:
        errors.add(f"{where}.times", "must not be negative")
    low = msg.expect.at_least if msg.expect.HasField("at_least") else None
    high = msg.expect.at_most if msg.expect.HasField("at_most") else None
    if (low is not None and low < 0) or (high is not None and high < 0):
        errors.add(f"{where}.expect", "counts must not be negative")
    if low is not None and high is not None and low > high:
        errors.add(f"{where}.expect", f"at_least ({low}) exceeds at_most ({high})")
    source = stub_pb2.Stub()
    source.CopyFrom(msg)
    source.ClearField("match_count")
    source.ClearField("create_time")
    source.name = key.stub_name(stub_id)
    return Stub(
        id=stub_id,
        name=key.stub_name(stub_id),
        matcher=request_matcher(msg.request, f"{where}.request", errors),
        responses=tuple(response(r, f"{where}.responses[{i}]", errors) for i, r in enumerate(msg.responses))
        or _ACCEPT_UPGRADE,
        description=msg.description,
        after_last=_AFTER_LAST.get(msg.after_last, "repeat_last"),
        priority=msg.priority,
        times=msg.times,
        expect_at_least=low,
        expect_at_most=high,
        required_state=msg.required_state,
        next_state=msg.next_state,
        create_time=now,
        source=source,
        rate_limit=rate_limit(msg.rate_limit, stub_id, f"{where}.rate_limit", errors)
        if msg.HasField("rate_limit")
        else None,
        websocket=conversation(msg.websocket, f"{where}.websocket", errors) if msg.HasField("websocket") else None,
        scenario=check_scenario(msg.scenario, f"{where}.scenario", errors),
    )


def stub_to_proto(value: Stub) -> stub_pb2.Stub:
    out = stub_pb2.Stub()
    out.CopyFrom(value.source)
    out.match_count = value.match_count
    out.rate_limited_count = value.rate_limited_count
    out.create_time.CopyFrom(timestamp(value.create_time))
    return out


# --- delivery: timing, faults and streams (Response fields 20-29) ---------------------------------

_FAULT_KINDS = {
    stub_pb2.FAULT_KIND_RESET: "reset",
    stub_pb2.FAULT_KIND_CLOSE: "close",
    stub_pb2.FAULT_KIND_GARBAGE: "garbage",
    stub_pb2.FAULT_KIND_TRUNCATED_BODY: "truncated_body",
    stub_pb2.FAULT_KIND_MALFORMED_CHUNK: "malformed_chunk",
    stub_pb2.FAULT_KIND_HANG: "hang",
}
_STREAM_AFTER_LAST = {
    stub_pb2.STREAM_AFTER_LAST_UNSPECIFIED: "end",
    stub_pb2.STREAM_AFTER_LAST_END: "end",
    stub_pb2.STREAM_AFTER_LAST_HOLD_OPEN: "hold_open",
    stub_pb2.STREAM_AFTER_LAST_REPEAT: "repeat",
}
_STREAM_ABORT = {
    stub_pb2.STREAM_ABORT_UNSPECIFIED: "reset",
    stub_pb2.STREAM_ABORT_RESET: "reset",
    stub_pb2.STREAM_ABORT_CLOSE: "close",
    stub_pb2.STREAM_ABORT_END: "end",
}
_SHAPING_FIELDS: tuple[Literal["header_delay", "body_delay", "dribble", "fault", "sse", "chunked"], ...] = (
    "header_delay",
    "body_delay",
    "dribble",
    "fault",
    "sse",
    "chunked",
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


def sse_stream(msg: stub_pb2.SseStream, where: str, errors: SpecErrors) -> streaming.StreamSpec | None:
    pieces = []
    for i, event in enumerate(msg.events):
        at = f"{where}.events[{i}]"
        retry = None
        if event.HasField("retry"):
            retry_seconds = seconds(event.retry)
            if retry_seconds < 0:
                errors.add(f"{at}.retry", "must not be negative")
            retry = max(0, round(retry_seconds * 1000))
        data = streaming.sse_event(event.event, event.data, event.id, retry, event.comment, at, errors)
        pieces.append(streaming.Piece(data, seconds(event.delay)))
    return streaming.stream(
        "sse",
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
    for i, chunk in enumerate(msg.chunks):
        if not chunk.data:
            errors.add(f"{where}.chunks[{i}].data", "must not be empty (an empty chunk would end the body)")
        pieces.append(streaming.Piece(bytes(chunk.data), seconds(chunk.delay)))
    return streaming.stream(
        "chunked",
        pieces,
        _optional_delay(msg, "chunk_delay", where, errors),
        0.0,
        _STREAM_AFTER_LAST.get(msg.after_last, ""),
        msg.abort_after,
        _STREAM_ABORT.get(msg.abort, ""),
        where,
        errors,
    )


def fault(msg: stub_pb2.Fault, body_size: int, where: str, errors: SpecErrors) -> faults.Fault | None:
    return faults.fault(
        _FAULT_KINDS.get(msg.kind, ""),
        msg.after_body_bytes if msg.HasField("after_body_bytes") else None,
        bytes(msg.garbage),
        seconds(msg.hang_for),
        body_size,
        where,
        errors,
    )


def shaped(msg: stub_pb2.Response, spec: ResponseSpec, where: str, errors: SpecErrors) -> ResponseSpec:
    """Adds programmed timing, faults and streams to a response spec; without any, the spec stays plain."""
    if not any(msg.HasField(name) for name in _SHAPING_FIELDS):
        return spec
    kind = msg.WhichOneof("stream")
    stream = None
    if kind == "sse":
        stream = sse_stream(msg.sse, f"{where}.sse", errors)
    elif kind == "chunked":
        stream = chunked_stream(msg.chunked, f"{where}.chunked", errors)
    dribble = None
    if msg.HasField("dribble"):
        dribble = timing.dribble(msg.dribble.chunk_bytes, seconds(msg.dribble.duration), f"{where}.dribble", errors)
    shaping = delivery.Shaping(
        header_delay=_optional_delay(msg, "header_delay", where, errors),
        body_delay=_optional_delay(msg, "body_delay", where, errors),
        dribble=dribble,
        fault=fault(msg.fault, len(spec.body), f"{where}.fault", errors) if msg.HasField("fault") else None,
        stream=stream,
    )
    return delivery.attach(spec, shaping, where, errors)


# --- sessions ------------------------------------------------------------------------------------


def journal_limits(
    msg: session_pb2.JournalLimits,
    simulator_limits: Callable[[int, int, int], JournalLimits],
    where: str,
    errors: SpecErrors,
) -> JournalLimits:
    for field in ("max_exchanges", "max_bytes", "max_body_bytes"):
        if getattr(msg, field) < 0:
            errors.add(f"{where}.{field}", "must not be negative")
    return simulator_limits(max(msg.max_exchanges, 0), max(msg.max_bytes, 0), max(msg.max_body_bytes, 0))


def session_to_proto(value: Session, addressing: Addressing) -> session_pb2.Session:
    journal = value.journal
    return session_pb2.Session(
        name=value.key.name,
        labels=value.labels,
        create_time=timestamp(value.create_time),
        expire_time=timestamp(value.expire_time),
        ttl=duration(value.ttl),
        base_url=addressing.base_url(value.key),
        host=addressing.host(value.key),
        routing_header=value.key.name,
        journal_limits=session_pb2.JournalLimits(
            max_exchanges=value.limits.max_exchanges,
            max_bytes=value.limits.max_bytes,
            max_body_bytes=value.limits.max_body_bytes,
        ),
        journal_stats=session_pb2.JournalStats(
            total_count=journal.total_count,
            retained_count=len(journal),
            evicted_count=journal.evicted_count,
            retained_bytes=journal.retained_bytes,
            first_sequence=journal.first_sequence,
            last_sequence=journal.last_sequence,
        ),
        unmatched_status=value.unmatched_status,
        stub_count=len(value.stubs),
        state=value.state,
        scenarios=value.scenarios,
    )


# --- exchanges -----------------------------------------------------------------------------------


def exchange_filter(msg: exchange_pb2.ExchangeFilter, where: str, errors: SpecErrors) -> ExchangeFilter:
    if msg.match_state not in _MATCH_STATE:
        errors.add(f"{where}.match_state", f"unknown MatchState value {msg.match_state}")
    if msg.path and msg.path_prefix:
        errors.add(f"{where}.path_prefix", "set at most one of path and path_prefix")
    return ExchangeFilter(
        match_state=_MATCH_STATE.get(msg.match_state, ""),
        stub=msg.stub,
        method=msg.method,
        path=msg.path,
        path_prefix=msg.path_prefix,
    )


def exchange_to_proto(value: Exchange, key: SessionKey) -> exchange_pb2.Exchange:
    req = value.request
    return exchange_pb2.Exchange(
        name=key.exchange_name(value.sequence),
        sequence=value.sequence,
        request=exchange_pb2.RecordedRequest(
            method=req.method,
            path=req.path,
            query_string=req.query_string,
            query=[exchange_pb2.QueryParameter(name=n, value=v) for n, v in req.query],
            headers=[stub_pb2.Header(name=n, value=v) for n, v in req.headers],
            body=req.body,
            body_truncated=value.body_truncated,
            body_size=value.body_size,
            receive_time=timestamp(req.receive_time),
            http_version=req.http_version,
            routing=_ROUTING.get(req.routing, exchange_pb2.ROUTING_UNSPECIFIED),
        ),
        stub=value.stub_name,
        kind=_KIND.get(value.kind, exchange_pb2.EXCHANGE_KIND_UNSPECIFIED),
        frame=frame_to_proto(value.frame) if value.frame is not None else None,
        near_misses=[
            exchange_pb2.NearMiss(
                stub=miss.stub_name,
                description=miss.description,
                mismatches=[
                    exchange_pb2.Mismatch(field=x.field, expected=x.expected, actual=x.actual) for x in miss.mismatches
                ],
            )
            for miss in value.near_misses
        ],
        response=exchange_pb2.RecordedResponse(
            status=value.status,
            headers=[stub_pb2.Header(name=n, value=v) for n, v in value.response_headers],
            body_size=value.response_body_size,
            duration=duration(value.duration),
            end=_END.get(value.end, exchange_pb2.RESPONSE_END_UNSPECIFIED),
            event_count=value.event_count,
        ),
    )


# --- rate limits and WebSockets (behaviours, part B) ----------------------------------------------

_KIND = {
    "http": exchange_pb2.EXCHANGE_KIND_HTTP,
    "websocket_upgrade": exchange_pb2.EXCHANGE_KIND_WEBSOCKET_UPGRADE,
    "websocket_frame": exchange_pb2.EXCHANGE_KIND_WEBSOCKET_FRAME,
}
_DIRECTION = {"inbound": exchange_pb2.FRAME_DIRECTION_INBOUND, "outbound": exchange_pb2.FRAME_DIRECTION_OUTBOUND}
# A WebSocket stub without responses accepts the upgrade; its sequence then only counts matches.
_ACCEPT_UPGRADE = (ResponseSpec(101),)
MAX_RATE_LIMIT_PERIOD = 24 * 3600.0


def rate_limit(msg: stub_pb2.RateLimit, stub_id: str, where: str, errors: SpecErrors) -> ratelimit.RateLimitRule:
    if msg.limit < 1:
        errors.add(f"{where}.limit", "must be at least 1")
    period = seconds(msg.period)
    if not 0 < period <= MAX_RATE_LIMIT_PERIOD:
        errors.add(f"{where}.period", f"must be positive and at most {MAX_RATE_LIMIT_PERIOD:.0f} seconds")
    key_header = msg.key_header.strip().lower()
    if any(c in key_header for c in " :\r\n\t"):
        errors.add(f"{where}.key_header", f"{msg.key_header!r} is not a header name")
    check_id(msg.bucket, f"{where}.bucket", errors)
    limited = response(msg.response, f"{where}.response", errors) if msg.HasField("response") else None
    return ratelimit.RateLimitRule(
        limit=max(msg.limit, 1),
        period=period if period > 0 else 1.0,
        key_header=key_header,
        # Named buckets are shared by the stubs naming them; the stub id keeps an unnamed one private.
        bucket=f"named:{msg.bucket}" if msg.bucket else f"stub:{stub_id}",
        response=limited or ratelimit.default_response(),
    )


def close_spec(msg: stub_pb2.WebSocketClose, where: str, errors: SpecErrors) -> ws.CloseSpec:
    code = msg.code or ws.DEFAULT_CLOSE_CODE
    if code != 1000 and not 3000 <= code <= 4999:
        errors.add(f"{where}.code", f"must be 0, 1000 or between 3000 and 4999, got {msg.code}")
    if len(msg.reason.encode()) > 123:
        errors.add(f"{where}.reason", "must be at most 123 bytes of UTF-8")
    delay = seconds(msg.delay)
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        errors.add(f"{where}.delay", f"must be between 0 and {MAX_DELAY_SECONDS:.0f} seconds")
    return ws.CloseSpec(code, msg.reason, delay)


def out_message(msg: stub_pb2.WebSocketMessage, where: str, errors: SpecErrors) -> ws.OutMessage:
    kind = msg.WhichOneof("payload")
    delay = seconds(msg.delay)
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        errors.add(f"{where}.delay", f"must be between 0 and {MAX_DELAY_SECONDS:.0f} seconds")
    if kind is None:
        errors.add(f"{where}.payload", "set one of text, binary or json")
        return ws.OutMessage(text="", delay=delay)
    if kind == "binary":
        if msg.template:
            errors.add(f"{where}.template", "binary messages cannot be templates; use text or json")
        return ws.OutMessage(binary=bytes(msg.binary), delay=delay)
    if kind == "text":
        compiled = templating.compile_text(msg.text, f"{where}.text", errors) if msg.template else None
        return ws.OutMessage(text=msg.text, delay=delay, text_template=compiled)
    value = from_value(msg.json)
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    json_template = templating.compile_json(value, f"{where}.json", errors) if msg.template else None
    return ws.OutMessage(text=text, delay=delay, json_template=json_template)


def conversation(msg: stub_pb2.WebSocketBehaviour, where: str, errors: SpecErrors) -> ws.Conversation:
    if any(c in msg.subprotocol for c in " ,\r\n\t"):
        errors.add(f"{where}.subprotocol", f"{msg.subprotocol!r} is not a subprotocol token")
    rules = tuple(
        ws.Rule(
            tests=tuple(body_matchers(rule.message, f"{where}.rules[{i}].message", errors)),
            replies=tuple(
                out_message(r, f"{where}.rules[{i}].replies[{j}]", errors) for j, r in enumerate(rule.replies)
            ),
            close=close_spec(rule.close, f"{where}.rules[{i}].close", errors) if rule.HasField("close") else None,
        )
        for i, rule in enumerate(msg.rules)
    )
    return ws.Conversation(
        subprotocol=msg.subprotocol,
        on_connect=tuple(out_message(m_, f"{where}.on_connect[{i}]", errors) for i, m_ in enumerate(msg.on_connect)),
        rules=rules,
        close_after_connect=close_spec(msg.close_after_connect, f"{where}.close_after_connect", errors)
        if msg.HasField("close_after_connect")
        else None,
    )


def frame_to_proto(frame: ws.Frame) -> exchange_pb2.WebSocketFrame:
    out = exchange_pb2.WebSocketFrame(
        connection=frame.connection,
        direction=_DIRECTION.get(frame.direction, exchange_pb2.FRAME_DIRECTION_UNSPECIFIED),
        size=frame.size,
        origin=frame.origin,
    )
    if frame.close_code is not None:
        out.close.CopyFrom(exchange_pb2.WebSocketCloseFrame(code=frame.close_code, reason=frame.close_reason))
    elif frame.binary is not None:
        out.binary = frame.binary
    else:
        out.text = frame.text or ""
    return out


MAX_SCENARIO_NAME = 100


def check_scenario(name: str, where: str, errors: SpecErrors) -> str:
    """Scenario names are free text, but bounded and printable: they show in near misses and listings."""
    if len(name) > MAX_SCENARIO_NAME or not name.isprintable():
        errors.add(where, f"must be at most {MAX_SCENARIO_NAME} printable characters")
    return name
