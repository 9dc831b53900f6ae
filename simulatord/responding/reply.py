"""Response specifications (validated when programmed) and the reply a request gets (built per request)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simulatord.errors import SpecErrors

if TYPE_CHECKING:
    from simulatord.responding.behaviour import Behaviour

MAX_DELAY_SECONDS = 600.0


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
    if body is not None and not any(n == b"content-length" for n, _ in encoded):
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


def json_reply(status: int, payload: Any, headers: Sequence[tuple[str, str]] = ()) -> Reply:
    """A reply the daemon writes itself (errors, near misses): a JSON body."""
    return Reply(status, [("content-type", "application/json"), *headers], json.dumps(payload).encode())


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
    for i, (name, value) in enumerate(headers):
        if not name or any(c in name for c in " :\r\n\t") or "\r" in value or "\n" in value:
            errors.add(f"{where}.headers[{i}]", f"invalid header {name!r}: {value!r}")
    names = {name.lower() for name, _ in headers}
    extra: list[tuple[str, str]] = []
    encoded = b""
    if body_kind == "body_bytes":
        encoded = bytes(body)
    elif body_kind == "body_text":
        encoded = str(body).encode()
        if "content-type" not in names:
            extra.append(("content-type", "text/plain; charset=utf-8"))
    elif body_kind == "body_json":
        encoded = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
        if "content-type" not in names:
            extra.append(("content-type", "application/json"))
    return ResponseSpec(status, tuple(headers) + tuple(extra), encoded)
