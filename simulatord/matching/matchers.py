"""Pure request matchers: each field test says yes or no and, when asked, explains the mismatch."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from simulatord.errors import SpecErrors
from simulatord.matching.json_paths import json_paths
from simulatord.matching.json_schemas import compile_schema, first_violation
from simulatord.matching.patterns import Pattern, PatternError, compile_generated, compile_user
from simulatord.matching.request import HttpRequest

_MAX_SHOWN = 120


def show(value: object) -> str:
    """A value as mismatches print it: JSON unless a string, cut to a readable length."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


@dataclass(frozen=True, slots=True)
class Mismatch:
    """One field of a request that did not satisfy the matcher."""

    field: str
    expected: str
    actual: str


@dataclass(frozen=True, slots=True)
class MatchResult:
    """The verdict on one request: every mismatched field, and how many fields were checked."""

    mismatches: tuple[Mismatch, ...]
    checked: int

    @property
    def matched(self) -> bool:
        return not self.mismatches

    @property
    def distance(self) -> float:
        """0.0 for a match, 1.0 when every checked field missed; near misses sort by it."""
        return len(self.mismatches) / self.checked if self.checked else 0.0


class FieldTest(Protocol):
    """One condition on a request; `explain` is only called when `test` said no."""

    def test(self, request: HttpRequest) -> bool: ...

    def explain(self, request: HttpRequest) -> list[Mismatch]: ...


# --- strings -------------------------------------------------------------------------------------


class StringOp(StrEnum):
    """How a string condition compares (the StringMatcher oneof's field names)."""

    EQUALS = "equals"
    CONTAINS = "contains"
    REGEX = "regex"
    PREFIX = "prefix"


@dataclass(frozen=True, slots=True)
class StringTest:
    """A condition on one string: equals, contains, regex (search) or prefix, optionally ignoring case."""

    kind: StringOp
    operand: str
    ignore_case: bool = False
    pattern: Pattern | None = None

    def test(self, value: str) -> bool:
        if self.pattern is not None:
            return self.pattern.search(value) is not None
        if self.ignore_case:
            value = value.lower()
        if self.kind is StringOp.EQUALS:
            return value == self.operand
        if self.kind is StringOp.CONTAINS:
            return self.operand in value
        return value.startswith(self.operand)

    def describe(self) -> str:
        case = " (ignoring case)" if self.ignore_case else ""
        return f"{self.kind.replace('_', ' ')} {self.operand!r}{case}"


def _choices(kinds: type[StrEnum]) -> str:
    return ", ".join(k.value for k in kinds)


def string_test(kind: str, operand: str, ignore_case: bool, where: str, errors: SpecErrors) -> StringTest:
    """Builds a StringTest, compiling regexes now so that bad ones fail when programmed."""
    if kind not in StringOp.__members__.values():
        errors.add(where, f"must set one of {_choices(StringOp)}")
        return StringTest(StringOp.EQUALS, operand)
    op = StringOp(kind)
    if op is StringOp.REGEX:
        try:
            pattern = compile_user(operand, ignore_case)
        except PatternError as exc:
            errors.add(f"{where}.regex", f"invalid regular expression: {exc}")
            return StringTest(StringOp.EQUALS, operand)
        return StringTest(op, operand, ignore_case, pattern)
    return StringTest(op, operand.lower() if ignore_case else operand, ignore_case)


# --- method and path -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MethodTest:
    method: str

    def test(self, request: HttpRequest) -> bool:
        return request.method == self.method

    def explain(self, request: HttpRequest) -> list[Mismatch]:
        return [Mismatch("method", self.method, request.method)]


class PathKind(StrEnum):
    """How a path condition compares (the PathMatcher oneof's field names)."""

    EXACT = "exact"
    TEMPLATE = "template"
    PREFIX = "prefix"
    GLOB = "glob"
    REGEX = "regex"


@dataclass(frozen=True, slots=True)
class PathTest:
    """A path condition; templates capture named segments for response templating."""

    kind: PathKind
    operand: str
    pattern: Pattern | None = None

    def test(self, request: HttpRequest) -> bool:
        if self.kind is PathKind.EXACT:
            return request.path == self.operand
        if self.kind is PathKind.PREFIX:
            return request.path.startswith(self.operand)
        assert self.pattern is not None
        return self.pattern.fullmatch(request.path) is not None

    def explain(self, request: HttpRequest) -> list[Mismatch]:
        return [Mismatch("path", f"{self.kind} {self.operand!r}", request.path)]

    def captures(self, path: str) -> dict[str, str]:
        if self.pattern is None:
            return {}
        found = self.pattern.fullmatch(path)
        return found.groupdict() if found else {}


_TEMPLATE_VAR = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(=\*\*)?\}")


def _template_regex(template: str) -> tuple[str, bool]:
    """The regex of a path template, and whether `re` runs it in linear time: at most one `{name=**}` and one
    variable per segment, so no two wildcards compete for the same characters."""
    out, last, seen, anywhere = [], 0, set(), 0
    for found in _TEMPLATE_VAR.finditer(template):
        out.append(_literal(template[last : found.start()]))
        name, rest = found.group(1), found.group(2)
        if name in seen:
            raise ValueError(f"variable {name!r} appears twice")
        seen.add(name)
        anywhere += bool(rest)
        out.append(f"(?P<{name}>.+)" if rest else f"(?P<{name}>[^/]+)")
        last = found.end()
    out.append(_literal(template[last:]))
    one_per_segment = all(len(_TEMPLATE_VAR.findall(segment)) <= 1 for segment in template.split("/"))
    return "".join(out), anywhere <= 1 and one_per_segment


def _literal(text: str) -> str:
    if "{" in text or "}" in text:
        raise ValueError("braces must enclose a variable name such as {id} or {rest=**}")
    return re.escape(text)


def _glob_regex(glob: str) -> tuple[str, bool]:
    """The regex of a glob, and whether `re` runs it in linear time: no `**` and one `*` per segment at most."""
    linear = "**" not in glob and all(segment.count("*") <= 1 for segment in glob.split("/"))
    out, i = [], 0
    while i < len(glob):
        if glob.startswith("**", i):
            out.append(".*")
            i += 2
        elif glob[i] == "*":
            out.append("[^/]*")
            i += 1
        elif glob[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(glob[i]))
            i += 1
    return "".join(out), linear


def path_test(kind: str, operand: str, where: str, errors: SpecErrors) -> PathTest:
    if kind not in PathKind.__members__.values():
        errors.add(where, f"must set one of {_choices(PathKind)}")
        return PathTest(PathKind.EXACT, operand)
    path_kind = PathKind(kind)
    if path_kind is not PathKind.REGEX and not operand.startswith("/"):
        errors.add(f"{where}.{kind}", f"must start with '/', got {operand!r}")
    try:
        if path_kind is PathKind.TEMPLATE:
            return PathTest(path_kind, operand, compile_generated(*_template_regex(operand)))
        if path_kind is PathKind.GLOB:
            return PathTest(path_kind, operand, compile_generated(*_glob_regex(operand)))
        if path_kind is PathKind.REGEX:
            return PathTest(path_kind, operand, compile_user(operand))
    except (PatternError, re.error, ValueError) as exc:
        errors.add(f"{where}.{kind}", f"invalid {kind}: {exc}")
        return PathTest(PathKind.EXACT, operand)
    return PathTest(path_kind, operand)


# --- headers and query ---------------------------------------------------------------------------


class FieldSource(StrEnum):
    """Where a named request field comes from; the value is the prefix of its mismatches' field names."""

    HEADERS = "headers"
    QUERY = "query"


@dataclass(frozen=True, slots=True)
class FieldValueTest:
    """A condition on a header or query parameter, satisfied by any one of its values."""

    source: FieldSource
    name: str
    value: StringTest | None = None
    absent: bool = False

    def _values(self, request: HttpRequest) -> list[str]:
        if self.source is FieldSource.HEADERS:
            return request.header_values(self.name)
        return request.query_values(self.name)

    def test(self, request: HttpRequest) -> bool:
        values = self._values(request)
        if self.absent:
            return not values
        if self.value is None:
            return bool(values)
        return any(self.value.test(v) for v in values)

    def explain(self, request: HttpRequest) -> list[Mismatch]:
        values = self._values(request)
        if self.absent:
            expected = "absent"
        elif self.value is None:
            expected = "present"
        else:
            expected = self.value.describe()
        actual = "(absent)" if not values else show(", ".join(values))
        return [Mismatch(f"{self.source}.{self.name}", expected, actual)]


def field_value_test(
    source: str, name: str, value: StringTest | None, absent: bool, where: str, errors: SpecErrors
) -> FieldValueTest:
    field_source = FieldSource(source)
    if not name:
        errors.add(f"{where}.name", "must not be empty")
    if absent and value is not None:
        errors.add(f"{where}.absent", "cannot be combined with value")
    return FieldValueTest(field_source, name.lower() if field_source is FieldSource.HEADERS else name, value, absent)


# --- bodies --------------------------------------------------------------------------------------


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality: numbers by value, but booleans are never numbers (Python says True == 1)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def json_contains(expected: Any, actual: Any) -> bool:
    """True when `actual` has everything `expected` has: extra object keys and array elements allowed."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and json_contains(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and all(any(json_contains(e, a) for a in actual) for e in expected)
    return json_equal(expected, actual)


def _node_text(node: Any) -> str:
    return node if isinstance(node, str) else json.dumps(node, separators=(",", ":"))


class BodyKind(StrEnum):
    """How a body condition compares (the BodyMatcher oneof's field names)."""

    EQUALS = "equals"
    CONTAINS = "contains"
    REGEX = "regex"
    JSON_EQUALS = "json_equals"
    JSON_SUBSET = "json_subset"
    JSON_PATH = "json_path"
    JSON_SCHEMA = "json_schema"


_NEEDS_JSON = (BodyKind.JSON_EQUALS, BodyKind.JSON_SUBSET, BodyKind.JSON_PATH, BodyKind.JSON_SCHEMA)


@dataclass(frozen=True, slots=True)
class BodyTest:
    """A condition on the body: bytes, text, regex, JSON equality, JSON subset, a JSONPath query or a JSON Schema."""

    kind: BodyKind
    operand: Any
    label: str = "body"  # the request field named in mismatches, e.g. body[1]
    pattern: Pattern | None = None
    query: Any = None  # compiled JSONPath
    validator: Any = None  # compiled JSON Schema
    node_equals: Any = None
    node_value: StringTest | None = None
    has_node_equals: bool = False

    def test(self, request: HttpRequest) -> bool:
        kind = self.kind
        if kind is BodyKind.EQUALS:
            return bool(request.body == self.operand)
        if kind is BodyKind.CONTAINS:
            return self.operand in request.text
        if kind is BodyKind.REGEX:
            assert self.pattern is not None
            return self.pattern.search(request.text) is not None
        if not request.has_json:
            return False
        if kind is BodyKind.JSON_EQUALS:
            return json_equal(self.operand, request.json())
        if kind is BodyKind.JSON_SUBSET:
            return json_contains(self.operand, request.json())
        if kind is BodyKind.JSON_SCHEMA:
            return bool(self.validator.is_valid(request.json()))
        nodes = self._nodes(request)
        if self.has_node_equals:
            return any(json_equal(self.node_equals, n) for n in nodes)
        if self.node_value is not None:
            value = self.node_value
            return any(value.test(_node_text(n)) for n in nodes)
        return bool(nodes)

    def _nodes(self, request: HttpRequest) -> list[Any]:
        return list(self.query.findall(request.json()))

    def explain(self, request: HttpRequest) -> list[Mismatch]:
        if self.kind in _NEEDS_JSON and not request.has_json:
            return [Mismatch(self.label, f"{self.kind.replace('_', ' ')} (a JSON body)", show(request.text))]
        if self.kind is BodyKind.JSON_PATH:
            nodes = self._nodes(request)
            if self.has_node_equals:
                expected = f"{self.operand} equals {show(self.node_equals)}"
            elif self.node_value is not None:
                expected = f"{self.operand} {self.node_value.describe()}"
            else:
                expected = f"{self.operand} selects something"
            actual = "(nothing selected)" if not nodes else show([_node_text(n) for n in nodes])
            return [Mismatch(self.label, expected, actual)]
        if self.kind is BodyKind.JSON_SCHEMA:
            return [
                Mismatch(
                    self.label, "valid against its JSON Schema", show(first_violation(self.validator, request.json()))
                )
            ]
        operand = repr(self.operand) if self.kind is BodyKind.EQUALS else self.operand
        expected = f"{self.kind.replace('_', ' ')} {show(operand)}"
        return [Mismatch(self.label, expected, show(request.text))]


def body_test(
    kind: str,
    operand: Any,
    where: str,
    errors: SpecErrors,
    node_equals: Any = None,
    has_node_equals: bool = False,
    node_value: StringTest | None = None,
    label: str = "body",
) -> BodyTest:
    if kind not in BodyKind.__members__.values():
        errors.add(where, f"must set one of {_choices(BodyKind)}")
        return BodyTest(BodyKind.EQUALS, b"")
    body_kind = BodyKind(kind)
    if body_kind is BodyKind.REGEX:
        try:
            return BodyTest(body_kind, operand, label, pattern=compile_user(operand))
        except PatternError as exc:
            errors.add(f"{where}.regex", f"invalid regular expression: {exc}")
            return BodyTest(BodyKind.EQUALS, b"")
    if body_kind is BodyKind.JSON_SCHEMA:
        validator = compile_schema(operand, f"{where}.json_schema", errors)
        if validator is None:
            return BodyTest(BodyKind.EQUALS, b"")
        return BodyTest(body_kind, operand, label, validator=validator)
    if body_kind is BodyKind.JSON_PATH:
        if not operand:
            errors.add(f"{where}.json_path.expression", "must not be empty")
            return BodyTest(BodyKind.EQUALS, b"")
        if has_node_equals and node_value is not None:
            errors.add(f"{where}.json_path", "set at most one of equals and value")
        query = compile_json_path(operand, f"{where}.json_path.expression", errors)
        if query is None:
            return BodyTest(BodyKind.EQUALS, b"")
        return BodyTest(
            body_kind,
            operand,
            label,
            query=query,
            node_equals=node_equals,
            node_value=node_value,
            has_node_equals=has_node_equals,
        )
    return BodyTest(body_kind, operand, label)


def compile_json_path(expression: str, where: str, errors: SpecErrors) -> Any:
    """A compiled JSONPath query, or None after adding why `expression` is not one to `errors`."""
    import jsonpath  # only sessions that program a JSONPath pay for it: it is slow to import

    try:
        return json_paths().compile(expression)
    except jsonpath.JSONPathError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        errors.add(where, f"invalid JSONPath {expression!r}: {first_line}")
        return None


# --- the whole request ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestMatcher:
    """All conditions of a stub on a request; `match` explains, `matches` is the short-circuiting bool."""

    tests: tuple[FieldTest, ...] = ()
    path: PathTest | None = None
    all_of: tuple[RequestMatcher, ...] = ()
    any_of: tuple[RequestMatcher, ...] = ()
    none_of: tuple[RequestMatcher, ...] = ()
    _fields: tuple[FieldTest, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        fields: list[FieldTest] = list(self.tests)
        if self.all_of:
            fields.append(_AllOf(self.all_of))
        if self.any_of:
            fields.append(_AnyOf(self.any_of))
        if self.none_of:
            fields.append(_NoneOf(self.none_of))
        object.__setattr__(self, "_fields", tuple(fields))

    @property
    def depth(self) -> int:
        """How many all_of/any_of/none_of levels this matcher nests (0: none)."""
        children = (*self.all_of, *self.any_of, *self.none_of)
        return 1 + max(c.depth for c in children) if children else 0

    def matches(self, request: HttpRequest) -> bool:
        return all(t.test(request) for t in self._fields)

    def match(self, request: HttpRequest) -> MatchResult:
        mismatches: list[Mismatch] = []
        for t in self._fields:
            if not t.test(request):
                mismatches.extend(t.explain(request))
        return MatchResult(tuple(mismatches), len(self._fields))

    def captures(self, request: HttpRequest) -> dict[str, str]:
        return self.path.captures(request.path) if self.path is not None else {}

    def index_key(self) -> tuple[str, str] | None:
        """(method or "", exact path) when every match needs that exact path; None when no such key exists.

        Sessions bucket stubs by it, so a request only tries stubs that could match it. The method and path
        tests are top-level conjuncts here, so a request with another path (or method) can never match.
        """
        method, path = "", None
        for t in self.tests:
            if isinstance(t, MethodTest):
                if method and method != t.method:
                    return None  # two different methods: unsatisfiable; leave it to the linear scan
                method = t.method
            elif isinstance(t, PathTest) and t.kind is PathKind.EXACT:
                if path is not None and path != t.operand:
                    return None
                path = t.operand
        return None if path is None else (method, path)


def _prefixed(prefix: str, mismatches: Sequence[Mismatch]) -> list[Mismatch]:
    return [Mismatch(f"{prefix}.{m.field}", m.expected, m.actual) for m in mismatches]


@dataclass(frozen=True, slots=True)
class _AllOf:
    matchers: tuple[RequestMatcher, ...]

    def test(self, request: HttpRequest) -> bool:
        return all(m.matches(request) for m in self.matchers)

    def explain(self, request: HttpRequest) -> list[Mismatch]:
        out: list[Mismatch] = []
        for i, m in enumerate(self.matchers):
            out.extend(_prefixed(f"all_of[{i}]", m.match(request).mismatches))
        return out


@dataclass(frozen=True, slots=True)
class _AnyOf:
    matchers: tuple[RequestMatcher, ...]

    def test(self, request: HttpRequest) -> bool:
        return any(m.matches(request) for m in self.matchers)

    def explain(self, request: HttpRequest) -> list[Mismatch]:
        results = [(m.match(request), i) for i, m in enumerate(self.matchers)]
        best, index = min(results, key=lambda r: r[0].distance)
        return _prefixed(f"any_of[{index}]", best.mismatches)


@dataclass(frozen=True, slots=True)
class _NoneOf:
    matchers: tuple[RequestMatcher, ...]

    def test(self, request: HttpRequest) -> bool:
        return not any(m.matches(request) for m in self.matchers)

    def explain(self, request: HttpRequest) -> list[Mismatch]:
        hits = [i for i, m in enumerate(self.matchers) if m.matches(request)]
        return [Mismatch(f"none_of[{i}]", "no match", "matched") for i in hits]


MAX_NESTING = 8


def request_matcher(
    method: str = "",
    path: PathTest | None = None,
    query: Sequence[FieldValueTest] = (),
    headers: Sequence[FieldValueTest] = (),
    body: Sequence[BodyTest] = (),
    all_of: Sequence[RequestMatcher] = (),
    any_of: Sequence[RequestMatcher] = (),
    none_of: Sequence[RequestMatcher] = (),
    where: str = "request",
    errors: SpecErrors | None = None,
) -> RequestMatcher:
    """Assembles a RequestMatcher from validated parts, cheapest tests first, and checks what only the whole
    can: the method's syntax and how deep all_of/any_of/none_of nest. Without `errors`, problems raise."""
    problems = errors if errors is not None else SpecErrors()
    method = method.strip()
    if method and not method.replace("-", "").isalpha():
        problems.add(f"{where}.method", f"{method!r} is not an HTTP method")
    tests: list[FieldTest] = []
    if method:
        tests.append(MethodTest(method.upper()))
    if path is not None:
        tests.append(path)
    tests.extend(query)
    tests.extend(headers)
    tests.extend(body)
    built = RequestMatcher(tuple(tests), path, tuple(all_of), tuple(any_of), tuple(none_of))
    if built.depth == MAX_NESTING + 1:  # reported once, where the limit is first crossed
        problems.add(where, f"nests all_of/any_of/none_of more than {MAX_NESTING} levels deep")
    if errors is None:
        problems.raise_if_any()
    return built


__all__ = [
    "BodyKind",
    "BodyTest",
    "FieldSource",
    "FieldValueTest",
    "MatchResult",
    "Mismatch",
    "PathKind",
    "PathTest",
    "RequestMatcher",
    "StringOp",
    "StringTest",
    "body_test",
    "field_value_test",
    "json_contains",
    "json_equal",
    "path_test",
    "request_matcher",
    "string_test",
]
