"""Loads session templates (JSON or YAML files mirroring CreateSessionRequest) from a directory at start-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf import json_format

from simulatord.v1 import simulator_service_pb2 as pb


class TemplateError(Exception):
    pass


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
        templates[path.stem] = message
    return templates
