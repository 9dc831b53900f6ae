"""Response templates and token buckets as pure code: compile-time checks, rendering, refill arithmetic."""

from __future__ import annotations

import json

import pytest

from simulatord.errors import SpecErrors
from simulatord.matching.request import HttpRequest
from simulatord.responding import ratelimit, templating
from simulatord.responding.behaviour import with_behaviours
from simulatord.responding.reply import response_spec
from tests.unit.chain_support import serve

REQUEST = HttpRequest(
    method="POST",
    path="/users/42",
    query_string="page=2&tag=a&tag=b",
    headers=(("x-api-key", "k1"), ("content-type", "application/json")),
    body=b'{"name": "Ada", "roles": ["admin"]}',
    receive_time=1_700_000_000.25,
)


def values(**extra: object) -> dict[str, object]:
    base = templating.variables(REQUEST, {"id": "42"}, 3, 17, "created", None, 1_700_000_000.25)
    base.update(extra)
    return base


def rendered(
    body_kind: str,
    body: object,
    *,
    status: str = "",
    seed: int | None = None,
    headers: tuple[tuple[str, str], ...] = (),
) -> tuple[int, dict[str, str], bytes]:
    errors = SpecErrors()
    spec = response_spec(200, headers, body_kind, body, "r", errors)
    template = templating.compile_response(spec, body_kind, body, status, seed, "r", errors)
    assert not errors.violations
    served = serve(with_behaviours(spec, template), REQUEST, captures={"id": "42"}, match=3, sequence=17, state="s")
    assert served.ran == ["template"]
    reply = served.reply
    assert served.wire.status == reply.status and served.wire.body == reply.body  # what was sent, as recorded
    return reply.status, dict(reply.headers), reply.body


def test_text_template_sees_the_request() -> None:
    source = (
        "{{ request.method }} {{ path.id }} p={{ request.query.page }} tags={{ request.query_all.tag | join(',') }} "
        "key={{ request.headers['x-api-key'] }} name={{ request.json.name }} #{{ sequence }} m{{ match }}"
    )
    _, _, body = rendered("body_text", source)
    assert body == b"POST 42 p=2 tags=a,b key=k1 name=Ada #17 m3"


def test_missing_values_render_empty_rather_than_fail() -> None:
    _, _, body = rendered("body_text", "[{{ request.json.missing.deeper }}][{{ request.query.nope }}]")
    assert body == b"[][]"


def test_json_leaf_that_is_one_expression_keeps_its_type() -> None:
    body = {
        "id": "{{ path.id | int }}",
        "label": "user {{ path.id }}",
        "roles": "{{ request.json.roles }}",
        "static": [1, "two"],
        "nothing": "{{ request.json.absent }}",
    }
    _, headers, raw = rendered("body_json", body)
    assert json.loads(raw) == {"id": 42, "label": "user 42", "roles": ["admin"], "static": [1, "two"], "nothing": None}
    assert headers["content-type"] == "application/json"


def test_status_and_header_templates() -> None:
    status, headers, _ = rendered(
        "body_text",
        "ok",
        status="{{ 201 if request.json.name else 400 }}",
        headers=(("location", "/users/{{ path.id }}"), ("x-static", "plain")),
    )
    assert status == 201
    assert headers["location"] == "/users/42"
    assert headers["x-static"] == "plain"


def test_status_that_is_not_a_status_answers_an_explained_500() -> None:
    status, headers, body = rendered("body_text", "ok", status="{{ 'teapot' }}")
    assert status == 500
    assert headers[templating.ERROR_HEADER] == "status"
    assert "teapot" in json.loads(body)["error"]


def test_seeded_random_repeats_and_unseeded_does_not() -> None:
    source = "{{ random.uuid() }} {{ random.int(1, 1000000) }} {{ random.hex(8) }}"
    first = rendered("body_text", source, seed=7)[2]
    assert first == rendered("body_text", source, seed=7)[2]
    assert first != rendered("body_text", source, seed=8)[2]
    assert rendered("body_text", source)[2] != rendered("body_text", source)[2]


def test_now_is_iso_and_epoch() -> None:
    now = values()["now"]
    assert now == {"iso": "2023-11-14T22:13:20.250Z", "epoch": 1_700_000_000, "millis": 1_700_000_000_250}


@pytest.mark.parametrize(
    ("source", "kind"),
    [("{{ request.method ", "body_text"), ({"a": ["{% if %}"]}, "body_json")],
)
def test_syntax_errors_are_reported_with_their_field(source: object, kind: str) -> None:
    errors = SpecErrors()
    spec = response_spec(200, (), kind, source, "stub.responses[0]", errors)
    templating.compile_response(spec, kind, source, "", None, "stub.responses[0]", errors)
    assert len(errors.violations) == 1
    violation = errors.violations[0]
    expected = "stub.responses[0].body_text" if kind == "body_text" else "stub.responses[0].body_json.a[0]"
    assert violation.field == expected
    assert "template syntax error" in violation.description


def test_sandbox_refuses_unsafe_attribute_access() -> None:
    _, _, body = rendered("body_text", "{{ request.__class__.__mro__ }}")
    assert b"object" not in body  # the sandbox returns undefined for underscored attributes
    status, _, body = rendered("body_text", "{{ ''.__class__.__subclasses__() }}")
    assert status == 500


def test_text_without_markers_compiles_to_nothing() -> None:
    errors = SpecErrors()
    assert templating.compile_text("plain text", "x", errors) is None
    assert templating.compile_json({"a": ["b", 1]}, "x", errors) is None


# --- token buckets ---------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_empties_then_refills_in_time() -> None:
    clock = Clock()
    buckets = ratelimit.Buckets(clock)
    rule = ratelimit.RateLimitRule(2, 10.0, "", "stub:a", ratelimit.default_response())
    first, second, third = (buckets.take(rule, REQUEST) for _ in range(3))
    assert (first.allowed, first.remaining) == (True, 1)
    assert (second.allowed, second.remaining) == (True, 0)
    assert not third.allowed
    headers = dict(third.headers())
    assert headers == {
        "retry-after": "5",
        "x-ratelimit-limit": "2",
        "x-ratelimit-remaining": "0",
        "x-ratelimit-reset": "10",
    }
    clock.now += 5.0
    assert buckets.take(rule, REQUEST).allowed
    assert not buckets.take(rule, REQUEST).allowed


def test_buckets_per_key_header_are_independent() -> None:
    buckets = ratelimit.Buckets(Clock())
    rule = ratelimit.RateLimitRule(1, 60.0, "x-api-key", "named:api", ratelimit.default_response())
    other = HttpRequest(method="GET", path="/", headers=(("x-api-key", "k2"),))
    assert buckets.take(rule, REQUEST).allowed
    assert not buckets.take(rule, REQUEST).allowed
    assert buckets.take(rule, other).allowed
    assert len(buckets) == 2


def test_plain_stubs_carry_no_behaviour_objects() -> None:
    """The plain path pays nothing: a stub without templates, limits or WebSockets has an empty chain."""
    from simulatord.control.convert import stubs
    from simulatord.v1 import stub_pb2

    errors = SpecErrors()
    plain = stub_pb2.Stub(responses=[stub_pb2.Response(body_text="{{ looks like a template }}")])
    compiled = stubs.stub(plain, "tenants/t/sessions/s", "", "stub", "stub_id", errors, 0.0)
    assert not errors.violations
    assert compiled.responses[0].behaviours == ()
    assert (compiled.rate_limit, compiled.websocket) == (None, None)
