"""OpenAPI documents into Stub messages, without a daemon: paths, the `Prefer` selection and its priorities,
`$ref`s inlined into the request body's JSON Schema, OpenAPI 3.0 dialect translated, and the report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from simulatord.control.convert import openapi
from simulatord.control.convert.stubs import stub as compile_stub
from simulatord.errors import SpecErrors
from simulatord.matching.request import HttpRequest
from simulatord.v1 import stub_pb2

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "openapi"


@pytest.fixture(scope="module")
def petstore_document() -> Any:
    return openapi.load_document(FIXTURES / "petstore.yaml")


@pytest.fixture(scope="module")
def petstore(petstore_document: Any) -> openapi.Conversion:
    return openapi.convert(petstore_document)


@pytest.fixture(scope="module")
def tasks() -> openapi.Conversion:
    return openapi.convert(openapi.load_document(FIXTURES / "tasks-3.1.yaml"))


def of(conversion: openapi.Conversion, label: str) -> list[stub_pb2.Stub]:
    return [s for s in conversion.stubs if s.description.startswith(label + " ")]


def reports(conversion: openapi.Conversion, operation: str) -> dict[str, str]:
    return {u.field: u.reason for u in conversion.unmapped if u.operation == operation}


def body_json(stub: stub_pb2.Stub) -> Any:
    return json.loads(stub.responses[0].body_bytes)


def schema_of(stub: stub_pb2.Stub) -> Any:
    (body,) = [b for b in stub.request.body if b.WhichOneof("kind") == "json_schema"]
    return json_format.MessageToDict(body.json_schema)


def answer(stubs: list[stub_pb2.Stub], method: str, path: str, headers: dict[str, str] | None = None) -> stub_pb2.Stub:
    """The stub the daemon picks: the highest priority that matches, the latest created among equals."""
    request = HttpRequest(method, path, "", tuple((k.lower(), v) for k, v in (headers or {}).items()), b"")
    ordered = sorted(enumerate(stubs), key=lambda item: (-item[1].priority, -item[0]))
    for _, candidate in ordered:
        errors = SpecErrors()
        compiled = compile_stub(candidate, "tenants/t/sessions/s", "", "stub", "stub_id", errors, 0.0)
        assert not errors.violations
        if compiled.matcher.matches(request):
            return candidate
    raise AssertionError(f"no stub answers {method} {path}")


def test_paths_become_templates_without_a_prefix_by_default(petstore: openapi.Conversion) -> None:
    templates = {(s.request.method, s.request.path.template) for s in petstore.stubs}
    assert templates == {
        ("GET", "/pets"),
        ("POST", "/pets"),
        ("GET", "/pets/{petId}"),
        ("DELETE", "/pets/{petId}"),
        ("GET", "/pets/mine"),
    }


def test_base_path_prefixes_every_path(petstore_document: Any) -> None:
    assert openapi.server_base_path(petstore_document) == "/v1"
    converted = openapi.convert(petstore_document, base_path=openapi.server_base_path(petstore_document))
    assert {s.request.path.template for s in converted.stubs} >= {"/v1/pets", "/v1/pets/{petId}"}
    assert {s.request.path.template for s in openapi.convert(petstore_document, base_path="api/").stubs} >= {
        "/api/pets"
    }


def test_a_literal_path_wins_over_a_template(petstore: openapi.Conversion) -> None:
    # base priority: 3 per literal segment, so even the most specific Prefer stub of /pets/{petId} loses
    assert {s.priority for s in of(petstore, "GET /pets/mine")} == {6, 7}
    assert {s.priority for s in of(petstore, "GET /pets/{petId}")} == {3, 4, 5}
    chosen = answer(petstore.stubs, "GET", "/pets/mine", {"Prefer": "code=404, example=gone"})
    assert chosen.responses[0].body_text == "your pet is a cat"


def test_the_default_answer_is_the_first_example_of_the_lowest_2xx(petstore: openapi.Conversion) -> None:
    chosen = answer(petstore.stubs, "GET", "/pets/7")
    assert chosen.responses[0].status == 200
    assert body_json(chosen) == {"id": 1, "name": "Fluffy", "tag": "cat"}
    assert ("content-type", "application/json") in [(h.name, h.value) for h in chosen.responses[0].headers]


@pytest.mark.parametrize(
    ("prefer", "status", "body"),
    [
        ("code=404", 404, {"code": 404, "message": "no such pet"}),
        ("example=dog", 200, {"id": 2, "name": "Spot", "tag": "dog"}),
        ("code=404, example=gone", 404, {"code": 404, "message": "the pet was adopted"}),
        ('example="gone"; CODE=404', 404, {"code": 404, "message": "the pet was adopted"}),
        ("code=200,example=dog", 200, {"id": 2, "name": "Spot", "tag": "dog"}),
        ("code=404, example=dog", 404, {"code": 404, "message": "no such pet"}),  # no dog in 404: its first
        ("code=418", 200, {"id": 1, "name": "Fluffy", "tag": "cat"}),  # unknown: the default answer
        ("example=Dog", 200, {"id": 1, "name": "Fluffy", "tag": "cat"}),  # names are case-sensitive
        ("code=4040", 200, {"id": 1, "name": "Fluffy", "tag": "cat"}),
    ],
)
def test_prefer_selects_the_status_and_example(
    petstore: openapi.Conversion, prefer: str, status: int, body: Any
) -> None:
    chosen = answer(petstore.stubs, "GET", "/pets/7", {"Prefer": prefer})
    assert (chosen.responses[0].status, body_json(chosen)) == (status, body)


def test_one_stub_per_selection(petstore: openapi.Conversion) -> None:
    descriptions = sorted(s.description for s in of(petstore, "GET /pets/{petId}"))
    assert descriptions == sorted(
        [
            "GET /pets/{petId} [showPetById] -> 200 example 'cat'",
            "GET /pets/{petId} [showPetById] -> 200 example 'cat' (Prefer: example=cat)",
            "GET /pets/{petId} [showPetById] -> 200 example 'dog' (Prefer: example=dog)",
            "GET /pets/{petId} [showPetById] -> 200 example 'cat' (Prefer: code=200)",
            "GET /pets/{petId} [showPetById] -> 404 example 'missing' (Prefer: code=404)",
            "GET /pets/{petId} [showPetById] -> 200 example 'cat' (Prefer: code=200, example=cat)",
            "GET /pets/{petId} [showPetById] -> 200 example 'dog' (Prefer: code=200, example=dog)",
            "GET /pets/{petId} [showPetById] -> 404 example 'missing' (Prefer: code=404, example=missing)",
            "GET /pets/{petId} [showPetById] -> 404 example 'gone' (Prefer: code=404, example=gone)",
        ]
    )
    priorities = {s.description: s.priority for s in of(petstore, "GET /pets/{petId}")}
    assert priorities["GET /pets/{petId} [showPetById] -> 200 example 'cat'"] == 3
    assert priorities["GET /pets/{petId} [showPetById] -> 404 example 'missing' (Prefer: code=404)"] == 4
    assert priorities["GET /pets/{petId} [showPetById] -> 404 example 'gone' (Prefer: code=404, example=gone)"] == 5


def test_a_response_without_example_has_its_status_and_no_body(petstore: openapi.Conversion) -> None:
    chosen = answer(petstore.stubs, "DELETE", "/pets/3", {"Prefer": "code=404"})
    assert chosen.responses[0].status == 404
    assert chosen.responses[0].WhichOneof("body") is None
    assert answer(petstore.stubs, "DELETE", "/pets/3").responses[0].status == 204
    assert reports(petstore, "DELETE /pets/{petId}")["responses.404"].startswith(
        "no example: answered with an empty body"
    )


def test_a_default_response_is_sent_as_500(petstore: openapi.Conversion) -> None:
    chosen = answer(petstore.stubs, "GET", "/pets", {"Prefer": "code=500"})
    assert (chosen.responses[0].status, body_json(chosen)) == (500, {"code": 500, "message": "unexpected error"})


def test_examples_by_ref_and_response_headers(petstore: openapi.Conversion) -> None:
    chosen = answer(petstore.stubs, "GET", "/pets", {"Prefer": "example=none"})
    assert body_json(chosen) == []
    headers = [(h.name, h.value) for h in chosen.responses[0].headers]
    assert ("x-next", "/pets?page=2") in headers
    assert "x-rate-limit" not in [name for name, _ in headers]
    assert "no example" in reports(petstore, "GET /pets")["responses.200.headers.x-rate-limit"]


def test_the_request_body_schema_has_refs_inlined_and_30_translated(petstore: openapi.Conversion) -> None:
    stubs = of(petstore, "POST /pets")
    assert stubs
    schema = schema_of(stubs[0])
    assert all(schema_of(s) == schema for s in stubs)
    assert "$ref" not in json.dumps(schema)
    assert schema == {
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string", "minLength": 1.0, "examples": ["Rex"]},
            "tag": {"type": ["string", "null"]},
            "age": {"type": "integer", "exclusiveMinimum": 0.0},
        },
    }


def test_read_only_properties_are_not_required_in_requests(petstore_document: Any) -> None:
    doc = openapi._Document(petstore_document, False, [])
    pet = doc.schema({"$ref": "#/components/schemas/Pet"})
    assert pet["allOf"][1]["required"] == []
    assert pet["allOf"][1]["properties"]["id"] == {"type": "integer", "format": "int64", "readOnly": True}


def test_nullable_enums_and_exclusive_maximum() -> None:
    doc = openapi._Document({}, False, [])
    assert doc.schema({"type": "string", "enum": ["a"], "nullable": True}) == {
        "type": ["string", "null"],
        "enum": ["a", None],
    }
    assert doc.schema({"type": "number", "maximum": 5, "exclusiveMaximum": True}) == {
        "type": "number",
        "exclusiveMaximum": 5,
    }
    assert doc.schema({"type": "number", "minimum": 5, "exclusiveMinimum": False}) == {"type": "number", "minimum": 5}
    # a property named like a 3.0-only keyword is kept
    assert doc.schema({"properties": {"example": {"type": "string"}}}) == {
        "properties": {"example": {"type": "string"}}
    }


def test_required_parameters_are_present_and_enums_and_patterns_checked(petstore: openapi.Conversion) -> None:
    post = of(petstore, "POST /pets")[0]
    assert [json_format.MessageToDict(h) for h in post.request.headers] == [
        {"name": "x-request-id", "value": {"regex": "^[0-9a-f-]+$"}}
    ]
    get = of(petstore, "GET /pets")[0]
    assert not get.request.query
    present, absent = get.request.any_of
    assert json_format.MessageToDict(present) == {"query": [{"name": "kind", "value": {"regex": "^(?:cat|dog)$"}}]}
    assert json_format.MessageToDict(absent) == {"query": [{"name": "kind", "absent": True}]}
    assert "type integer" in reports(petstore, "GET /pets")["parameters.query.limit.schema"]


def test_the_report(petstore: openapi.Conversion) -> None:
    document = reports(petstore, openapi.DOCUMENT)
    assert set(document) == {"servers[0].variables", "components.securitySchemes"}
    post = reports(petstore, "POST /pets")
    assert {"security", "callbacks", "parameters.cookie.session", "responses.201.links"} <= set(post)
    get_one = reports(petstore, "GET /pets/{petId}")
    assert "security" not in get_one  # `security: []` turns it off
    assert "the examples of application/json are sent" in get_one["responses.200.content.application/xml"]
    assert set(reports(petstore, "GET /pets/mine")) == {"security"}  # the document-wide requirement
    assert not [u for u in petstore.unmapped if "not valid" in u.reason and "json_schema" not in u.reason]


def test_openapi_31(tasks: openapi.Conversion) -> None:
    get = of(tasks, "GET /tasks/{task-id}")
    assert {s.request.path.template for s in get} == {"/tasks/{task_id}"}
    assert answer(tasks.stubs, "GET", "/tasks/3").responses[0].status == 500
    got = reports(tasks, "GET /tasks/{task-id}")
    assert "(path).{task-id}" in got
    assert "type" in got["parameters.path.task-id"]
    assert "responses" in got  # no 2xx
    post = reports(tasks, "POST /tasks")
    assert post["responses.4XX"] == "a status range is sent as 400"
    assert reports(tasks, "POST /trees") == {}
    tree = of(tasks, "POST /trees")[0]
    # a recursive schema goes into $defs; the body is optional (not required): empty, or valid
    valid, empty = tree.request.any_of
    tree_schema = {
        "type": "object",
        "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/components_schemas_Tree"}}},
    }
    assert json_format.MessageToDict(valid.body[0].json_schema) == {
        **tree_schema,
        "$defs": {"components_schemas_Tree": tree_schema},
    }
    assert empty.body[0].equals == b""
    assert "webhooks" in reports(tasks, openapi.DOCUMENT)


def test_openapi_31_schema_keeps_types_and_ref_siblings() -> None:
    document = openapi.load_document(FIXTURES / "tasks-3.1.yaml")
    doc = openapi._Document(document, True, [])
    schema = doc.schema(document["paths"]["/tasks"]["post"]["requestBody"]["content"]["application/json"]["schema"])
    assert schema["allOf"][0]["properties"]["due"] == {"type": ["string", "null"], "format": "date"}
    assert schema["allOf"][1] == {"description": "a task to create"}


def test_range_status_answers_prefer_code(tasks: openapi.Conversion) -> None:
    descriptions = [s.description for s in of(tasks, "POST /tasks")]
    assert "POST /tasks [createTask] -> 4XX (Prefer: code=400)" in descriptions


def test_other_documents_are_refused() -> None:
    swagger = openapi.convert({"swagger": "2.0", "paths": {}})
    assert not swagger.stubs
    assert swagger.unmapped[0].field == "openapi" and "swagger 2.0" in swagger.unmapped[0].reason


def test_load_document_keeps_dates_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "doc.yaml"
    path.write_text("openapi: 3.0.0\nexample: 2024-01-02\n")
    assert openapi.load_document(path) == {"openapi": "3.0.0", "example": "2024-01-02"}
    (tmp_path / "doc.json").write_text('{"openapi": "3.1.0"}')
    assert openapi.load_document(tmp_path / "doc.json") == {"openapi": "3.1.0"}


def test_identifiers_yaml_int_statuses_and_mixed_bodies() -> None:
    operation = {
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
            }
        },
        "responses": {200: {"description": "ok", "content": {"application/json": {"example": {"d": "x"}}}}},
    }
    converted = openapi.convert({"openapi": "3.0.1", "paths": {"/a/{x.y}/{x-y}": {"post": operation}}})
    stub = converted.stubs[0]
    assert stub.request.path.template == "/a/{x_y}/{x_y_}"
    assert body_json(stub) == {"d": "x"}
    valid, other_type, empty = stub.request.any_of  # JSON valid, or not JSON, or no body (not required)
    assert valid.body[0].WhichOneof("kind") == "json_schema"
    assert other_type.none_of[0].headers[0].name == "content-type"
    assert empty.body[0].equals == b""
    got = reports(converted, "POST /a/{x.y}/{x-y}")
    assert set(got) == {"(path).{x.y}", "(path).{x-y}", "requestBody.content.application/x-www-form-urlencoded"}
