"""Response specifications (validated when programmed) and the reply a request gets (built per request)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from simulatord.errors import SpecErrors


@dataclass(frozen=True)
class ResponseSpec:
    """One programmed answer; the body is encoded once, when programmed, not per request."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    delay: float = 0.0  # seconds before the response starts
    # A templating.ResponseTemplate when the response is rendered per request; None keeps the plain path free.
    template: Any = None
    # A delivery.Shaping (timing, fault, stream) when delivery is programmed; None keeps the plain path free.
    shaping: Any = None
    # The headers as the ASGI server takes them (lower-case latin-1 bytes, Content-Length added), encoded once
    # here so that a plain reply costs no encoding per request.
    wire_headers: tuple[tuple[bytes, bytes], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "wire_headers", encode_headers(self.headers, self.body))


def encode_headers(headers: Sequence[tuple[str, str]], body: bytes | None = None) -> tuple[tuple[bytes, bytes], ...]:
    """Headers as an ASGI server takes them (lower-case latin-1 bytes); for a complete `body`, with a
    Content-Length unless one is set. A streamed response passes no body."""
    encoded = [(n.lower().encode("latin-1"), v.encode("latin-1")) for n, v in headers]
    if body is not None and not any(n == b"content-length" for n, _ in encoded):
        encoded.append((b"content-length", str(len(body)).encode()))
    return tuple(encoded)


@dataclass
class Reply:
    """What the HTTP edge sends for one request; behaviours may rewrite it before it is sent."""

    status: int
    # Behaviours that change headers or body assign new ones, never edit these in place: a plain reply shares
    # them with its spec, which is how `asgi_headers` knows the spec's encoding still describes it.
    headers: Sequence[tuple[str, str]]
    body: bytes = b""
    # A streamed body replaces `body` when set; each item is one chunk (or one SSE event).
    stream: AsyncIterator[bytes] | None = None
    delay: float = 0.0
    # The spec's delivery.Shaping: set, the edge hands the reply to delivery.deliver instead of sending it plainly.
    shaping: Any = None
    # The spec this reply was rendered from, if any.
    spec: ResponseSpec | None = None
    # Filled in while sending, for the journal.
    events_sent: int = 0
    notes: dict[str, Any] = field(default_factory=dict)

    def asgi_headers(self) -> tuple[tuple[bytes, bytes], ...]:
        """The headers to send: the spec's, encoded when it was programmed, while headers and body are still
        the spec's own objects (the plain path); otherwise encoded now."""
        spec = self.spec
        if self.stream is not None:
            return encode_headers(self.headers)
        if spec is not None and self.headers is spec.headers and self.body is spec.body:
            return spec.wire_headers
        return encode_headers(self.headers, self.body)


MAX_DELAY_SECONDS = 600.0


def response_spec(
    status: int,
    headers: Sequence[tuple[str, str]],
    body_kind: str | None,
    body: Any,
    delay: float,
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
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        errors.add(f"{where}.delay", f"must be between 0 and {MAX_DELAY_SECONDS:.0f} seconds")
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
    return ResponseSpec(status, tuple(headers) + tuple(extra), encoded, delay)
