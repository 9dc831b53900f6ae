"""Pure matcher tests: every kind of condition, its explanation, and validation at programming time."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from simulatord.errors import InvalidArgument, SpecErrors
from simulatord.matching import matchers as m
from simulatord.matching.near_misses import nearest
from simulatord.matching.request import HttpRequest


@dataclass(frozen=True)
class Candidate:
    name: str
    description: str
    matcher: m.RequestMatcher


def req(
    method: str = "GET",
    path: str = "/",
    query: str = "",
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> HttpRequest:
    return HttpRequest(method, path, query, tuple((k.lower(), v) for k, v in (headers or {}).items()), body)


def build(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    errors = SpecErrors()
    result = fn(*args, errors=errors, **kwargs)
    errors.raise_if_any()
    return result


def path(kind: str, operand: str) -> m.PathTest:
    return build(m.path_test, kind, operand, where="path")


def s(kind: str, operand: str, ignore_case: bool = False) -> m.StringTest:
    return build(m.string_test, kind, operand, ignore_case, where="value")


@pytest.mark.parametrize(
    ("kind", "operand", "hit", "miss"),
    [
        ("exact", "/users", "/users", "/users/"),
        ("prefix", "/v1/", "/v1/models", "/v2/models"),
        ("template", "/users/{id}", "/users/42", "/users/42/posts"),
        ("template", "/files/{rest=**}", "/files/a/b/c", "/files"),
        ("glob", "/v1/*/items", "/v1/abc/items", "/v1/a/b/items"),
        ("glob", "/static/**", "/static/a/b.css", "/stat/a"),
        ("regex", r"/orders/\d+", "/orders/12", "/orders/12x"),
    ],
)
def test_path_kinds(kind: str, operand: str, hit: str, miss: str) -> None:
    matcher = m.request_matcher(path=path(kind, operand))
    assert matcher.matches(req(path=hit))
    assert not matcher.matches(req(path=miss))
    assert matcher.match(req(path=miss)).mismatches[0].field == "path"


def test_template_captures_named_segments() -> None:
    matcher = m.request_matcher(path=path("template", "/users/{user}/posts/{post}"))
    assert matcher.captures(req(path="/users/7/posts/abc")) == {"user": "7", "post": "abc"}


@pytest.mark.parametrize(
    ("kind", "operand", "where"),
    [
        ("regex", "([", "path.regex"),
        ("template", "/users/{id}/{id}", "path.template"),
        ("template", "/users/{id", "path.template"),
        ("exact", "users", "path.exact"),
    ],
)
def test_bad_paths_are_rejected_with_field_paths(kind: str, operand: str, where: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        path(kind, operand)
    assert caught.value.violations[0].field == where


def test_method_is_compared_upper_case() -> None:
    matcher = m.request_matcher(method="post")
    assert matcher.matches(req("POST"))
    result = matcher.match(req("GET"))
    assert result.mismatches == (m.Mismatch("method", "POST", "GET"),)


def test_headers_are_case_insensitive_and_any_value_counts() -> None:
    test = build(m.field_value_test, "headers", "Authorization", s("prefix", "Bearer "), False, where="h")
    matcher = m.request_matcher(headers=[test])
    assert matcher.matches(req(headers={"AUTHORIZATION": "Bearer abc"}))
    both = HttpRequest("GET", "/", "", (("accept", "text/html"), ("accept", "application/json")))
    accept = build(m.field_value_test, "headers", "accept", s("equals", "application/json"), False, where="h")
    assert m.request_matcher(headers=[accept]).matches(both)
    miss = matcher.match(req(headers={"authorization": "Basic x"}))
    assert miss.mismatches[0].field == "headers.authorization"
    assert "Basic x" in miss.mismatches[0].actual


def test_presence_and_absence() -> None:
    present = build(m.field_value_test, "query", "page", None, False, where="q")
    absent = build(m.field_value_test, "query", "debug", None, True, where="q")
    matcher = m.request_matcher(query=[present, absent])
    assert matcher.matches(req(query="page=2"))
    assert not matcher.matches(req(query="page=2&debug=1"))
    assert not matcher.matches(req(query="other=1"))
    assert [x.field for x in matcher.match(req(query="debug=1")).mismatches] == ["query.page", "query.debug"]


def test_string_matchers() -> None:
    assert s("equals", "Abc", ignore_case=True).test("aBC")
    assert s("contains", "lo w").test("hello world")
    assert s("regex", r"^\d{3}$").test("123") and not s("regex", r"^\d{3}$").test("1234")
    assert s("prefix", "sk-").test("sk-123")
    with pytest.raises(InvalidArgument, match="invalid regular expression"):
        s("regex", "(")


def body(kind: str, operand: object, **kwargs: object) -> m.BodyTest:
    return build(m.body_test, kind, operand, where="body[0]", **kwargs)


def test_body_bytes_text_and_regex() -> None:
    assert body("equals", b"\x00\x01").test(req(body=b"\x00\x01"))
    assert body("contains", "needle").test(req(body=b"hay needle hay"))
    assert body("regex", r'"model":\s*"gpt').test(req(body=b'{"model": "gpt-4"}'))


def test_json_equality_ignores_key_order_but_not_types() -> None:
    test = body("json_equals", {"a": 1, "b": [True, None]})
    assert test.test(req(body=b'{"b": [true, null], "a": 1.0}'))
    assert not test.test(req(body=b'{"b": [1, null], "a": 1}'))  # true is not 1 in JSON
    assert not test.test(req(body=b"not json"))
    assert test.explain(req(body=b"not json"))[0].expected.startswith("json equals")


def test_json_subset() -> None:
    test = body("json_subset", {"model": "gpt-4", "messages": [{"role": "user"}]})
    assert test.test(
        req(body=b'{"model":"gpt-4","stream":true,"messages":[{"role":"system"},{"role":"user","content":"hi"}]}')
    )
    assert not test.test(req(body=b'{"model":"gpt-4","messages":[{"role":"system"}]}'))


def test_json_path_selects_and_compares() -> None:
    data = b'{"messages":[{"role":"user","content":"Hello there"}],"n":2}'
    assert body("json_path", "$.messages[0].role").test(req(body=data))
    assert not body("json_path", "$.missing").test(req(body=data))
    assert body("json_path", "$.n", node_equals=2, has_node_equals=True).test(req(body=data))
    assert body("json_path", "$.messages[*].content", node_value=s("contains", "Hello")).test(req(body=data))
    explained = body("json_path", "$.n", node_equals=3, has_node_equals=True).explain(req(body=data))
    assert explained[0].actual == '["2"]'
    with pytest.raises(InvalidArgument, match="invalid JSONPath"):
        body("json_path", "$[?")


def test_all_any_none() -> None:
    get = m.request_matcher(method="GET")
    v1 = m.request_matcher(path=path("prefix", "/v1"))
    admin = m.request_matcher(path=path("prefix", "/v1/admin"))
    matcher = m.request_matcher(all_of=[get], any_of=[v1, m.request_matcher(method="HEAD")], none_of=[admin])
    assert matcher.matches(req("GET", "/v1/users"))
    assert not matcher.matches(req("GET", "/v1/admin/x"))
    assert not matcher.matches(req("POST", "/v1/users"))
    fields = [x.field for x in matcher.match(req("POST", "/v2")).mismatches]
    assert fields[0] == "all_of[0].method"
    assert any(f.startswith("any_of[") for f in fields)
    assert matcher.match(req("GET", "/v1/admin")).mismatches == (m.Mismatch("none_of[0]", "no match", "matched"),)


def test_match_and_matches_agree_and_distance_orders_near_misses() -> None:
    matcher = m.request_matcher(method="POST", path=path("exact", "/chat"))
    for request in (req("POST", "/chat"), req("GET", "/chat"), req("GET", "/x")):
        assert matcher.matches(request) == matcher.match(request).matched
    close = m.request_matcher(method="POST", path=path("exact", "/chat"))
    far = m.request_matcher(method="PUT", path=path("exact", "/other"))
    stubs = [Candidate("far", "", far), Candidate("close", "", close)]
    ranked = nearest(stubs, req("GET", "/chat"))
    assert [miss.stub_name for miss in ranked] == ["close", "far"]
    assert [x.field for x in ranked[0].mismatches] == ["method"]  # one of the two fields differs


def test_empty_matcher_matches_everything() -> None:
    assert m.request_matcher().matches(req("DELETE", "/anything"))
