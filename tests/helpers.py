"""Small builders for proto stubs used across service tests, so each test shows only what it is about."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2

from simulatord.v1 import stub_pb2


def value(obj: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(obj, out)
    return out


def stub(
    method: str = "GET",
    path: str = "/hello",
    status: int = 200,
    json: Any = None,
    text: str | None = None,
    **fields: Any,
) -> stub_pb2.Stub:
    response = stub_pb2.Response(status=status)
    if json is not None:
        response.body_json.CopyFrom(value(json))
    elif text is not None:
        response.body_text = text
    return stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(method=method, path=stub_pb2.PathMatcher(exact=path)),
        responses=[response],
        **fields,
    )
