"""The Petstore OpenAPI document converted and programmed into a real daemon: documented examples answer,
`Prefer` selects the status and example, and a request the operation's schema refuses gets the session's
unmatched status with near misses naming the violating field."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulatord.control.convert import openapi
from simulatord.v1 import session_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc

PETSTORE = Path(__file__).resolve().parents[1] / "fixtures" / "openapi" / "petstore.yaml"
REQUEST_ID = {"x-request-id": "0a1b-2c3d"}


@pytest.fixture(scope="module")
def conversion() -> openapi.Conversion:
    return openapi.convert(openapi.load_document(PETSTORE))


@pytest.fixture
def imported(
    control: pb_grpc.SimulatorServiceStub, conversion: openapi.Conversion
) -> Iterator[pb.CreateSessionResponse]:
    created = control.CreateSession(
        pb.CreateSessionRequest(
            parent=f"tenants/openapi-{os.getpid()}",
            session_id=f"petstore-{uuid.uuid4().hex[:12]}",
            session=session_pb2.Session(unmatched_status=400),
            stubs=conversion.stubs,
        )
    )
    yield created
    control.DeleteSession(pb.DeleteSessionRequest(name=created.session.name, allow_missing=True))


def near_misses(control: pb_grpc.SimulatorServiceStub, session: str) -> list[tuple[str, str, str, str]]:
    """(stub description, field, expected, actual) of every near miss of the session's last exchange."""
    exchanges = control.ListExchanges(pb.ListExchangesRequest(parent=session)).exchanges
    last = exchanges[-1]
    return [(n.description, m.field, m.expected, m.actual) for n in last.near_misses for m in n.mismatches]


def test_the_daemon_takes_every_converted_stub(
    imported: pb.CreateSessionResponse, conversion: openapi.Conversion
) -> None:
    assert len(imported.stubs) == len(conversion.stubs)
    assert not [u for u in conversion.unmapped if "not valid" in u.reason]


def test_a_valid_post_gets_the_documented_201(http: httpx.Client, imported: pb.CreateSessionResponse) -> None:
    response = http.post(imported.session.base_url + "/pets", json={"name": "Rex", "tag": None}, headers=REQUEST_ID)
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"id": 10, "name": "Rex", "tag": "dog"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tag": "dog"}, "name"),  # missing a required property
        ({"name": 7}, "name"),  # the wrong type
        ({"name": "Rex", "age": 0}, "age"),  # exclusiveMinimum: true, minimum: 0
        ({"name": "Rex", "tag": 3}, "tag"),
    ],
)
def test_an_invalid_post_gets_400_and_the_near_miss_names_the_field(
    http: httpx.Client,
    control: pb_grpc.SimulatorServiceStub,
    imported: pb.CreateSessionResponse,
    body: dict[str, object],
    field: str,
) -> None:
    response = http.post(imported.session.base_url + "/pets", json=body, headers=REQUEST_ID)
    assert response.status_code == 400
    misses = near_misses(control, imported.session.name)
    assert misses, "the journal lists near misses"
    description, where, expected, actual = misses[0]
    assert description.startswith("POST /pets [createPets] -> 201")
    assert (where, expected) == ("body[0]", "valid against its JSON Schema")
    assert field in actual, actual


def test_a_missing_required_header_is_named(
    http: httpx.Client, control: pb_grpc.SimulatorServiceStub, imported: pb.CreateSessionResponse
) -> None:
    response = http.post(imported.session.base_url + "/pets", json={"name": "Rex"})
    assert response.status_code == 400
    assert ("headers.x-request-id", "regex '^[0-9a-f-]+$'", "(absent)") in [
        m[1:] for m in near_misses(control, imported.session.name)
    ]


def test_an_invalid_post_may_ask_for_the_documented_400(http: httpx.Client, imported: pb.CreateSessionResponse) -> None:
    # Prefer selects among the stubs of a valid request only; an invalid one still gets the unmatched status.
    url = imported.session.base_url + "/pets"
    valid = http.post(url, json={"name": "Rex"}, headers={**REQUEST_ID, "Prefer": "code=400"})
    assert (valid.status_code, valid.json()) == (400, {"code": 400, "message": "invalid pet"})


@pytest.mark.parametrize(
    ("prefer", "status", "body"),
    [
        (None, 200, {"id": 1, "name": "Fluffy", "tag": "cat"}),
        ("code=404", 404, {"code": 404, "message": "no such pet"}),
        ("example=dog", 200, {"id": 2, "name": "Spot", "tag": "dog"}),
        ("code=404, example=gone", 404, {"code": 404, "message": "the pet was adopted"}),
    ],
)
def test_prefer_selects_the_status_and_example(
    http: httpx.Client, imported: pb.CreateSessionResponse, prefer: str | None, status: int, body: object
) -> None:
    headers = {"Prefer": prefer} if prefer else {}
    response = http.get(imported.session.base_url + "/pets/1", headers=headers)
    assert (response.status_code, response.json()) == (status, body)


def test_named_examples_by_ref_headers_and_text(http: httpx.Client, imported: pb.CreateSessionResponse) -> None:
    base = imported.session.base_url
    pets = http.get(base + "/pets", headers={"Prefer": "example=none"})
    assert (pets.status_code, pets.json(), pets.headers["x-next"]) == (200, [], "/pets?page=2")
    two = http.get(base + "/pets?limit=2&kind=cat")
    assert [p["name"] for p in two.json()] == ["Fluffy", "Spot"]
    assert http.get(base + "/pets?kind=bird").status_code == 400  # the enum is checked
    mine = http.get(base + "/pets/mine")
    assert (mine.status_code, mine.text, mine.headers["content-type"]) == (200, "your pet is a cat", "text/plain")
    gone = http.delete(base + "/pets/1", headers={"Prefer": "code=404"})
    assert (gone.status_code, gone.content) == (404, b"")
    assert json.loads(http.get(base + "/pets", headers={"Prefer": "code=500"}).content) == {
        "code": 500,
        "message": "unexpected error",
    }
