"""The pure parts of proxying and recording: the upstream URL and headers, SSE event splitting, recorded stubs."""

from __future__ import annotations

import pytest

from simulatord.control import recorder
from simulatord.errors import SpecErrors
from simulatord.matching.request import HttpRequest
from simulatord.responding.proxy import DEFAULT_SECRETS, Proxy, Recording, RecordOptions, record_options
from simulatord.serving.proxying import _Capture, forwarded_headers, upstream_url


def options(**fields: object) -> RecordOptions:
    errors = SpecErrors()
    built = record_options(
        list(fields.get("match_headers", [])),  # type: ignore[call-overload]
        list(fields.get("match_json_paths", [])),  # type: ignore[call-overload]
        bool(fields.get("match_body", False)),
        bool(fields.get("ignore_query", False)),
        list(fields.get("redact_headers", [])),  # type: ignore[call-overload]
        bool(fields.get("keep_secrets", False)),
        fields.get("timing_scale"),  # type: ignore[arg-type]
        "record",
        errors,
    )
    assert not errors.violations, errors.violations
    return built


def test_the_upstream_url_keeps_the_prefix_path_and_raw_query() -> None:
    proxy = Proxy("http://127.0.0.1:9/api")
    request = HttpRequest("GET", "/a b/ü/x;y", query_string="q=a%20b&q=2")
    assert upstream_url(proxy, request) == "http://127.0.0.1:9/api/a%20b/%C3%BC/x;y?q=a%20b&q=2"
    assert upstream_url(proxy, HttpRequest("GET", "/")) == "http://127.0.0.1:9/api/"


def test_forwarded_headers_drop_per_connection_ones_and_the_proxys_replace_the_clients() -> None:
    proxy = Proxy("http://u", request_headers=(("authorization", "Bearer real"),))
    request = HttpRequest(
        "GET",
        "/",
        headers=(
            ("host", "sim"),
            ("connection", "keep-alive"),
            ("x-simulatord-session", "s"),
            ("authorization", "Bearer test"),
            ("accept", "a"),
            ("accept", "b"),
            ("content-length", "0"),
        ),
    )
    assert forwarded_headers(proxy, request) == [("accept", "a"), ("accept", "b"), ("authorization", "Bearer real")]


@pytest.mark.parametrize(
    ("chunks", "events"),
    [
        ([b"data: a\n\ndata: b\n\n"], [b"data: a\n\n", b"data: b\n\n"]),
        ([b"data: a\r", b"\n\r", b"\ndata: b\r\n\r\n"], [b"data: a\r\n\r\n", b"data: b\r\n\r\n"]),
        ([b"event: x\r\ndata: 1\r\n\r\n"], [b"event: x\r\ndata: 1\r\n\r\n"]),
        ([b"data: a\r\rdata: b\r\r"], [b"data: a\r\r", b"data: b\r\r"]),
        ([b"data: a\n\ndata: unterminated"], [b"data: a\n\n", b"data: unterminated"]),
    ],
)
def test_sse_bodies_split_into_event_blocks_whatever_their_line_ends_and_chunking(
    chunks: list[bytes], events: list[bytes]
) -> None:
    capture = _Capture(sse=True, started=0.0)
    for i, chunk in enumerate(chunks):
        capture.feed(chunk, float(i + 1))
    capture.finish(10.0)
    assert [raw for raw, _ in capture.events] == events
    assert bytes(capture.body) == b"".join(chunks)


def test_each_event_is_timed_from_the_one_before_it() -> None:
    capture = _Capture(sse=True, started=100.0)
    capture.feed(b"data: a\n\n", 100.5)
    capture.feed(b"data: b\n", 101.0)
    capture.feed(b"\n", 101.25)
    capture.finish(102.0)
    assert capture.events == [(b"data: a\n\n", 0.5), (b"data: b\n\n", 0.75)]


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        (b'data: {"i": 1}\n\n', True),
        (b"event: message_start\ndata: {}\n\n", True),
        (b"id: 7\nevent: e\nretry: 1500\ndata: a\ndata: b\n\n", True),
        (b": keep-alive\n\n", True),
        (b"data:no-space\n\n", False),
        (b"data: a\r\n\r\n", False),
        (b"event: e\nid: 7\ndata: order\n\n", False),  # the daemon writes id before event
        (b"data: a\n\n\n", False),
        (b"custom: field\n\n", False),
        (b"\xff\n\n", False),
    ],
)
def test_an_sse_event_is_programmed_only_if_it_re_encodes_to_the_same_bytes(raw: bytes, kept: bool) -> None:
    assert (recorder._sse_event(raw) is not None) is kept


def test_a_recorded_matcher_holds_method_path_query_and_the_chosen_fields() -> None:
    request = HttpRequest(
        "POST",
        "/v1/chat",
        query_string="a=1&a=2",
        headers=(("x-tenant", "t1"), ("authorization", "Bearer s")),
        body=b'{"model": "m", "n": [1, 2]}',
    )
    chosen = options(
        match_headers=["X-Tenant", "authorization", "x-gone"],
        match_json_paths=["$.model", "$.missing"],
        match_body=True,
    )
    matcher = recorder.request_matcher(request, chosen)
    assert (matcher.method, matcher.path.exact) == ("POST", "/v1/chat")
    assert [(q.name, q.value.equals) for q in matcher.query] == [("a", "1"), ("a", "2")]
    assert [(h.name, h.value.equals, h.HasField("value"), h.absent) for h in matcher.headers] == [
        ("x-tenant", "t1", True, False),
        ("authorization", "", False, False),
        ("x-gone", "", False, True),
    ]
    assert matcher.body[0].equals == request.body
    assert matcher.body[1].json_path.expression == "$.model" and matcher.body[1].json_path.equals.string_value == "m"
    assert matcher.none_of[0].body[0].json_path.expression == "$.missing"
    assert not recorder.request_matcher(request, options(ignore_query=True)).query


def test_a_recorded_response_redacts_secrets_and_keeps_sse_timing_scaled() -> None:
    request = HttpRequest("GET", "/s")
    events = ((b"data: a\n\n", 0.25), (b"data: b\n\n", 0.5))
    recording = Recording(
        request,
        200,
        (("content-type", "text/event-stream"), ("set-cookie", "sid=1")),
        b"data: a\n\ndata: b\n\n",
        events,
        aborted=True,
    )
    answer = recorder.response(recording, options(timing_scale=2))
    assert [(h.name, h.value) for h in answer.headers] == [
        ("content-type", "text/event-stream"),
        ("set-cookie", "[redacted]"),
    ]
    assert [(e.data, e.delay.ToTimedelta().total_seconds()) for e in answer.sse.events] == [("a", 0.5), ("b", 1.0)]
    assert answer.sse.abort_after == 2
    kept = recorder.response(recording, options(keep_secrets=True, timing_scale=0))
    assert kept.headers[1].value == "sid=1" and not kept.sse.events[0].HasField("delay")
    odd = Recording(request, 200, (), b"", ((b"data:x\n\n", 0.1),))
    assert [c.data for c in recorder.response(odd, options()).chunked.chunks] == [b"data:x\n\n"]
    plain = recorder.response(Recording(request, 201, (("x-api-key", "k"),), b"body"), options())
    assert (plain.status, plain.body_bytes, plain.headers[0].value) == (201, b"body", "[redacted]")


def test_record_options_redact_the_usual_secrets_unless_told_otherwise() -> None:
    assert options().redact == DEFAULT_SECRETS >= {"authorization", "set-cookie", "x-api-key", "cookie"}
    assert options(redact_headers=["X-Token"]).redact == {"x-token"}
    assert options(keep_secrets=True).redact == frozenset()
    errors = SpecErrors()
    record_options(["bad name"], ["$["], False, False, ["x"], True, float("nan"), "r", errors)
    assert [v.field for v in errors.violations] == [
        "r.match_headers[0]",
        "r.match_json_paths[0]",
        "r.redact_headers",
        "r.timing_scale",
    ]
