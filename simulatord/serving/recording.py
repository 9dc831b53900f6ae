"""Recording: every request a session receives, and every WebSocket frame, becomes one journal Exchange here."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TYPE_CHECKING

from simulatord.matching.matchers import Mismatch
from simulatord.matching.near_misses import NearMiss
from simulatord.matching.request import HttpRequest
from simulatord.responding.reply import Reply
from simulatord.responding.wire import End
from simulatord.sessions.journal import Exchange, ExchangeKind, Frame
from simulatord.sessions.session import Session

if TYPE_CHECKING:
    from simulatord.llm.simulation import LlmRecord
    from simulatord.responding.proxy import ProxyRecord
    from simulatord.webhooks.spec import WebhookRecord


def record(
    session: Session,
    request: HttpRequest,
    reply: Reply,
    now: float,
    *,
    stub_name: str = "",
    near_misses: tuple[NearMiss, ...] = (),
    end: End = End.COMPLETE,
    behaviours: Sequence[str] = (),
    kind: ExchangeKind = ExchangeKind.HTTP,
    body_size: int | None = None,
    llm: LlmRecord | None = None,
    webhook: WebhookRecord | None = None,
    proxy: ProxyRecord | None = None,
) -> Exchange:
    """Appends the exchange of one request and the reply it got, as sent; the body is kept up to the limit.
    `body_size` is the size of a body that was not kept at all (over the daemon's limit, say)."""
    size = len(request.body) if body_size is None else body_size
    if session.redact_headers:
        request, near_misses = _redacted(request, near_misses, session.redact_headers)
    limit = session.limits.max_body_bytes
    if len(request.body) > limit:
        request = dataclasses.replace(request, body=request.body[:limit])
    return session.journal.append(
        Exchange(
            sequence=0,
            request=request,
            body_size=size,
            body_truncated=size > len(request.body),
            stub_name=stub_name,
            near_misses=near_misses,
            status=reply.status,
            response_headers=tuple(reply.headers),
            response_body_size=reply.body_size,
            duration=max(0.0, now - request.receive_time),
            end=end,
            event_count=reply.events_sent,
            behaviours=tuple(behaviours),
            error=reply.error,
            kind=kind,
            llm=llm,
            webhook=webhook,
            proxy=proxy,
        )
    )


REDACTED = "[redacted]"


def _redacted(
    request: HttpRequest, near_misses: tuple[NearMiss, ...], names: frozenset[str]
) -> tuple[HttpRequest, tuple[NearMiss, ...]]:
    """The request and near misses as the journal keeps them: the values of `names` replaced, wherever a
    near miss would have quoted them too."""
    headers = tuple((n, REDACTED if n in names else v) for n, v in request.headers)
    # A mismatch names its field `headers.{name}`, prefixed by where it sits in all_of/any_of/none_of.
    quoted = tuple(f"headers.{name}" for name in names)
    misses = tuple(
        NearMiss(
            miss.stub_name,
            miss.description,
            tuple(Mismatch(m.field, m.expected, REDACTED) if _whole(m.field, quoted) else m for m in miss.mismatches),
        )
        for miss in near_misses
    )
    return dataclasses.replace(request, headers=headers), misses


def _whole(field: str, quoted: tuple[str, ...]) -> bool:
    return any(field == q or field.endswith("." + q) for q in quoted)


def frame_request(upgrade: HttpRequest) -> HttpRequest:
    """What a frame's exchange shows as its request: the upgrade's method, path and query, nothing heavy."""
    return dataclasses.replace(upgrade, headers=(), body=b"")


def record_frame(session: Session, request: HttpRequest, stub_name: str, frame: Frame, now: float) -> Exchange:
    """Appends one WebSocket frame; its payload is kept up to the journal's body limit."""
    limit = session.limits.max_body_bytes
    if frame.text is not None and len(frame.text) > limit:
        frame = dataclasses.replace(frame, text=frame.text[:limit])
    elif frame.binary is not None and len(frame.binary) > limit:
        frame = dataclasses.replace(frame, binary=frame.binary[:limit])
    return session.journal.append(
        Exchange(
            sequence=0,
            request=dataclasses.replace(request, receive_time=now),
            body_size=0,
            body_truncated=False,
            stub_name=stub_name,
            near_misses=(),
            status=0,
            response_headers=(),
            response_body_size=0,
            duration=0.0,
            kind=ExchangeKind.WEBSOCKET_FRAME,
            frame=frame,
        )
    )
