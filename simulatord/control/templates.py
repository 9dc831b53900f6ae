"""Session templates: JSON or YAML files mirroring CreateSessionRequest, loaded and checked at start-up, and
merged into the CreateSession requests that name them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from simulatord.control.convert import sessions, stubs
from simulatord.errors import NotFound, SpecErrors
from simulatord.v1 import session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb

_CHECK_SESSION = "tenants/template/sessions/check"


class TemplateError(Exception):
    """A template file that cannot be read or would be rejected by CreateSession."""


@dataclass(frozen=True)
class Merged:
    """A CreateSession request with its template applied: the settings, and every stub with its field path."""

    settings: session_pb2.Session
    stubs: list[tuple[stub_pb2.Stub, str]]


def merge(request: pb.CreateSessionRequest, templates: Mapping[str, pb.CreateSessionRequest]) -> Merged:
    """The request's session settings over its template's; the template's stubs, then the request's."""
    template = None
    if request.template:
        template = templates.get(request.template)
        if template is None:
            known = ", ".join(sorted(templates)) or "none loaded"
            raise NotFound(
                f"template {request.template!r} not found (known: {known})",
                "TEMPLATE_NOT_FOUND",
                {"template": request.template},
            )
    settings = session_pb2.Session()
    if template is not None:
        settings.CopyFrom(template.session)
    settings.MergeFrom(request.session)
    items = [(s, f"template.stubs[{i}]") for i, s in enumerate(template.stubs)] if template else []
    items += [(s, f"stubs[{i}]") for i, s in enumerate(request.stubs)]
    return Merged(settings, items)


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    import yaml  # YAML support is optional: only needed when YAML templates are used

    return yaml.safe_load(text)


def load_templates(directory: Path) -> dict[str, pb.CreateSessionRequest]:
    """Every *.json, *.yaml and *.yml file; the template's name is the file's stem."""
    templates: dict[str, pb.CreateSessionRequest] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix in (".json", ".yaml", ".yml"):
            templates[path.stem] = read_template(path)
    return templates


def read_template(path: Path) -> pb.CreateSessionRequest:
    """One template file (what `simulatord export` writes), read and checked as CreateSession would check it."""
    try:
        data = _read(path)
        message = pb.CreateSessionRequest()
        json_format.ParseDict(data, message)
    except Exception as exc:
        raise TemplateError(f"{path}: {exc}") from exc
    if message.parent or message.session_id or message.template:
        raise TemplateError(f"{path}: a template sets only 'session' and 'stubs'")
    _check(path, message)
    return message


def _check(path: Path, template: pb.CreateSessionRequest) -> None:
    """Templates are programs too: checked once at start-up, never when a session uses them."""
    errors = SpecErrors()
    sessions.settings(template.session, "session", errors)
    for i, stub in enumerate(template.stubs):
        stubs.stub(stub, _CHECK_SESSION, "", f"stubs[{i}]", "stub_id", errors, 0.0)
    if errors.violations:
        problems = "; ".join(f"{v.field}: {v.description}" for v in errors.violations)
        raise TemplateError(f"{path}: {problems}")
