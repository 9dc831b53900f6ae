"""ImportOpenApi and `simulatord import-openapi`: the Petstore imported into a session answering 400 to invalid
requests, strict and dry runs, and documents that cannot be imported."""

from __future__ import annotations

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

PETSTORE = Path(__file__).resolve().parent.parent / "fixtures" / "openapi" / "petstore.yaml"
CLI = [sys.executable, "-m", "simulatord"]
REQUEST_ID = {"x-request-id": "0af7651916cd43dd"}


def session(control: pb_grpc.SimulatorServiceStub, unmatched: int = 400) -> pb.CreateSessionResponse:
    request = pb.CreateSessionRequest(parent="tenants/openapi")
    request.session.unmatched_status = unmatched
    return control.CreateSession(request)


def test_the_petstore_answers_its_examples_and_refuses_an_invalid_body(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client
) -> None:
    created = session(control)
    reply = control.ImportOpenApi(
        pb.ImportOpenApiRequest(parent=created.session.name, document=PETSTORE.read_bytes(), base_path="/v1")
    )
    assert reply.stubs and all(s.name.startswith(created.session.name + "/stubs/") for s in reply.stubs)
    assert any(g.field.startswith("security") or "security" in g.reason for g in reply.unconverted)
    base = created.session.base_url + "/v1"
    assert http.post(base + "/pets", json={"name": "Rex"}, headers=REQUEST_ID).status_code == 201
    refused = http.post(base + "/pets", json={"name": 7}, headers=REQUEST_ID)
    assert refused.status_code == 400 and "$.name: 7 is not of type 'string'" in refused.text
    assert http.get(base + "/pets/1", headers={"prefer": "code=404"}).status_code == 404


def test_strict_refuses_and_a_dry_run_creates_nothing(control: pb_grpc.SimulatorServiceStub) -> None:
    name = session(control).session.name
    with pytest.raises(grpc.RpcError) as caught:
        control.ImportOpenApi(pb.ImportOpenApiRequest(parent=name, document=PETSTORE.read_bytes(), strict=True))
    error = from_rpc_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.FAILED_PRECONDITION, "OPENAPI_NOT_CONVERTED")
    checked = control.ImportOpenApi(
        pb.ImportOpenApiRequest(parent=name, document=PETSTORE.read_bytes(), validate_only=True)
    )
    assert checked.stubs and not any(s.name for s in checked.stubs)
    assert control.ListStubs(pb.ListStubsRequest(parent=name)).stubs == []


@pytest.mark.parametrize(
    ("document", "says"),
    [
        (b"paths: [unclosed", "is not JSON or YAML"),
        (b"swagger: '2.0'\npaths: {}", "is not an OpenAPI 3 document"),
        (b"\xff\xfe", "is not JSON or YAML"),
    ],
)
def test_a_document_that_cannot_be_imported_is_named(
    control: pb_grpc.SimulatorServiceStub, document: bytes, says: str
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        control.ImportOpenApi(pb.ImportOpenApiRequest(parent=session(control).session.name, document=document))
    error = from_rpc_error(caught.value)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    [violation] = error.field_violations
    assert violation.field == "document" and says in violation.description


def test_cli_imports_a_document_and_says_when_invalid_requests_would_not_get_400(
    daemon: EmbeddedDaemon, control: pb_grpc.SimulatorServiceStub
) -> None:
    name = session(control, unmatched=404).session.name
    done = subprocess.run(
        [*CLI, "import-openapi", str(PETSTORE), "--session", name, "--address", daemon.grpc_address],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    created = len(control.ListStubs(pb.ListStubsRequest(parent=name, page_size=1000)).stubs)
    assert done.stdout.startswith(f"created {created} stubs from {PETSTORE} in {name}")
    assert "not converted:" in done.stdout
    assert "get the session's unmatched status, 404, not 400" in done.stdout
