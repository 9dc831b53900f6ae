"""Pure request matchers: each field test says yes or no and, when asked, explains the mismatch."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from simulatord.errors import SpecErrors
from simulatord.matching.request import HttpRequest

_MAX_SHOWN = 120


def _show(value: object) -> str:
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


@dataclass(frozen=True, slots=True)
class StringTest:
    """A condition on one string: equals, contains, regex (search) or prefix, optionally ignoring case."""

    kind: str
    operand: str
    ignore_case: bool = False
    pattern: re.Pattern[str] | None = None

    def test(self, value: str) -> bool:
        if self.pattern is not None:
            return self.pattern.search(value) is not None
        if self.ignore_case:
            value = value.lower()
        if self.kind == "equals":
            return value == self.operand
        if self.kind == "contains":
            return self.operand in value
        return value.startswith(self.operand)

    def describe(self) -> str:
        case = " (ignoring case)" if self.ignore_case else ""
        return f"{self.kind.replace('_', ' ')} {self.operand!r}{case}"


STRING_KINDS = ("equals", "contains", "regex", "prefix")


def string_test(kind: str, operand: str, ignore_case: bool, where: str, errors: SpecErrors) -> StringTest:
    """Builds a StringTest, compiling regexes now so that bad ones fail when programmed."""
    if kind not in STRING_KINDS:
        errors.add(where, f"must set one of {', '.join(STRING_KINDS)}")
        return StringTest("equals", operand)
    if kind == "regex":
        try:
            pattern = re.compile(operand, re.IGNORECASE if ignore_case else 0)
        except re.error as exc:
            errors.add(f"{where}.regex", f"invalid regular expression: {exc}")
            return StringTest("equals", operand)
        return StringTest(kind, operand, ignore_case, pattern)
    return StringTest(kind, operand.lower() if ignore_case else operand, ignore_case)


# --- method and path -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MethodTest:
    method: str

    def test(self, request: HttpRequest) -> bool:
        return request.method == self.method

    def explain(self, request: HttpRequest) -> list[Mismatch]:
        return [Mismatch("method", self.method, request.method)]


@dataclass(frozen=True, slots=True)
class PathTest:
    """A path condition; templates capture named segments for response templating."""

    kind: str
    operand: str
    pattern: re.Pattern[str] | None = None

    def test(self, request: HttpRequest) -> bool:
        if self.kind == "exact":
            return request.path == self.operand
        if self.kind == "prefix":
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
PATH_KINDS = ("exact", "template", "prefix", "glob", "regex")


def _template_regex(template: str) -> str:
    out, last, seen = [], 0, set()
    for found in _TEMPLATE_VAR.finditer(template):
        out.append(_literal(template[last : found.start()]))
        name, rest = found.group(1), found.group(2)
        if name in seen:
            raise ValueError(f"variable {name!r} appears twice")
        seen.add(name)
        out.append(f"(?P<{name}>.+)" if rest else f"(?P<{name}>[^/]+)")
        last = found.end()
    out.append(_literal(template[last:]))
    return "".join(out)


def _literal(text: str) -> str:
    if "{" in text or "}" in text:
        raise ValueError("braces must enclose a variable name such as {id} or {rest=**}")
    return re.escape(text)


def _glob_regex(glob: str) -> str:
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
    return "".join(out)


def path_test(kind: str, operand: str, where: str, errors: SpecErrors) -> PathTest:
    if kind not in PATH_KINDS:
        errors.add(where, f"must set one of {', '.join(PATH_KINDS)}")
        return PathTest("exact", operand)
    if kind != "regex" and not operand.startswith("/"):
        errors.add(f"{where}.{kind}", f"must start with '/', got {operand!r}")
    try:
        if kind == "template":
            return PathTest(kind, operand, re.compile(_template_regex(operand)))
        if kind == "glob":
            return PathTest(kind, operand, re.compile(_glob_regex(operand)))
        if kind == "regex":
            return PathTest(kind, operand, re.compile(operand))
    except (re.error, ValueError) as exc:
        errors.add(f"{where}.{kind}", f"invalid {kind}: {exc}")
    return PathTest("exact" if kind in ("template", "glob", "regex") else kind, operand)


# --- headers and query ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldValueTest:
    """A condition on a header or query parameter, satisfied by any one of its values."""

    source: str  # "headers" or "query"
    name: str
    value: StringTest | None = None
    absent: bool = False

    def _values(self, request: HttpRequest) -> list[str]:
        if self.source == "headers":
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
        actual = "(absent)" if not values else _show(", ".join(values))
        return [Mismatch(f"{self.source}.{self.name}", expected, actual)]


def field_value_test(
    source: str, name: str, value: StringTest | None, absent: bool, where: str, errors: SpecErrors
) -> FieldValueTest:
    if not name:
        errors.add(f"{where}.name", "must not be empty")
    if absent and value is not None:
        errors.add(f"{where}.absent", "cannot be combined with value")
    return FieldValueTest(source, name.lower() if source == "headers" else name, value, absent)


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


@dataclass(frozen=True, slots=True)
class BodyTest:
    """A condition on the body: bytes, text, regex, JSON equality, JSON subset or a JSONPath query."""

    kind: str
    operand: Any
    label: str = "body"  # the request field named in mismatches, e.g. body[1]
    pattern: re.Pattern[str] | None = None
    query: Any = None  # compiled JSONPath
    node_equals: Any = None
    node_value: StringTest | None = None
    has_node_equals: bool = False

    def test(self, request: HttpRequest) -> bool:
        kind = self.kind
        if kind == "equals":
            return bool(request.body == self.operand)
        if kind == "contains":
            return self.operand in request.text
        if kind == "regex":
            assert self.pattern is not None
            return self.pattern.search(request.text) is not None
        if not request.has_json:
            return False
        if kind == "json_equals":
            return json_equal(self.operand, request.json())
        if kind == "json_subset":
            return json_contains(self.operand, request.json())
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
        if self.kind in ("json_equals", "json_subset", "json_path") and not request.has_json:
            return [Mismatch(self.label, f"{self.kind.replace('_', ' ')} (a JSON body)", _show(request.text))]
        if self.kind == "json_path":
            nodes = self._nodes(request)
            if self.has_node_equals:
                expected = f"{self.operand} equals {_show(self.node_equals)}"
            elif self.node_value is not None:
                expected = f"{self.operand} {self.node_value.describe()}"
            else:
                expected = f"{self.operand} selects something"
            actual = "(nothing selected)" if not nodes else _show([_node_text(n) for n in nodes])
            return [Mismatch(self.label, expected, actual)]
        expected = (
            f"{self.kind.replace('_', ' ')} {_show(self.operand if self.kind != 'equals' else repr(self.operand))}"
        )
        return [Mismatch(self.label, expected, _show(request.text))]


BODY_KINDS = ("equals", "contains", "regex", "json_equals", "json_subset", "json_path")


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
    if kind not in BODY_KINDS:
        errors.add(where, f"must set one of {', '.join(BODY_KINDS)}")
        return BodyTest("equals", b"")
    if kind == "regex":
        try:
            return BodyTest(kind, operand, label, pattern=re.compile(operand))
        except re.error as exc:
            errors.add(f"{where}.regex", f"invalid regular expression: {exc}")
            return BodyTest("equals", b"")
    if kind == "json_path":
        if has_node_equals and node_value is not None:
            errors.add(f"{where}.json_path", "set at most one of equals and value")
        import jsonpath  # only sessions that program a JSONPath matcher pay for it: it is slow to import

        try:
            query = jsonpath.compile(operand)
        except jsonpath.JSONPathError as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            errors.add(f"{where}.json_path.expression", f"invalid JSONPath {operand!r}: {first_line}")
            return BodyTest("equals", b"")
        return BodyTest(
            kind,
            operand,
            label,
            query=query,
            node_equals=node_equals,
            node_value=node_value,
            has_node_equals=has_node_equals,
        )
    return BodyTest(kind, operand, label)


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
            elif isinstance(t, PathTest) and t.kind == "exact":
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


def request_matcher(
    method: str = "",
    path: PathTest | None = None,
    query: Sequence[FieldValueTest] = (),
    headers: Sequence[FieldValueTest] = (),
    body: Sequence[BodyTest] = (),
    all_of: Sequence[RequestMatcher] = (),
    any_of: Sequence[RequestMatcher] = (),
    none_of: Sequence[RequestMatcher] = (),
) -> RequestMatcher:
    """Assembles a RequestMatcher from already validated parts, cheapest tests first."""
    tests: list[FieldTest] = []
    if method:
        tests.append(MethodTest(method.upper()))
    if path is not None:
        tests.append(path)
    tests.extend(query)
    tests.extend(headers)
    tests.extend(body)
    return RequestMatcher(tuple(tests), path, tuple(all_of), tuple(any_of), tuple(none_of))


def nearest(
    candidates: Sequence[tuple[str, RequestMatcher]],
    request: HttpRequest,
    limit: int = 3,
    extra: Callable[[str], list[Mismatch]] | None = None,
) -> list[tuple[str, MatchResult]]:
    """The `limit` candidates closest to matching `request`, closest first (ties keep candidate order)."""
    scored: list[tuple[float, int, str, MatchResult]] = []
    for order, (key, matcher) in enumerate(candidates):
        result = matcher.match(request)
        if extra is not None:
            more = extra(key)
            if more:
                result = MatchResult(result.mismatches + tuple(more), result.checked + 1)
        scored.append((result.distance, order, key, result))
    scored.sort(key=lambda s: (s[0], s[1]))
    return [(key, result) for _, _, key, result in scored[:limit]]


def describe_mismatches(mismatches: Sequence[Mismatch]) -> str:
    return "; ".join(f"{m.field}: expected {m.expected}, got {_show(m.actual)}" for m in mismatches)


__all__ = [
    "BodyTest",
    "FieldValueTest",
    "MatchResult",
    "Mismatch",
    "PathTest",
    "RequestMatcher",
    "StringTest",
    "body_test",
    "describe_mismatches",
    "field_value_test",
    "json_contains",
    "json_equal",
    "nearest",
    "path_test",
    "request_matcher",
    "string_test",
]
