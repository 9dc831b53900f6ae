"""Proto <-> domain conversion: messages in become working matchers, specs, stubs and settings, violations carry
their proto field paths, and domain records come back out as the messages clients read."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf import duration_pb2, json_format, struct_pb2

from simulatord.control import templates
from simulatord.control.convert import exchanges, responses, scalars, sessions, stubs
from simulatord.errors import InvalidArgument, NotFound, SpecErrors
from simulatord.matching.matchers import Mismatch
from simulatord.matching.near_misses import NearMiss
from simulatord.matching.request import HttpRequest, Routing
from simulatord.names import SessionKey
from simulatord.responding.behaviour import ORDER
from simulatord.responding.reply import ResponseSpec
from simulatord.responding.wire import End
from simulatord.sessions.journal import Direction, Exchange, ExchangeKind, Frame, JournalLimits, MatchState
from simulatord.sessions.service import Addressing
from simulatord.sessions.session import Session
from simulatord.sessions.settings import SessionSettings
from simulatord.sessions.stubs import Stub
from simulatord.v1 import exchange_pb2, session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb

KEY = SessionKey("t", "s")
SESSION = KEY.name

# --- building messages -----------------------------------------------------------------------------


def secs(value: float) -> duration_pb2.Duration:
    """A Duration built without the code under test."""
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(value * 1e9))
    return out


def fixed(value: float) -> stub_pb2.Delay:
    return stub_pb2.Delay(fixed=secs(value))


def value(data: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(data, out)
    return out


def path(**kind: str) -> stub_pb2.PathMatcher:
    return stub_pb2.PathMatcher(**kind)


def text(**kind: Any) -> stub_pb2.StringMatcher:
    return stub_pb2.StringMatcher(**kind)


def field(name: str, matcher: stub_pb2.StringMatcher | None = None, absent: bool = False) -> stub_pb2.FieldMatcher:
    return stub_pb2.FieldMatcher(name=name, value=matcher, absent=absent)


def body(**kind: Any) -> stub_pb2.BodyMatcher:
    return stub_pb2.BodyMatcher(**kind)


def on(request: stub_pb2.RequestMatcher, *answers: stub_pb2.Response, **more: Any) -> stub_pb2.Stub:
    return stub_pb2.Stub(request=request, responses=list(answers) or [stub_pb2.Response()], **more)


def convert(msg: stub_pb2.Stub, stub_id: str = "a", now: float = 0.0) -> tuple[Stub, list[str]]:
    """The stub as CreateStub converts it, and the field paths of every violation found."""
    errors = SpecErrors()
    built = stubs.stub(msg, SESSION, stub_id, "stub", "stub_id", errors, now)
    return built, [v.field for v in errors.violations]


def compiled(msg: stub_pb2.Stub, stub_id: str = "a", now: float = 0.0) -> Stub:
    built, problems = convert(msg, stub_id, now)
    assert problems == []
    return built


def response_spec(msg: stub_pb2.Response) -> ResponseSpec:
    errors = SpecErrors()
    spec = responses.response(msg, "response", errors)
    assert errors.violations == []
    return spec


def names_of(spec: ResponseSpec) -> list[str]:
    return [b.name for b in spec.behaviours]


def post(
    path_: str = "/", payload: bytes = b"", query: str = "", headers: tuple[tuple[str, str], ...] = ()
) -> HttpRequest:
    return HttpRequest("POST", path_, query, headers, payload)


def get(path_: str = "/", query: str = "", headers: tuple[tuple[str, str], ...] = ()) -> HttpRequest:
    return HttpRequest("GET", path_, query, headers)


# --- matchers --------------------------------------------------------------------------------------

RM = stub_pb2.RequestMatcher
MATCHER_CASES: dict[str, tuple[stub_pb2.RequestMatcher, list[HttpRequest], list[HttpRequest]]] = {
    "method is case-insensitive": (RM(method="post"), [post()], [get()]),
    "path exact": (RM(path=path(exact="/a/b")), [get("/a/b")], [get("/a/b/"), get("/a")]),
    "path template segment": (
        RM(path=path(template="/users/{id}")),
        [get("/users/42"), get("/users/x-y")],
        [get("/users/42/posts"), get("/users/"), get("/users")],
    ),
    "path template rest": (RM(path=path(template="/files/{rest=**}")), [get("/files/a/b/c")], [get("/files/")]),
    "path prefix": (RM(path=path(prefix="/api/")), [get("/api/"), get("/api/v1/x")], [get("/apix"), get("/api")]),
    "path glob one segment": (
        RM(path=path(glob="/static/*.css")),
        [get("/static/site.css")],
        [get("/static/css/site.css"), get("/static/site.js")],
    ),
    "path glob across segments": (RM(path=path(glob="/static/**")), [get("/static/a/b.css")], [get("/other/a")]),
    "path regex matches the whole path": (
        RM(path=path(regex="/v[0-9]+/items")),
        [get("/v2/items")],
        [get("/v2/items/1"), get("/x/v2/items")],
    ),
    "query value, any of several": (
        RM(query=[field("page", text(equals="2"))]),
        [get("/", "page=1&page=2")],
        [get("/", "page=3"), get("/")],
    ),
    "query present": (RM(query=[field("q")]), [get("/", "q="), get("/", "q=x")], [get("/", "Q=x")]),
    "query absent": (RM(query=[field("debug", absent=True)]), [get("/", "other=1")], [get("/", "debug=")]),
    "header names are case-insensitive": (
        RM(headers=[field("X-Api-Key", text(prefix="key-"))]),
        [get(headers=(("x-api-key", "key-1"),))],
        [get(headers=(("x-api-key", "other"),)), get()],
    ),
    "header value ignoring case": (
        RM(headers=[field("authorization", text(equals="Bearer T", ignore_case=True))]),
        [get(headers=(("authorization", "bEARER t"),))],
        [get(headers=(("authorization", "Basic t"),))],
    ),
    "header value contains": (
        RM(headers=[field("accept", text(contains="json"))]),
        [get(headers=(("accept", "application/json"),))],
        [get(headers=(("accept", "text/html"),))],
    ),
    "header value regex searches": (
        RM(headers=[field("x-id", text(regex="[0-9]{3}"))]),
        [get(headers=(("x-id", "id-123-x"),))],
        [get(headers=(("x-id", "id-12"),))],
    ),
    "header absent": (RM(headers=[field("x-debug", absent=True)]), [get()], [get(headers=(("x-debug", ""),))]),
    "body equals bytes": (RM(body=[body(equals=b"\x00\x01")]), [post(payload=b"\x00\x01")], [post(payload=b"\x00")]),
    "body contains text": (RM(body=[body(contains="needle")]), [post(payload=b"hay needle")], [post(payload=b"hay")]),
    "body regex": (RM(body=[body(regex=r"id=\d+")]), [post(payload=b"x id=42 y")], [post(payload=b"id=x")]),
    "body json_equals ignores key order and number spelling": (
        RM(body=[body(json_equals=value({"a": 1, "b": [1, 2]}))]),
        [post(payload=b'{"b": [1, 2], "a": 1.0}')],
        [post(payload=b'{"a": 1, "b": [1, 2], "c": 0}'), post(payload=b'{"a": 1, "b": [2, 1]}'), post(payload=b"x")],
    ),
    "body json_equals keeps booleans apart from numbers": (
        RM(body=[body(json_equals=value(True))]),
        [post(payload=b"true")],
        [post(payload=b"1")],
    ),
    "body json_subset": (
        RM(body=[body(json_subset=value({"user": {"role": "admin"}, "tags": ["x"]}))]),
        [post(payload=b'{"user": {"role": "admin", "id": 1}, "tags": ["y", "x"], "more": 1}')],
        [post(payload=b'{"user": {"role": "guest"}, "tags": ["x"]}'), post(payload=b'{"user": {"role": "admin"}}')],
    ),
    "body json_path selects something": (
        RM(body=[body(json_path=stub_pb2.JsonPathMatcher(expression="$.items[0]"))]),
        [post(payload=b'{"items": [0]}')],
        [post(payload=b'{"items": []}'), post(payload=b"not json")],
    ),
    "body json_path equals": (
        RM(body=[body(json_path=stub_pb2.JsonPathMatcher(expression="$.messages[0].role", equals=value("user")))]),
        [post(payload=b'{"messages": [{"role": "user"}]}')],
        [post(payload=b'{"messages": [{"role": "system"}]}')],
    ),
    "body json_path equals a number": (
        RM(body=[body(json_path=stub_pb2.JsonPathMatcher(expression="$.n", equals=value(3)))]),
        [post(payload=b'{"n": 3}'), post(payload=b'{"n": 3.0}')],
        [post(payload=b'{"n": "3"}')],
    ),
    "body json_path value": (
        RM(body=[body(json_path=stub_pb2.JsonPathMatcher(expression="$.model", value=text(prefix="gpt-")))]),
        [post(payload=b'{"model": "gpt-4"}')],
        [post(payload=b'{"model": "other"}')],
    ),
    "every body matcher must hold": (
        RM(body=[body(contains="a"), body(contains="b")]),
        [post(payload=b"ab")],
        [post(payload=b"a")],
    ),
    "all_of": (
        RM(all_of=[RM(method="GET"), RM(path=path(prefix="/a"))]),
        [get("/a/b")],
        [post("/a/b"), get("/b")],
    ),
    "any_of": (
        RM(any_of=[RM(path=path(exact="/a")), RM(path=path(exact="/b"))]),
        [get("/a"), get("/b")],
        [get("/c")],
    ),
    "none_of": (
        RM(none_of=[RM(headers=[field("x-debug")]), RM(method="DELETE")]),
        [get()],
        [get(headers=(("x-debug", "1"),)), HttpRequest("DELETE", "/")],
    ),
}


@pytest.mark.parametrize(("matcher", "hits", "misses"), MATCHER_CASES.values(), ids=MATCHER_CASES.keys())
def test_each_kind_of_matcher_matches_the_right_requests(
    matcher: stub_pb2.RequestMatcher, hits: list[HttpRequest], misses: list[HttpRequest]
) -> None:
    converted = compiled(on(matcher)).matcher
    for request in hits:
        assert converted.matches(request), request
        assert converted.match(request).matched, request
    for request in misses:
        assert not converted.matches(request), request
        assert converted.match(request).mismatches, request


EVERYTHING = RM(
    method="post",
    path=path(template="/orgs/{org}/items"),
    query=[field("page", text(equals="2")), field("debug", absent=True)],
    headers=[field("Authorization", text(prefix="bearer ", ignore_case=True)), field("X-Trace")],
    body=[
        body(contains="widget"),
        body(json_subset=value({"kind": "widget"})),
        body(json_path=stub_pb2.JsonPathMatcher(expression="$.qty", equals=value(3))),
    ],
    all_of=[RM(path=path(prefix="/orgs/"))],
    any_of=[RM(headers=[field("x-tenant", text(equals="a"))]), RM(headers=[field("x-tenant", text(equals="b"))])],
    none_of=[RM(body=[body(regex=r'"qty":\s*0\b')])],
)


def test_a_stub_with_every_kind_of_matcher_matches_a_request_that_satisfies_all_and_explains_each_miss() -> None:
    matcher = compiled(on(EVERYTHING)).matcher
    good = post(
        "/orgs/acme/items",
        b'{"kind": "widget", "qty": 3}',
        "page=1&page=2",
        (("authorization", "Bearer token"), ("x-trace", "1"), ("x-tenant", "b")),
    )
    assert matcher.matches(good)
    assert matcher.captures(good) == {"org": "acme"}
    bad = HttpRequest(
        "GET", "/orgs/acme/items", "page=1&debug=1", (("x-tenant", "c"),), b'{"kind": "gadget", "qty": 0}'
    )
    assert not matcher.matches(bad)
    assert [x.field for x in matcher.match(bad).mismatches] == [
        "method",
        "query.page",
        "query.debug",
        "headers.authorization",
        "headers.x-trace",
        "body[0]",
        "body[1]",
        "body[2]",
        "any_of[0].headers.x-tenant",
        "none_of[0]",
    ]


def test_a_path_template_captures_its_variables() -> None:
    matcher = compiled(on(RM(path=path(template="/users/{id}/files/{rest=**}")))).matcher
    assert matcher.captures(get("/users/42/files/a/b.txt")) == {"id": "42", "rest": "a/b.txt"}


# --- scalars ---------------------------------------------------------------------------------------


def test_integral_numbers_from_a_value_come_back_as_ints_and_others_keep_their_type() -> None:
    errors = SpecErrors()
    got = scalars.from_value(
        value({"n": 3, "neg": -7, "f": 2.5, "list": [1, 2.0, {"deep": 4}], "s": "3", "b": True, "null": None}),
        "v",
        errors,
    )
    assert not errors.violations
    assert json.dumps(got, sort_keys=True) == (
        '{"b": true, "f": 2.5, "list": [1, 2, {"deep": 4}], "n": 3, "neg": -7, "null": null, "s": "3"}'
    )
    assert type(got["n"]) is int and type(got["list"][1]) is int and type(got["list"][2]["deep"]) is int
    assert type(got["f"]) is float and got["b"] is True


def test_a_number_too_large_to_be_an_exact_integer_stays_a_float() -> None:
    assert type(scalars.from_value(value(1e300), "v", SpecErrors())) is float


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_a_value_that_is_not_finite_is_refused_with_its_field(number: float) -> None:
    errors = SpecErrors()
    nested = struct_pb2.Value()
    nested.struct_value.update({"a": [1, number]})
    assert scalars.from_value(nested, "stub.responses[0].body_json", errors) is None
    assert [v.field for v in errors.violations] == ["stub.responses[0].body_json"]


def test_json_bodies_and_websocket_json_messages_write_integral_numbers_without_a_fraction() -> None:
    spec = response_spec(stub_pb2.Response(body_json=value({"count": 3, "ratio": 0.5, "items": [1.0]})))
    # Struct keeps no key order, so the body is compared re-serialised; a written 3.0 would come back as 3.0.
    assert (
        json.dumps(json.loads(spec.body), sort_keys=True, separators=(",", ":"))
        == '{"count":3,"items":[1],"ratio":0.5}'
    )
    assert ("content-type", "application/json") in spec.headers
    ws = stub_pb2.WebSocketBehaviour(on_connect=[stub_pb2.WebSocketMessage(json=value({"n": 1}))])
    conversation = compiled(stub_pb2.Stub(websocket=ws)).websocket
    assert conversation is not None and conversation.on_connect[0].text == '{"n":1}'


@pytest.mark.parametrize("seconds", [0.0, 1.5, 1e-9, -0.25, 86_400.000_001, 600.0])
def test_durations_round_trip(seconds: float) -> None:
    converted = scalars.duration(seconds)
    assert converted.ToNanoseconds() == round(seconds * 1e9)
    assert scalars.seconds(converted) == pytest.approx(seconds, abs=1e-9)


def test_seconds_reads_both_parts_of_a_duration() -> None:
    assert scalars.seconds(duration_pb2.Duration(seconds=2, nanos=500_000_000)) == 2.5
    assert scalars.seconds(duration_pb2.Duration(seconds=-1, nanos=-500_000_000)) == -1.5


@pytest.mark.parametrize("epoch", [0.0, 1_700_000_000.25, 1_700_000_000.123456])
def test_timestamps_round_trip_epoch_seconds(epoch: float) -> None:
    converted = scalars.timestamp(epoch)
    assert converted.ToNanoseconds() / 1e9 == pytest.approx(epoch, abs=1e-6)


def test_a_timestamp_is_the_instant_of_its_epoch_seconds() -> None:
    converted = scalars.timestamp(1_700_000_000.25)
    assert converted.ToDatetime(tzinfo=UTC).replace(microsecond=0) == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert abs(converted.ToNanoseconds() - 1_700_000_000_250_000_000) < 1_000  # to the microsecond, at least


def test_a_timestamp_of_an_epoch_exact_in_binary_is_exact_to_the_nanosecond() -> None:
    converted = scalars.timestamp(1_700_000_000.25)
    assert (converted.seconds, converted.nanos) == (1_700_000_000, 250_000_000)


# --- responses and their behaviours ----------------------------------------------------------------

R = stub_pb2.Response
TEMPLATE = stub_pb2.ResponseTemplate()
DRIBBLE = stub_pb2.Dribble(chunk_bytes=1, duration=secs(0.1))
SSE = stub_pb2.SseStream(events=[stub_pb2.SseEvent(data="x")])
CHUNKED = stub_pb2.ChunkedStream(chunks=[stub_pb2.Chunk(data=b"x")])
RESET = stub_pb2.Fault(kind=stub_pb2.FAULT_KIND_RESET, after_body_bytes=1)
BEHAVIOUR_CASES: dict[str, tuple[stub_pb2.Response, list[str]]] = {
    "plain": (R(body_text="x"), []),
    "zero delay stays plain": (R(body_text="x", delay=secs(0)), []),
    "delay": (R(body_text="x", delay=secs(0.1)), ["delay"]),
    "template": (R(body_text="{{ request.path }}", template=TEMPLATE), ["template"]),
    "header_delay": (R(header_delay=fixed(0.1)), ["header_delay"]),
    "template, delay, header_delay, fault": (
        R(body_text="xy", template=TEMPLATE, delay=secs(0.1), header_delay=fixed(0.1), fault=RESET),
        ["template", "delay", "header_delay", "fault"],
    ),
    "a fault takes body_delay and dribble in": (
        R(body_text="xy", fault=RESET, body_delay=fixed(0.1), dribble=DRIBBLE),
        ["fault"],
    ),
    "template, delay, header_delay, sse": (
        R(template=TEMPLATE, delay=secs(0.1), header_delay=fixed(0.1), sse=SSE, body_delay=fixed(0.1)),
        ["template", "delay", "header_delay", "sse"],
    ),
    "template, delay, header_delay, chunked": (
        R(template=TEMPLATE, delay=secs(0.1), header_delay=fixed(0.1), chunked=CHUNKED),
        ["template", "delay", "header_delay", "chunked"],
    ),
    "body_delay": (R(body_text="x", body_delay=fixed(0.1)), ["paced_body"]),
    "dribble": (R(body_text="x", dribble=DRIBBLE), ["paced_body"]),
    "template, delay, header_delay, body_delay and dribble": (
        R(
            body_text="x",
            template=TEMPLATE,
            delay=secs(0.1),
            header_delay=fixed(0.1),
            body_delay=fixed(0.1),
            dribble=DRIBBLE,
        ),
        ["template", "delay", "header_delay", "paced_body"],
    ),
}


@pytest.mark.parametrize(("msg", "expected"), BEHAVIOUR_CASES.values(), ids=BEHAVIOUR_CASES.keys())
def test_a_response_programs_its_behaviours_in_chain_order(msg: stub_pb2.Response, expected: list[str]) -> None:
    got = names_of(response_spec(msg))
    assert got == expected
    assert got == sorted(got, key=ORDER.index)


def test_a_rate_limited_stubs_responses_report_the_bucket_after_their_template() -> None:
    limit = stub_pb2.RateLimit(limit=1, period=secs(60), response=R(status=503, delay=secs(0.1)))
    built = compiled(on(RM(), R(body_text="x", template=TEMPLATE, delay=secs(0.1)), rate_limit=limit))
    assert names_of(built.responses[0]) == ["template", "rate_limit", "delay"]
    assert built.rate_limit is not None
    assert built.rate_limit.response.status == 503
    assert names_of(built.rate_limit.response) == ["rate_limit", "delay"]


def test_a_response_converts_status_headers_and_body() -> None:
    spec = response_spec(R(status=201, headers=[stub_pb2.Header(name="X-A", value="1")], body_text="hé"))
    assert spec.status == 201
    assert spec.headers == (("X-A", "1"), ("content-type", "text/plain; charset=utf-8"))
    assert spec.body == "hé".encode()
    assert response_spec(R()).status == 200


def test_an_sse_response_gets_the_event_stream_headers_unless_set() -> None:
    spec = response_spec(R(sse=SSE))
    assert ("content-type", "text/event-stream") in spec.headers
    own = response_spec(R(sse=SSE, headers=[stub_pb2.Header(name="Content-Type", value="text/x")]))
    assert [v for n, v in own.headers if n.lower() == "content-type"] == ["text/x"]


# --- violations and their field paths --------------------------------------------------------------

WS = stub_pb2.WebSocketBehaviour
WSM = stub_pb2.WebSocketMessage
WS_OK = WS(on_connect=[WSM(text="hi")])
FAULT = stub_pb2.Fault
BAD_STUBS: dict[str, tuple[stub_pb2.Stub, str]] = {
    "path regex": (on(RM(path=path(regex="("))), "stub.request.path.regex"),
    "path template": (on(RM(path=path(template="/a/{id}/{id}"))), "stub.request.path.template"),
    "path without a slash": (on(RM(path=path(exact="a"))), "stub.request.path.exact"),
    "path without a kind": (on(RM(path=path())), "stub.request.path"),
    "method": (on(RM(method="G T")), "stub.request.method"),
    "nested path regex": (on(RM(any_of=[RM(), RM(path=path(regex="["))])), "stub.request.any_of[1].path.regex"),
    "header name": (on(RM(headers=[field("")])), "stub.request.headers[0].name"),
    "query value and absent": (
        on(RM(query=[field("q", text(equals="1"), absent=True)])),
        "stub.request.query[0].absent",
    ),
    "header value regex": (on(RM(headers=[field("x", text(regex="["))])), "stub.request.headers[0].value.regex"),
    "string matcher without a kind": (on(RM(query=[field("q", text())])), "stub.request.query[0].value"),
    "body without a kind": (on(RM(body=[body(contains="x"), body()])), "stub.request.body[1]"),
    "body regex": (on(RM(body=[body(regex="(")])), "stub.request.body[0].regex"),
    "json_path syntax": (
        on(RM(body=[body(json_path=stub_pb2.JsonPathMatcher(expression="$["))])),
        "stub.request.body[0].json_path.expression",
    ),
    "json_path without an expression": (
        on(RM(body=[body(json_path=stub_pb2.JsonPathMatcher())])),
        "stub.request.body[0].json_path.expression",
    ),
    "json_path with equals and value": (
        on(
            RM(
                body=[
                    body(json_path=stub_pb2.JsonPathMatcher(expression="$.a", equals=value(1), value=text(equals="1")))
                ]
            )
        ),
        "stub.request.body[0].json_path",
    ),
    "no responses": (stub_pb2.Stub(), "stub.responses"),
    "status": (on(RM(), R(), R(status=42)), "stub.responses[1].status"),
    "header": (on(RM(), R(headers=[stub_pb2.Header(name="a b", value="1")])), "stub.responses[0].headers[0]"),
    "fault after more bytes than the body": (
        on(RM(), R(body_text="abc", fault=FAULT(kind=stub_pb2.FAULT_KIND_RESET, after_body_bytes=4))),
        "stub.responses[0].fault.after_body_bytes",
    ),
    "after_body_bytes on a fault that sends nothing": (
        on(RM(), R(body_text="abc", fault=FAULT(kind=stub_pb2.FAULT_KIND_CLOSE, after_body_bytes=1))),
        "stub.responses[0].fault.after_body_bytes",
    ),
    "fault without a kind": (on(RM(), R(), R(fault=FAULT())), "stub.responses[1].fault.kind"),
    "hang_for on another fault": (
        on(RM(), R(fault=FAULT(kind=stub_pb2.FAULT_KIND_CLOSE, hang_for=secs(1)))),
        "stub.responses[0].fault.hang_for",
    ),
    "fault with a stream": (
        on(RM(), R(sse=SSE, fault=FAULT(kind=stub_pb2.FAULT_KIND_CLOSE))),
        "stub.responses[0].fault",
    ),
    "stream with a body": (on(RM(), R(body_text="x", chunked=CHUNKED)), "stub.responses[0].chunked"),
    "empty chunk": (
        on(RM(), R(chunked=stub_pb2.ChunkedStream(chunks=[stub_pb2.Chunk(data=b"x"), stub_pb2.Chunk()]))),
        "stub.responses[0].chunked.chunks[1].data",
    ),
    "sse event with a line break": (
        on(RM(), R(sse=stub_pb2.SseStream(events=[stub_pb2.SseEvent(event="a\nb")]))),
        "stub.responses[0].sse.events[0].event",
    ),
    "negative delay": (on(RM(), R(delay=secs(-1))), "stub.responses[0].delay"),
    "uniform header_delay upside down": (
        on(RM(), R(header_delay=stub_pb2.Delay(uniform=stub_pb2.UniformDelay(min=secs(2), max=secs(1))))),
        "stub.responses[0].header_delay.uniform.max",
    ),
    "delay without a kind": (on(RM(), R(body_delay=stub_pb2.Delay())), "stub.responses[0].body_delay"),
    "dribble chunk size": (
        on(RM(), R(body_text="x", dribble=stub_pb2.Dribble(chunk_bytes=0, duration=secs(1)))),
        "stub.responses[0].dribble.chunk_bytes",
    ),
    "template syntax in the body": (on(RM(), R(body_text="{{ x", template=TEMPLATE)), "stub.responses[0].body_text"),
    "template syntax in the status": (
        on(RM(), R(template=stub_pb2.ResponseTemplate(status="{% if %}"))),
        "stub.responses[0].template.status",
    ),
    "bytes body as a template": (on(RM(), R(body_bytes=b"x", template=TEMPLATE)), "stub.responses[0].body_bytes"),
    "rate limit": (on(RM(), rate_limit=stub_pb2.RateLimit(limit=0, period=secs(1))), "stub.rate_limit.limit"),
    "rate limit period": (on(RM(), rate_limit=stub_pb2.RateLimit(limit=1)), "stub.rate_limit.period"),
    "rate limit response": (
        on(RM(), rate_limit=stub_pb2.RateLimit(limit=1, period=secs(1), response=R(status=1000))),
        "stub.rate_limit.response.status",
    ),
    "websocket message without a payload": (
        stub_pb2.Stub(websocket=WS(on_connect=[WSM()])),
        "stub.websocket.on_connect[0].payload",
    ),
    "websocket binary template": (
        stub_pb2.Stub(
            websocket=WS(rules=[stub_pb2.WebSocketRule(replies=[WSM(text="a"), WSM(binary=b"x", template=True)])])
        ),
        "stub.websocket.rules[0].replies[1].template",
    ),
    "websocket rule matcher": (
        stub_pb2.Stub(websocket=WS(rules=[stub_pb2.WebSocketRule(message=[body(regex="(")])])),
        "stub.websocket.rules[0].message[0].regex",
    ),
    "websocket close code": (
        stub_pb2.Stub(websocket=WS(close_after_connect=stub_pb2.WebSocketClose(code=1234))),
        "stub.websocket.close_after_connect.code",
    ),
    "websocket subprotocol": (stub_pb2.Stub(websocket=WS(subprotocol="a b")), "stub.websocket.subprotocol"),
    "websocket upgrade with a dribble": (
        stub_pb2.Stub(websocket=WS_OK, responses=[R(body_text="x", dribble=DRIBBLE)]),
        "stub.responses[0].dribble",
    ),
    "websocket upgrade with a header_delay": (
        stub_pb2.Stub(websocket=WS_OK, responses=[R(header_delay=fixed(1))]),
        "stub.responses[0].header_delay",
    ),
    "times": (on(RM(), times=-1), "stub.times"),
    "expectation": (on(RM(), expect=stub_pb2.CallCountExpectation(at_least=3, at_most=1)), "stub.expect"),
    "after_last": (on(RM(), after_last=9), "stub.after_last"),  # type: ignore[arg-type]
    "scenario": (on(RM(), scenario="x" * 101), "stub.scenario"),
}


@pytest.mark.parametrize(("msg", "where"), BAD_STUBS.values(), ids=BAD_STUBS.keys())
def test_an_invalid_stub_is_reported_at_the_exact_field_path(msg: stub_pb2.Stub, where: str) -> None:
    _, problems = convert(msg)
    assert problems == [where]


def test_an_invalid_stub_id_is_reported_at_the_id_field() -> None:
    _, problems = convert(on(RM()), stub_id="Not_An_Id")
    assert problems == ["stub_id"]


def nested(levels: int) -> stub_pb2.RequestMatcher:
    """A matcher nesting all_of `levels` deep."""
    matcher = RM(method="GET")
    for _ in range(levels):
        matcher = RM(all_of=[matcher])
    return matcher


def test_nesting_eight_levels_deep_is_allowed() -> None:
    converted = compiled(on(nested(8))).matcher
    assert converted.matches(get()) and not converted.matches(post())


@pytest.mark.parametrize(
    ("levels", "where"),
    [(9, "stub.request"), (12, "stub.request.all_of[0].all_of[0].all_of[0]")],
)
def test_nesting_deeper_than_eight_levels_is_reported_once_where_the_nine_deep_matcher_is(
    levels: int, where: str
) -> None:
    _, problems = convert(on(nested(levels)))
    assert problems == [where]


def test_nesting_too_deep_in_two_branches_is_reported_in_each() -> None:
    _, problems = convert(on(RM(any_of=[RM(), nested(9)], none_of=[nested(9)])))
    assert problems == ["stub.request.any_of[1]", "stub.request.none_of[0]"]


def test_every_problem_of_a_request_is_reported_in_one_spec_errors() -> None:
    errors = SpecErrors()
    sessions.settings(session_pb2.Session(labels={"bad key": "v"}), "session", errors)
    stubs.stub(on(RM(path=path(regex="("))), SESSION, "", "stubs[0]", "", errors, 0.0)
    bad = on(RM(method="G T"), R(status=42), rate_limit=stub_pb2.RateLimit(limit=1))
    stubs.stub(bad, SESSION, "", "stubs[1]", "", errors, 0.0)
    fields = [v.field for v in errors.violations]
    assert sorted(fields) == sorted(
        [
            "session.labels['bad key']",
            "stubs[0].request.path.regex",
            "stubs[1].request.method",
            "stubs[1].responses[0].status",
            "stubs[1].rate_limit.period",
        ]
    )
    with pytest.raises(InvalidArgument) as raised:
        errors.raise_if_any(reason="INVALID_STUB")
    assert [v.field for v in raised.value.violations] == fields
    assert raised.value.reason == "INVALID_STUB"
    assert raised.value.message.startswith(f"{fields[0]}: ") and raised.value.message.endswith("(and 4 more)")


def test_a_fault_on_a_templated_body_is_not_checked_against_the_template_source() -> None:
    source = "{{ 'x' * 100 }}"  # 15 characters that render 100 bytes
    fault = FAULT(kind=stub_pb2.FAULT_KIND_TRUNCATED_BODY, after_body_bytes=50)
    _, problems = convert(on(RM(), R(body_text=source, template=TEMPLATE, fault=fault)))
    assert problems == []


# --- stubs back out --------------------------------------------------------------------------------


def test_stub_to_proto_echoes_the_definition_with_name_counts_and_create_time() -> None:
    definition = stub_pb2.Stub(
        name="ignored",
        description="orders",
        request=RM(method="GET", path=path(template="/orders/{id}")),
        responses=[R(status=201, body_json=value({"id": 1})), R(status=404)],
        after_last=stub_pb2.SEQUENCE_END_CYCLE,
        priority=3,
        times=5,
        expect=stub_pb2.CallCountExpectation(at_least=1),
        match_count=99,
        rate_limited_count=7,
    )
    definition.create_time.FromSeconds(1)
    built = compiled(definition, stub_id="orders", now=1_700_000_000.5)
    session = Session(KEY, 60.0, JournalLimits())
    session.add_stubs([built])
    session.select(get("/orders/1"))
    session.select(get("/orders/2"))

    echoed = stubs.stub_to_proto(built)

    expected = stub_pb2.Stub()
    expected.CopyFrom(definition)
    expected.name = "tenants/t/sessions/s/stubs/orders"
    expected.match_count = 2
    expected.rate_limited_count = 0
    expected.create_time.FromNanoseconds(1_700_000_000_500_000_000)
    assert echoed == expected


def test_stub_to_proto_is_not_changed_by_later_edits_of_the_request_message() -> None:
    definition = on(RM(path=path(exact="/a")), description="before")
    built = compiled(definition)
    definition.description = "after"
    definition.request.path.exact = "/b"
    echoed = stubs.stub_to_proto(built)
    assert (echoed.description, echoed.request.path.exact) == ("before", "/a")


def test_a_stub_without_an_id_gets_a_generated_name_that_the_echo_shows() -> None:
    built = compiled(on(RM()), stub_id="")
    assert built.name.startswith(f"{SESSION}/stubs/") and built.id
    assert stubs.stub_to_proto(built).name == built.name == f"{SESSION}/stubs/{built.id}"


def test_an_echoed_stub_converts_again_into_an_equivalent_stub() -> None:
    echoed = stubs.stub_to_proto(compiled(on(EVERYTHING, R(status=202))))
    again = compiled(echoed)
    headers = (("authorization", "bearer t"), ("x-trace", "1"), ("x-tenant", "a"))
    request = post("/orgs/o/items", b'{"kind": "widget", "qty": 3}', "page=2", headers)
    assert again.matcher.matches(request) and again.responses[0].status == 202


# --- exchanges -------------------------------------------------------------------------------------


def recorded(**overrides: Any) -> Exchange:
    fields: dict[str, Any] = {
        "sequence": 7,
        "request": HttpRequest(
            "POST",
            "/items",
            "a=1&a=2&b=",
            (("content-type", "application/json"), ("x-k", "v")),
            b"{}",
            1_700_000_000.5,
            "2",
            Routing.HOST,
        ),
        "body_size": 10,
        "body_truncated": True,
        "stub_name": f"{SESSION}/stubs/a",
        "near_misses": (),
        "status": 201,
        "response_headers": (("x-r", "1"), ("x-r", "2")),
        "response_body_size": 5,
        "duration": 0.25,
        "end": End.ABORTED,
        "event_count": 3,
        "behaviours": ("template", "fault"),
    }
    fields.update(overrides)
    return Exchange(**fields)


def test_exchange_to_proto_maps_the_request_and_response() -> None:
    out = exchanges.exchange_to_proto(recorded(), KEY)
    assert out.name == f"{SESSION}/exchanges/7" and out.sequence == 7
    assert out.stub == f"{SESSION}/stubs/a"
    assert out.kind == exchange_pb2.EXCHANGE_KIND_HTTP
    assert not out.HasField("frame") and list(out.near_misses) == []
    req = out.request
    assert (req.method, req.path, req.query_string, req.http_version) == ("POST", "/items", "a=1&a=2&b=", "2")
    assert [(q.name, q.value) for q in req.query] == [("a", "1"), ("a", "2"), ("b", "")]
    assert [(h.name, h.value) for h in req.headers] == [("content-type", "application/json"), ("x-k", "v")]
    assert (req.body, req.body_truncated, req.body_size) == (b"{}", True, 10)
    assert req.receive_time.ToNanoseconds() == 1_700_000_000_500_000_000
    assert req.routing == exchange_pb2.ROUTING_HOST
    res = out.response
    assert (res.status, res.body_size, res.event_count) == (201, 5, 3)
    assert [(h.name, h.value) for h in res.headers] == [("x-r", "1"), ("x-r", "2")]
    assert res.duration.ToNanoseconds() == 250_000_000
    assert res.end == exchange_pb2.RESPONSE_END_ABORTED
    assert list(res.behaviours) == ["template", "fault"]


@pytest.mark.parametrize(
    ("routing", "expected"),
    [
        (Routing.PATH_PREFIX, exchange_pb2.ROUTING_PATH_PREFIX),
        (Routing.HOST, exchange_pb2.ROUTING_HOST),
        (Routing.HEADER, exchange_pb2.ROUTING_HEADER),
    ],
)
def test_exchange_to_proto_maps_every_routing(routing: Routing, expected: int) -> None:
    exchange = recorded(request=HttpRequest("GET", "/", routing=routing))
    assert exchanges.exchange_to_proto(exchange, KEY).request.routing == expected


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        (End.COMPLETE, exchange_pb2.RESPONSE_END_COMPLETE),
        (End.CLIENT_DISCONNECTED, exchange_pb2.RESPONSE_END_CLIENT_DISCONNECTED),
        (End.ABORTED, exchange_pb2.RESPONSE_END_ABORTED),
    ],
)
def test_exchange_to_proto_maps_every_end(end: End, expected: int) -> None:
    assert exchanges.exchange_to_proto(recorded(end=end), KEY).response.end == expected


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        (ExchangeKind.HTTP, exchange_pb2.EXCHANGE_KIND_HTTP),
        (ExchangeKind.WEBSOCKET_UPGRADE, exchange_pb2.EXCHANGE_KIND_WEBSOCKET_UPGRADE),
        (ExchangeKind.WEBSOCKET_FRAME, exchange_pb2.EXCHANGE_KIND_WEBSOCKET_FRAME),
    ],
)
def test_exchange_to_proto_maps_every_kind(kind: ExchangeKind, expected: int) -> None:
    assert exchanges.exchange_to_proto(recorded(kind=kind), KEY).kind == expected


INBOUND, OUTBOUND = exchange_pb2.FRAME_DIRECTION_INBOUND, exchange_pb2.FRAME_DIRECTION_OUTBOUND


@pytest.mark.parametrize(
    ("frame", "direction", "payload", "content"),
    [
        (Frame(3, Direction.INBOUND, text="hello", size=5), INBOUND, "text", "hello"),
        (Frame(3, Direction.INBOUND, text="", size=0), INBOUND, "text", ""),
        (Frame(3, Direction.OUTBOUND, binary=b"\x00\x01", size=2, origin="rules[1]"), OUTBOUND, "binary", b"\x00\x01"),
        (
            Frame(3, Direction.OUTBOUND, close_code=4000, close_reason="bye", origin="control"),
            OUTBOUND,
            "close",
            (4000, "bye"),
        ),
        (Frame(3, Direction.INBOUND, close_code=1006), INBOUND, "close", (1006, "")),
    ],
)
def test_exchange_to_proto_maps_websocket_frames(frame: Frame, direction: int, payload: str, content: object) -> None:
    out = exchanges.exchange_to_proto(recorded(kind=ExchangeKind.WEBSOCKET_FRAME, frame=frame), KEY).frame
    assert (out.connection, out.direction, out.size, out.origin) == (3, direction, frame.size, frame.origin)
    assert out.WhichOneof("payload") == payload
    got = (out.close.code, out.close.reason) if payload == "close" else getattr(out, payload)
    assert got == content


def test_exchange_to_proto_maps_the_near_misses_of_an_unmatched_exchange() -> None:
    misses = (
        NearMiss(f"{SESSION}/stubs/a", "list", (Mismatch("path", "exact '/a'", "/b"),)),
        NearMiss(f"{SESSION}/stubs/b", "", (Mismatch("method", "GET", "POST"), Mismatch("body", "contains 'x'", ""))),
    )
    out = exchanges.exchange_to_proto(recorded(stub_name="", near_misses=misses, status=404), KEY)
    assert out.stub == ""
    assert [(m.stub, m.description) for m in out.near_misses] == [
        (f"{SESSION}/stubs/a", "list"),
        (f"{SESSION}/stubs/b", ""),
    ]
    assert [(x.field, x.expected, x.actual) for x in out.near_misses[1].mismatches] == [
        ("method", "GET", "POST"),
        ("body", "contains 'x'", ""),
    ]


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (exchange_pb2.MATCH_STATE_UNSPECIFIED, MatchState.ANY),
        (exchange_pb2.MATCH_STATE_MATCHED, MatchState.MATCHED),
        (exchange_pb2.MATCH_STATE_UNMATCHED, MatchState.UNMATCHED),
    ],
)
def test_exchange_filter_maps_match_states(state: int, expected: MatchState) -> None:
    errors = SpecErrors()
    msg = exchange_pb2.ExchangeFilter(match_state=state, stub="a", method="get", path_prefix="/v1/")  # type: ignore[arg-type]
    filt = exchanges.exchange_filter(msg, "filter", errors)
    assert errors.violations == []
    assert (filt.match_state, filt.stub, filt.method, filt.path, filt.path_prefix) == (expected, "a", "get", "", "/v1/")


def test_exchange_filter_rejects_an_unknown_match_state_and_path_with_path_prefix() -> None:
    errors = SpecErrors()
    msg = exchange_pb2.ExchangeFilter(match_state=7, path="/a", path_prefix="/a")  # type: ignore[arg-type]
    exchanges.exchange_filter(msg, "filter", errors)
    assert [v.field for v in errors.violations] == ["filter.match_state", "filter.path_prefix"]


# --- sessions --------------------------------------------------------------------------------------


def test_settings_convert_labels_ttl_limits_and_unmatched_status() -> None:
    errors = SpecErrors()
    msg = session_pb2.Session(
        labels={"team": "payments", "ci.run/id": "42"},
        ttl=secs(90.5),
        journal_limits=session_pb2.JournalLimits(max_exchanges=10, max_body_bytes=100),
        unmatched_status=418,
    )
    got = sessions.settings(msg, "session", errors)
    assert errors.violations == []
    assert got.labels == {"team": "payments", "ci.run/id": "42"}
    assert got.ttl == 90.5 and got.unmatched_status == 418
    assert got.limits(JournalLimits(1, 2, 3)) == JournalLimits(10, 2, 100)


def test_settings_without_a_ttl_take_the_daemons_default() -> None:
    errors = SpecErrors()
    assert sessions.settings(session_pb2.Session(), "session", errors) == SessionSettings(ttl=None)
    assert errors.violations == []


@pytest.mark.parametrize(
    ("msg", "where"),
    [
        (session_pb2.Session(labels={"bad key": "v"}), "session.labels['bad key']"),
        (session_pb2.Session(labels={"k" * 64: "v"}), f"session.labels['{'k' * 64}']"),
        (session_pb2.Session(labels={"ok": "bad value"}), "session.labels['ok']"),
        (
            session_pb2.Session(journal_limits=session_pb2.JournalLimits(max_exchanges=-1)),
            "session.journal_limits.max_exchanges",
        ),
        (
            session_pb2.Session(journal_limits=session_pb2.JournalLimits(max_bytes=-1)),
            "session.journal_limits.max_bytes",
        ),
        (
            session_pb2.Session(journal_limits=session_pb2.JournalLimits(max_body_bytes=-1)),
            "session.journal_limits.max_body_bytes",
        ),
        (session_pb2.Session(unmatched_status=99), "session.unmatched_status"),
        (session_pb2.Session(ttl=secs(-1)), "session.ttl"),
        (session_pb2.Session(ttl=secs(7 * 24 * 3600 + 1)), "session.ttl"),
    ],
)
def test_invalid_settings_are_reported_at_the_exact_field_path(msg: session_pb2.Session, where: str) -> None:
    errors = SpecErrors()
    sessions.settings(msg, "session", errors)
    assert [v.field for v in errors.violations] == [where]


def test_session_to_proto_reports_the_session_its_addresses_and_its_journal() -> None:
    session = Session(
        KEY,
        ttl=120.0,
        limits=JournalLimits(max_exchanges=2, max_bytes=10_000, max_body_bytes=100),
        labels={"team": "payments"},
        unmatched_status=418,
        create_time=1_000.5,
    )
    session.add_stubs([compiled(on(RM()), stub_id="a"), compiled(on(RM()), stub_id="b")])
    for _ in range(3):
        session.journal.append(recorded(request=HttpRequest("GET", "/")))
    session.set_state("", "open")
    session.set_state("checkout", "paid")

    out = sessions.session_to_proto(session, Addressing("http://127.0.0.1:8080/", "sim.test"))

    assert out.name == SESSION and dict(out.labels) == {"team": "payments"}
    assert out.create_time.ToNanoseconds() == 1_000_500_000_000
    assert out.expire_time.ToNanoseconds() == 1_120_500_000_000
    assert out.ttl.ToNanoseconds() == 120_000_000_000
    assert out.base_url == "http://127.0.0.1:8080/tenants/t/sessions/s"
    assert out.host == "s.t.sim.test"
    assert out.routing_header == SESSION
    assert out.journal_limits == session_pb2.JournalLimits(max_exchanges=2, max_bytes=10_000, max_body_bytes=100)
    stats = out.journal_stats
    assert (stats.total_count, stats.retained_count, stats.evicted_count) == (3, 2, 1)
    assert (stats.first_sequence, stats.last_sequence) == (2, 3)
    assert stats.retained_bytes == session.journal.retained_bytes > 0
    assert out.unmatched_status == 418 and out.stub_count == 2
    assert out.state == "open" and dict(out.scenarios) == {"checkout": "paid"}


# --- templates -------------------------------------------------------------------------------------


def named_stub(description: str, request: stub_pb2.RequestMatcher | None = None) -> stub_pb2.Stub:
    return on(request or RM(), description=description)


TEMPLATE_REQUEST = pb.CreateSessionRequest(
    session=session_pb2.Session(
        labels={"team": "payments", "env": "ci"},
        ttl=secs(60),
        unmatched_status=418,
        journal_limits=session_pb2.JournalLimits(max_exchanges=5),
    ),
    stubs=[named_stub("template 0"), named_stub("template 1")],
)


def test_merge_puts_the_requests_settings_over_the_templates() -> None:
    request = pb.CreateSessionRequest(
        template="base",
        session=session_pb2.Session(
            labels={"env": "prod", "run": "7"}, ttl=secs(30), journal_limits=session_pb2.JournalLimits(max_bytes=100)
        ),
    )
    merged = templates.merge(request, {"base": TEMPLATE_REQUEST})
    assert dict(merged.settings.labels) == {"team": "payments", "env": "prod", "run": "7"}
    assert merged.settings.ttl == secs(30)
    assert merged.settings.unmatched_status == 418
    assert merged.settings.journal_limits == session_pb2.JournalLimits(max_exchanges=5, max_bytes=100)


def test_merge_lists_the_templates_stubs_then_the_requests_with_their_field_paths() -> None:
    request = pb.CreateSessionRequest(template="base", stubs=[named_stub("request 0"), named_stub("request 1")])
    merged = templates.merge(request, {"base": TEMPLATE_REQUEST})
    assert [(s.description, where) for s, where in merged.stubs] == [
        ("template 0", "template.stubs[0]"),
        ("template 1", "template.stubs[1]"),
        ("request 0", "stubs[0]"),
        ("request 1", "stubs[1]"),
    ]


def test_merge_leaves_the_template_unchanged_for_the_next_session() -> None:
    before = pb.CreateSessionRequest()
    before.CopyFrom(TEMPLATE_REQUEST)
    request = pb.CreateSessionRequest(template="base", session=session_pb2.Session(labels={"env": "prod"}, ttl=secs(1)))
    templates.merge(request, {"base": TEMPLATE_REQUEST})
    assert before == TEMPLATE_REQUEST
    again = templates.merge(pb.CreateSessionRequest(template="base"), {"base": TEMPLATE_REQUEST})
    assert dict(again.settings.labels) == {"team": "payments", "env": "ci"}


def test_merge_without_a_template_takes_the_request_as_it_is() -> None:
    request = pb.CreateSessionRequest(session=session_pb2.Session(labels={"a": "b"}), stubs=[named_stub("only")])
    merged = templates.merge(request, {"base": TEMPLATE_REQUEST})
    assert merged.settings == request.session
    assert [(s.description, where) for s, where in merged.stubs] == [("only", "stubs[0]")]


def test_merge_of_an_unknown_template_raises_not_found_naming_the_known_ones() -> None:
    with pytest.raises(NotFound) as raised:
        templates.merge(pb.CreateSessionRequest(template="nope"), {"base": TEMPLATE_REQUEST, "auth": TEMPLATE_REQUEST})
    assert raised.value.reason == "TEMPLATE_NOT_FOUND"
    assert raised.value.metadata == {"template": "nope"}
    assert "auth, base" in raised.value.message


def test_violations_of_merged_stubs_carry_the_template_or_request_field_path() -> None:
    template = pb.CreateSessionRequest(stubs=[named_stub("fine"), named_stub("bad", RM(path=path(regex="(")))])
    request = pb.CreateSessionRequest(template="base", stubs=[stub_pb2.Stub()])
    errors = SpecErrors()
    for msg, where in templates.merge(request, {"base": template}).stubs:
        stubs.stub(msg, SESSION, "", where, "", errors, 0.0)
    assert [v.field for v in errors.violations] == ["template.stubs[1].request.path.regex", "stubs[0].responses"]
