"""Builders that turn intent-shaped Python arguments into `simulatord.v1` Stub, Response and matcher messages.

Everything here returns plain protobuf messages (or, for `when`, a builder of one), so anything the
proto gains later is reachable by passing a raw message where a helper's result is accepted.

Example::

    from simulatord_client import stub, when, contains, absent, response

    get_user = stub("GET", "/users/{id}", headers={"accept": contains("json")}, json={"id": 7})
    flaky = when("POST", "/orders", headers={"x-debug": absent()}).respond(503).then(201, json={"ok": True})
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict, Unpack

from google.protobuf import json_format, struct_pb2

from simulatord.v1 import stub_pb2, webhook_pb2
from simulatord_client.durations import DurationLike, duration

# --- type aliases --------------------------------------------------------------------------------

#: A condition on one header or query value: a literal (equals), a StringMatcher from `contains()` &c.,
#: or a whole FieldMatcher such as `absent()` / `present()`.
ValueMatch = str | stub_pb2.StringMatcher | stub_pb2.FieldMatcher
#: Header or query conditions: `{name: ValueMatch or [ValueMatch, ...]}` or raw FieldMatchers.
FieldSpec = Mapping[str, ValueMatch | Sequence[ValueMatch]] | Sequence[stub_pb2.FieldMatcher]
#: A response: a raw message or the keyword arguments of `response()` as a dict.
ResponseLike = stub_pb2.Response | Mapping[str, Any]
#: How often a stub is expected to match: exactly n, a (low, high) pair (None: open), or a message.
ExpectLike = int | tuple[int | None, int | None] | stub_pb2.CallCountExpectation
#: Response headers: a mapping or (name, value) pairs (a name may repeat).
HeadersOut = Mapping[str, str] | Sequence[tuple[str, str]]
#: A stub's callback: a Callback from `webhooks.callback()`, or a Webhook sent at once.
CallbackLike = webhook_pb2.Callback | webhook_pb2.Webhook

_TEMPLATE_VAR = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*(=\*\*)?\}")
_AFTER_LAST = {
    "repeat_last": stub_pb2.SEQUENCE_END_REPEAT_LAST,
    "repeat": stub_pb2.SEQUENCE_END_REPEAT_LAST,
    "cycle": stub_pb2.SEQUENCE_END_CYCLE,
    "stop_matching": stub_pb2.SEQUENCE_END_STOP_MATCHING,
    "stop": stub_pb2.SEQUENCE_END_STOP_MATCHING,
}
_PROXY_MODES: dict[str, stub_pb2.ProxyMode.ValueType] = {
    "transparent": stub_pb2.PROXY_MODE_TRANSPARENT,
    "record_once": stub_pb2.PROXY_MODE_RECORD_ONCE,
    "record_always": stub_pb2.PROXY_MODE_RECORD_ALWAYS,
}


def headers_out(headers: HeadersOut | None) -> list[stub_pb2.Header]:
    """Response Header messages from a mapping or (name, value) pairs, in order."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    return [stub_pb2.Header(name=name, value=value) for name, value in pairs]


def json_value(obj: Any) -> struct_pb2.Value:
    """A `google.protobuf.Value` holding the JSON value `obj` (dict, list, str, number, bool, None)."""
    value = struct_pb2.Value()
    json_format.ParseDict(obj, value)
    return value


# --- string and field matchers -------------------------------------------------------------------


def equals(value: str, *, ignore_case: bool = False) -> stub_pb2.StringMatcher:
    """The value equals `value`: `headers={"accept": equals("JSON", ignore_case=True)}`."""
    return stub_pb2.StringMatcher(equals=value, ignore_case=ignore_case)


def contains(value: str, *, ignore_case: bool = False) -> stub_pb2.StringMatcher:
    """The value contains `value`: `headers={"authorization": contains("Bearer ")}`."""
    return stub_pb2.StringMatcher(contains=value, ignore_case=ignore_case)


def regex(pattern: str, *, ignore_case: bool = False) -> stub_pb2.StringMatcher:
    """A Python regular expression found anywhere in the value: `query={"page": regex(r"^\\d+$")}`."""
    return stub_pb2.StringMatcher(regex=pattern, ignore_case=ignore_case)


def prefix(value: str, *, ignore_case: bool = False) -> stub_pb2.StringMatcher:
    """The value starts with `value`: `headers={"user-agent": prefix("curl/")}`."""
    return stub_pb2.StringMatcher(prefix=value, ignore_case=ignore_case)


def absent() -> stub_pb2.FieldMatcher:
    """The header or query parameter must be missing: `headers={"authorization": absent()}`."""
    return stub_pb2.FieldMatcher(absent=True)


def present() -> stub_pb2.FieldMatcher:
    """The header or query parameter must be there, with any value: `query={"debug": present()}`."""
    return stub_pb2.FieldMatcher()


def _string_matcher(value: str | stub_pb2.StringMatcher) -> stub_pb2.StringMatcher:
    return equals(value) if isinstance(value, str) else value


def _field(name: str, value: ValueMatch) -> stub_pb2.FieldMatcher:
    if isinstance(value, stub_pb2.FieldMatcher):
        out = stub_pb2.FieldMatcher()
        out.CopyFrom(value)
        out.name = name
        return out
    if isinstance(value, (str, stub_pb2.StringMatcher)):
        return stub_pb2.FieldMatcher(name=name, value=_string_matcher(value))
    raise TypeError(f"condition on {name!r} must be a str, StringMatcher or FieldMatcher, not {type(value).__name__}")


def fields(spec: FieldSpec | None) -> list[stub_pb2.FieldMatcher]:
    """FieldMatchers from `{name: condition}`; a list of conditions for one name means all must hold."""
    if spec is None:
        return []
    if isinstance(spec, Mapping):
        out = []
        for name, value in spec.items():
            if isinstance(value, (str, stub_pb2.StringMatcher, stub_pb2.FieldMatcher)):
                out.append(_field(name, value))
            else:
                out.extend(_field(name, item) for item in value)
        return out
    return list(spec)


# --- body matchers -------------------------------------------------------------------------------


def body_equals(data: bytes | str) -> stub_pb2.BodyMatcher:
    """The raw body equals `data` (str is encoded as UTF-8)."""
    return stub_pb2.BodyMatcher(equals=data.encode() if isinstance(data, str) else data)


def body_contains(text: str) -> stub_pb2.BodyMatcher:
    """The body, decoded as UTF-8, contains `text`."""
    return stub_pb2.BodyMatcher(contains=text)


def body_regex(pattern: str) -> stub_pb2.BodyMatcher:
    """A regular expression is found in the body decoded as UTF-8."""
    return stub_pb2.BodyMatcher(regex=pattern)


def json_equals(value: Any) -> stub_pb2.BodyMatcher:
    """The body is JSON equal to `value` (key order ignored)."""
    return stub_pb2.BodyMatcher(json_equals=json_value(value))


def json_subset(value: Any) -> stub_pb2.BodyMatcher:
    """The body is JSON containing `value`: extra object keys and array elements are allowed."""
    return stub_pb2.BodyMatcher(json_subset=json_value(value))


def json_schema(schema: Any) -> stub_pb2.BodyMatcher:
    """The body is JSON valid against this JSON Schema (draft 2020-12); a mismatch names the failing field."""
    return stub_pb2.BodyMatcher(json_schema=json_value(schema))


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


#: The default of arguments where None is a value (JSON null): "not given".
MISSING: Any = _Missing()


def json_path(
    expression: str, equals: Any = MISSING, *, value: str | stub_pb2.StringMatcher | None = None
) -> stub_pb2.BodyMatcher:
    """A JSONPath (RFC 9535) over the JSON body.

    `json_path("$.items[0].sku")` - selects something; `json_path("$.user.role", "admin")` - a selected
    node equals the JSON value; `json_path("$.email", value=contains("@"))` - a selected node, as text,
    satisfies a string matcher.
    """
    matcher = stub_pb2.JsonPathMatcher(expression=expression)
    if equals is not MISSING:
        matcher.equals.CopyFrom(json_value(equals))
    if value is not None:
        matcher.value.CopyFrom(_string_matcher(value))
    return stub_pb2.BodyMatcher(json_path=matcher)


# --- paths, expectations -------------------------------------------------------------------------


def path_matcher(path: str | stub_pb2.PathMatcher) -> stub_pb2.PathMatcher:
    """An exact path, or a template when it holds `{name}` segments: `/users/{id}`, `/files/{rest=**}`."""
    if isinstance(path, stub_pb2.PathMatcher):
        return path
    if _TEMPLATE_VAR.search(path):
        return stub_pb2.PathMatcher(template=path)
    return stub_pb2.PathMatcher(exact=path)


def exactly(count: int) -> stub_pb2.CallCountExpectation:
    """Expect exactly `count` matches (checked by `verify()`)."""
    return stub_pb2.CallCountExpectation(at_least=count, at_most=count)


def at_least(count: int) -> stub_pb2.CallCountExpectation:
    """Expect `count` matches or more."""
    return stub_pb2.CallCountExpectation(at_least=count)


def at_most(count: int) -> stub_pb2.CallCountExpectation:
    """Expect `count` matches or fewer (zero allowed, so an unused stub is fine)."""
    return stub_pb2.CallCountExpectation(at_most=count)


def between(low: int, high: int) -> stub_pb2.CallCountExpectation:
    """Expect between `low` and `high` matches, inclusive."""
    return stub_pb2.CallCountExpectation(at_least=low, at_most=high)


def never() -> stub_pb2.CallCountExpectation:
    """Expect no match at all: a guard stub that `verify()` reports if it is ever hit."""
    return exactly(0)


def expectation(expect: ExpectLike) -> stub_pb2.CallCountExpectation:
    """A CallCountExpectation from an int (exactly), a (low, high) pair or a message."""
    if isinstance(expect, stub_pb2.CallCountExpectation):
        return expect
    if isinstance(expect, int):
        return exactly(expect)
    low, high = expect
    out = stub_pb2.CallCountExpectation()
    if low is not None:
        out.at_least = low
    if high is not None:
        out.at_most = high
    return out


def to_callback(item: CallbackLike) -> webhook_pb2.Callback:
    """The Callback for a Callback (as it is) or a Webhook (sent as soon as the stub has answered)."""
    if isinstance(item, webhook_pb2.Callback):
        return item
    if isinstance(item, webhook_pb2.Webhook):
        return webhook_pb2.Callback(webhook=item)
    raise TypeError(f"a callback is webhooks.callback(...) or webhooks.webhook(...), not {type(item).__name__}")


# --- responses -----------------------------------------------------------------------------------


class ResponseOptions(TypedDict, total=False):
    """Keyword arguments of `response()`: the body (one of json / text / body), headers and delay."""

    json: Any
    text: str
    body: bytes | str
    headers: HeadersOut
    delay: DurationLike


def response(status: int | stub_pb2.Response = 200, **options: Unpack[ResponseOptions]) -> stub_pb2.Response:
    """One answer. `status` may be a raw Response to start from (features the helpers do not cover yet).

    Example: `response(201, json={"id": 7}, headers={"location": "/users/7"}, delay=0.1)`.
    """
    unknown = set(options) - set(ResponseOptions.__annotations__)
    if unknown:
        raise TypeError(f"response() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    out = stub_pb2.Response()
    if isinstance(status, stub_pb2.Response):
        out.CopyFrom(status)
    else:
        out.status = status
    bodies = [key for key in ("json", "text", "body") if key in options]
    if len(bodies) > 1:
        raise TypeError(f"give at most one response body, got {' and '.join(bodies)}")
    if "json" in options:
        out.body_json.CopyFrom(json_value(options["json"]))
    elif "text" in options:
        out.body_text = options["text"]
    elif "body" in options:
        body = options["body"]
        out.body_bytes = body.encode() if isinstance(body, str) else body
    out.headers.extend(headers_out(options.get("headers")))
    if options.get("delay"):
        out.delay.CopyFrom(duration(options["delay"]))
    return out


def _names(value: Sequence[str], what: str) -> list[str]:
    # A lone string is a sequence too: iterated, "x-tenant" would become eight one-letter names.
    if isinstance(value, str):
        raise TypeError(f"{what} is a list: {what}=[{value!r}]")
    return list(value)


def proxy(
    upstream: str,
    *,
    mode: str = "transparent",
    request_headers: HeadersOut | None = None,
    timeout: DurationLike | None = None,
    match_headers: Sequence[str] = (),
    match_json_paths: Sequence[str] = (),
    match_body: bool = False,
    ignore_query: bool = False,
    redact_headers: Sequence[str] = (),
    keep_secrets: bool = False,
    timing_scale: float | None = None,
) -> stub_pb2.Response:
    """A response that forwards the request to a real upstream and sends back what it answers.

    The request goes to `upstream` (`http://` or `https://`, a host, an optional port and path prefix) followed by
    its path below the session's base URL and its query string; the upstream's status, headers and body come back
    as they arrive. Accepted wherever a response is: `stub(..., response=proxy(...))`,
    `when(...).respond(proxy(...))`, `responses=[...]`.

    - `mode`: `"transparent"` (forward every request, record nothing but the journal), `"record_once"` (the first
      answer to each distinct request becomes a stub that answers the later ones) or `"record_always"` (forward
      every request and append each answer to the recorded stub's sequence).
    - `request_headers`: headers set on the forwarded request, replacing the client's (a real API key, say);
      never recorded. `timeout`: how long to wait for the upstream's headers (default 30 seconds).
    - What recorded stubs match on, besides the method, the exact path and the query (unless `ignore_query`):
      `match_headers` (names), `match_json_paths` (JSONPath expressions whose first node must equal the recorded
      one), `match_body` (the whole body, byte for byte).
    - `redact_headers`: headers whose values recorded stubs replace by `[redacted]` (default: authorization,
      proxy-authorization, x-api-key, api-key, cookie, set-cookie); `keep_secrets=True` redacts nothing.
    - `timing_scale`: multiplies the recorded wait before each SSE event on replay (0: no waits).

    A catch-all: a stub with an empty matcher matches every request, and a low priority lets every other stub of
    the session win first, so only what nothing else answers goes to the real API::

        s.stub(response=proxy("http://127.0.0.1:8080"), priority=-100)
        s.stub("GET", path_glob="/v1/**", response=proxy("https://api.example.com", mode="record_once"))
        s.add(when("POST", "/v1/charges").respond(proxy("http://payments:8080", request_headers={"x-api-key": key})))
    """
    if mode not in _PROXY_MODES:
        raise ValueError(f"unknown proxy mode {mode!r}; one of {', '.join(_PROXY_MODES)}")
    if not upstream.startswith(("http://", "https://")):
        raise ValueError(f"upstream must be an http:// or https:// URL, got {upstream!r}")
    redacted = _names(redact_headers, "redact_headers")
    if keep_secrets and redacted:
        raise ValueError("give redact_headers or keep_secrets=True (which redacts nothing), not both")
    out = stub_pb2.Response(
        proxy=stub_pb2.Proxy(upstream=upstream, mode=_PROXY_MODES[mode], request_headers=headers_out(request_headers))
    )
    if timeout is not None:
        out.proxy.timeout.CopyFrom(duration(timeout))
    record = stub_pb2.RecordOptions(
        match_headers=_names(match_headers, "match_headers"),
        match_json_paths=_names(match_json_paths, "match_json_paths"),
        match_body=match_body,
        ignore_query=ignore_query,
        redact_headers=redacted,
        keep_secrets=keep_secrets,
    )
    if timing_scale is not None:
        record.timing_scale = timing_scale  # optional in the proto: 0 (no waits) differs from unset (as recorded)
    if record.ListFields():
        out.proxy.record.CopyFrom(record)
    return out


def to_response(item: ResponseLike | int) -> stub_pb2.Response:
    """A Response from a raw message, a status code, or a dict of `response()` keywords (`status` included)."""
    if isinstance(item, stub_pb2.Response):
        return item
    if isinstance(item, int):
        return response(item)
    options = dict(item)
    status = options.pop("status", 200)
    return response(status, **options)


# --- request matchers ----------------------------------------------------------------------------


class MatchOptions(TypedDict, total=False):
    """Request conditions shared by `match()`, `when()`, `stub()` and `Session.stub()`; all must hold.

    - `path_template`, `path_regex`, `path_prefix`, `path_glob`: other kinds of path condition.
    - `query`, `headers`: `{name: "value" | contains(..) | regex(..) | prefix(..) | absent() | present()}`.
    - `json_body` (JSON equal), `json_subset`, `json_schema`, `body_contains`, `body_regex`, `body_equals` (bytes),
      `json_path` (`{"$.a.b": value}`; `...` means "selects something"), `body_matchers` (raw list).
    - `all_of`, `any_of`, `none_of`: nested matchers from `match()`.
    - `match`: a raw RequestMatcher merged in last, for fields the helpers do not cover.
    """

    path_template: str
    path_regex: str
    path_prefix: str
    path_glob: str
    query: FieldSpec
    headers: FieldSpec
    json_body: Any
    json_subset: Any
    json_schema: Any
    body_contains: str
    body_regex: str
    body_equals: bytes | str
    json_path: Mapping[str, Any]
    body_matchers: Sequence[stub_pb2.BodyMatcher]
    all_of: Sequence[stub_pb2.RequestMatcher]
    any_of: Sequence[stub_pb2.RequestMatcher]
    none_of: Sequence[stub_pb2.RequestMatcher]
    match: stub_pb2.RequestMatcher


_PATH_KINDS = {"path_template": "template", "path_regex": "regex", "path_prefix": "prefix", "path_glob": "glob"}


def _request_matcher(
    method: str, path: str | stub_pb2.PathMatcher | None, options: Mapping[str, Any]
) -> stub_pb2.RequestMatcher:
    out = stub_pb2.RequestMatcher(method=method.upper())
    paths = [key for key in _PATH_KINDS if key in options] + (["path"] if path is not None else [])
    if len(paths) > 1:
        raise TypeError(f"give one path condition, got {' and '.join(paths)}")
    if path is not None:
        out.path.CopyFrom(path_matcher(path))
    for key, kind in _PATH_KINDS.items():
        if key in options:
            setattr(out.path, kind, options[key])
    out.query.extend(fields(options.get("query")))
    out.headers.extend(fields(options.get("headers")))
    if "json_body" in options:
        out.body.append(json_equals(options["json_body"]))
    if "json_subset" in options:
        out.body.append(json_subset(options["json_subset"]))
    if "json_schema" in options:
        out.body.append(json_schema(options["json_schema"]))
    if "body_contains" in options:
        out.body.append(body_contains(options["body_contains"]))
    if "body_regex" in options:
        out.body.append(body_regex(options["body_regex"]))
    if "body_equals" in options:
        out.body.append(body_equals(options["body_equals"]))
    for expression, expected in (options.get("json_path") or {}).items():
        if expected is ...:
            out.body.append(json_path(expression))
        elif isinstance(expected, stub_pb2.StringMatcher):
            out.body.append(json_path(expression, value=expected))
        else:
            out.body.append(json_path(expression, expected))
    out.body.extend(options.get("body_matchers", ()))
    out.all_of.extend(options.get("all_of", ()))
    out.any_of.extend(options.get("any_of", ()))
    out.none_of.extend(options.get("none_of", ()))
    if "match" in options:
        out.MergeFrom(options["match"])
    return out


def match(
    method: str = "", path: str | stub_pb2.PathMatcher | None = None, **options: Unpack[MatchOptions]
) -> stub_pb2.RequestMatcher:
    """A RequestMatcher, e.g. for `any_of=[match("GET"), match("HEAD")]`.

    Example: `match("POST", "/orders", headers={"content-type": contains("json")}, json_subset={"qty": 1})`.
    """
    check_keywords("match()", options, MatchOptions)
    return _request_matcher(method, path, options)


def all_of(*matchers: stub_pb2.RequestMatcher) -> stub_pb2.RequestMatcher:
    """Every nested matcher must match."""
    return stub_pb2.RequestMatcher(all_of=matchers)


def any_of(*matchers: stub_pb2.RequestMatcher) -> stub_pb2.RequestMatcher:
    """At least one nested matcher must match: `stub(match=any_of(match("GET"), match("HEAD")))`."""
    return stub_pb2.RequestMatcher(any_of=matchers)


def none_of(*matchers: stub_pb2.RequestMatcher) -> stub_pb2.RequestMatcher:
    """No nested matcher may match."""
    return stub_pb2.RequestMatcher(none_of=matchers)


# --- stubs ---------------------------------------------------------------------------------------


class StubSettings(TypedDict, total=False):
    """How a stub behaves beyond one request/response pair.

    - `after_last`: `"repeat_last"` (default), `"cycle"` or `"stop"` once `responses` are used up.
    - `times`: match at most this many times; `priority`: higher is tried first.
    - `expect`: an int (exactly), a `(low, high)` pair, or `at_least()` / `at_most()` / `between()`.
    - `description`: shown in verification reports; `stub_id`: a chosen id instead of a generated one.
    - `required_state` / `next_state`: scenario states.
    - `callbacks`: webhooks sent each time the stub matches, rendered from the triggering request
      (`webhooks.callback(...)`, or a bare `webhooks.webhook(...)` sent at once).
    - `extend`: a raw Stub merged in last, for fields the helpers do not cover yet.
    """

    after_last: str | int
    times: int
    priority: int
    expect: ExpectLike
    description: str
    stub_id: str
    required_state: str
    next_state: str
    callbacks: Sequence[CallbackLike]
    extend: stub_pb2.Stub


class ReplyOptions(TypedDict, total=False):
    """The answer of `stub()`: like `response()` (`status`, `json`, `text`, `body`, `delay`) but with
    `headers_out` for response headers, because `headers` is a request condition; plus `response` (a raw
    Response to start from) and `responses` (Response messages or `response()` keyword dicts, served in
    order)."""

    json: Any
    text: str
    body: bytes | str
    delay: DurationLike
    status: int
    headers_out: HeadersOut
    response: stub_pb2.Response
    responses: Sequence[ResponseLike | int]


class StubOptions(MatchOptions, ReplyOptions, StubSettings, total=False):
    """Every keyword of `stub()` / `Session.stub()`: request conditions, the answer and settings."""


def check_keywords(where: str, options: Mapping[str, Any], *allowed: type) -> None:
    """Raises TypeError naming keywords no TypedDict in `allowed` declares (a typo would otherwise be ignored)."""
    known: set[str] = set()
    for cls in allowed:
        known.update(cls.__annotations__)
    unknown = set(options) - known
    if unknown:
        raise TypeError(f"{where} got unexpected keyword argument(s): {', '.join(sorted(unknown))}")


def _apply_settings(out: stub_pb2.Stub, options: Mapping[str, Any]) -> None:
    if "after_last" in options:
        after = options["after_last"]
        if isinstance(after, str):
            if after not in _AFTER_LAST:
                raise ValueError(f"after_last must be one of {', '.join(_AFTER_LAST)}, got {after!r}")
            after = _AFTER_LAST[after]
        out.after_last = after
    for key in ("times", "priority", "description", "required_state", "next_state"):
        if key in options:
            setattr(out, key, options[key])
    if "expect" in options and options["expect"] is not None:
        out.expect.CopyFrom(expectation(options["expect"]))
    if "callbacks" in options:
        callbacks = options["callbacks"]
        if isinstance(callbacks, (webhook_pb2.Callback, webhook_pb2.Webhook)):
            raise TypeError("callbacks is a list: callbacks=[webhooks.callback(...)]")
        out.callbacks.extend(to_callback(item) for item in callbacks)
    if options.get("stub_id"):
        # Carried in `name` (output only for the daemon) until the create call moves it to `stub_id`.
        out.name = options["stub_id"]
    if "extend" in options:
        out.MergeFrom(options["extend"])


def stub(
    method: str = "", path: str | stub_pb2.PathMatcher | None = None, **options: Unpack[StubOptions]
) -> stub_pb2.Stub:
    """A Stub message: the request conditions, the answer(s) and settings in one call.

    Example::

        stub("GET", "/users/{id}", headers={"authorization": prefix("Bearer ")}, json={"id": 7})
        stub("POST", "/jobs", responses=[{"status": 503}, {"status": 202, "json": {"id": 1}}], after_last="cycle")
        stub(path_prefix="/static/", text="hello", times=1, expect=1)
    """
    check_keywords("stub()", options, StubOptions)
    out = stub_pb2.Stub(request=_request_matcher(method, path, options))
    # `headers` is a request condition here; response headers come as `headers_out`.
    single: dict[str, Any] = {key: options[key] for key in ("json", "text", "body", "delay") if key in options}
    if "headers_out" in options:
        single["headers"] = options["headers_out"]
    if "responses" in options:
        if single or "status" in options or "response" in options:
            raise TypeError("give either responses=[...] or one response (status, json, text, body, ...), not both")
        out.responses.extend(to_response(item) for item in options["responses"])
        if not out.responses:
            raise ValueError("responses must hold at least one response")
    else:
        base = stub_pb2.Response()
        if "response" in options:
            base.CopyFrom(options["response"])
        # A proxy sends the upstream's status, and the daemon refuses one set beside it.
        if "status" in options or not (base.status or base.HasField("proxy")):
            base.status = options.get("status", 200)
        out.responses.append(response(base, **single))
    _apply_settings(out, options)
    return out


class StubBuilder:
    """A stub under construction, from `when(...).respond(...)`; accepted wherever a Stub is.

    Example::

        when("GET", "/health").respond(503).then(200, text="ok").times(5).build()
    """

    def __init__(self, request: stub_pb2.RequestMatcher) -> None:
        self._stub = stub_pb2.Stub(request=request)

    def respond(self, status: int | stub_pb2.Response = 200, **options: Unpack[ResponseOptions]) -> StubBuilder:
        """Adds an answer; several `respond()` / `then()` calls make a sequence served in order."""
        self._stub.responses.append(response(status, **options))
        return self

    then = respond

    def after_last(self, end: str) -> StubBuilder:
        """`"repeat_last"`, `"cycle"` or `"stop"`: what happens once the sequence is used up."""
        _apply_settings(self._stub, {"after_last": end})
        return self

    def times(self, count: int) -> StubBuilder:
        """Match at most `count` times."""
        self._stub.times = count
        return self

    def priority(self, value: int) -> StubBuilder:
        """Higher priorities are tried first."""
        self._stub.priority = value
        return self

    def expect(self, expect: ExpectLike) -> StubBuilder:
        """How often `verify()` expects this stub to match."""
        self._stub.expect.CopyFrom(expectation(expect))
        return self

    def describe(self, description: str) -> StubBuilder:
        """Text shown in verification reports and near-miss listings."""
        self._stub.description = description
        return self

    def named(self, stub_id: str) -> StubBuilder:
        """Give the stub a chosen id."""
        self._stub.name = stub_id
        return self

    def in_state(self, state: str, next_state: str | None = None) -> StubBuilder:
        """Match only in scenario state `state`, optionally moving to `next_state` after answering."""
        self._stub.required_state = state
        if next_state is not None:
            self._stub.next_state = next_state
        return self

    def callback(self, *callbacks: CallbackLike) -> StubBuilder:
        """Adds webhooks sent each time the stub matches: `webhooks.callback(hook, delay=0.1)` or a bare Webhook."""
        self._stub.callbacks.extend(to_callback(item) for item in callbacks)
        return self

    def extend(self, raw: stub_pb2.Stub) -> StubBuilder:
        """Merge raw Stub fields in (for features without a helper yet)."""
        self._stub.MergeFrom(raw)
        return self

    def build(self) -> stub_pb2.Stub:
        """The Stub message (a copy; a stub without `respond()` answers 200 with no body)."""
        out = stub_pb2.Stub()
        out.CopyFrom(self._stub)
        if not out.responses:
            out.responses.append(stub_pb2.Response(status=200))
        return out


def when(
    method: str = "", path: str | stub_pb2.PathMatcher | None = None, **options: Unpack[MatchOptions]
) -> StubBuilder:
    """Start a stub from its request conditions; finish it with `.respond(...)`.

    Example: `session.add(when("GET", "/users/{id}").respond(json={"id": 1}).expect(1))`.
    """
    return StubBuilder(match(method, path, **options))


#: Anything accepted where a stub is: a raw Stub message or a builder from `when()`.
StubLike = stub_pb2.Stub | StubBuilder


def to_stub(item: StubLike) -> stub_pb2.Stub:
    """The Stub message for a raw Stub or a `when()` builder."""
    if isinstance(item, StubBuilder):
        return item.build()
    if isinstance(item, stub_pb2.Stub):
        return item
    raise TypeError(f"expected a simulatord.v1.Stub or a when(...) builder, not {type(item).__name__}")


def create_request(item: StubLike) -> tuple[stub_pb2.Stub, str]:
    """The stub to send and its id: a short `name` is the chosen id; a full resource name keeps its last part."""
    message = to_stub(item)
    if not message.name:
        return message, ""
    out = stub_pb2.Stub()
    out.CopyFrom(message)
    stub_id = out.name.rsplit("/", 1)[-1]
    out.ClearField("name")
    out.ClearField("match_count")
    out.ClearField("create_time")
    return out, stub_id
