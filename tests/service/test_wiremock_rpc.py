"""ImportWireMockMappings and `simulatord import-wiremock`: what reaches the session, what is reported, and the
errors of a call that cannot import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.embedded import EmbeddedDaemon
from simulatord_client.errors import from_rpc_error

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "wiremock"
CLI = [sys.executable, "-m", "simulatord"]

PING = {"name": "ping", "request": {"method": "GET", "urlPath": "/ping"}, "response": {"status": 200, "body": "pong"}}
TEMPLATED = {
    "name": "templated",
    "request": {"method": "GET", "urlPath": "/hello"},
    "response": {"status": 200, "body": "hi {{request.query.name}}", "transformers": ["response-template"]},
}


def session(control: pb_grpc.SimulatorServiceStub) -> str:
    return control.CreateSession(pb.CreateSessionRequest(parent="tenants/wiremock")).session.name


def request(parent: str, *mappings: object, **options: bool) -> pb.ImportWireMockMappingsRequest:
    out = pb.ImportWireMockMappingsRequest(parent=parent, **options)
    for i, mapping in enumerate(mappings):
        out.mapping_files.add(path=f"m{i}.json", content=json.dumps(mapping).encode())
    return out


def test_convertible_mappings_become_stubs_and_the_rest_is_reported(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client
) -> None:
    name = session(control)
    reply = control.ImportWireMockMappings(request(name, PING, TEMPLATED))
    assert [s.description for s in reply.stubs] == ["ping", "templated"]
    assert all(s.name.startswith(name + "/stubs/") for s in reply.stubs)
    assert [(g.mapping, g.field) for g in reply.unconverted] == [("templated", "response.transformers")]
    base = control.GetSession(pb.GetSessionRequest(name=name)).session.base_url
    assert http.get(base + "/ping").text == "pong"


def test_strict_refuses_and_creates_nothing_and_validate_only_creates_nothing(
    control: pb_grpc.SimulatorServiceStub,
) -> None:
    name = session(control)
    with pytest.raises(grpc.RpcError) as caught:
        control.ImportWireMockMappings(request(name, PING, TEMPLATED, strict=True))
    error = from_rpc_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "WIREMOCK_NOT_CONVERTED")
    assert "response.transformers" in error.details
    checked = control.ImportWireMockMappings(request(name, PING, validate_only=True))
    assert [s.description for s in checked.stubs] == ["ping"] and not checked.stubs[0].name
    assert control.ListStubs(pb.ListStubsRequest(parent=name)).stubs == []


def test_a_file_that_is_not_json_is_named(control: pb_grpc.SimulatorServiceStub) -> None:
    bad = pb.ImportWireMockMappingsRequest(parent=session(control))
    bad.mapping_files.add(path="broken.json", content=b"{ not json")
    with pytest.raises(grpc.RpcError) as caught:
        control.ImportWireMockMappings(bad)
    error = from_rpc_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in error.field_violations] == ["mapping_files[0].content"]


def test_a_missing_session_is_not_found(control: pb_grpc.SimulatorServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        control.ImportWireMockMappings(request("tenants/wiremock/sessions/never-made", PING))
    assert from_rpc_error(caught.value).reason == "SESSION_NOT_FOUND"


def test_cli_imports_a_wiremock_root_directory(
    daemon: EmbeddedDaemon, control: pb_grpc.SimulatorServiceStub, http: httpx.Client
) -> None:
    name = session(control)
    done = subprocess.run(
        [*CLI, "import-wiremock", str(ROOT), "--session", name, "--address", daemon.grpc_address],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    created = len(control.ListStubs(pb.ListStubsRequest(parent=name, page_size=1000)).stubs)
    mapping_files = len(list((ROOT / "mappings").glob("*.json")))
    assert done.stdout.startswith(f"created {created} stubs from {mapping_files} mapping file(s) in {name}")
    assert created >= mapping_files
    base = control.GetSession(pb.GetSessionRequest(name=name)).session.base_url
    assert http.get(base + "/ping", headers={"x-env": "staging"}).text == "pong"  # mappings/ping.json
