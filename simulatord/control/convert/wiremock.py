"""WireMock (3.x) stub mappings into simulatord Stubs, with a report of every part that has no exact equivalent."""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qsl, unquote

from google.protobuf import duration_pb2, json_format, struct_pb2

from simulatord.control.convert.stubs import stub as compile_stub
from simulatord.errors import SpecErrors
from simulatord.matching.json_paths import json_paths
from simulatord.matching.patterns import PatternError, compile_user
from simulatord.responding.proxy import HOP_BY_HOP
from simulatord.responding.reply import FRAMING_HEADERS, header_problem
from simulatord.responding.timing import MAX_DELAY_SECONDS, MAX_SIGMA
from simulatord.sessions.stubs import MAX_SCENARIO_NAME
from simulatord.v1 import stub_pb2

STARTED = "Started"  # WireMock's initial scenario state
DEFAULT_PRIORITY = 5  # WireMock's priority of a mapping that sets none; 1 is the highest
# What WireMock's RANDOM_DATA_THEN_CLOSE and MALFORMED_RESPONSE_CHUNK write (JettyFaultInjector.GARBAGE).
RANDOM_DATA = b"lskdu018973t09sylgasjkfg1][]'./.sdlv"
_INT32 = (-(2**31), 2**31 - 1)
_MAX_DELAY_MS = MAX_DELAY_SECONDS * 1000
_RE2_SPECIAL = frozenset("\\.^$|?*+()[]{}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TEMPLATE_PART = re.compile(r"(\{[^}]+\}|\*\*)")  # WireMock's PathTemplate.SPECIAL_SYMBOL_REGEX
_JSON_UNIT = re.compile(r"\$\{json-unit\.[^}]*\}")
_MAPPING_FIELDS = frozenset(
    {"id", "uuid", "name", "request", "response", "priority", "scenarioName", "requiredScenarioState"}
    | {"newScenarioState", "persistent", "metadata", "postServeActions", "serveEventListeners", "insertionIndex"}
)
_URL_FIELDS = ("url", "urlPattern", "urlPath", "urlPathPattern", "urlPathTemplate")
_IGNORED_REQUEST_FIELDS = {
    "formParameters": "matches application/x-www-form-urlencoded form fields; simulatord has no form matcher",
    "multipartPatterns": "matches the parts of a multipart body; simulatord has no multipart matcher",
    "customMatcher": "runs a Java extension (a custom request matcher)",
    "scheme": "matches the URL scheme; a session answers on its own base URL",
    "host": "matches the Host header's host; a session answers on its own base URL",
    "port": "matches the port; a session answers on its own base URL",
    "clientIp": "matches the client's IP address; simulatord has no such matcher",
}
_REQUEST_FIELDS = frozenset(
    {*_URL_FIELDS, *_IGNORED_REQUEST_FIELDS, "method", "headers", "queryParameters", "pathParameters", "cookies"}
    | {"basicAuth", "basicAuthCredentials", "bodyPatterns"}
)
_RESPONSE_FIELDS = frozenset(
    {"status", "statusMessage", "body", "jsonBody", "base64Body", "bodyFileName", "headers", "fault"}
    | {"fixedDelayMilliseconds", "delayDistribution", "chunkedDribbleDelay", "proxyBaseUrl", "fromConfiguredStub"}
    | {"proxyUrlPrefixToRemove", "additionalProxyRequestHeaders", "removeProxyRequestHeaders"}
    | {"transformers", "transformerParameters"}
)
_PROXY_ONLY = ("proxyUrlPrefixToRemove", "additionalProxyRequestHeaders", "removeProxyRequestHeaders")
# What a proxy mapping's response sets that WireMock replaces by the upstream's answer.
_IGNORED_BY_PROXY = {
    "status": "status",
    "statusMessage": "status",
    "body": "body",
    "jsonBody": "body",
    "base64Body": "body",
    "bodyFileName": "body",
    "fault": "answer without a fault",
}
# Request headers the daemon sets itself on a forwarded request, and refuses in `Proxy.request_headers`.
_SET_BY_DAEMON = HOP_BY_HOP | {"host", "content-length"}
_UNSUPPORTED_MATCHERS = {
    "equalToXml": "compares XML documents",
    "matchesXPath": "evaluates an XPath expression",
    "matchesJsonSchema": "validates against a JSON Schema",
    "before": "compares dates and times",
    "after": "compares dates and times",
    "equalToDateTime": "compares dates and times",
    "equalToNumber": "compares numbers",
    "greaterThanNumber": "compares numbers",
    "greaterThanEqualNumber": "compares numbers",
    "lessThanNumber": "compares numbers",
    "lessThanEqualNumber": "compares numbers",
    "matchesPathTemplate": "matches a path template",
}


@dataclasses.dataclass(frozen=True)
class Unmapped:
    """A part of a mapping that was not converted, or converted only approximately.

    `mapping` names the mapping (its `name`, else its `id`/`uuid`, else its source and index), `field` is a path
    into it such as `request.cookies.session` or `response.transformers` (`(mapping)` or `(file)` for the whole),
    and `reason` says what WireMock does there and what became of it."""

    mapping: str
    field: str
    reason: str


@dataclasses.dataclass
class Conversion:
    """The stubs converted, in the order of the mappings, and everything that was not converted exactly."""

    stubs: list[stub_pb2.Stub]
    unmapped: list[Unmapped]


@dataclasses.dataclass(frozen=True)
class MalformedJson:
    """A mapping file `load_directory` could not parse; `convert` reports it as an Unmapped entry."""

    error: str


def load_directory(root: Path) -> tuple[list[tuple[str, Any]], dict[str, bytes]]:
    """The mapping files and body files of a WireMock root directory, for `convert`.

    `root` may be WireMock's root dir (`mappings/**/*.json` and `__files/**`), a directory that holds mapping
    files itself (its `__files` subdirectory, or the sibling `__files` of a directory named `mappings`, holds the
    bodies), or a single mapping file. Mapping files come in path order, labelled by their path relative to the
    mappings directory; a file that is not JSON is returned as a `MalformedJson` value, which `convert` reports,
    so no file is skipped silently. Body files are keyed by their path relative to `__files`, with `/` separators.
    Raises FileNotFoundError when `root` does not exist."""
    paths, files = root_files(root)
    return [(label, _read_json(path)) for label, path in paths], files


def root_files(root: Path) -> tuple[list[tuple[str, Path]], dict[str, bytes]]:
    """`load_directory`'s files before parsing: (label, path) of each mapping file, and the body files' bytes."""
    root = Path(root)
    if root.is_file():
        sibling = root.parent.parent / "__files" if root.parent.name == "mappings" else None
        return [(root.name, root)], _body_files(sibling)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such file or directory")
    files_dir: Path | None
    if (root / "mappings").is_dir():
        mappings_dir, files_dir = root / "mappings", root / "__files"
    else:
        mappings_dir = root
        files_dir = root / "__files"
        if not files_dir.is_dir() and root.name == "mappings":
            files_dir = root.parent / "__files"
    mappings: list[tuple[str, Path]] = []
    for path in sorted(mappings_dir.rglob("*.json")):
        if path.is_file() and not (files_dir is not None and path.is_relative_to(files_dir)):
            mappings.append((path.relative_to(mappings_dir).as_posix(), path))
    return mappings, _body_files(files_dir)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        return MalformedJson(str(exc))


def _body_files(files_dir: Path | None) -> dict[str, bytes]:
    if files_dir is None or not files_dir.is_dir():
        return {}
    return {p.relative_to(files_dir).as_posix(): p.read_bytes() for p in sorted(files_dir.rglob("*")) if p.is_file()}


def convert(mappings: Sequence[tuple[str, Any]], files: Mapping[str, bytes]) -> Conversion:
    """Converts WireMock stub mappings into Stub messages that pass the daemon's validation.

    `mappings` holds (source label, parsed JSON of a mapping file: one mapping or `{"mappings": [...]}`) pairs;
    `files` holds the `__files` directory's contents by relative path, for `bodyFileName`. Every part of a mapping
    that has no exact equivalent is listed in `Conversion.unmapped`; nothing is dropped silently. A request
    condition that cannot be expressed is left out (the stub then matches more than the mapping did), except the
    URL: a mapping whose URL cannot be converted is not converted at all, nor is one whose stub the daemon would
    refuse.

    Rules:
    - Priority: WireMock tries priority 1 first (default 5), simulatord the highest first, newest first among
      equals. A stub gets `2 * (5 - wiremock_priority)`, plus 1 when it requires a scenario state other than
      "Started" (see below), so the order of matching between different WireMock priorities is kept. Among equal
      priorities the later mapping wins, as the last one WireMock loaded does; keep the order of `mappings`.
    - Scenarios: `scenarioName` becomes the stub's `scenario`, `newScenarioState` its `next_state` (also
      "Started", a state no other stub requires). simulatord's scenarios start in the empty state, and an empty
      `required_state` means "any state", so a stub requiring "Started" requires nothing: in the initial state it
      matches as in WireMock, and the +1 above lets the stubs of later states of the scenario win over it; it is
      reported where it could still answer in a later state that has no stub of its own for the request.
    - `url` is matched as its path plus each query parameter's value; WireMock compares the whole path and
      query string, so it also refuses other parameters or another order. `urlPattern` without a query part is
      matched on the path only. Regular expressions run on RE2, anchored to the whole value as Java's
      `matches()`; ones RE2 cannot run are reported.
    - Header and query conditions hold for any one value of the field, as in WireMock; `and` and negations
      (`not`, `doesNotMatch`, `doesNotContain`) are checked per condition, which only differs for fields sent
      several times.
    - A proxy mapping (`proxyBaseUrl`) becomes a transparent proxy response (`Proxy`, PROXY_MODE_TRANSPARENT)
      with `additionalProxyRequestHeaders` as its request headers and the mapping's delays; the upstream's status,
      headers and body are sent, so the mapping's own are not set (WireMock ignores its status, body and fault
      too, but adds its headers: reported). `proxyUrlPrefixToRemove` and `removeProxyRequestHeaders` have no
      equivalent and are reported.
    - Response bodies are sent as the same bytes, as `body_bytes` (`jsonBody` compact, keys in order, as
      Jackson writes it); a `body` becomes `body_text` only when a Content-Type header is set, so no content
      type WireMock would not send is added. `name` (else `id`) becomes the stub's `description`; the daemon
      names the stubs.
    """
    unmapped: list[Unmapped] = []
    items = list(_mappings(mappings, unmapped))
    scenarios = _scenario_states(items)
    bodies = {_file_key(name): data for name, data in files.items()}
    stubs = []
    for label, mapping in items:
        converter = _Converter(label, bodies, scenarios, unmapped)
        built = converter.stub(mapping)
        if built is not None and converter.valid(built):
            stubs.append(built)
    return Conversion(stubs, unmapped)


def _mappings(mappings: Sequence[tuple[str, Any]], unmapped: list[Unmapped]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Each mapping object with its label; what is not a mapping is reported."""
    for source, document in mappings:
        if isinstance(document, MalformedJson):
            reason = f"the file is not JSON ({document.error}); WireMock refuses to start with it. Nothing converted"
            unmapped.append(Unmapped(source, "(file)", reason))
            continue
        if isinstance(document, dict) and isinstance(document.get("mappings"), list):
            for key in document:
                if key not in ("mappings", "meta"):
                    unmapped.append(Unmapped(source, key, "not a field of a WireMock mappings file; ignored"))
            for i, item in enumerate(document["mappings"]):
                label = _label(item, f"{source}[{i}]")
                if isinstance(item, dict):
                    yield label, item
                else:
                    unmapped.append(Unmapped(label, "(mapping)", "not a JSON object; nothing converted"))
        elif isinstance(document, dict) and isinstance(document.get("messageMappings"), list):
            reason = "WireMock message (WebSocket) mappings are not converted"
            unmapped.append(Unmapped(source, "messageMappings", reason))
        elif isinstance(document, dict):
            yield _label(document, source), document
        else:
            unmapped.append(Unmapped(source, "(file)", 'not a mapping object nor {"mappings": [...]}; ignored'))


def _label(mapping: Any, fallback: str) -> str:
    if isinstance(mapping, dict):
        for key in ("name", "id", "uuid"):
            value = mapping.get(key)
            if isinstance(value, str) and value:
                return value
    return fallback


def _scenario_states(items: list[tuple[str, dict[str, Any]]]) -> dict[str, set[str]]:
    """Per scenario, the states its mappings move it to other than "Started"."""
    out: dict[str, set[str]] = {}
    for _, mapping in items:
        name = mapping.get("scenarioName")
        if isinstance(name, str):
            states = out.setdefault(name, set())
            new = mapping.get("newScenarioState")
            if isinstance(new, str) and new != STARTED:
                states.add(new)
    return out


def _file_key(name: str) -> str:
    return PurePosixPath(name.replace("\\", "/").lstrip("/")).as_posix()


# --- building blocks ---------------------------------------------------------------------------------


def _literal(text: str) -> str:
    """`text` as an RE2 pattern matching just it."""
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in text)


def _anchored(regex: str) -> str:
    """A Java `matches()` regex (the whole value, `.` matching newlines too) as a search pattern."""
    return f"^(?s:{regex})$"


def _value(obj: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(obj, out)
    return out


def _millis(ms: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(ms * 1_000_000))
    return out


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _merge(into: stub_pb2.RequestMatcher, part: stub_pb2.RequestMatcher) -> None:
    """ANDs a condition fragment into a matcher."""
    into.query.extend(part.query)
    into.headers.extend(part.headers)
    into.body.extend(part.body)
    into.all_of.extend(part.all_of)
    into.none_of.extend(part.none_of)
    if part.any_of:
        if into.any_of:  # two alternatives must both hold: the second goes one level down
            into.all_of.append(stub_pb2.RequestMatcher(any_of=part.any_of))
        else:
            into.any_of.extend(part.any_of)


def _compact(value: Any) -> bytes:
    """JSON as Jackson writes a `jsonBody`: compact, UTF-8, keys in order."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _nonempty_array(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value)
    if isinstance(value, dict):
        return any(_nonempty_array(v) for v in value.values())
    return False


def _strip_placeholders(value: Any) -> tuple[Any, bool]:
    """`value` without JsonUnit placeholders (`${json-unit.any-string}` &c.), and whether it had any."""
    if isinstance(value, str) and _JSON_UNIT.fullmatch(value):
        return None, True
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        found = False
        for k, v in value.items():
            stripped, had = _strip_placeholders(v)
            found = found or had
            if not (had and stripped is None):
                out[k] = stripped
        return out, found
    if isinstance(value, list):
        items: list[Any] = []
        found = False
        for v in value:
            stripped, had = _strip_placeholders(v)
            found = found or had
            if not (had and stripped is None):
                items.append(stripped)
        return items, found
    return value, False


def _jsonpath(expression: str) -> str:
    """A Jayway JsonPath as WireMock compiles it: a path without `$` is taken from the root."""
    if expression.startswith(("$", "@")):
        return expression
    return "$" + expression if expression.startswith("[") else "$." + expression


@dataclasses.dataclass(frozen=True)
class _Target:
    """What a WireMock string matcher is applied to: a header, query parameter or cookie (`name`), the body, or
    the nodes a JSONPath selects (`name` is the expression)."""

    kind: str  # "headers", "query", "cookie", "body" or "node"
    name: str = ""

    def leaf(self, matcher: stub_pb2.StringMatcher, regex: str) -> stub_pb2.RequestMatcher:
        """The condition "the value satisfies `matcher`"; `regex` is the WireMock regex when it is one."""
        kind = matcher.WhichOneof("kind")
        if self.kind in ("headers", "query"):
            return self._field(stub_pb2.FieldMatcher(name=self.name, value=matcher))
        if self.kind == "node":
            json_path = stub_pb2.JsonPathMatcher(expression=self.name, value=matcher)
            return stub_pb2.RequestMatcher(body=[stub_pb2.BodyMatcher(json_path=json_path)])
        if self.kind == "cookie":
            if kind == "equals":
                value = _literal(matcher.equals)
                value = f"(?i:{value})" if matcher.ignore_case else value
            elif kind == "contains":
                value = f"[^;]*{_literal(matcher.contains)}[^;]*"
            else:
                value = f"(?s:{regex})"
            return self._cookie(rf"(?:^|;)\s*{_literal(self.name)}={value}\s*(?:;|$)")
        if kind == "equals" and matcher.ignore_case:
            body = stub_pb2.BodyMatcher(regex=f"^(?i:{_literal(matcher.equals)})$")
        elif kind == "equals":
            body = stub_pb2.BodyMatcher(equals=matcher.equals.encode())
        elif kind == "contains":
            body = stub_pb2.BodyMatcher(contains=matcher.contains)
        else:
            body = stub_pb2.BodyMatcher(regex=matcher.regex)
        return stub_pb2.RequestMatcher(body=[body])

    def absent(self) -> stub_pb2.RequestMatcher:
        if self.kind in ("headers", "query"):
            return self._field(stub_pb2.FieldMatcher(name=self.name, absent=True))
        if self.kind == "body":  # WireMock reads an empty body as no body
            return stub_pb2.RequestMatcher(body=[stub_pb2.BodyMatcher(equals=b"")])
        return stub_pb2.RequestMatcher(none_of=[self.present()])

    def present(self) -> stub_pb2.RequestMatcher:
        if self.kind == "cookie":
            return self._cookie(rf"(?:^|;)\s*{_literal(self.name)}=")
        if self.kind == "node":
            json_path = stub_pb2.JsonPathMatcher(expression=self.name)
            return stub_pb2.RequestMatcher(body=[stub_pb2.BodyMatcher(json_path=json_path)])
        return self._field(stub_pb2.FieldMatcher(name=self.name))

    def _field(self, field: stub_pb2.FieldMatcher) -> stub_pb2.RequestMatcher:
        out = stub_pb2.RequestMatcher()
        (out.headers if self.kind == "headers" else out.query).append(field)
        return out

    @staticmethod
    def _cookie(regex: str) -> stub_pb2.RequestMatcher:
        field = stub_pb2.FieldMatcher(name="cookie", value=stub_pb2.StringMatcher(regex=regex))
        return stub_pb2.RequestMatcher(headers=[field])


class _Converter:
    """Converts one mapping, reporting what it cannot convert exactly."""

    def __init__(
        self, label: str, files: Mapping[str, bytes], scenarios: Mapping[str, set[str]], unmapped: list[Unmapped]
    ) -> None:
        self.label = label
        self.files = files
        self.scenarios = scenarios
        self.unmapped = unmapped

    def gap(self, field: str, reason: str) -> None:
        self.unmapped.append(Unmapped(self.label, field, reason))

    # --- the mapping ---------------------------------------------------------------------------

    def stub(self, mapping: dict[str, Any]) -> stub_pb2.Stub | None:
        request = self.request(mapping.get("request"))
        response = self.response(mapping.get("response"))
        if request is None or response is None:
            return None
        out = stub_pb2.Stub(request=request, responses=[response])
        for key in ("name", "id", "uuid"):
            value = mapping.get(key)
            if isinstance(value, str) and value:
                out.description = value
                break
        named_state = self.scenario(mapping, out)
        out.priority = self.priority(mapping.get("priority"), named_state)
        for key in ("postServeActions", "serveEventListeners"):
            if mapping.get(key):
                self.gap(
                    key,
                    "WireMock runs serve event listeners (webhooks and other extensions) after the answer; they are "
                    "not converted (simulatord callbacks use their own request and template format)",
                )
        if mapping.get("persistent"):
            self.gap("persistent", "WireMock keeps persistent mappings across resets; a session's stubs stay anyway")
        if mapping.get("metadata"):
            self.gap("metadata", "WireMock keeps metadata for finding and removing mappings; not kept")
        for key in mapping:
            if key not in _MAPPING_FIELDS:
                self.gap(key, "not a field of a WireMock 3 mapping; ignored")
        return out

    def valid(self, stub: stub_pb2.Stub) -> bool:
        """Whether the daemon accepts the stub; otherwise every violation is reported and it is left out."""
        errors = SpecErrors()
        compile_stub(stub, "tenants/wiremock/sessions/import", "", "stub", "stub_id", errors, 0.0)
        for violation in errors.violations:
            self.gap(
                "(mapping)",
                f"the converted stub is not valid ({violation.field}: {violation.description}); not converted",
            )
        return not errors.violations

    def priority(self, value: Any, named_state: bool) -> int:
        wiremock = DEFAULT_PRIORITY
        if isinstance(value, int) and not isinstance(value, bool):
            wiremock = value
        elif value is not None:
            self.gap("priority", f"must be an integer, got {value!r}; the default ({DEFAULT_PRIORITY}) was used")
        ours = 2 * (DEFAULT_PRIORITY - wiremock) + int(named_state)
        if not _INT32[0] <= ours <= _INT32[1]:
            ours = min(max(ours, _INT32[0]), _INT32[1])
            self.gap("priority", f"{wiremock} is out of range; the stub got priority {ours}")
        return ours

    def scenario(self, mapping: dict[str, Any], out: stub_pb2.Stub) -> bool:
        """Sets the stub's scenario fields; True when it requires a state other than "Started"."""
        name = mapping.get("scenarioName")
        required, new = mapping.get("requiredScenarioState"), mapping.get("newScenarioState")
        if name is None:
            for key, value in (("requiredScenarioState", required), ("newScenarioState", new)):
                if value is not None:
                    self.gap(key, "WireMock ignores scenario states without a scenarioName; ignored")
            return False
        if not isinstance(name, str) or not name:
            self.gap("scenarioName", "must be a non-empty string; the scenario was ignored")
            return False
        scenario = name
        if len(name) > MAX_SCENARIO_NAME or not name.isprintable():
            scenario = "".join(c if c.isprintable() else "_" for c in name)[:MAX_SCENARIO_NAME]
            limit = f"at most {MAX_SCENARIO_NAME} printable characters"
            self.gap("scenarioName", f"simulatord scenario names are {limit}; renamed {scenario!r}")
        out.scenario = scenario
        if isinstance(new, str) and new:
            out.next_state = new
        elif new is not None:
            self.gap("newScenarioState", "must be a non-empty string; ignored")
        if required is None:
            return False
        if not isinstance(required, str) or not required:
            self.gap("requiredScenarioState", "must be a non-empty string; ignored")
            return False
        if required != STARTED:
            out.required_state = required
            return True
        later = sorted(self.scenarios.get(name, ()))
        if later:
            self.gap(
                "requiredScenarioState",
                f'WireMock matches this mapping only while scenario {name!r} is in its initial state "Started"; '
                "simulatord's initial state is empty and an empty required state means any state, so the stub "
                f"requires none: in the states {', '.join(map(repr, later))} the stubs of those states still win "
                "(they get priority +1), but a request only this stub matches is answered by it there too",
            )
        return False

    # --- the request ---------------------------------------------------------------------------

    def request(self, request: Any) -> stub_pb2.RequestMatcher | None:
        out = stub_pb2.RequestMatcher()
        if request is None:  # WireMock: any request
            return out
        if not isinstance(request, dict):
            self.gap("request", "not a JSON object; the mapping was not converted")
            return None
        if not self.method(request.get("method"), out) or not self.url(request, out):
            return None
        headers = request.get("headers")
        basic = request.get("basicAuthCredentials", request.get("basicAuth"))
        if isinstance(headers, dict):
            for name, pattern in headers.items():
                at = f"request.headers.{name}"
                if basic is not None and name == "Authorization":
                    self.gap(at, "replaced by basicAuthCredentials, as WireMock does; ignored")
                    continue
                self.add(out, self.field_condition(pattern, _Target("headers", name), at))
        elif headers is not None:
            self.gap("request.headers", "not a JSON object; ignored")
        if basic is not None:
            self.basic_auth(basic, out)
        query = request.get("queryParameters")
        if isinstance(query, dict):
            for name, pattern in query.items():
                at = f"request.queryParameters.{name}"
                self.add(out, self.field_condition(pattern, _Target("query", name), at))
        elif query is not None:
            self.gap("request.queryParameters", "not a JSON object; ignored")
        cookies = request.get("cookies")
        if isinstance(cookies, dict):
            for name, pattern in cookies.items():
                self.cookie(name, pattern, out)
        elif cookies is not None:
            self.gap("request.cookies", "not a JSON object; ignored")
        bodies = request.get("bodyPatterns")
        if isinstance(bodies, list):
            for i, pattern in enumerate(bodies):
                self.add(out, self.condition(pattern, _Target("body"), f"request.bodyPatterns[{i}]"))
        elif bodies is not None:
            self.gap("request.bodyPatterns", "not a JSON array; ignored")
        for key, what in _IGNORED_REQUEST_FIELDS.items():
            if request.get(key) is not None:
                self.gap(f"request.{key}", f"WireMock {what}; left out, so the stub matches regardless")
        for key in request:
            if key not in _REQUEST_FIELDS:
                self.gap(f"request.{key}", "not a field of a WireMock request pattern; ignored")
        return out

    @staticmethod
    def add(into: stub_pb2.RequestMatcher, part: stub_pb2.RequestMatcher | None) -> None:
        if part is not None:
            _merge(into, part)

    def method(self, method: Any, out: stub_pb2.RequestMatcher) -> bool:
        if method is None or method == "ANY":
            return True
        if isinstance(method, str) and method and method.replace("-", "").isalpha():
            out.method = method.upper()
            return True
        kind, names = next(iter(method.items())) if isinstance(method, dict) and len(method) == 1 else ("", None)
        if (
            kind in ("oneOf", "noneOf")
            and isinstance(names, list)
            and names
            and all(isinstance(n, str) and n.replace("-", "").isalpha() for n in names)
        ):
            alternatives = [stub_pb2.RequestMatcher(method=n.upper()) for n in names]
            if kind == "oneOf":
                out.any_of.extend(alternatives)
            else:
                out.none_of.extend(alternatives)
            return True
        self.gap("request.method", f"{method!r} is not an HTTP method; the mapping was not converted")
        return False

    def url(self, request: dict[str, Any], out: stub_pb2.RequestMatcher) -> bool:
        present = [key for key in _URL_FIELDS if request.get(key) is not None]
        for extra in present[1:]:
            self.gap(f"request.{extra}", f"WireMock uses only request.{present[0]} when several are set; ignored")
        if not present:
            if request.get("pathParameters"):
                self.gap("request.pathParameters", "WireMock applies them to a urlPathTemplate only; ignored")
            return True
        key = present[0]
        value, at = request[key], f"request.{key}"
        if not isinstance(value, str):
            self.gap(at, "must be a string; the mapping was not converted")
            return False
        if key != "urlPathTemplate" and request.get("pathParameters"):
            self.gap("request.pathParameters", "WireMock applies them to a urlPathTemplate only; ignored")
        if key == "url":
            path, _, query = value.partition("?")
            out.path.exact = unquote(path)
            for name, item in parse_qsl(query, keep_blank_values=True):
                matcher = stub_pb2.StringMatcher(equals=item)
                out.query.append(stub_pb2.FieldMatcher(name=name, value=matcher))
            if query and not parse_qsl(query, keep_blank_values=True):
                self.gap(at, f"the query {query!r} has no name=value parameters; it was not matched")
        elif key == "urlPath":
            out.path.exact = unquote(value)
        elif key == "urlPathPattern":
            if not self.regex_ok(value, at):
                self.gap(at, "the mapping was not converted, rather than matching every path")
                return False
            out.path.regex = value
        elif key == "urlPattern":
            return self.url_pattern(value, at, out)
        else:
            return self.path_template(value, request.get("pathParameters"), at, out)
        return True

    def url_pattern(self, value: str, at: str, out: stub_pb2.RequestMatcher) -> bool:
        split = _split_query(value)
        if split is None:
            self.gap(
                at,
                "WireMock matches this regular expression against the path and query string together; its query "
                "part cannot be separated from the path, so the mapping was not converted",
            )
            return False
        path, query = split
        if not self.regex_ok(path, at):
            self.gap(at, "the mapping was not converted, rather than matching every path")
            return False
        out.path.regex = path
        if query is not None:
            self.gap(
                at,
                f"WireMock matches the path and the query string together; simulatord has no query-string regex, so "
                f"only the path part {path!r} is matched and the query part {query!r} is left out",
            )
        return True

    def path_template(self, template: str, params: Any, at: str, out: stub_pb2.RequestMatcher) -> bool:
        parts = _TEMPLATE_PART.split(template)
        names = [p[1:-1].replace(".", "").replace(";", "").replace("*", "") for p in parts[1::2] if p != "**"]
        if params is not None and not isinstance(params, dict):
            self.gap("request.pathParameters", "not a JSON object; ignored")
            params = None
        constraints: dict[str, str] = {}
        for name, pattern in (params or {}).items():
            where = f"request.pathParameters.{name}"
            if name not in names:
                self.gap(where, f"{template!r} has no variable {name!r}; WireMock never matches it; left out")
                continue
            segment = self.segment_regex(pattern, where)
            if segment is not None:
                constraints[name] = segment
        simple = "**" not in parts[1::2] and template.startswith("/") and len(set(names)) == len(names)
        if simple and not constraints and all(_NAME.fullmatch(n) for n in names):
            literals = parts[0::2]
            out.path.template = "".join(
                text + (f"{{{names[i]}}}" if i < len(names) else "") for i, text in enumerate(literals)
            )
            if not any("{" in t or "}" in t for t in literals):
                return True
        regex = []
        variables = iter(names)
        for i, part in enumerate(parts):
            if i % 2 == 0:
                regex.append(_literal(part))
            elif part == "**":
                regex.append(".*")
            else:
                regex.append(constraints.get(next(variables), "[^/]+"))
        out.path.regex = "".join(regex)
        if not self.regex_ok(out.path.regex, at):
            self.gap(at, "the mapping was not converted, rather than matching every path")
            return False
        return True

    def segment_regex(self, pattern: Any, at: str) -> str | None:
        """A path parameter's condition as the regex of its segment; None (reported) when there is none."""
        if isinstance(pattern, dict) and isinstance(pattern.get("equalTo"), str):
            literal = _literal(pattern["equalTo"])
            return f"(?i:{literal})" if pattern.get("caseInsensitive") else literal
        if isinstance(pattern, dict) and isinstance(pattern.get("contains"), str):
            return f"[^/]*{_literal(pattern['contains'])}[^/]*"
        if isinstance(pattern, dict) and isinstance(pattern.get("matches"), str):
            regex = f"(?s:{pattern['matches']})"
            return regex if self.regex_ok(regex, at) else None
        self.gap(at, "only equalTo, contains and matches path parameters are converted; left out")
        return None

    def basic_auth(self, basic: Any, out: stub_pb2.RequestMatcher) -> None:
        at = "request.basicAuthCredentials"
        if not (isinstance(basic, dict) and isinstance(basic.get("username"), str)):
            self.gap(at, "needs a username and a password; left out")
            return
        password = basic.get("password")
        if not isinstance(password, str):
            self.gap(at, "needs a username and a password; left out")
            return
        token = base64.b64encode(f"{basic['username']}:{password}".encode()).decode()
        # As WireMock: the scheme's name in any case, the credentials exactly.
        matcher = stub_pb2.StringMatcher(regex=f"^(?i:Basic) {_literal(token)}$")
        out.headers.append(stub_pb2.FieldMatcher(name="Authorization", value=matcher))

    def cookie(self, name: str, pattern: Any, out: stub_pb2.RequestMatcher) -> None:
        at = f"request.cookies.{name}"
        target = _Target("cookie", name)
        condition = self.condition(pattern, target, at)
        if condition is None:
            return
        if not (isinstance(pattern, dict) and "absent" in pattern):  # WireMock: a missing cookie never matches
            _merge(condition, target.present())
        _merge(out, condition)
        self.gap(
            at,
            "WireMock parses the cookies; simulatord has no cookie matcher, so this is matched as a regular "
            f"expression on the Cookie header (the {name}= pair)",
        )

    # --- string conditions ---------------------------------------------------------------------

    def field_condition(self, pattern: Any, target: _Target, at: str) -> stub_pb2.RequestMatcher | None:
        """A header or query parameter condition, which may also be a multi-value one (`includes`, `hasExactly`)."""
        if isinstance(pattern, dict) and ("includes" in pattern or "hasExactly" in pattern):
            kind = "hasExactly" if "hasExactly" in pattern else "includes"
            items = pattern[kind]
            if not isinstance(items, list):
                self.gap(f"{at}.{kind}", "not a JSON array; left out")
                return None
            out = target.present()
            for i, item in enumerate(items):
                self.add(out, self.condition(item, target, f"{at}.{kind}[{i}]"))
            if kind == "hasExactly":
                self.gap(
                    f"{at}.hasExactly",
                    "WireMock also requires exactly as many values as matchers; simulatord checks each matcher "
                    "against some value only",
                )
            return out
        return self.condition(pattern, target, at)

    def condition(self, pattern: Any, target: _Target, at: str) -> stub_pb2.RequestMatcher | None:
        """The condition a WireMock matcher puts on `target` as a matcher fragment; None (reported) when it has none."""
        if not isinstance(pattern, dict):
            self.gap(at, "not a WireMock matcher object; left out")
            return None
        if "and" in pattern or "or" in pattern:
            kind = "and" if "and" in pattern else "or"
            items = pattern[kind]
            if not isinstance(items, list) or not items:
                self.gap(f"{at}.{kind}", "must be a non-empty JSON array; left out")
                return None
            parts = [self.condition(item, target, f"{at}.{kind}[{i}]") for i, item in enumerate(items)]
            if kind == "and":  # the parts that converted still all hold
                out = stub_pb2.RequestMatcher()
                for part in parts:
                    self.add(out, part)
                return out
            if any(part is None for part in parts):
                self.gap(f"{at}.or", "left out as a whole, since an alternative could not be converted")
                return None
            return stub_pb2.RequestMatcher(any_of=[p for p in parts if p is not None])
        if "not" in pattern:
            inner = self.condition(pattern["not"], target, f"{at}.not")
            if inner is None:
                self.gap(f"{at}.not", "left out, since the negated matcher could not be converted")
                return None
            return stub_pb2.RequestMatcher(none_of=[inner])
        if "absent" in pattern:  # WireMock reads any value of `absent`, even false, as "absent"
            return target.absent()
        if "anything" in pattern:
            return stub_pb2.RequestMatcher()
        for key, negated in (("equalTo", False), ("contains", False), ("doesNotContain", True)):
            if key in pattern:
                text = pattern[key]
                if not isinstance(text, str):
                    self.gap(f"{at}.{key}", "must be a string; left out")
                    return None
                matcher = stub_pb2.StringMatcher(ignore_case=bool(pattern.get("caseInsensitive")) and key == "equalTo")
                setattr(matcher, "equals" if key == "equalTo" else "contains", text)
                leaf = target.leaf(matcher, "")
                return stub_pb2.RequestMatcher(none_of=[leaf]) if negated else leaf
        for key in ("matches", "doesNotMatch"):
            if key in pattern:
                regex = pattern[key]
                if not isinstance(regex, str):
                    self.gap(f"{at}.{key}", "must be a string; left out")
                    return None
                anchored = _anchored(regex)
                if not self.regex_ok(anchored, f"{at}.{key}"):
                    return None
                leaf = target.leaf(stub_pb2.StringMatcher(regex=anchored), regex)
                return stub_pb2.RequestMatcher(none_of=[leaf]) if key == "doesNotMatch" else leaf
        if "equalToJson" in pattern:
            return self.equal_to_json(pattern, target, f"{at}.equalToJson")
        if "matchesJsonPath" in pattern:
            return self.matches_json_path(pattern["matchesJsonPath"], target, f"{at}.matchesJsonPath")
        if "binaryEqualTo" in pattern:
            return self.binary_equal_to(pattern["binaryEqualTo"], target, f"{at}.binaryEqualTo")
        for key, what in _UNSUPPORTED_MATCHERS.items():
            if key in pattern:
                self.gap(f"{at}.{key}", f"WireMock {what}; simulatord has no such matcher, so it was left out")
                return None
        self.gap(at, f"no matcher simulatord knows in {sorted(pattern)}; left out")
        return None

    def regex_ok(self, regex: str, at: str) -> bool:
        try:
            compile_user(regex)
        except PatternError as exc:
            self.gap(at, f"simulatord runs regular expressions on RE2, which cannot run {regex!r}: {exc}; left out")
            return False
        return True

    def equal_to_json(self, pattern: dict[str, Any], target: _Target, at: str) -> stub_pb2.RequestMatcher | None:
        expected = pattern["equalToJson"]
        if isinstance(expected, str):
            try:
                expected = json.loads(expected)
            except ValueError as exc:
                self.gap(at, f"not JSON ({exc}); left out")
                return None
        ignore_extra, ignore_order = bool(pattern.get("ignoreExtraElements")), bool(pattern.get("ignoreArrayOrder"))
        if target.kind == "node":
            if ignore_extra or ignore_order:
                self.gap(at, "ignoreExtraElements and ignoreArrayOrder have no equivalent on a JSONPath; left out")
                return None
            json_path = stub_pb2.JsonPathMatcher(expression=target.name, equals=_value(expected))
            return stub_pb2.RequestMatcher(body=[stub_pb2.BodyMatcher(json_path=json_path)])
        if target.kind != "body":
            self.gap(at, "a JSON comparison of a header, parameter or cookie has no simulatord equivalent; left out")
            return None
        expected, placeholders = _strip_placeholders(expected)
        arrays = _nonempty_array(expected)
        subset = placeholders or ignore_extra or (ignore_order and arrays)
        if placeholders:
            self.gap(
                at,
                "JsonUnit placeholders (${json-unit...}) have no simulatord equivalent: the body must contain the "
                "rest of this JSON (a JSON subset: other members and array items are allowed)",
            )
        elif ignore_extra and arrays:
            order = (
                "in any order, as ignoreArrayOrder asks"
                if ignore_order
                else "anywhere in the array, where WireMock compares array items by position"
            )
            self.gap(at, f"matched as a JSON subset: each listed array item may appear {order}")
        elif ignore_order and arrays:
            self.gap(
                at,
                "ignoreArrayOrder has no exact equivalent: matched as a JSON subset, which also accepts extra object "
                "members and array items",
            )
        body = (
            stub_pb2.BodyMatcher(json_subset=_value(expected))
            if subset
            else stub_pb2.BodyMatcher(json_equals=_value(expected))
        )
        return stub_pb2.RequestMatcher(body=[body])

    def matches_json_path(self, spec: Any, target: _Target, at: str) -> stub_pb2.RequestMatcher | None:
        if target.kind != "body":
            self.gap(at, "a JSONPath on a header, parameter, cookie or JSONPath result is not converted; left out")
            return None
        sub: dict[str, Any] | None = None
        if isinstance(spec, dict):
            expression = spec.get("expression")
            sub = {k: v for k, v in spec.items() if k != "expression"} or None
        else:
            expression = spec
        if not isinstance(expression, str) or not expression:
            self.gap(at, "needs an expression; left out")
            return None
        expression = _jsonpath(expression)
        import jsonpath  # as the daemon does: only mappings with a JSONPath pay for importing it

        try:
            json_paths().compile(expression)
        except jsonpath.JSONPathError as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.gap(
                at,
                f"WireMock evaluates Jayway JsonPath; {expression!r} is not RFC 9535 JSONPath, which simulatord "
                f"evaluates ({first}); left out",
            )
            return None
        if sub is None:
            json_path = stub_pb2.JsonPathMatcher(expression=expression)
            return stub_pb2.RequestMatcher(body=[stub_pb2.BodyMatcher(json_path=json_path)])
        return self.condition(sub, _Target("node", expression), at)

    def binary_equal_to(self, encoded: Any, target: _Target, at: str) -> stub_pb2.RequestMatcher | None:
        if target.kind != "body":
            self.gap(at, "binaryEqualTo only applies to a body; left out")
            return None
        try:
            data = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else None
        except binascii.Error:
            data = None
        if data is None:
            self.gap(at, "not base64; left out")
            return None
        return stub_pb2.RequestMatcher(body=[stub_pb2.BodyMatcher(equals=data)])

    # --- the response --------------------------------------------------------------------------

    def response(self, response: Any) -> stub_pb2.Response | None:
        out = stub_pb2.Response()
        if response is None:  # WireMock: 200 without a body
            return stub_pb2.Response(status=200)
        if not isinstance(response, dict):
            self.gap("response", "not a JSON object; the mapping was not converted")
            return None
        if response.get("proxyBaseUrl") is not None:
            return self.proxy(response)
        for key in _PROXY_ONLY:
            if response.get(key) is not None:
                self.gap(f"response.{key}", "only applies to proxying (proxyBaseUrl); ignored")
        status = response.get("status")
        if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
            self.gap("response.status", f"{status!r} is not a status code; the mapping was not converted")
            return None
        if status and not 100 <= status <= 599:
            self.gap("response.status", f"{status} is not between 100 and 599; the mapping was not converted")
            return None
        out.status = status or 200
        if response.get("statusMessage") is not None:
            self.gap(
                "response.statusMessage", "WireMock sends its own reason phrase; simulatord sends the standard one"
            )
        headers = self.headers(response.get("headers"))
        body = self.body(response, any(name.lower() == "content-type" for name, _ in headers), out)
        for name, value in headers:
            at = f"response.headers.{name}"
            lowered = name.lower()
            if lowered == "content-length" and value.strip() == str(len(body)):
                continue  # the daemon sends the same
            if lowered in FRAMING_HEADERS:
                self.gap(at, f"simulatord sets {name} from the body it sends (Content-Length); left out")
                continue
            problem = header_problem(name, value)
            if problem is not None:
                self.gap(at, f"cannot be sent: {problem}; left out")
                continue
            out.headers.append(stub_pb2.Header(name=name, value=value))
        self.timing(response, out, len(body))
        self.unknown_fields(response)
        return self.transformers(response, out)

    def proxy(self, response: dict[str, Any]) -> stub_pb2.Response | None:
        """A proxy mapping: WireMock forwards the request to `proxyBaseUrl` followed by the request's path and query,
        and returns the upstream's answer; a transparent simulatord proxy does the same."""
        upstream = response["proxyBaseUrl"]
        if not isinstance(upstream, str) or not upstream:
            self.gap("response.proxyBaseUrl", f"{upstream!r} is not a URL; the mapping was not converted")
            return None
        out = stub_pb2.Response(proxy=stub_pb2.Proxy(upstream=upstream, mode=stub_pb2.PROXY_MODE_TRANSPARENT))
        self.proxy_request_headers(response.get("additionalProxyRequestHeaders"), out.proxy)
        if response.get("proxyUrlPrefixToRemove") is not None:
            self.gap(
                "response.proxyUrlPrefixToRemove",
                "WireMock removes this prefix from the request's path before forwarding it; simulatord forwards the "
                "whole path below the session's base URL, so the upstream gets the path with the prefix",
            )
        if response.get("removeProxyRequestHeaders") is not None:
            self.gap(
                "response.removeProxyRequestHeaders",
                "WireMock does not forward these request headers; simulatord forwards every header of the request "
                "but the hop-by-hop ones and Host, these included",
            )
        # WireMock ignores these on a proxy mapping, as the daemon must (it refuses a status, headers or a body
        # beside a proxy); reported all the same, since whoever wrote them into the mapping expected an effect.
        for key, what in _IGNORED_BY_PROXY.items():
            if response.get(key) is not None:
                reason = f"WireMock sends the upstream's {what} on a proxy mapping, as simulatord does; ignored"
                self.gap(f"response.{key}", reason)
        if response.get("headers") is not None:
            self.gap(
                "response.headers",
                "WireMock adds these headers to the upstream's answer; a simulatord proxy sends the upstream's "
                "headers only; left out",
            )
        if response.get("chunkedDribbleDelay") is not None:
            self.gap(
                "response.chunkedDribbleDelay",
                "WireMock dribbles the upstream's body; a simulatord proxy sends it as it arrives; ignored",
            )
        # WireMock waits after the upstream answered, simulatord before forwarding: the client sees the same
        # latency (the upstream's plus the delay), so this is not reported.
        self.delays(response, out)
        self.unknown_fields(response)
        return self.transformers(response, out, proxied=True)

    def proxy_request_headers(self, headers: Any, out: stub_pb2.Proxy) -> None:
        """`additionalProxyRequestHeaders`: set on the forwarded request, replacing the client's (as WireMock's
        `setHeader` does); a header name with several values sends the first, as WireMock does."""
        at = "response.additionalProxyRequestHeaders"
        if headers is None:
            return
        if not isinstance(headers, dict):
            self.gap(at, "not a JSON object; ignored")
            return
        for name, value in headers.items():
            first = value[0] if isinstance(value, list) and value else value
            if not isinstance(first, str):
                self.gap(f"{at}.{name}", f"{value!r} is not a header value; left out")
                continue
            first = first.strip(" \t")
            problem = header_problem(name, first)
            if problem is None and name.lower() in _SET_BY_DAEMON:
                problem = f"{name} is set by simulatord for the connection to the upstream"
            if problem is not None:
                self.gap(f"{at}.{name}", f"cannot be sent: {problem}; left out")
                continue
            out.request_headers.append(stub_pb2.Header(name=name, value=first))

    def unknown_fields(self, response: dict[str, Any]) -> None:
        for key in response:
            if key not in _RESPONSE_FIELDS:
                self.gap(f"response.{key}", "not a field of a WireMock response definition; ignored")

    def headers(self, headers: Any) -> list[tuple[str, str]]:
        if headers is None:
            return []
        if not isinstance(headers, dict):
            self.gap("response.headers", "not a JSON object; ignored")
            return []
        out = []
        for name, value in headers.items():
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, str):
                    out.append((name, item.strip(" \t")))
                elif isinstance(item, int | float) and not isinstance(item, bool):
                    out.append((name, json.dumps(item)))
                else:
                    self.gap(f"response.headers.{name}", f"{item!r} is not a header value; left out")
        return out

    def body(self, response: dict[str, Any], content_type: bool, out: stub_pb2.Response) -> bytes:
        """Sets the body (WireMock's precedence: bodyFileName, body, jsonBody, base64Body); returns its bytes."""
        given = [key for key in ("bodyFileName", "body", "jsonBody", "base64Body") if response.get(key) is not None]
        for extra in given[1:]:
            self.gap(f"response.{extra}", f"WireMock sends response.{given[0]} when both are set; ignored")
        if not given:
            return b""
        key = given[0]
        value, at = response[key], f"response.{key}"
        if key == "bodyFileName":
            if not isinstance(value, str):
                self.gap(at, "must be a string; the response has no body")
                return b""
            data = self.files.get(_file_key(value))
            if data is None:
                self.gap(at, f"no file {value!r} in __files; the response has no body")
                return b""
            out.body_bytes = data
            return data
        if key == "body":
            if not isinstance(value, str):
                self.gap(at, "must be a string (use jsonBody for JSON); the response has no body")
                return b""
            data = value.encode()
            if content_type:
                out.body_text = value
            else:
                out.body_bytes = data
            return data
        if key == "jsonBody":
            # Bytes, not body_json: a google.protobuf.Value keeps neither the order of keys nor 1.0 apart from 1.
            out.body_bytes = _compact(value)
            return out.body_bytes
        try:
            data = base64.b64decode(value, validate=True) if isinstance(value, str) else None
        except binascii.Error:
            data = None
        if data is None:
            self.gap(at, "not base64; the response has no body")
            return b""
        out.body_bytes = data
        return data

    def timing(self, response: dict[str, Any], out: stub_pb2.Response, body_size: int) -> None:
        self.delays(response, out)
        fault = response.get("fault")
        dribble = response.get("chunkedDribbleDelay")
        if fault is not None:
            self.fault(fault, out)
            if dribble is not None:
                self.gap("response.chunkedDribbleDelay", "the mapping sends a fault instead of a body; ignored")
        elif dribble is not None:
            self.dribble(dribble, out, body_size)

    def delays(self, response: dict[str, Any], out: stub_pb2.Response) -> None:
        """`fixedDelayMilliseconds` as `delay`, `delayDistribution` as `header_delay`."""
        fixed = response.get("fixedDelayMilliseconds")
        if fixed is not None:
            ms = _number(fixed)
            if ms is None or ms < 0:
                self.gap("response.fixedDelayMilliseconds", f"{fixed!r} is not a delay; ignored")
            elif ms:
                out.delay.CopyFrom(_millis(self.capped(ms, "response.fixedDelayMilliseconds")))
        distribution = response.get("delayDistribution")
        if distribution is not None:
            delay = self.delay(distribution, "response.delayDistribution")
            if delay is not None:
                out.header_delay.CopyFrom(delay)

    def capped(self, ms: float, at: str) -> float:
        if ms > _MAX_DELAY_MS:
            self.gap(at, f"simulatord waits at most {MAX_DELAY_SECONDS:g} seconds; {ms:g} ms was cut to that")
            return _MAX_DELAY_MS
        return ms

    def delay(self, spec: Any, at: str) -> stub_pb2.Delay | None:
        if not isinstance(spec, dict):
            self.gap(at, "not a JSON object; ignored")
            return None
        kind = spec.get("type")
        if kind is None:
            kind = "lognormal" if "median" in spec else "uniform" if "lower" in spec else "fixed"
        out = stub_pb2.Delay()
        if kind == "lognormal":
            median, sigma = _number(spec.get("median")), _number(spec.get("sigma"))
            if median is None or sigma is None or median < 0 or sigma < 0:
                self.gap(at, "a lognormal delay needs a median and a sigma, neither negative; ignored")
                return None
            if median == 0:
                return None  # WireMock always draws 0
            if sigma > MAX_SIGMA:
                self.gap(f"{at}.sigma", f"simulatord allows a sigma up to {MAX_SIGMA:g}; {sigma:g} was cut to that")
                sigma = MAX_SIGMA
            out.lognormal.median.CopyFrom(_millis(self.capped(median, f"{at}.median")))
            out.lognormal.sigma = sigma
            cap = spec.get("maxValue")
            if cap is not None:
                cap_ms = _number(cap)
                if cap_ms is None or cap_ms <= 0:
                    self.gap(f"{at}.maxValue", f"{cap!r} is not a delay; ignored")
                else:
                    out.cap.CopyFrom(_millis(self.capped(cap_ms, f"{at}.maxValue")))
                    self.gap(
                        f"{at}.maxValue",
                        "WireMock draws again (up to 10 times) when a delay exceeds maxValue; simulatord cuts the "
                        "delay to it",
                    )
            return out
        if kind == "uniform":
            lower, upper = _number(spec.get("lower")), _number(spec.get("upper"))
            if lower is None or upper is None or not 0 <= lower <= upper:
                self.gap(at, "a uniform delay needs 0 <= lower <= upper; ignored")
                return None
            out.uniform.min.CopyFrom(_millis(self.capped(lower, f"{at}.lower")))
            out.uniform.max.CopyFrom(_millis(self.capped(upper, f"{at}.upper")))
            return out
        if kind == "fixed":
            ms = _number(spec.get("milliseconds"))
            if ms is None or ms < 0:
                self.gap(at, "a fixed delay needs milliseconds, not negative; ignored")
                return None
            out.fixed.CopyFrom(_millis(self.capped(ms, f"{at}.milliseconds")))
            return out
        self.gap(at, f"unknown delay distribution {kind!r}; ignored")
        return None

    def dribble(self, spec: Any, out: stub_pb2.Response, body_size: int) -> None:
        at = "response.chunkedDribbleDelay"
        chunks = spec.get("numberOfChunks") if isinstance(spec, dict) else None
        total = _number(spec.get("totalDuration")) if isinstance(spec, dict) else None
        if not isinstance(chunks, int) or isinstance(chunks, bool) or chunks < 1 or total is None or total < 0:
            self.gap(at, "needs numberOfChunks (at least 1) and totalDuration (ms); ignored")
            return
        if total == 0:
            return  # the body goes out at once, as in WireMock
        out.dribble.chunk_bytes = max(1, math.ceil(body_size / chunks))
        out.dribble.duration.CopyFrom(_millis(self.capped(total, f"{at}.totalDuration")))

    def fault(self, fault: Any, out: stub_pb2.Response) -> None:
        at = "response.fault"
        if fault == "CONNECTION_RESET_BY_PEER":
            out.fault.kind = stub_pb2.FAULT_KIND_RESET
        elif fault == "EMPTY_RESPONSE":
            out.fault.kind = stub_pb2.FAULT_KIND_CLOSE
        elif fault == "RANDOM_DATA_THEN_CLOSE":
            out.fault.kind = stub_pb2.FAULT_KIND_GARBAGE
            out.fault.garbage = RANDOM_DATA
        elif fault == "MALFORMED_RESPONSE_CHUNK":
            out.fault.kind = stub_pb2.FAULT_KIND_MALFORMED_CHUNK
            out.status = 200  # WireMock's status for this fault, whatever the mapping says
            self.gap(
                at,
                "WireMock sends a 200 status line and headers, then bytes that are not a chunk; simulatord sends a "
                "200 with a chunked body whose chunk-size line is not hexadecimal: a client fails the same way",
            )
        else:
            self.gap(at, f"unknown fault {fault!r}; the response is sent without a fault")

    def transformers(
        self, response: dict[str, Any], out: stub_pb2.Response, *, proxied: bool = False
    ) -> stub_pb2.Response:
        names = response.get("transformers")
        if names is not None:
            for name in names if isinstance(names, list) else [names]:
                if name == "response-template" and proxied:
                    self.gap(
                        "response.transformers",
                        "WireMock renders proxyBaseUrl and additionalProxyRequestHeaders as Handlebars templates; "
                        "simulatord proxies use them as written",
                    )
                elif name == "response-template":
                    self.gap(
                        "response.transformers",
                        "WireMock renders this response as a Handlebars template; simulatord templates use Jinja "
                        "syntax, so the response is sent literally as written",
                    )
                else:
                    self.gap("response.transformers", f"the extension {name!r} is not available; not applied")
        if response.get("transformerParameters") is not None:
            self.gap("response.transformerParameters", "parameters of WireMock extensions; ignored")
        return out


def _split_query(regex: str) -> tuple[str, str | None] | None:
    """A `urlPattern` split into its path part and its query part (from the first `\\?` outside any group);
    None when it cannot be split that way (an alternation or group spans both)."""
    depth, i, in_class = 0, 0, False
    top_level_bar = False
    split_at = -1
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            if not in_class and depth == 0 and regex[i + 1 : i + 2] == "?" and split_at < 0:
                split_at = i
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            if regex[i + 1 : i + 2] == "]":
                i += 1
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            top_level_bar = True
        i += 1
    if split_at < 0:
        return regex, None
    if top_level_bar:
        return None
    return regex[:split_at], regex[split_at + 2 :]
