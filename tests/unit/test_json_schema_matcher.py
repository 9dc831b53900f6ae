"""The JSON Schema body matcher: checked when programmed, validating when matched, and naming the failing field."""

from __future__ import annotations

from simulatord.errors import SpecErrors
from simulatord.matching.matchers import BodyKind, BodyTest, body_test
from simulatord.matching.request import HttpRequest

ORDER = {
    "type": "object",
    "required": ["sku", "qty"],
    "properties": {
        "sku": {"type": "string", "pattern": "^[A-Z]{3}-\\d+$"},
        "qty": {"type": "integer", "minimum": 1},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
    },
    "$defs": {"item": {"type": "object", "required": ["id"]}},
}


def compiled(schema: object) -> tuple[BodyTest, list[str]]:
    errors = SpecErrors()
    test = body_test("json_schema", schema, "stubs[0].request.body[0]", errors)
    return test, [f"{v.field}: {v.description}" for v in errors.violations]


def post(body: bytes) -> HttpRequest:
    return HttpRequest(method="POST", path="/orders", headers=(("content-type", "application/json"),), body=body)


def test_a_valid_body_matches_and_an_invalid_one_names_its_field() -> None:
    test, problems = compiled(ORDER)
    assert problems == [] and test.kind is BodyKind.JSON_SCHEMA
    assert test.test(post(b'{"sku": "ABC-1", "qty": 2, "items": [{"id": 1}]}'))
    for body, named in [
        (b'{"sku": "ABC-1", "qty": 0}', "$.qty: 0 is less than the minimum of 1"),
        (b'{"qty": 1}', "'sku' is a required property"),
        (b'{"sku": "abc", "qty": 1}', "$.sku: 'abc' does not match"),
        (b'{"sku": "ABC-1", "qty": 1, "items": [{}]}', "$.items[0]: 'id' is a required property"),
    ]:
        request = post(body)
        assert not test.test(request)
        [mismatch] = test.explain(request)
        assert mismatch.expected == "valid against its JSON Schema"
        assert named in mismatch.actual, mismatch.actual


def test_a_body_that_is_not_json_is_a_mismatch_not_an_error() -> None:
    test, _ = compiled(ORDER)
    request = post(b"not json")
    assert not test.test(request)
    assert "a JSON body" in test.explain(request)[0].expected


def test_bad_schemas_are_refused_when_programmed_at_their_field() -> None:
    assert compiled({"type": "nonsense"})[1] == [
        "stubs[0].request.body[0].json_schema.type: invalid JSON Schema: 'nonsense' is not valid under any of the "
        "given schemas"
    ]
    assert compiled({"properties": {"a": {"pattern": "("}}})[1][0].startswith(
        "stubs[0].request.body[0].json_schema.properties.a.pattern: invalid regular expression"
    )
    assert compiled({"$ref": "https://example.com/schema.json"})[1] == [
        "stubs[0].request.body[0].json_schema.$ref: only references within the schema (#/...) are resolved"
    ]
    assert compiled([1, 2])[1] == [
        "stubs[0].request.body[0].json_schema: must be a JSON Schema: an object or a boolean"
    ]
