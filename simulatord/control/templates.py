"""Loads session templates (JSON or YAML files mirroring CreateSessionRequest) from a directory at start-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from simulatord.control import convert
from simulatord.errors import SpecErrors
from simulatord.names import SessionKey
from simulatord.v1 import simulator_service_pb2 as pb

_CHECK_KEY = SessionKey("template", "check")


class TemplateError(Exception):
    """A template file that cannot be read or would be rejected by CreateSession."""


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
        if path.suffix not in (".json", ".yaml", ".yml"):
            continue
        try:
            data = _read(path)
            message = pb.CreateSessionRequest()
            json_format.ParseDict(data, message)
        except Exception as exc:
            raise TemplateError(f"{path}: {exc}") from exc
        if message.parent or message.session_id or message.template:
            raise TemplateError(f"{path}: a template sets only 'session' and 'stubs'")
        _check(path, message)
        templates[path.stem] = message
    return templates


def _check(path: Path, template: pb.CreateSessionRequest) -> None:
    """Templates are programs too: checked once at start-up, never when a session uses them."""
    errors = SpecErrors()
    convert.check_labels(template.session.labels, "session.labels", errors)
    convert.ttl_seconds(template.session.ttl, "session.ttl", errors)
    for i, stub in enumerate(template.stubs):
        convert.stub(stub, _CHECK_KEY, "", f"stubs[{i}]", "stub_id", errors, 0.0)
    if errors.violations:
        problems = "; ".join(f"{v.field}: {v.description}" for v in errors.violations)
        raise TemplateError(f"{path}: {problems}")
