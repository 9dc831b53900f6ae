"""Friendly read-only views of recorded exchanges, exchange filters, and the readable failure reports.

Example::

    for request in session.requests(method="POST"):
        assert request.headers["Content-Type"] == "application/json"
        assert request.json()["qty"] == 1
"""

from __future__ import annotations

import json as _json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from simulatord.v1 import exchange_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord_client._base import StubRef


class Headers(Mapping[str, str]):
    """Request headers with case-insensitive names; `headers["X-Id"]` is the first value, `get_all` has all.

    Example: `request.headers["content-type"] == request.headers["Content-Type"]`.
    """

    def __init__(self, pairs: Sequence[tuple[str, str]] = ()) -> None:
        self._pairs = tuple(pairs)
        self._first: dict[str, str] = {}
        for name, value in self._pairs:
            self._first.setdefault(name.lower(), value)

    def __getitem__(self, name: str) -> str:
        return self._first[name.lower()]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._first

    def __iter__(self) -> Iterator[str]:
        return iter(self._first)

    def __len__(self) -> int:
        return len(self._first)

    def get_all(self, name: str) -> list[str]:
        """Every value of `name`, in order."""
        lowered = name.lower()
        return [value for key, value in self._pairs if key.lower() == lowered]

    def items_all(self) -> tuple[tuple[str, str], ...]:
        """Every (name, value) pair, in the order received."""
        return self._pairs

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return {k.lower(): v for k, v in other.items()} == self._first
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({dict(self._first)!r})"


@dataclass(frozen=True)
class Mismatch:
    """Why a near-miss stub did not match: e.g. field `headers.authorization`, expected / actual text."""

    field: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected}, got {self.actual!r}"


@dataclass(frozen=True)
class NearMiss:
    """A stub that almost matched an unmatched request, and each field that differed."""

    stub: str
    description: str
    mismatches: tuple[Mismatch, ...]

    def __str__(self) -> str:
        label = self.description or self.stub.rsplit("/", 1)[-1]
        return f"{label}: " + "; ".join(str(m) for m in self.mismatches)


@dataclass(frozen=True, eq=False)
class Request:
    """One request a session received and what it answered.

    Attributes: `sequence`, `method`, `path`, `query` (first value per name; `query_params` has every
    pair), `query_string`, `headers` (case-insensitive), `body` (bytes), `stub` (id of the stub that
    answered, "" when unmatched), `status`, `near_misses`, and `exchange` (the raw message).

    Example: `assert session.requests(path="/orders")[0].json() == {"qty": 1}`.
    """

    sequence: int
    method: str
    path: str
    query: Mapping[str, str]
    query_params: tuple[tuple[str, str], ...]
    query_string: str
    headers: Headers
    body: bytes
    stub: str
    stub_name: str
    status: int
    near_misses: tuple[NearMiss, ...]
    exchange: exchange_pb2.Exchange = field(repr=False)

    @classmethod
    def from_exchange(cls, exchange: exchange_pb2.Exchange) -> Request:
        """The record for an Exchange message."""
        req = exchange.request
        params = tuple((q.name, q.value) for q in req.query)
        query: dict[str, str] = {}
        for name, value in params:
            query.setdefault(name, value)
        return cls(
            sequence=exchange.sequence,
            method=req.method,
            path=req.path,
            query=query,
            query_params=params,
            query_string=req.query_string,
            headers=Headers([(h.name, h.value) for h in req.headers]),
            body=bytes(req.body),
            stub=exchange.stub.rsplit("/", 1)[-1] if exchange.stub else "",
            stub_name=exchange.stub,
            status=exchange.response.status,
            near_misses=tuple(
                NearMiss(
                    m.stub,
                    m.description,
                    tuple(Mismatch(x.field, x.expected, x.actual) for x in m.mismatches),
                )
                for m in exchange.near_misses
            ),
            exchange=exchange,
        )

    @property
    def matched(self) -> bool:
        """True when a stub answered."""
        return bool(self.stub_name)

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (invalid bytes replaced)."""
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON (raises ValueError when it is not JSON)."""
        return _json.loads(self.body)

    @property
    def url_path(self) -> str:
        """The path with its query string, as sent."""
        return f"{self.path}?{self.query_string}" if self.query_string else self.path

    def __str__(self) -> str:
        target = self.stub or "unmatched"
        return f"#{self.sequence} {self.method} {self.url_path} -> {self.status} ({target})"


class FilterOptions(TypedDict, total=False):
    """Which exchanges: `method`, `path` (exact), `path_prefix`, `matched` (True/False) and `stub` (id, name
    or the handle `Session.stub()` returned)."""

    method: str | None
    path: str | None
    path_prefix: str | None
    matched: bool | None
    stub: StubRef | str | None


def exchange_filter(options: Mapping[str, Any]) -> exchange_pb2.ExchangeFilter:
    """An ExchangeFilter from `FilterOptions` keywords (None means "any")."""
    unknown = set(options) - set(FilterOptions.__annotations__)
    if unknown:
        raise TypeError(f"unknown filter keyword(s): {', '.join(sorted(unknown))}")
    out = exchange_pb2.ExchangeFilter()
    if options.get("method"):
        out.method = str(options["method"]).upper()
    if options.get("path"):
        out.path = options["path"]
    if options.get("path_prefix"):
        out.path_prefix = options["path_prefix"]
    matched = options.get("matched")
    if matched is not None:
        out.match_state = exchange_pb2.MATCH_STATE_MATCHED if matched else exchange_pb2.MATCH_STATE_UNMATCHED
    stub = options.get("stub")
    if stub:
        out.stub = stub if isinstance(stub, str) else str(stub.name)
    return out


def describe_filter(options: Mapping[str, Any]) -> str:
    """`POST /users*, unmatched` style text for a filter, for messages; `any request` when empty."""
    method = str(options.get("method") or "").upper()
    path = options.get("path") or (f"{options['path_prefix']}*" if options.get("path_prefix") else "")
    parts = []
    if method or path:
        parts.append(f"{method or '*'} {path or '*'}")
    if options.get("matched") is True:
        parts.append("matched")
    elif options.get("matched") is False:
        parts.append("unmatched")
    if options.get("stub"):
        stub = options["stub"]
        parts.append(f"answered by {stub if isinstance(stub, str) else stub.id}")
    return ", ".join(parts) or "any request"


def _listing(requests: Sequence[Request], indent: str = "    ") -> list[str]:
    lines = []
    for request in requests:
        lines.append(f"{indent}{request}")
        lines.extend(f"{indent}    near miss {miss}" for miss in request.near_misses)
    return lines


def wait_failure(
    session: str, options: Mapping[str, Any], count: int, timeout: float, reply: pb.WaitForExchangesResponse
) -> str:
    """The AssertionError text for a WaitForExchanges that timed out: what was wanted, what arrived instead."""
    lines = [
        f"timed out after {timeout:g}s waiting for {count} request(s) matching [{describe_filter(options)}] "
        f"in {session}: {reply.count} arrived"
    ]
    matching = [Request.from_exchange(e) for e in reply.exchanges]
    others = [Request.from_exchange(e) for e in reply.other_exchanges]
    if matching:
        lines.append("  matching requests:")
        lines.extend(_listing(matching))
    if others:
        lines.append("  other requests that arrived (latest, at most 10):")
        lines.extend(_listing(others))
    if not matching and not others:
        lines.append("  the session received no requests at all")
    return "\n".join(lines)


def describe_matcher(matcher: stub_pb2.RequestMatcher) -> str:
    """`GET /users/{id} (+1 condition)` style text for a RequestMatcher."""
    method = matcher.method or "*"
    kind = matcher.path.WhichOneof("kind")
    if kind is None:
        path = "any path"
    else:
        operand = getattr(matcher.path, kind)
        path = {"prefix": f"{operand}*", "regex": f"~{operand}"}.get(kind, operand)
    extra = (
        len(matcher.query)
        + len(matcher.headers)
        + len(matcher.body)
        + len(matcher.all_of)
        + len(matcher.any_of)
        + len(matcher.none_of)
    )
    more = f" (+{extra} condition{'s' if extra > 1 else ''})" if extra else ""
    return f"{method} {path}{more}"


def _stub_label(name: str, description: str, stubs: Mapping[str, stub_pb2.Stub]) -> str:
    label = name.rsplit("/", 1)[-1]
    if name in stubs:
        label += f" [{describe_matcher(stubs[name].request)}]"
    if description:
        label += f" {description!r}"
    return label


def verify_failure(session: str, report: pb.VerifySessionResponse, stubs: Mapping[str, stub_pb2.Stub]) -> str:
    """The AssertionError text for a failed VerifySession: each problem on its own line, stubs shown by id
    and what they match, unmatched requests with the nearest stubs and the fields that differed."""
    problems = []
    lines: list[str] = []
    if report.unmet_expectations:
        problems.append(f"{len(report.unmet_expectations)} unmet expectation(s)")
        lines.append("Stubs whose expected call count was not met:")
        lines.extend(
            f"  - {_stub_label(r.stub, r.description, stubs)}: expected {r.expected}, matched {r.match_count} time(s)"
            for r in report.unmet_expectations
        )
    if report.unused_stubs:
        problems.append(f"{len(report.unused_stubs)} unused stub(s)")
        lines.append("Stubs never used:")
        lines.extend(f"  - {_stub_label(r.stub, r.description, stubs)}" for r in report.unused_stubs)
    if report.unmatched_exchanges:
        problems.append(f"{len(report.unmatched_exchanges)} unmatched request(s)")
        lines.append("Requests no stub matched:")
        for exchange in report.unmatched_exchanges:
            request = Request.from_exchange(exchange)
            lines.append(f"  - #{request.sequence} {request.method} {request.url_path} -> {request.status}")
            for miss in exchange.near_misses:
                lines.append(f"      nearest {_stub_label(miss.stub, miss.description, stubs)}:")
                lines.extend(f"        {m.field}: expected {m.expected}, got {m.actual!r}" for m in miss.mismatches)
            if not exchange.near_misses:
                lines.append("      (the session has no stubs)")
    if not lines and report.summary:
        lines.append(report.summary)  # a newer daemon reporting something this client does not know yet
    headline = f"simulatord session {session} failed verification: {', '.join(problems) or 'see below'}"
    return "\n".join([headline, *lines])
