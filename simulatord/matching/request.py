"""The immutable request record that the HTTP edge builds once and every later stage reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property
from typing import Any
from urllib.parse import parse_qsl

_NO_JSON = object()


class Routing(StrEnum):
    """How a request addressed its session."""

    PATH_PREFIX = "path_prefix"  # the session's base URL
    HOST = "host"  # {session}.{tenant}.{host suffix}
    HEADER = "header"  # x-simulatord-session


@dataclass(frozen=True)
class HttpRequest:
    """One received HTTP request, relative to its session's base URL."""

    method: str
    path: str
    query_string: str = ""
    headers: tuple[tuple[str, str], ...] = ()  # names lower case, in arrival order
    body: bytes = b""
    receive_time: float = 0.0  # seconds since the epoch
    http_version: str = "1.1"
    routing: Routing = Routing.PATH_PREFIX

    @cached_property
    def query(self) -> tuple[tuple[str, str], ...]:
        return tuple(parse_qsl(self.query_string, keep_blank_values=True))

    @cached_property
    def _headers_by_name(self) -> dict[str, list[str]]:
        by_name: dict[str, list[str]] = {}
        for name, value in self.headers:
            by_name.setdefault(name, []).append(value)
        return by_name

    @cached_property
    def _query_by_name(self) -> dict[str, list[str]]:
        by_name: dict[str, list[str]] = {}
        for name, value in self.query:
            by_name.setdefault(name, []).append(value)
        return by_name

    def header_values(self, name: str) -> list[str]:
        return self._headers_by_name.get(name.lower(), [])

    def header(self, name: str, default: str | None = None) -> str | None:
        values = self.header_values(name)
        return values[0] if values else default

    def query_values(self, name: str) -> list[str]:
        return self._query_by_name.get(name, [])

    @cached_property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @cached_property
    def _json(self) -> Any:
        if not self.body:
            return _NO_JSON
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError, RecursionError):  # nested past the parser's limit: not JSON here
            return _NO_JSON

    @property
    def has_json(self) -> bool:
        return self._json is not _NO_JSON

    def json(self) -> Any:
        """The body parsed as JSON; raises ValueError when it is not JSON."""
        if self._json is _NO_JSON:
            raise ValueError("body is not JSON")
        return self._json
