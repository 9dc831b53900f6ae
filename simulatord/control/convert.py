"""Proto <-> domain conversion, in one place; validation errors carry proto field paths."""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2

from simulatord.errors import SpecErrors
from simulatord.matching import matchers as m
from simulatord.names import SessionKey, new_id, valid_id, ID_RULE
from simulatord.responding.reply import ResponseSpec, response_spec
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


def field_matchers(
    source: str, items: Any, where: str, errors: SpecErrors
) -> list[m.FieldValueTest]:
    out = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        value = string_matcher(item.value, f"{at}.value", errors) if item.HasField("value") else None
        out.append(m.field_value_test(source, item.name, value, item.absent, at, errors))
    return out


def body_matchers(items: Any, where: str, errors: SpecErrors) -> list[m.BodyTest]:
    out = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        kind = item.WhichOneof("kind") or ""
        if kind == "equals":
            out.append(m.body_test(kind, bytes(item.equals), at, errors))
        elif kind in ("contains", "regex"):
            out.append(m.body_test(kind, getattr(item, kind), at, errors))
        elif kind in ("json_equals", "json_subset"):
            out.append(m.body_test(kind, from_value(getattr(item, kind)), at, errors))
        elif kind == "json_path":
            jp = item.json_path
            if not jp.expression:
                errors.add(f"{at}.json_path.expression", "must not be empty")
                continue
            out.append(m.body_test(
                kind, jp.expression, at, errors,
                node_equals=from_value(jp.equals) if jp.HasField("equals") else None,
                has_node_equals=jp.HasField("equals"),
                node_value=string_matcher(jp.value, f"{at}.json_path.value", errors) if jp.HasField("value") else None,
            ))
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
    return response_spec(
        msg.status,
        [(h.name, h.value) for h in msg.headers],
        kind,
        body,
        seconds(msg.delay),
        where,
        errors,
    )


def stub(
    msg: stub_pb2.Stub, key: SessionKey, stub_id: str, where: str, id_where: str, errors: SpecErrors, now: float
) -> Stub:
    """Validates and compiles a stub definition; every problem is added to `errors`."""
    check_id(stub_id, id_where, errors)
    stub_id = stub_id or new_id("stub")
    if not msg.responses:
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
        responses=tuple(response(r, f"{where}.responses[{i}]", errors) for i, r in enumerate(msg.responses)),
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
    )


def stub_to_proto(value: Stub) -> stub_pb2.Stub:
    out = stub_pb2.Stub()
    out.CopyFrom(value.source)
    out.match_count = value.match_count
    out.create_time.CopyFrom(timestamp(value.create_time))
    return out


# --- sessions ------------------------------------------------------------------------------------


def journal_limits(msg: session_pb2.JournalLimits, simulator_limits: Any, where: str, errors: SpecErrors) -> JournalLimits:
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
        near_misses=[
            exchange_pb2.NearMiss(
                stub=miss.stub_name,
                description=miss.description,
                mismatches=[
                    exchange_pb2.Mismatch(field=x.field, expected=x.expected, actual=x.actual)
                    for x in miss.mismatches
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
