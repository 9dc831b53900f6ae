"""Small builders for proto stubs used across service tests, so each test shows only what it is about."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format, struct_pb2

from simulatord.v1 import stub_pb2

# The ASGI server every daemon of this test run uses: SIMULATORD_TEST_SERVER=uvicorn runs the same tests on uvicorn.
SERVER = os.environ.get("SIMULATORD_TEST_SERVER", "hypercorn")

# The tokens of `auth_daemon` (tests/conftest.py): team-a's is in its file as is, the others as their SHA-256.
TOKENS = {
    "team-a": "team-a-token-0123456789",
    "team-b": "team-b-token-0123456789",
    "multi": "multi-token-0123456789ab",  # team-a and team-c
    "admin": "admin-token-0123456789ab",
}


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def write_auth_file(path: Path) -> Path:
    """The auth file of `auth_daemon`, in YAML, written to `path`."""
    path.write_text(
        "# simulatord --auth file of the test suite\n"
        "tokens:\n"
        f"  - {{name: team-a, token: {TOKENS['team-a']}, tenants: [team-a]}}\n"
        f"  - {{name: team-b, sha256: {sha256(TOKENS['team-b'])}, tenants: [team-b]}}\n"
        f"  - {{name: multi, sha256: {sha256(TOKENS['multi'])}, tenants: [team-a, team-c]}}\n"
        f"  - {{name: admin, sha256: {sha256(TOKENS['admin'])}, admin: true}}\n"
    )
    return path


def bearer(token: str) -> tuple[tuple[str, str], ...]:
    """gRPC call metadata carrying `token`."""
    return (("authorization", f"Bearer {token}"),)


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
