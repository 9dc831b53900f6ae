"""OpenAPI 3.0 / 3.1 documents into simulatord Stubs answering with the documented examples, with a report of
every part that has no equivalent.

`convert(document)` turns each operation into stubs that answer the way Prism's static mock does:

- Selection (Prism's `Prefer` request header). The default answer of an operation is the lowest 2xx response
  that has an example (else the lowest 2xx, else `default`), with its first example. `Prefer: code=404` selects
  the first example of that status, `Prefer: example=cat` the named example (of an `examples` map) of the
  default status, `Prefer: code=404, example=cat` both. The parameters may come in one header or in several,
  separated by `,` or `;`; keys ignore case, example names do not. Each selection is a stub of its own with a
  `prefer` header matcher (an RE2 regex), and priorities make the more specific stub win: the default stub gets
  the operation's base priority, `example=` and `code=` stubs one more (the `code=` stubs are created later, so
  with `Prefer: code=404, example=cat` where `cat` is not an example of 404 the 404's first example answers),
  `code=` + `example=` stubs two more. A `Prefer` the document cannot satisfy (an unknown status or name)
  gets the default answer; Prism answers it with a 500 or 404 problem instead. `dynamic=true` is not
  supported (bodies are never generated from schemas), nor are Prism's query-string forms (`__code=404`).
- Paths: an operation's path becomes a `PathMatcher.template` (`{petId}` is already our syntax; names that are
  not identifiers are renamed and reported). The base priority is 3 times the number of literal segments, so
  `/pets/mine` wins over `/pets/{petId}` as OpenAPI requires. No server prefix is added unless the caller
  passes `base_path` (see `server_base_path` for the path of `servers[0].url`).
- Responses: the example becomes the body, as compact JSON bytes with `content-type` set to the media type for
  `application/json` and `+json` types, or as text for `text/*` types with a string example; other media
  types' examples are reported and not sent. A response without an example is still stubbed, with its status
  and no body, and reported ("no example: answered with an empty body"); bodies are never generated from
  schemas. Response headers with an `example` (or first of `examples`) are sent; those with only a schema
  are reported. The `default` response is sent with status 500.
- Request validation: when the operation's request body has a JSON media type with a schema, every stub of the
  operation gets a `BodyMatcher.json_schema` with that schema, `$ref`s to the document's components inlined
  and OpenAPI 3.0 dialect translated to JSON Schema 2020-12 (`nullable: true` adds `"null"` to the type,
  boolean `exclusiveMinimum`/`exclusiveMaximum` become the numeric form, `example` becomes `examples`, readOnly
  properties are not required in requests). A schema that refers to itself (a recursive `$ref`) cannot be
  inlined: its target goes into the schema's `$defs` instead. A `$ref` outside the document (or to nothing)
  is reported and the body is then not validated. A body that is not `required` may also be empty. Required
  query parameters and headers must be present; an `enum` or a `pattern` of a string parameter is checked by
  a regex (an optional parameter only when it is sent); other constraints are reported as not checked.
  A request that violates these matches no stub of the operation, so the session's unmatched status answers
  it: create the session with `unmatched_status=400` (or whatever the API documents) to get a 400, and the
  journal's exchange lists the operation's stubs as near misses whose mismatch names the violating field
  (`body[0]`: `$: 'name' is a required property`), as for any near miss. (Prism answers an invalid request
  with the operation's documented 422 or 400 example instead; here `Prefer` only selects among the answers to
  valid requests.)
- Reported (`Conversion.unmapped`), not converted: security requirements (not enforced), callbacks, links,
  cookie parameters, schemas of non-JSON request bodies, response headers without examples, server
  variables and per-path/per-operation servers, webhooks (3.1), external `$ref`s and anything else skipped.

Every converted stub is run through the daemon's own validation; one it would refuse is reported and left out.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml
from google.protobuf import json_format, struct_pb2

from simulatord.control.convert.stubs import stub as compile_stub
from simulatord.errors import SpecErrors
from simulatord.matching.patterns import PatternError, compile_user
from simulatord.responding.reply import FRAMING_HEADERS, header_problem
from simulatord.v1 import stub_pb2

DOCUMENT = "(document)"  # the `operation` of reports about the whole document
PREFER = "prefer"
DEFAULT_STATUS = 500  # the status a `default` response is sent with
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_PATH_ITEM_FIELDS = frozenset({"$ref", "summary", "description", "servers", "parameters", *METHODS})
_RE2_SPECIAL = frozenset("\\.^$|?*+()[]{}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_VARIABLE = re.compile(r"\{([^{}]*)\}")
_JSON_MEDIA = re.compile(r"^application/(?:[\w.+-]+\+)?json\s*(?:;.*)?$", re.IGNORECASE)
_TEXT_MEDIA = re.compile(r"^text/[\w.+-]+\s*(?:;.*)?$", re.IGNORECASE)
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})  # OpenAPI: such parameters are ignored
# Schema keywords whose value is a schema, a list of schemas or a map of schemas.
_SCHEMA_ONE = ("additionalProperties", "items", "not", "if", "then", "else", "contains", "propertyNames")
_SCHEMA_ONE_MORE = ("unevaluatedProperties", "unevaluatedItems", "contentSchema", "additionalItems")
_SCHEMA_LIST = ("allOf", "anyOf", "oneOf", "prefixItems")
_SCHEMA_MAP = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
# OpenAPI 3.0 schema keywords that are annotations for OpenAPI tools only; dropped from the JSON Schema.
_OAS30_ONLY = frozenset({"nullable", "discriminator", "xml", "externalDocs", "example", "deprecated"})
_PARAMETER_PLAIN = frozenset({"type", "description", "example", "examples", "default", "title", "nullable"})


@dataclasses.dataclass(frozen=True)
class Unmapped:
    """A part of the document that was not converted, or converted only approximately.

    `operation` names the operation (`GET /pets/{petId}`) or `(document)`, `field` is a path into it such as
    `responses.404.content.application/xml` or `parameters.query.limit`, and `reason` says what OpenAPI
    means there and what became of it."""

    operation: str
    field: str
    reason: str


@dataclasses.dataclass
class Conversion:
    """The stubs converted, operation by operation in document order, and everything not converted exactly."""

    stubs: list[stub_pb2.Stub]
    unmapped: list[Unmapped]


class _NoDatesLoader(yaml.SafeLoader):
    """YAML without implicit timestamps: `2024-01-01` in an example stays the string JSON would have."""


_NoDatesLoader.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_document(path: Path) -> Any:
    """The OpenAPI document in `path`, parsed as JSON (`.json`) or else YAML (a superset of JSON).

    YAML timestamps are kept as strings, as the same document in JSON would have them. Raises OSError when the
    file cannot be read and ValueError when it does not parse."""
    data = Path(path).read_bytes()
    if Path(path).suffix.lower() == ".json":
        return json.loads(data.decode("utf-8-sig"))
    try:
        return parse_document(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def parse_document(data: bytes) -> Any:
    """A document's bytes parsed as YAML (a superset of JSON), timestamps kept as strings; ValueError when they
    are neither."""
    try:
        return yaml.load(data.decode("utf-8-sig"), Loader=_NoDatesLoader)  # a SafeLoader subclass
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"not JSON or YAML: {exc}") from None


def server_base_path(document: Mapping[str, Any]) -> str:
    """The path of `servers[0].url` (variables replaced by their defaults), e.g. `/v1`; empty when none."""
    servers = document.get("servers")
    if not isinstance(servers, list) or not servers or not isinstance(servers[0], dict):
        return ""
    url = servers[0].get("url")
    if not isinstance(url, str):
        return ""
    found_variables = servers[0].get("variables")
    variables: dict[str, Any] = found_variables if isinstance(found_variables, dict) else {}

    def default(found: re.Match[str]) -> str:
        spec = variables.get(found.group(1))
        return str(spec.get("default", "")) if isinstance(spec, dict) else ""

    url = _VARIABLE.sub(default, url)
    path = urlsplit(url).path if "://" in url or url.startswith("//") else url.split("?")[0]
    return path.rstrip("/")


def convert(document: Mapping[str, Any], *, base_path: str | None = None) -> Conversion:
    """Converts an OpenAPI 3.0 or 3.1 document (already parsed) into Stub messages that pass the daemon's
    validation, and reports what could not be converted (see the module's docstring for the rules).

    `base_path` is put in front of every path (e.g. `/v1`, or `server_base_path(document)` for the path of
    the first server's URL); by default none is, so the paths are those of the document below the session's
    base URL."""
    unmapped: list[Unmapped] = []
    if not isinstance(document, Mapping):
        unmapped.append(Unmapped(DOCUMENT, "(document)", "not a JSON object; nothing converted"))
        return Conversion([], unmapped)
    version = document.get("openapi")
    if not isinstance(version, str) or not re.match(r"3\.[01]\.", version + "."):
        found = f"swagger {document.get('swagger')}" if "swagger" in document else repr(version)
        reason = f"only OpenAPI 3.0 and 3.1 documents are converted, this is {found}; nothing converted"
        unmapped.append(Unmapped(DOCUMENT, "openapi", reason))
        return Conversion([], unmapped)
    doc = _Document(document, version.startswith("3.1"), unmapped)
    doc.report_document()
    prefix = (base_path or "").rstrip("/")
    if prefix and not prefix.startswith("/"):
        prefix = "/" + prefix
    stubs: list[stub_pb2.Stub] = []
    paths = document.get("paths")
    if paths is not None and not isinstance(paths, dict):
        unmapped.append(Unmapped(DOCUMENT, "paths", "not an object; no operation converted"))
        paths = None
    for path, item in (paths or {}).items():
        for method, operation, shared in doc.operations(str(path), item):
            converter = _Operation(doc, method, str(path), prefix, operation, shared)
            for built in converter.stubs():
                if converter.valid(built):
                    stubs.append(built)
    return Conversion(stubs, unmapped)


# --- building blocks ---------------------------------------------------------------------------------


def _literal(text: str) -> str:
    """`text` as an RE2 pattern matching just it."""
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in text)


def _value(obj: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    json_format.ParseDict(obj, out)
    return out


def _jsonable(value: Any) -> Any:
    """A parsed YAML value as JSON: keys as strings, dates and other scalars as their text."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | bool | int | float):
        return value
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else str(value)


def _compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _prefer(key: str, value: str) -> stub_pb2.FieldMatcher:
    """`prefer` holds the parameter `key=value` (quoted or not), among others separated by `,` or `;`."""
    regex = rf'(?:^|[,;])\s*(?i:{key})\s*=\s*(?:{_literal(value)}|"{_literal(value)}")\s*(?:[,;]|$)'
    return stub_pb2.FieldMatcher(name=PREFER, value=stub_pb2.StringMatcher(regex=regex))


def _pointer(ref: str) -> list[str]:
    return [unquote(part).replace("~1", "/").replace("~0", "~") for part in ref[2:].split("/")] if ref != "#" else []


def _status_key(status: str) -> tuple[int, str]:
    """Sort key of response statuses: 2xx first, lowest first, then the rest, `default` last."""
    if status.isdigit():
        code = int(status)
        return (0 if 200 <= code < 300 else 1, status)
    if re.fullmatch(r"[1-5]XX", status, re.IGNORECASE):
        return (0 if status[0] == "2" else 1, status[0] + "99")
    return (2, status)


@dataclasses.dataclass(frozen=True)
class _Example:
    name: str  # "" for a lone `example`
    value: Any


@dataclasses.dataclass
class _Answer:
    """One response of an operation, with its examples (the first is the one served by default)."""

    status: str
    code: int
    response: dict[str, Any]
    media: str = ""
    examples: list[_Example] = dataclasses.field(default_factory=list)


class _Unresolvable(Exception):
    """A `$ref` that cannot be inlined; the message says why."""


class _Document:
    """The whole document: reference resolution, schema translation and document-level reports."""

    def __init__(self, document: Mapping[str, Any], v31: bool, unmapped: list[Unmapped]) -> None:
        self.document = document
        self.v31 = v31
        self.unmapped = unmapped
        self._defs: dict[str, Any] = {}

    def gap(self, operation: str, field: str, reason: str) -> None:
        self.unmapped.append(Unmapped(operation, field, reason))

    def report_document(self) -> None:
        document = self.document
        servers = document.get("servers")
        if isinstance(servers, list):
            for i, server in enumerate(servers):
                if isinstance(server, dict) and server.get("variables"):
                    self.gap(
                        DOCUMENT,
                        f"servers[{i}].variables",
                        "server variables are not converted; stubs answer on the session's base URL (pass "
                        "base_path to add a prefix; server_base_path uses the variables' defaults)",
                    )
            if len(servers) > 1:
                self.gap(DOCUMENT, "servers", "only the first server's path can be a prefix (base_path)")
        components = document.get("components")
        if isinstance(components, dict) and components.get("securitySchemes"):
            self.gap(
                DOCUMENT,
                "components.securitySchemes",
                "security schemes are not enforced: requests without credentials are answered too",
            )
        if document.get("webhooks"):
            self.gap(DOCUMENT, "webhooks", "webhooks the API sends are not converted (simulatord callbacks)")
        dialect = document.get("jsonSchemaDialect")
        if dialect is not None and dialect != "https://spec.openapis.org/oas/3.1/dialect/base":
            self.gap(DOCUMENT, "jsonSchemaDialect", f"schemas are read as JSON Schema 2020-12, not {dialect!r}")

    # --- references ----------------------------------------------------------------------------

    def lookup(self, ref: Any) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise _Unresolvable(f"{ref!r} is not a reference into this document (external $refs are not read)")
        node: Any = self.document
        for part in _pointer(ref):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif part.isdigit() and (int(part) in node if isinstance(node, dict) else int(part) < len(node)):
                node = node[int(part)]  # a list item, or a YAML `200:` key
            else:
                raise _Unresolvable(f"{ref!r} points at nothing in the document")
        return node

    def deref(self, obj: Any) -> Any:
        """An object (parameter, response, example, ...) with its `$ref` chain followed."""
        seen: set[str] = set()
        while isinstance(obj, dict) and "$ref" in obj:
            ref = obj["$ref"]
            if ref in seen:
                raise _Unresolvable(f"{ref!r} refers to itself")
            seen.add(ref)
            obj = self.lookup(ref)
        return obj

    # --- schemas -------------------------------------------------------------------------------

    def schema(self, schema: Any, request: bool = True) -> Any:
        """A JSON Schema 2020-12 equivalent of an OpenAPI schema, `$ref`s inlined; raises _Unresolvable.

        A recursive reference cannot be inlined: its target goes into the schema's `$defs` and is referred to
        there (`#/$defs/components_schemas_Tree`), a reference within the schema that the matcher resolves."""
        self._defs = {}
        out = self._schema(schema, (), request)
        if self._defs:
            if not isinstance(out, dict):
                out = {"allOf": [out]}
            defs = dict(out.get("$defs") or {})
            defs.update(self._defs)
            out = {**out, "$defs": defs}
        return out

    def _recursive(self, ref: str, request: bool) -> dict[str, Any]:
        key = re.sub(r"[^A-Za-z0-9_.-]", "_", "_".join(_pointer(ref))) or "root"
        if key not in self._defs:
            self._defs[key] = True  # placeholder while the target is translated
            self._defs[key] = self._schema(self.lookup(ref), (ref,), request)
        return {"$ref": f"#/$defs/{key}"}

    def _schema(self, schema: Any, stack: tuple[str, ...], request: bool) -> Any:
        if isinstance(schema, bool):
            return schema
        if not isinstance(schema, dict):
            raise _Unresolvable(f"{_jsonable(schema)!r} is not a schema")
        if "$ref" in schema:
            ref = schema["$ref"]
            target = (
                self._recursive(ref, request)
                if ref in stack
                else self._schema(self.lookup(ref), (*stack, ref), request)
            )
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            if not self.v31 or not siblings:  # OpenAPI 3.0 ignores the siblings of a $ref
                return target
            rest = self._schema(siblings, stack, request)
            return {"allOf": [target, rest]}
        out: dict[str, Any] = {}
        for key, value in schema.items():
            key = str(key)
            if key in _SCHEMA_ONE or key in _SCHEMA_ONE_MORE:
                out[key] = self._schema(value, stack, request) if isinstance(value, dict | bool) else value
            elif key in _SCHEMA_LIST and isinstance(value, list):
                out[key] = [self._schema(v, stack, request) for v in value]
            elif key in _SCHEMA_MAP and isinstance(value, dict):
                out[key] = {str(k): self._schema(v, stack, request) for k, v in value.items()}
            elif key == "$schema" or key == "$id":
                continue  # one schema document: inlined parts keep no base URI of their own
            elif not self.v31 and key in _OAS30_ONLY:
                continue
            else:
                out[key] = _jsonable(value)
        if not self.v31:
            self._from_30(schema, out)
        if request:
            self._drop_read_only(out)
        return out

    def _from_30(self, schema: dict[str, Any], out: dict[str, Any]) -> None:
        """OpenAPI 3.0's dialect in a translated schema `out` (from `schema`)."""
        if schema.get("nullable") is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        for bound, keyword in (("minimum", "exclusiveMinimum"), ("maximum", "exclusiveMaximum")):
            flag = out.get(keyword)
            if isinstance(flag, bool):
                del out[keyword]
                if flag and bound in out:
                    out[keyword] = out.pop(bound)
        if "example" in schema:
            out["examples"] = [_jsonable(schema["example"])]

    @staticmethod
    def _drop_read_only(out: dict[str, Any]) -> None:
        """readOnly properties are not sent in requests: a request is not required to have them."""
        properties, required = out.get("properties"), out.get("required")
        if isinstance(properties, dict) and isinstance(required, list):
            read_only = {k for k, v in properties.items() if isinstance(v, dict) and v.get("readOnly") is True}
            if read_only:
                out["required"] = [name for name in required if name not in read_only]

    # --- operations ----------------------------------------------------------------------------

    def operations(self, path: str, item: Any) -> Iterator[tuple[str, dict[str, Any], list[Any]]]:
        """(method, operation, the path item's parameters) of each operation of a path item."""
        label = f"* {path}"
        try:
            item = self.deref(item)
        except _Unresolvable as exc:
            self.gap(label, "$ref", f"{exc}; the path was not converted")
            return
        if not isinstance(item, dict):
            self.gap(label, "(path)", "not a Path Item object; not converted")
            return
        if item.get("servers"):
            self.gap(label, "servers", "servers of a path are not converted; stubs answer on the session's URL")
        for key in item:
            if str(key) not in _PATH_ITEM_FIELDS and not str(key).startswith("x-"):
                self.gap(label, str(key), "not a field of a Path Item object; ignored")
        found = item.get("parameters")
        shared: list[Any] = found if isinstance(found, list) else []
        for method in METHODS:
            operation = item.get(method)
            if isinstance(operation, dict):
                yield method.upper(), operation, shared
            elif operation is not None:
                self.gap(f"{method.upper()} {path}", "(operation)", "not an Operation object; not converted")


class _Operation:
    """Converts one operation into its stubs, reporting what it cannot convert exactly."""

    def __init__(
        self, doc: _Document, method: str, path: str, prefix: str, operation: dict[str, Any], shared: list[Any]
    ) -> None:
        self.doc = doc
        self.method = method
        self.path = path
        self.prefix = prefix
        self.operation = operation
        self.shared = shared
        self.label = f"{method} {path}"
        self.name = operation.get("operationId") if isinstance(operation.get("operationId"), str) else ""

    def gap(self, field: str, reason: str) -> None:
        self.doc.gap(self.label, field, reason)

    def valid(self, stub: stub_pb2.Stub) -> bool:
        """Whether the daemon accepts the stub; otherwise every violation is reported and it is left out."""
        errors = SpecErrors()
        compile_stub(stub, "tenants/openapi/sessions/import", "", "stub", "stub_id", errors, 0.0)
        for violation in errors.violations:
            self.gap(
                "(operation)",
                f"the converted stub {stub.description!r} is not valid ({violation.field}: "
                f"{violation.description}); not converted",
            )
        return not errors.violations

    # --- the stubs -----------------------------------------------------------------------------

    def stubs(self) -> list[stub_pb2.Stub]:
        template, literal_segments = self.template()
        if template is None:
            return []
        request = stub_pb2.RequestMatcher(method=self.method, path=stub_pb2.PathMatcher(template=template))
        self.parameters(request)
        self.request_body(request)
        self.report_operation()
        answers = self.answers()
        if not answers:
            self.gap("responses", "no responses: the operation was not converted")
            return []
        default = self.default_answer(answers)
        base = 3 * literal_segments
        out: list[stub_pb2.Stub] = []

        def make(answer: _Answer, example: _Example | None, prefer: dict[str, str], rank: int) -> None:
            matcher = stub_pb2.RequestMatcher()
            matcher.CopyFrom(request)
            matcher.headers.extend(_prefer(key, value) for key, value in prefer.items())
            chosen = answer.status + (f" example {example.name!r}" if example and example.name else "")
            shown = ", ".join(f"{key}={value}" for key, value in prefer.items())
            who = f" [{self.name}]" if self.name else ""
            out.append(
                stub_pb2.Stub(
                    description=f"{self.label}{who} -> {chosen}" + (f" (Prefer: {shown})" if shown else ""),
                    request=matcher,
                    responses=[self.response(answer, example)],
                    priority=base + rank,
                )
            )

        make(default, default.examples[0] if default.examples else None, {}, 0)
        for example in default.examples:
            if example.name:
                make(default, example, {"example": example.name}, 1)
        codes: dict[str, _Answer] = {a.status: a for a in answers if a.status.isdigit()}
        for answer in answers:
            if not answer.status.isdigit() and answer.status != "default":  # a range such as 4XX
                codes.setdefault(str(answer.code), answer)
        fallback = next((a for a in answers if a.status == "default"), None)
        if fallback is not None:
            codes.setdefault(str(DEFAULT_STATUS), fallback)
        for code, answer in codes.items():
            make(answer, answer.examples[0] if answer.examples else None, {"code": code}, 1)
        for code, answer in codes.items():
            for example in answer.examples:
                if example.name:
                    make(answer, example, {"code": code, "example": example.name}, 2)
        return out

    def template(self) -> tuple[str | None, int]:
        """The path template (with the prefix) and the number of its literal segments."""
        if not self.path.startswith("/"):
            self.gap("(path)", f"{self.path!r} does not start with '/'; the operation was not converted")
            return None, 0
        names: set[str] = set()

        def rename(found: re.Match[str]) -> str:
            name = found.group(1)
            ours = re.sub(r"\W", "_", name, flags=re.ASCII) or "param"
            if not _IDENTIFIER.fullmatch(ours):
                ours = "_" + ours
            while ours in names:
                ours += "_"
            names.add(ours)
            if ours != name:
                self.gap(f"(path).{{{name}}}", f"path template variables must be identifiers; named {ours!r}")
            return "{" + ours + "}"

        template = _VARIABLE.sub(rename, self.path)
        literal = sum(1 for segment in self.path.split("/")[1:] if not _VARIABLE.search(segment))
        return self.prefix + template, literal

    # --- the request ---------------------------------------------------------------------------

    def parameters(self, request: stub_pb2.RequestMatcher) -> None:
        merged: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        found = self.operation.get("parameters")
        own: list[Any] = found if isinstance(found, list) else []
        for source, items in (("parameters (path item)", self.shared), ("parameters", own)):
            for i, item in enumerate(items):
                try:
                    parameter = self.doc.deref(item)
                except _Unresolvable as exc:
                    self.gap(f"{source}[{i}]", f"{exc}; not checked")
                    continue
                if not isinstance(parameter, dict) or not isinstance(parameter.get("name"), str):
                    self.gap(f"{source}[{i}]", "not a Parameter object; ignored")
                    continue
                merged[(parameter["name"], str(parameter.get("in")))] = (parameter, f"{source}[{i}]")
        for (name, where), (parameter, _) in merged.items():
            at = f"parameters.{where}.{name}"
            if where == "path":
                self.path_parameter(parameter, at)
            elif where in ("query", "header"):
                if where == "header" and name.lower() in _IGNORED_HEADERS:
                    self.gap(at, f"OpenAPI ignores a header parameter named {name}; not checked")
                    continue
                self.field_parameter(request, parameter, where, at)
            elif where == "cookie":
                self.gap(at, "cookie parameters are not checked")
            else:
                self.gap(at, f"unknown parameter location {where!r}; ignored")

    def path_parameter(self, parameter: dict[str, Any], at: str) -> None:
        schema = self.parameter_schema(parameter, at)
        rest = sorted(set(schema) - _PARAMETER_PLAIN) if isinstance(schema, dict) else []
        if rest or (isinstance(schema, dict) and schema.get("type") not in (None, "string")):
            kept = ", ".join(rest + (["type"] if schema.get("type") not in (None, "string") else []))
            self.gap(at, f"the path template matches any segment; the schema's {kept} is not checked")

    def parameter_schema(self, parameter: dict[str, Any], at: str) -> dict[str, Any]:
        if "content" in parameter:
            self.gap(f"{at}.content", "a parameter described by a media type is only checked for presence")
            return {}
        try:
            schema = self.doc.deref(parameter.get("schema", {}))
        except _Unresolvable as exc:
            self.gap(f"{at}.schema", f"{exc}; the value is not checked")
            return {}
        return schema if isinstance(schema, dict) else {}

    def field_parameter(self, request: stub_pb2.RequestMatcher, parameter: dict[str, Any], where: str, at: str) -> None:
        name = parameter["name"]
        required = parameter.get("required") is True
        schema = self.parameter_schema(parameter, at)
        regexes: list[str] = []
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            values = [v for v in enum if v is not None]
            texts = [json.dumps(v) if not isinstance(v, str) else v for v in values]
            texts = [t.lower() if isinstance(v, bool) else t for t, v in zip(texts, values, strict=True)]
            regexes.append("^(?:" + "|".join(_literal(t) for t in texts) + ")$")
        pattern = schema.get("pattern")
        if isinstance(pattern, str):
            try:
                compile_user(pattern)
                regexes.append(pattern)
            except PatternError as exc:
                self.gap(f"{at}.schema.pattern", f"{exc}; not checked")
        unchecked = sorted(set(schema) - _PARAMETER_PLAIN - {"enum", "pattern"})
        kind = schema.get("type")
        if kind not in (None, "string"):
            unchecked.insert(0, f"type {kind}")
        if unchecked:
            self.gap(f"{at}.schema", f"{', '.join(map(str, unchecked))} not checked")
        if parameter.get("style") not in (None, "form", "simple") or parameter.get("explode") is False:
            self.gap(f"{at}.style", "values are matched as sent, not split by the parameter's style")
        fields = [stub_pb2.FieldMatcher(name=name, value=stub_pb2.StringMatcher(regex=regex)) for regex in regexes] or (
            [stub_pb2.FieldMatcher(name=name)] if required else []
        )
        target = request.headers if where == "header" else request.query
        if required or not fields:
            target.extend(fields)
            return
        # optional: absent, or every condition holds
        present = stub_pb2.RequestMatcher()
        (present.headers if where == "header" else present.query).extend(fields)
        absent = stub_pb2.RequestMatcher()
        (absent.headers if where == "header" else absent.query).append(stub_pb2.FieldMatcher(name=name, absent=True))
        if request.any_of:
            request.all_of.append(stub_pb2.RequestMatcher(any_of=[present, absent]))
        else:
            request.any_of.extend([present, absent])

    def request_body(self, request: stub_pb2.RequestMatcher) -> None:
        body = self.operation.get("requestBody")
        if body is None:
            return
        try:
            body = self.doc.deref(body)
        except _Unresolvable as exc:
            self.gap("requestBody", f"{exc}; the body is not checked")
            return
        content = body.get("content") if isinstance(body, dict) else None
        if not isinstance(content, dict) or not content:
            self.gap("requestBody", "no content; the body is not checked")
            return
        json_types = [m for m in content if _JSON_MEDIA.match(str(m))]
        others = [m for m in content if m not in json_types]
        for media in others:
            if isinstance(content[media], dict) and content[media].get("schema") is not None:
                self.gap(f"requestBody.content.{media}", "only JSON bodies are checked against their schema")
        if not json_types:
            return
        media = json_types[0]
        for extra in json_types[1:]:
            self.gap(f"requestBody.content.{extra}", f"JSON bodies are checked against the schema of {media} only")
        raw = content[media].get("schema") if isinstance(content[media], dict) else None
        if raw is None:
            return
        try:
            schema = self.doc.schema(raw)
        except _Unresolvable as exc:
            self.gap(f"requestBody.content.{media}.schema", f"{exc}; the body is not checked")
            return
        check = stub_pb2.RequestMatcher(body=[stub_pb2.BodyMatcher(json_schema=_value(schema))])
        alternatives = [check]
        if others:  # a body of another media type is not checked
            json_header = stub_pb2.FieldMatcher(name="content-type", value=stub_pb2.StringMatcher(regex="(?i)json"))
            alternatives.append(stub_pb2.RequestMatcher(none_of=[stub_pb2.RequestMatcher(headers=[json_header])]))
        if body.get("required") is not True:  # an empty body is allowed (the schema first: it names the field)
            alternatives.append(stub_pb2.RequestMatcher(body=[stub_pb2.BodyMatcher(equals=b"")]))
        if len(alternatives) == 1:
            request.body.extend(check.body)
        elif request.any_of:
            request.all_of.append(stub_pb2.RequestMatcher(any_of=alternatives))
        else:
            request.any_of.extend(alternatives)

    def report_operation(self) -> None:
        operation = self.operation
        security = operation.get("security", self.doc.document.get("security"))
        if isinstance(security, list) and any(isinstance(s, dict) and s for s in security):
            self.gap("security", "security requirements are not enforced: requests without credentials match")
        if operation.get("callbacks"):
            self.gap("callbacks", "callbacks (requests the API sends) are not converted")
        if operation.get("servers"):
            self.gap("servers", "servers of an operation are not converted; stubs answer on the session's URL")

    # --- the responses -------------------------------------------------------------------------

    def answers(self) -> list[_Answer]:
        responses = self.operation.get("responses")
        if not isinstance(responses, dict):
            return []
        out: list[_Answer] = []
        for key in sorted((str(k) for k in responses), key=_status_key):
            raw = responses.get(key, responses.get(int(key)) if key.isdigit() else None)
            at = f"responses.{key}"
            if key.startswith("x-"):
                continue
            if re.fullmatch(r"[1-5]XX", key, re.IGNORECASE):
                self.gap(at, f"a status range is sent as {key[0]}00")
                code = int(key[0]) * 100
            elif key.isdigit() and 100 <= int(key) <= 599:
                code = int(key)
            elif key == "default":
                code = DEFAULT_STATUS
            else:
                self.gap(at, "not a status code; ignored")
                continue
            try:
                response = self.doc.deref(raw)
            except _Unresolvable as exc:
                self.gap(at, f"{exc}; not converted")
                continue
            if not isinstance(response, dict):
                self.gap(at, "not a Response object; ignored")
                continue
            answer = _Answer(key, code, response)
            self.examples(answer, at)
            if response.get("links"):
                self.gap(f"{at}.links", "links are not converted")
            out.append(answer)
        return out

    def examples(self, answer: _Answer, at: str) -> None:
        """Picks the response's media type and its examples (the first JSON type with an example first)."""
        content = answer.response.get("content")
        if not isinstance(content, dict) or not content:
            return
        media_types = sorted(content, key=lambda m: (not _JSON_MEDIA.match(str(m)), not _TEXT_MEDIA.match(str(m))))
        found: list[tuple[str, list[_Example]]] = []
        for media in media_types:
            spec = content[media]
            if isinstance(spec, dict):
                found.append((str(media), self.media_examples(spec, f"{at}.content.{media}")))
        with_examples = [(m, e) for m, e in found if e]
        if not with_examples:
            answer.media = found[0][0] if found else ""
            return
        answer.media, answer.examples = with_examples[0]
        for media, _ in with_examples[1:]:
            self.gap(f"{at}.content.{media}", f"the examples of {answer.media} are sent; not those of {media}")

    def media_examples(self, spec: dict[str, Any], at: str) -> list[_Example]:
        out: list[_Example] = []
        examples = spec.get("examples")
        if isinstance(examples, dict):
            for name, item in examples.items():
                try:
                    example = self.doc.deref(item)
                except _Unresolvable as exc:
                    self.gap(f"{at}.examples.{name}", f"{exc}; not sent")
                    continue
                if isinstance(example, dict) and "value" in example:
                    out.append(_Example(str(name), _jsonable(example["value"])))
                elif isinstance(example, dict) and "externalValue" in example:
                    self.gap(f"{at}.examples.{name}", "externalValue examples are not fetched; not sent")
                else:
                    self.gap(f"{at}.examples.{name}", "not an Example object with a value; not sent")
        if "example" in spec:
            if out:
                self.gap(f"{at}.example", "example and examples exclude each other; the examples are sent")
            else:
                out.append(_Example("", _jsonable(spec["example"])))
        return out

    def response(self, answer: _Answer, example: _Example | None) -> stub_pb2.Response:
        out = stub_pb2.Response(status=answer.code)
        at = f"responses.{answer.status}"
        if example is None:
            if isinstance(answer.response.get("content"), dict) and answer.response["content"]:
                self.gap_once(at, "no example: answered with an empty body (bodies are not generated from schemas)")
        elif _JSON_MEDIA.match(answer.media):
            out.body_bytes = _compact(example.value)
            out.headers.append(stub_pb2.Header(name="content-type", value=answer.media))
        elif _TEXT_MEDIA.match(answer.media) and isinstance(example.value, str):
            out.body_text = example.value
            out.headers.append(stub_pb2.Header(name="content-type", value=answer.media))
        else:
            self.gap_once(
                f"{at}.content.{answer.media}",
                "only JSON examples and text examples of text/* types are sent; answered with an empty body",
            )
        self.response_headers(answer, out, at)
        return out

    def gap_once(self, field: str, reason: str) -> None:
        if Unmapped(self.label, field, reason) not in self.doc.unmapped:
            self.gap(field, reason)

    def response_headers(self, answer: _Answer, out: stub_pb2.Response, at: str) -> None:
        headers = answer.response.get("headers")
        if not isinstance(headers, dict):
            return
        for name, raw in headers.items():
            name = str(name)
            where = f"{at}.headers.{name}"
            if name.lower() == "content-type":
                continue  # OpenAPI ignores it: the media type says it
            try:
                header = self.doc.deref(raw)
            except _Unresolvable as exc:
                self.gap_once(where, f"{exc}; not sent")
                continue
            value: Any = None
            if isinstance(header, dict) and "example" in header:
                value = header["example"]
            elif isinstance(header, dict) and isinstance(header.get("examples"), dict) and header["examples"]:
                try:
                    first = self.doc.deref(next(iter(header["examples"].values())))
                except _Unresolvable:
                    first = None
                value = first.get("value") if isinstance(first, dict) else None
            if value is None:
                self.gap_once(where, "no example: the header is not sent (values are not generated from schemas)")
                continue
            text = value if isinstance(value, str) else json.dumps(_jsonable(value), separators=(",", ":"))
            problem = header_problem(name, text)
            if name.lower() in FRAMING_HEADERS:
                problem = "simulatord sets it from the body"
            if problem is not None:
                self.gap_once(where, f"cannot be sent: {problem}; left out")
                continue
            out.headers.append(stub_pb2.Header(name=name, value=text))

    def default_answer(self, answers: list[_Answer]) -> _Answer:
        success = [a for a in answers if 200 <= a.code < 300 and a.status != "default"]
        with_example = [a for a in success if a.examples]
        if with_example:
            return with_example[0]
        if success:
            return success[0]
        fallback = next((a for a in answers if a.status == "default"), answers[0])
        self.gap("responses", f"no 2xx response: {fallback.status} answers by default")
        return fallback
