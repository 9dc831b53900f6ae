"""Builders for templated responses, rate limits and WebSocket stubs, returning plain simulatord.v1 messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from google.protobuf import json_format, struct_pb2

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import stub_pb2
from simulatord_client.durations import duration


def _value(obj: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(obj, out)
    return out


# --- templates -----------------------------------------------------------------------------------------


def templated_response(
    status: int = 200,
    *,
    text: str | None = None,
    json: Any = None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    status_template: str = "",
    seed: int | None = None,
    delay: float = 0.0,
) -> stub_pb2.Response:
    """A response whose header values and body (text, or the strings of a JSON value) are Jinja templates.

    `templated_response(text="hello {{ path.name }}")`, `templated_response(json={"id": "{{ path.id | int }}"})`.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    response = stub_pb2.Response(
        status=status,
        headers=[stub_pb2.Header(name=n, value=v) for n, v in pairs],
        template=stub_pb2.ResponseTemplate(status=status_template, seed=seed),
    )
    if json is not None:
        response.body_json.CopyFrom(_value(json))
    elif text is not None:
        response.body_text = text
    if delay:
        response.delay.CopyFrom(duration(delay))
    return response


# --- rate limits ---------------------------------------------------------------------------------------


def rate_limit(
    limit: int,
    period: float,
    *,
    key_header: str = "",
    bucket: str = "",
    response: stub_pb2.Response | None = None,
) -> stub_pb2.RateLimit:
    """A token bucket of `limit` requests refilled over `period` seconds, for `Stub.rate_limit`."""
    return stub_pb2.RateLimit(
        limit=limit, period=duration(period), key_header=key_header, bucket=bucket, response=response
    )


# --- WebSockets ----------------------------------------------------------------------------------------


def ws_text(text: str, *, delay: float = 0.0, template: bool = False) -> stub_pb2.WebSocketMessage:
    return stub_pb2.WebSocketMessage(text=text, delay=duration(delay), template=template)


def ws_json(value: Any, *, delay: float = 0.0, template: bool = False) -> stub_pb2.WebSocketMessage:
    return stub_pb2.WebSocketMessage(json=_value(value), delay=duration(delay), template=template)


def ws_binary(data: bytes, *, delay: float = 0.0) -> stub_pb2.WebSocketMessage:
    return stub_pb2.WebSocketMessage(binary=data, delay=duration(delay))


def ws_close(code: int = 1000, reason: str = "", *, delay: float = 0.0) -> stub_pb2.WebSocketClose:
    return stub_pb2.WebSocketClose(code=code, reason=reason, delay=duration(delay))


def ws_rule(
    *replies: stub_pb2.WebSocketMessage,
    equals: str | bytes | None = None,
    contains: str | None = None,
    regex: str | None = None,
    json_subset: Any = None,
    close: stub_pb2.WebSocketClose | None = None,
) -> stub_pb2.WebSocketRule:
    """Answers incoming messages that satisfy every given condition (none given: any message)."""
    matchers: list[stub_pb2.BodyMatcher] = []
    if equals is not None:
        matchers.append(stub_pb2.BodyMatcher(equals=equals.encode() if isinstance(equals, str) else equals))
    if contains is not None:
        matchers.append(stub_pb2.BodyMatcher(contains=contains))
    if regex is not None:
        matchers.append(stub_pb2.BodyMatcher(regex=regex))
    if json_subset is not None:
        matchers.append(stub_pb2.BodyMatcher(json_subset=_value(json_subset)))
    return stub_pb2.WebSocketRule(message=matchers, replies=list(replies), close=close)


def websocket_stub(
    path: str,
    *,
    on_connect: Iterable[stub_pb2.WebSocketMessage] = (),
    rules: Iterable[stub_pb2.WebSocketRule] = (),
    close_after_connect: stub_pb2.WebSocketClose | None = None,
    subprotocol: str = "",
    request: stub_pb2.RequestMatcher | None = None,
    **fields: Any,
) -> stub_pb2.Stub:
    """A stub answering WebSocket upgrades on `path` (a path template when it contains `{`)."""
    matcher = stub_pb2.RequestMatcher()
    if request is not None:
        matcher.CopyFrom(request)
    if "{" in path:
        matcher.path.template = path
    else:
        matcher.path.exact = path
    return stub_pb2.Stub(
        request=matcher,
        websocket=stub_pb2.WebSocketBehaviour(
            subprotocol=subprotocol,
            on_connect=list(on_connect),
            rules=list(rules),
            close_after_connect=close_after_connect,
        ),
        **fields,
    )


def push_request(
    session: str,
    message: stub_pb2.WebSocketMessage | None = None,
    *,
    close: stub_pb2.WebSocketClose | None = None,
    stub: str = "",
    connection: int = 0,
) -> pb.SendWebSocketMessageRequest:
    """A SendWebSocketMessage request: push `message` and/or `close` to a session's open connections."""
    return pb.SendWebSocketMessageRequest(
        parent=session, stub=stub, connection=connection, message=message, close=close
    )
