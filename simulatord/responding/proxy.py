"""The proxy behaviour: a response that forwards the request to a real upstream, and what recording keeps of it."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from simulatord.errors import SpecErrors
from simulatord.matching.request import HttpRequest
from simulatord.responding.reply import ResponseSpec, header_problem
from simulatord.responding.timing import MAX_DELAY_SECONDS
from simulatord.responding.wire import End

if TYPE_CHECKING:
    from simulatord.responding.behaviour import Context, Proceed
    from simulatord.responding.reply import Reply

DEFAULT_TIMEOUT = 30.0
# Secrets a recording must not write into a file that ends up in a repository.
DEFAULT_SECRETS = frozenset({"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"})
MAX_RECORDED_BODY = 32 * 1024 * 1024
MAX_TIMING_SCALE = 100.0
# RFC 9110 7.6.1: these describe one connection, so they are neither forwarded nor recorded.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}
)


class ProxyMode(StrEnum):
    TRANSPARENT = "transparent"
    RECORD_ONCE = "record_once"
    RECORD_ALWAYS = "record_always"


@dataclass(frozen=True)
class RecordOptions:
    """What a recorded stub matches on and what it leaves out (see the RecordOptions message)."""

    match_headers: tuple[str, ...] = ()  # lower case
    match_json_paths: tuple[tuple[str, Any], ...] = ()  # (expression, compiled query)
    match_body: bool = False
    ignore_query: bool = False
    redact: frozenset[str] = DEFAULT_SECRETS
    timing_scale: float = 1.0


@dataclass(frozen=True)
class ProxyRecord:
    """What the journal keeps of a forwarded request."""

    url: str
    latency: float = 0.0  # seconds from forwarding to the upstream's response headers
    recorded_stub: str = ""
    not_recorded: str = ""


@dataclass(frozen=True)
class Recording:
    """One upstream answer as a recorder turns it into a stub: the request, and the answer as it arrived."""

    request: HttpRequest
    status: int
    headers: tuple[tuple[str, str], ...]  # without hop-by-hop fields and content-length
    body: bytes
    # For an SSE answer, each event block as received and the seconds waited before it; None otherwise.
    events: tuple[tuple[bytes, float], ...] | None = None
    aborted: bool = False  # the upstream broke off an SSE stream after `events`
    url: str = ""


# How a proxy reaches its upstream: the serving layer, which owns the HTTP client and the session, puts one
# into the context of every chain it runs.
Forward = Callable[["Proxy", "Reply", "Context"], Awaitable[End]]


@dataclass(frozen=True)
class Proxy:
    """The behaviour that delivers a response by forwarding the request (see the Proxy message)."""

    upstream: str  # scheme://host[:port][/prefix], without a trailing slash
    mode: ProxyMode = ProxyMode.TRANSPARENT
    request_headers: tuple[tuple[str, str], ...] = ()  # names lower case
    timeout: float = DEFAULT_TIMEOUT
    record: RecordOptions = RecordOptions()
    name = "proxy"

    @property
    def host(self) -> str:
        return urlsplit(self.upstream).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.upstream)
        return parts.port or (443 if parts.scheme == "https" else 80)

    async def apply(self, reply: Reply, context: Context, proceed: Proceed) -> End:
        if context.forward is None:  # validation keeps proxies off WebSocket stubs; this says so if it ever fails
            return await context.finish(reply.explain(500, "PROXY_UNSUPPORTED", "this exchange cannot be proxied"))
        return await context.forward(self, reply, context)


def proxy(
    spec: ResponseSpec,
    upstream: str,
    mode: ProxyMode,
    request_headers: tuple[tuple[str, str], ...],
    timeout: float | None,
    record: RecordOptions,
    where: str,
    errors: SpecErrors,
) -> Proxy:
    """Checks a proxy response when programmed: the upstream URL, the headers it sets, what it may be combined with."""
    if spec.status != 200 or spec.headers or spec.body:
        errors.add(where, "the upstream's status, headers and body are sent: leave status, headers and body_* unset")
    parts = urlsplit(upstream)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        errors.add(f"{where}.upstream", f"must be an http:// or https:// URL with a host, got {upstream[:80]!r}")
    elif parts.query or parts.fragment or "?" in upstream or "#" in upstream:
        errors.add(f"{where}.upstream", "must not have a query or fragment: the request's own are forwarded")
    else:
        try:
            parts.port  # noqa: B018 - raises on a port that is not a number or out of range
        except ValueError as exc:
            errors.add(f"{where}.upstream", f"invalid port: {exc}")
    for i, (name, value) in enumerate(request_headers):
        problem = header_problem(name, value)
        if problem is not None:
            errors.add(f"{where}.request_headers[{i}]", problem)
        elif name.lower() in HOP_BY_HOP | {"host", "content-length"}:
            errors.add(f"{where}.request_headers[{i}]", f"{name} is set by the daemon for the upstream connection")
    if timeout is not None and not 0 < timeout <= MAX_DELAY_SECONDS:
        errors.add(f"{where}.timeout", f"must be positive and at most {MAX_DELAY_SECONDS:.0f} seconds")
    return Proxy(
        upstream.rstrip("/"),
        mode,
        tuple((n.lower(), v) for n, v in request_headers),
        timeout or DEFAULT_TIMEOUT,
        record,
    )


def record_options(
    match_headers: list[str],
    match_json_paths: list[str],
    match_body: bool,
    ignore_query: bool,
    redact_headers: list[str],
    keep_secrets: bool,
    timing_scale: float | None,
    where: str,
    errors: SpecErrors,
) -> RecordOptions:
    """Checks the recording options when programmed; JSONPath expressions are compiled now."""
    from simulatord.matching.matchers import compile_json_path  # JSONPath loads only where recording needs it

    for field_name, names in (("match_headers", match_headers), ("redact_headers", redact_headers)):
        for i, name in enumerate(names):
            if header_problem(name, "x") is not None:
                errors.add(f"{where}.{field_name}[{i}]", f"{name[:60]!r} is not an HTTP field name")
    paths = []
    for i, expression in enumerate(match_json_paths):
        query = compile_json_path(expression, f"{where}.match_json_paths[{i}]", errors)
        if query is not None:
            paths.append((expression, query))
    if keep_secrets and redact_headers:
        errors.add(f"{where}.redact_headers", "must be empty with keep_secrets (which redacts nothing)")
    scale = 1.0 if timing_scale is None else timing_scale
    if not (math.isfinite(scale) and 0 <= scale <= MAX_TIMING_SCALE):
        errors.add(f"{where}.timing_scale", f"must be between 0 and {MAX_TIMING_SCALE:.0f}")
    if keep_secrets:
        redact: frozenset[str] = frozenset()
    else:
        redact = frozenset(n.lower() for n in redact_headers) if redact_headers else DEFAULT_SECRETS
    return RecordOptions(
        match_headers=tuple(dict.fromkeys(n.lower() for n in match_headers)),
        match_json_paths=tuple(paths),
        match_body=match_body,
        ignore_query=ignore_query,
        redact=redact,
        timing_scale=scale,
    )
