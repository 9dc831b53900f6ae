"""Finds the session a request addresses: routing header, virtual host, or base-URL path prefix."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from simulatord.errors import InvalidArgument
from simulatord.matching.request import Routing
from simulatord.names import SessionKey, parse_session, valid_id

ROUTING_HEADER = b"x-simulatord-session"
PREFIX = "/tenants/"


@dataclass(frozen=True, slots=True)
class Route:
    key: SessionKey
    path: str  # below the session's base URL, starting with "/"
    routing: Routing
    # Found here because routing reads every header name anyway: both Content-Length and Transfer-Encoding
    # (RFC 9112 6.3 says to treat it as an error and close), and whether a body is announced at all.
    ambiguous_framing: bool = False
    announces_body: bool = True


def _key_from_name(name: str) -> SessionKey | None:
    parts = name.strip().strip("/").split("/")
    if (
        len(parts) == 4
        and parts[0] == "tenants"
        and parts[2] == "sessions"
        and valid_id(parts[1])
        and valid_id(parts[3])
    ):
        return SessionKey(parts[1], parts[3])
    return None


@lru_cache(maxsize=4096)
def _path_key(tenant: str, session: str) -> SessionKey | None:
    # Every request of a session carries the same two ids: validate them once, not per request.
    return SessionKey(tenant, session) if valid_id(tenant) and valid_id(session) else None


def _escaped_prefix(raw_path: bytes, parts: list[str]) -> bool:
    """Whether the base-URL part of the path was percent-escaped on the wire (`/tenants/a%2Fb/...`): the
    decoded path then splits elsewhere than what the client wrote, so it addresses no session."""
    raw = raw_path.decode("latin-1").split("/", 5)
    return len(raw) < 5 or raw[1] != "tenants" or raw[2] != parts[2] or raw[3] != "sessions" or raw[4] != parts[4]


def route(
    path: str, headers: list[tuple[bytes, bytes]], host_suffix: str, raw_path: bytes | None = None
) -> Route | None:
    """Reads the addressing of one request; None when it addresses no session at all."""
    host = routing = b""
    length = chunked = False
    announced = False  # a body follows the headers (HTTP/2 may send one without either header: see edge)
    for name, value in headers:
        if name == b"host":
            host = value
        elif name == b"content-length":
            length = True
            announced = announced or value.strip() != b"0"
        elif name == b"transfer-encoding":
            chunked = announced = True
        elif name == ROUTING_HEADER:
            routing = value
    ambiguous = length and chunked
    if routing:
        key = _key_from_name(routing.decode("latin-1"))
        if key is not None:
            return Route(key, path, Routing.HEADER, ambiguous, announced)
    if host and host_suffix:
        # Host names are case-insensitive and may end in the root's dot (RFC 9110 4.2.3, RFC 1034 3.1).
        hostname = host.decode("latin-1").rsplit(":", 1)[0].lower().removesuffix(".") if host[:1] != b"[" else ""
        suffix = "." + host_suffix.lower()
        if hostname.endswith(suffix):
            labels = hostname[: -len(suffix)].split(".")
            if len(labels) == 2 and valid_id(labels[0]) and valid_id(labels[1]):
                return Route(SessionKey(labels[1], labels[0]), path, Routing.HOST, ambiguous, announced)
    if path.startswith(PREFIX):
        parts = path.split("/", 5)  # "", "tenants", t, "sessions", s, rest
        if len(parts) >= 5 and parts[3] == "sessions" and (key := _path_key(parts[2], parts[4])) is not None:
            if raw_path is not None and b"%" in raw_path and _escaped_prefix(raw_path, parts):
                return None
            rest = "/" + parts[5] if len(parts) == 6 else "/"
            return Route(key, rest, Routing.PATH_PREFIX, ambiguous, announced)
    return None


def header_problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why the routing header of a request that addresses no session names none; None without the header.
    Called only for requests `route` found no session for, so the simulated traffic's path never pays for it."""
    for name, value in headers:
        if name == ROUTING_HEADER:
            try:
                parse_session(value.decode("latin-1").strip().strip("/"), ROUTING_HEADER.decode())
            except InvalidArgument as exc:
                return exc.violations[0].description
    return None
