"""JSON Schema (draft 2020-12) for body matchers: the jsonschema library, with `pattern` running on RE2.

Checked when a stub is programmed (the schema itself, every `pattern`, only local `$ref`s), so that a request
only validates. jsonschema is imported by the first stub that uses a schema: it is slow to import.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from simulatord.errors import SpecErrors
from simulatord.lazy import per_module
from simulatord.matching.patterns import Pattern, PatternError, compile_user


@functools.lru_cache(maxsize=512)
def _re2(pattern: str) -> Pattern | None:
    try:
        return compile_user(pattern)
    except PatternError:
        return None


@per_module("jsonschema")
def _validator_class() -> Any:
    from jsonschema import Draft202012Validator, validators
    from jsonschema.exceptions import ValidationError

    def pattern(validator: Any, wanted: str, instance: Any, schema: Any) -> Iterator[Any]:
        if validator.is_type(instance, "string"):
            compiled = _re2(wanted)
            if compiled is None or compiled.search(instance) is None:
                yield ValidationError(f"{instance!r} does not match {wanted!r}")

    return validators.extend(Draft202012Validator, {"pattern": pattern})


def _walk(node: Any, path: str) -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) of every object member in the schema, depth first."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{path}[{i}]")


def compile_schema(schema: Any, where: str, errors: SpecErrors) -> Any:
    """A validator for `schema`, or None with the problems added to `errors` at `where`."""
    if not isinstance(schema, (dict, bool)):
        errors.add(where, "must be a JSON Schema: an object or a boolean")
        return None
    ok = True
    for path, key, value in _walk(schema, where):
        if key == "pattern" and isinstance(value, str):
            try:
                compile_user(value)
            except PatternError as exc:
                errors.add(f"{path}.pattern", f"invalid regular expression: {exc}")
                ok = False
        elif key == "$ref" and isinstance(value, str) and not value.startswith("#"):
            errors.add(f"{path}.$ref", "only references within the schema (#/...) are resolved")
            ok = False
    from jsonschema.exceptions import SchemaError

    cls = _validator_class()
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        at = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in exc.path)
        errors.add(f"{where}{at}", f"invalid JSON Schema: {exc.message}")
        return None
    return cls(schema) if ok else None


def first_violation(validator: Any, document: Any) -> str:
    """The most relevant reason `document` is invalid, naming its place: `$.items[0].qty: -1 is less than ...`."""
    from jsonschema.exceptions import best_match

    error = best_match(validator.iter_errors(document))
    if error is None:
        return ""
    return f"{error.json_path}: {error.message}"
