"""Small builders for proto stubs used across service tests, so each test shows only what it is about."""

from __future__ import annotations

import os
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2

from simulatord.v1 import stub_pb2

# The ASGI server every daemon of this test run uses: SIMULATORD_TEST_SERVER=uvicorn runs the same tests on uvicorn.
SERVER = os.environ.get("SIMULATORD_TEST_SERVER", "hypercorn")

# uvicorn speaks HTTP/1.1 only: no h2c upgrade or prior knowledge, no h2 by ALPN over TLS.
needs_http2 = pytest.mark.skipif(SERVER == "uvicorn", reason="uvicorn has no HTTP/2; HTTP/2 needs --server hypercorn")


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
