"""Response specifications (validated when programmed) and the reply a request gets (built per request)."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulatord.errors import SpecErrors

if TYPE_CHECKING:
    from simulatord.responding.behaviour import Behaviour

MAX_DELAY_SECONDS = 600.0
# RFC 9110 5.1 and 5.5: a field name is a token; a value is visible latin-1 characters, with spaces and tabs
# only between them. Anything else the HTTP server refuses to send, so it is refused when programmed instead.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_FIELD_VALUE = re.compile(r"(?:[\x21-\x7e\x80-\xff](?:[ \t]*[\x21-\x7e\x80-\xff])*)?")
# Framing is the daemon's: it sets these from the body it sends (faults send bodies shorter than promised).
FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding"})
MAX_SHOWN = 60


def header_name(name: str) -> bool:
    """Whether `name` is an HTTP field name (RFC 9110 5.1: a token)."""
    return _TOKEN.fullmatch(name) is not None


def header_problem(name: str, value: str) -> str | None:
    """Why a response header cannot be sent as it is, or None when it can."""
    if not header_name(name):
        return f"name {name[:MAX_SHOWN]!r} is not an HTTP field name (RFC 9110 token characters only)"
    if not _FIELD_VALUE.fullmatch(value):
        return (
            f"value {value[:MAX_SHOWN]!r} is not an HTTP field value: latin-1 visible characters, with spaces "
            "and tabs only between them (no control characters, no leading or trailing whitespace)"
        )
    return None


@dataclass(frozen=True)
class ResponseSpec:
    """One programmed answer; the body is encoded once, when programmed, not per request."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    # What happens between rendering and delivery, in chain order; empty keeps the request on the plain path.
    behaviours: tuple[Behaviour, ...] = ()
    # The headers as the ASGI server takes them (lower-case latin-1 bytes, Content-Length added), encoded once
    # here so that a plain reply costs no encoding per request.
    wire_headers: tuple[tuple[bytes, bytes], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wire_headers", encode_headers(self.headers, self.body))

    def render(self) -> Reply:
        """The reply as programmed, before any behaviour; it shares the spec's headers and body."""
        return Reply(self.status, self.headers, self.body, spec=self)


def encode_headers(headers: Sequence[tuple[str, str]], body: bytes | None = None) -> tuple[tuple[bytes, bytes], ...]:
    """Headers as an ASGI server takes them (lower-case latin-1 bytes); for a complete `body`, with a
    Content-Length unless one is set. A streamed response passes no body."""
    encoded = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]
    # A membership test on a list of names, not any() over a generator: this runs for every shaped reply.
    if body is not None and b"content-length" not in [n for n, _ in encoded]:
        encoded.append((b"content-length", str(len(body)).encode()))
    return tuple(encoded)


@dataclass
class Reply:
    """What is sent for one request; behaviours may rewrite it before it is sent."""

    status: int
    # Behaviours that change headers or body assign new ones, never edit these in place: a plain reply shares
    # them with its spec, which is how `asgi_headers` knows the spec's encoding still describes it.
    headers: Sequence[tuple[str, str]]
    body: bytes = b""
    # The spec this reply was rendered from, if any.
    spec: ResponseSpec | None = None
    # Filled in by deliveries that send piece by piece, for the journal; None: the whole body went out.
    sent_bytes: int | None = None
    events_sent: int = 0
    error: str = ""  # what went wrong while serving it, for the journal
    # A stream's pieces as a template rendered them for this request (None entries: as programmed).
    pieces: tuple[bytes | None, ...] | None = None

    def asgi_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers to send: the spec's, encoded when it was programmed, while headers and body are still
        the spec's own objects (the plain path); otherwise encoded now."""
        spec = self.spec
        if spec is not None and self.headers is spec.headers and self.body is spec.body:
            return spec.wire_headers
        return encode_headers(self.headers, self.body)

    @property
    def body_size(self) -> int:
        """Bytes of body that went out."""
        return len(self.body) if self.sent_bytes is None else self.sent_bytes

    def explain(self, status: int, reason: str, message: str, headers: Sequence[tuple[str, str]] = ()) -> Reply:
        """Becomes the daemon's own answer saying what went wrong (a JSON body); the journal records `message`.
        In place, because the behaviour chain and the journal hold this very reply."""
        self.status = status
        self.headers = [("content-type", "application/json"), *headers]
        self.body = json.dumps({"error": message, "reason": reason}).encode()
        self.error = message
        return self

    def not_sent(self) -> Reply:
        """What the journal records of a reply none of which is known to have gone out: no status, no body."""
        self.status, self.headers, self.sent_bytes = 0, [], 0
        return self


def json_reply(status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> Reply:
    """A reply the daemon writes itself (errors, near misses): a JSON body."""
    return Reply(status, [("content-type", "application/json"), *headers], json.dumps(payload).encode())


def error_reply(reason: str, message: str, headers: Sequence[tuple[str, str]] = (), status: int = 500) -> Reply:
    """The answer that explains what went wrong (a 500 unless said otherwise); the journal records `message`."""
    return Reply(status, ()).explain(status, reason, message, headers)


def response_spec(
    status: int,
    headers: Sequence[tuple[str, str]],
    body_kind: str | None,
    body: Any,
    where: str,
    errors: SpecErrors,
) -> ResponseSpec:
    """Builds a ResponseSpec, encoding the body now and defaulting its content type."""
    if status == 0:
        status = 200
    if not 100 <= status <= 599:
        errors.add(f"{where}.status", f"must be 0 or between 100 and 599, got {status}")
    sendable: list[tuple[str, str]] = []  # a refused header stays out even of the spec that is thrown away
    for i, (name, value) in enumerate(headers):
        problem = header_problem(name, value)
        if problem is not None:
            errors.add(f"{where}.headers[{i}]", problem)
        elif name.lower() in FRAMING_HEADERS:
            errors.add(
                f"{where}.headers[{i}]",
                f"{name} is set by the daemon from the body; for a body shorter than promised use fault TRUNCATED_BODY",
            )
        else:
            sendable.append((name, value))
    encoded, content_type = encode_body(body_kind, body, sendable)
    return ResponseSpec(status, (*sendable, *content_type), encoded)


def encode_body(
    body_kind: str | None, body: Any, headers: Sequence[tuple[str, str]]
) -> tuple[bytes, tuple[tuple[str, str], ...]]:
    """A programmed body (the `body_bytes`, `body_text` or `body_json` oneof field) as bytes, and the content
    type it implies unless `headers` set one."""
    implied = ""
    encoded = b""
    if body_kind == "body_bytes":
        encoded = bytes(body)
    elif body_kind == "body_text":
        encoded, implied = str(body).encode(), "text/plain; charset=utf-8"
    elif body_kind == "body_json":
        encoded, implied = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode(), "application/json"
    if not implied or any(name.lower() == "content-type" for name, _ in headers):
        return encoded, ()
    return encoded, (("content-type", implied),)
