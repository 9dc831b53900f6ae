"""Response templates: sandboxed Jinja compiled once when a stub is programmed, rendered per request."""

from __future__ import annotations

import builtins
import datetime as dt
import json
import random as random_module
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulatord.errors import SpecErrors
from simulatord.lazy import per_module
from simulatord.matching.request import HttpRequest
from simulatord.responding import sandbox
from simulatord.responding.reply import Reply, ResponseSpec, error_reply, header_problem
from simulatord.responding.wire import End

if TYPE_CHECKING:
    from jinja2.environment import Template

    from simulatord.responding.behaviour import Context, Proceed


@per_module("jinja2")
def _undefined() -> type:
    from jinja2 import Undefined

    return Undefined


_MARKERS = ("{{", "{%", "{#")
# A JSON string that is exactly one expression keeps the expression's type (`"{{ path.id | int }}"` -> 42).
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\}\}|\{\{).)*)\}\}\s*$", re.DOTALL)
MAX_RENDERED_BYTES = sandbox.MAX_OUTPUT_CHARS
MAX_ERROR_CHARS = 500  # an error may quote the request or the template; the journal keeps a readable part
ERROR_HEADER = "x-simulatord-template-error"


class TemplateRenderError(Exception):
    """A template failed at render time (a filter raised, a status was not a number, ...)."""


def has_markers(text: str) -> bool:
    return any(marker in text for marker in _MARKERS)


def _compile(source: str, where: str, errors: SpecErrors, expression: bool = False) -> Any:
    """Compiles a template (or a single expression) in the sandbox; problems are added to `errors`."""
    if len(source) > sandbox.MAX_SOURCE_CHARS:
        errors.add(where, f"a template is at most {sandbox.MAX_SOURCE_CHARS:,} characters, got {len(source):,}")
        return None
    from jinja2 import TemplateSyntaxError

    env = sandbox.environment()
    try:
        if expression:
            return env.compile_expression(source, undefined_to_none=True)
        return env.from_string(source)
    except TemplateSyntaxError as exc:
        errors.add(where, f"template syntax error at line {exc.lineno}: {exc.message}")
    except (RecursionError, MemoryError):  # Jinja's parser recurses once per nesting level
        errors.add(where, "the template nests too deeply to compile")
    return None


def compile_text(source: str, where: str, errors: SpecErrors) -> Template | None:
    """Compiles a text template; None when the text has no template markers (it is then sent as is)."""
    if not has_markers(source):
        return None
    compiled: Template | None = _compile(source, where, errors)
    return compiled


# --- JSON templates: a tree mirroring the JSON value, with compiled leaves --------------------------

JsonNode = Callable[[Mapping[str, Any]], Any]


def _constant(value: Any) -> JsonNode:
    return lambda _ctx: value


def _jsonable(value: Any) -> Any:
    if isinstance(value, _undefined()):  # only rendered templates get here, so jinja2 is loaded
        return None
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return str(value)


def _compile_leaf(value: str, where: str, errors: SpecErrors) -> JsonNode | None:
    single = _SINGLE_EXPRESSION.match(value)
    if single is not None:
        expression = _compile(single.group("expr"), where, errors, expression=True)
        if expression is None:
            return None

        return lambda ctx: _jsonable(expression(**ctx))
    template = _compile(value, where, errors)
    if template is None:
        return None
    return lambda ctx: sandbox.render(template, ctx)


def _compile_json(value: Any, where: str, errors: SpecErrors) -> tuple[JsonNode, bool]:
    """Returns the node and whether anything below it is a template (static subtrees stay constants)."""
    if isinstance(value, str):
        leaf = _compile_leaf(value, where, errors) if has_markers(value) else None
        return (leaf, True) if leaf is not None else (_constant(value), False)
    if isinstance(value, dict):
        items = [(k, *_compile_json(v, f"{where}.{k}", errors)) for k, v in value.items()]
        if not any(dynamic for _, _, dynamic in items):
            return _constant(value), False

        return (lambda ctx: {k: node(ctx) for k, node, _ in items}), True
    if isinstance(value, list):
        nodes = [_compile_json(v, f"{where}[{i}]", errors) for i, v in enumerate(value)]
        if not any(dynamic for _, dynamic in nodes):
            return _constant(value), False

        return (lambda ctx: [node(ctx) for node, _ in nodes]), True
    return _constant(value), False


@dataclass(frozen=True)
class JsonTemplate:
    """A JSON value whose strings may be templates."""

    root: JsonNode

    def render(self, context: Mapping[str, Any]) -> Any:
        return self.root(context)

    def render_bytes(self, context: Mapping[str, Any]) -> bytes:
        return json.dumps(self.render(context), separators=(",", ":"), ensure_ascii=False).encode()


def compile_json(value: Any, where: str, errors: SpecErrors) -> JsonTemplate | None:
    """Compiles the string leaves of a JSON value; None when no leaf is a template."""
    root, dynamic = _compile_json(value, where, errors)
    return JsonTemplate(root) if dynamic else None


# --- the variables a template sees -----------------------------------------------------------------


class TemplateRandom:
    """`random` in templates: seeded (repeatable runs) or not; the generator is made on first use only."""

    def __init__(self, seed: str | None) -> None:
        self._seed = seed
        self._rng: random_module.Random | None = None

    def _generator(self) -> random_module.Random:
        if self._rng is None:
            # A str seed is hashed with SHA-512 by `random`, so it is stable across processes.
            self._rng = random_module.Random(self._seed) if self._seed is not None else random_module.Random()
        return self._rng

    def uuid(self) -> str:
        import uuid  # with platform under it, a few ms of start-up that only templates calling random.uuid need

        return str(uuid.UUID(int=self._generator().getrandbits(128), version=4))

    def hex(self, length: int = 16) -> str:
        length = max(0, min(length, 1024))
        return "".join(self._generator().choice("0123456789abcdef") for _ in range(length))

    # Named `int` for templates (`random.int(1, 6)`); defined last because it shadows the builtin in the class.
    def int(self, low: builtins.int = 0, high: builtins.int = 2**31 - 1) -> builtins.int:
        return self._generator().randint(low, high)


def _first(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        out.setdefault(name, value)
    return out


def _all(pairs: tuple[tuple[str, str], ...]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in pairs:
        out.setdefault(name, []).append(value)
    return out


def now_values(epoch: float) -> dict[str, Any]:
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    iso = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return {"iso": iso, "epoch": int(epoch), "millis": int(epoch * 1000)}


def request_values(request: HttpRequest, captures: Mapping[str, str]) -> dict[str, Any]:
    return {
        "method": request.method,
        "path": request.path,
        "path_params": dict(captures),
        "query_string": request.query_string,
        "query": _first(request.query),
        "query_all": _all(request.query),
        "headers": _first(request.headers),
        "headers_all": _all(request.headers),
        "body": request.text,
        "json": request.json() if request.has_json else None,
    }


def variables(
    request: HttpRequest,
    captures: Mapping[str, str],
    match: int,
    sequence: int,
    state: str,
    seed: int | None,
    now: float,
    message: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables of one rendering; built only for stubs that use templates."""
    values: dict[str, Any] = {
        "request": request_values(request, captures),
        "path": dict(captures),
        "match": match,
        "sequence": sequence,
        "state": state,
        "now": now_values(now),
        "random": TemplateRandom(f"{seed}/{match}" if seed is not None else None),
    }
    if message is not None:
        values["message"] = message
    return values


# --- responses ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventTemplate:
    """An SSE event whose data is a template: rendered per request, then encoded with its other fields."""

    data: Template
    encode: Callable[[str], bytes]


@dataclass(frozen=True)
class ResponseTemplate:
    """The template parts of one response; parts left None are taken from the ResponseSpec as programmed."""

    status: Template | None
    headers: tuple[Template | None, ...]  # parallel to ResponseSpec.headers
    text: Template | None = None
    json: JsonTemplate | None = None
    seed: int | None = None
    events: tuple[EventTemplate | None, ...] = ()  # parallel to an SSE stream's events; None: as programmed

    name = "template"

    @property
    def renders_body(self) -> bool:
        """Whether the body is rendered per request, so its size is unknown when programmed."""
        return self.text is not None or self.json is not None

    async def apply(self, reply: Reply, context: Context, proceed: Proceed) -> End:
        """Renders over the reply with this request's variables; a failure is answered with a 500 that says
        which part failed (skipping the rest of the chain), so the test author sees why."""
        now = time.time()
        part = ["status"]  # which part is rendering, for the error message

        def rendered() -> tuple[int, list[tuple[str, str]], bytes, tuple[bytes | None, ...]]:
            values = variables(
                context.request, context.captures, context.match, context.sequence, context.state, self.seed, now
            )
            part[0] = "status"
            status = reply.status if self.status is None else _status(sandbox.render(self.status, values))
            part[0] = "headers"
            headers = list(reply.headers)
            for i, template in enumerate(self.headers):
                if template is not None:
                    headers[i] = (headers[i][0], _header_value(sandbox.render(template, values)))
            part[0] = "body"
            body = reply.body
            if self.text is not None:
                body = sandbox.render(self.text, values).encode()
            elif self.json is not None:
                body = self.json.render_bytes(values)
            if len(body) > MAX_RENDERED_BYTES:
                raise TemplateRenderError(f"rendered body exceeds {MAX_RENDERED_BYTES} bytes")
            part[0] = "sse events"
            events = tuple(
                None if event is None else event.encode(sandbox.render(event.data, values)) for event in self.events
            )
            if sum(len(e) for e in events if e is not None) > MAX_RENDERED_BYTES:
                raise TemplateRenderError(f"rendered events exceed {MAX_RENDERED_BYTES} bytes")
            return status, headers, body, events

        try:
            status, headers, body, events = await sandbox.run(rendered)
        except Exception as exc:  # a template is user code: any failure becomes an explained 500
            return await context.finish(template_error_reply(part[0], exc))
        reply.status = status
        if any(template is not None for template in self.headers):
            reply.headers = headers
        reply.body = body
        if self.events:
            reply.pieces = events
        return await proceed(reply)


def _status(rendered: str) -> int:
    rendered = rendered.strip()
    if not rendered.isdigit() or not 100 <= int(rendered) <= 599:
        raise TemplateRenderError(f"status rendered to {rendered[:40]!r}, not a number from 100 to 599")
    return int(rendered)


async def render_message(text: Template | None, json_template: JsonTemplate | None, values: Mapping[str, Any]) -> str:
    """A WebSocket message's template, within its own budget; a failure is sent as a message that says why,
    rather than dropping the message."""

    def rendered() -> str:
        if json_template is not None:
            return json_template.render_bytes(values).decode()
        return sandbox.render(text, values) if text is not None else ""

    try:
        return await sandbox.run(rendered)
    except Exception as exc:  # a template is user code
        return json.dumps({"error": f"message template failed: {_describe(exc)}", "reason": "TEMPLATE_ERROR"})


def _header_value(value: str) -> str:
    # A rendered CR or LF would split the header, and outer whitespace is not part of a value: fold and strip
    # them rather than fail the whole response; anything else a field value cannot hold fails it, explained.
    value = value.replace("\r", " ").replace("\n", " ").strip(" \t")
    problem = header_problem("x", value)
    if problem is not None:
        raise TemplateRenderError(f"a header rendered to a {problem}")
    return value


def template_error_reply(part: str, exc: BaseException) -> Reply:
    return error_reply(
        "TEMPLATE_ERROR", f"response template failed in {part}: {_describe(exc)}", [(ERROR_HEADER, part)]
    )


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


def compile_response(
    spec: ResponseSpec,
    body_kind: str | None,
    body: Any,
    status_source: str,
    seed: int | None,
    where: str,
    errors: SpecErrors,
    events: tuple[EventTemplate | None, ...] = (),
) -> ResponseTemplate:
    """Checks and compiles a templated response; problems are reported with their field paths."""
    status = _compile(status_source, f"{where}.template.status", errors) if status_source else None
    headers = tuple(
        compile_text(value, f"{where}.headers[{i}].value", errors) for i, (_, value) in enumerate(spec.headers)
    )
    text = json_template = None
    if body_kind == "body_bytes":
        errors.add(f"{where}.body_bytes", "cannot be a template; use body_text or body_json")
    elif body_kind == "body_text":
        text = compile_text(str(body), f"{where}.body_text", errors)
    elif body_kind == "body_json":
        json_template = compile_json(body, f"{where}.body_json", errors)
    return ResponseTemplate(status, headers, text, json_template, seed, events)
