"""Exchanges as the client shows them: friendly read-only `Exchange` records, and the filters that select them.

Example::

    for exchange in session.exchanges(method="POST"):
        assert exchange.headers["Content-Type"] == "application/json"
        assert exchange.json()["qty"] == 1
"""

from __future__ import annotations

import json as _json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from simulatord.v1 import exchange_pb2, llm_pb2, webhook_pb2
from simulatord_client.stub_refs import StubRef


def _last_part(name: str) -> str:
    return name.rsplit("/", 1)[-1]


_KINDS: dict[exchange_pb2.ExchangeKind.ValueType, str] = {
    exchange_pb2.EXCHANGE_KIND_UNSPECIFIED: "http",
    exchange_pb2.EXCHANGE_KIND_HTTP: "http",
    exchange_pb2.EXCHANGE_KIND_WEBSOCKET_UPGRADE: "websocket_upgrade",
    exchange_pb2.EXCHANGE_KIND_WEBSOCKET_FRAME: "websocket_frame",
    exchange_pb2.EXCHANGE_KIND_WEBHOOK: "webhook",
}


class Headers(Mapping[str, str]):
    """Request headers with case-insensitive names; `headers["X-Id"]` is the first value, `get_all` has all.

    Example: `exchange.headers["content-type"] == exchange.headers["Content-Type"]`.
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
    """A stub that almost matched an unmatched request (`stub` is its full name), and each field that differed."""

    stub: str
    description: str
    mismatches: tuple[Mismatch, ...]

    @property
    def stub_id(self) -> str:
        """The id of the stub, the last part of `stub`."""
        return _last_part(self.stub)

    def __str__(self) -> str:
        return f"{self.description or self.stub_id}: " + "; ".join(str(m) for m in self.mismatches)


@dataclass(frozen=True)
class LlmCall:
    """What a request to a session's LLM simulation was, as parsed: the `endpoint` (`chat.completions`,
    `responses`, `embeddings`, `models`, `messages`, `messages.count_tokens`), `model`, `message_count`, the
    `tools` offered, the id of the `rule` that answered ("" for the default reply or a refusal), `stream`, the
    `turn` (user messages so far), the usage reported, and `refusal_reason` when the request was refused.

    Example: `assert [e.llm.rule for e in s.exchanges() if e.llm] == ["rate-limit", "rate-limit", "answer"]`.
    """

    endpoint: str
    model: str
    message_count: int
    tools: tuple[str, ...]
    rule: str
    stream: bool
    turn: int
    input_tokens: int
    output_tokens: int
    refusal_reason: str

    @classmethod
    def from_message(cls, llm: llm_pb2.LlmExchange) -> LlmCall:
        """The record for an LlmExchange message."""
        return cls(
            endpoint=llm.endpoint,
            model=llm.model,
            message_count=llm.message_count,
            tools=tuple(llm.tools),
            rule=llm.rule,
            stream=llm.stream,
            turn=llm.turn,
            input_tokens=llm.usage.input_tokens,
            output_tokens=llm.usage.output_tokens,
            refusal_reason=llm.refusal_reason,
        )

    @property
    def refused(self) -> bool:
        """True when the simulation refused the request (strict contract, malformed body, rate limit)."""
        return bool(self.refusal_reason)


@dataclass(frozen=True)
class WebhookAttempt:
    """One attempt to deliver a webhook the daemon sent (an exchange of kind `"webhook"`): the `delivery_id`
    (the same on every attempt of a delivery), `attempt` (1 for the first), the `url` delivered to, the receiver's
    `response_body`, the connection `error` or timeout instead of an answer, and `callback_of`, the full name of
    the stub whose callback sent it ("" for `deliver_webhooks()`). The exchange's `method`, `path`, `headers` and
    `body` are what was sent, its `status` what the receiver answered (0: no answer).

    Example: `assert [e.webhook.attempt for e in s.exchanges() if e.webhook] == [1, 2, 3]`.
    """

    delivery_id: str
    attempt: int
    url: str
    response_body: bytes
    error: str
    callback_of: str

    @classmethod
    def from_message(cls, attempt: webhook_pb2.WebhookAttempt) -> WebhookAttempt:
        """The record for a WebhookAttempt message."""
        return cls(
            delivery_id=attempt.delivery_id,
            attempt=attempt.attempt,
            url=attempt.url,
            response_body=bytes(attempt.response_body),
            error=attempt.error,
            callback_of=attempt.callback_of,
        )


@dataclass(frozen=True, eq=False)
class Exchange:
    """One recorded request and what the session served, or a miss with its nearest stubs.

    Attributes: `sequence`, `method`, `path`, `query` (first value per name; `query_params` has every
    pair), `query_string`, `headers` (case-insensitive), `body` (bytes), `stub` (full name of the stub
    that answered, "" when unmatched; `stub_id` is its id), `status`, `behaviours` (what shaped the response,
    in the order it ran: `template`, `delay`, `fault`, ...), `near_misses`, `llm` (an `LlmCall` when the
    session's LLM simulation answered, else None), `kind` (`"http"`, `"websocket_upgrade"`, `"websocket_frame"`
    or `"webhook"`), `webhook` (a `WebhookAttempt` for a webhook the daemon sent, else None; `method`, `path`,
    `headers` and `body` are then what it sent, `status` the receiver's answer), `proxy` (for a request a proxy
    stub forwarded, the `ProxyExchange` message: `url`, `recorded_stub`, `not_recorded`; else None) and
    `exchange` (the raw message).

    Example: `assert session.exchanges(path="/orders")[0].json() == {"qty": 1}`.
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
    status: int
    behaviours: tuple[str, ...]
    near_misses: tuple[NearMiss, ...]
    llm: LlmCall | None
    exchange: exchange_pb2.Exchange = field(repr=False)
    kind: str = "http"
    webhook: WebhookAttempt | None = None
    proxy: exchange_pb2.ProxyExchange | None = None

    @classmethod
    def from_message(cls, exchange: exchange_pb2.Exchange) -> Exchange:
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
            stub=exchange.stub,
            status=exchange.response.status,
            behaviours=tuple(exchange.response.behaviours),
            near_misses=tuple(
                NearMiss(
                    m.stub,
                    m.description,
                    tuple(Mismatch(x.field, x.expected, x.actual) for x in m.mismatches),
                )
                for m in exchange.near_misses
            ),
            llm=LlmCall.from_message(exchange.llm) if exchange.HasField("llm") else None,
            exchange=exchange,
            kind=_KINDS.get(exchange.kind, "unknown"),
            webhook=WebhookAttempt.from_message(exchange.webhook) if exchange.HasField("webhook") else None,
            proxy=exchange.proxy if exchange.HasField("proxy") else None,
        )

    @property
    def stub_id(self) -> str:
        """The id of the stub that answered (the last part of `stub`), "" when unmatched."""
        return _last_part(self.stub) if self.stub else ""

    @property
    def matched(self) -> bool:
        """True when a stub answered (never for a webhook the daemon sent: its `stub` is the stub whose callback
        sent it)."""
        return bool(self.stub) and self.kind != "webhook"

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
        if self.webhook is not None:
            attempt = self.webhook
            outcome = attempt.error or self.status
            return f"#{self.sequence} webhook {self.method} {attempt.url} -> {outcome} (attempt {attempt.attempt})"
        return f"#{self.sequence} {self.method} {self.url_path} -> {self.status} ({self.stub_id or 'unmatched'})"


def exchange_records(messages: Sequence[exchange_pb2.Exchange]) -> list[Exchange]:
    """The records for Exchange messages, in their order."""
    return [Exchange.from_message(e) for e in messages]


class FilterOptions(TypedDict, total=False):
    """Which exchanges: `method`, `path` (exact), `path_prefix`, `matched` (True/False) and `stub` (id, full
    name, or the StubRef `Session.stub()` returned)."""

    method: str | None
    path: str | None
    path_prefix: str | None
    matched: bool | None
    stub: StubRef | str | None


def exchange_filter(options: FilterOptions) -> exchange_pb2.ExchangeFilter:
    """An ExchangeFilter from `FilterOptions` keywords (None means "any")."""
    unknown = set(options) - set(FilterOptions.__annotations__)
    if unknown:
        raise TypeError(f"unknown filter keyword(s): {', '.join(sorted(unknown))}")
    out = exchange_pb2.ExchangeFilter()
    if method := options.get("method"):
        out.method = method.upper()
    if path := options.get("path"):
        out.path = path
    if path_prefix := options.get("path_prefix"):
        out.path_prefix = path_prefix
    matched = options.get("matched")
    if matched is not None:
        out.match_state = exchange_pb2.MATCH_STATE_MATCHED if matched else exchange_pb2.MATCH_STATE_UNMATCHED
    if stub := options.get("stub"):
        # The daemon takes a bare id as well as a full name, so an id goes as it is.
        out.stub = stub if isinstance(stub, str) else stub.name
    return out
