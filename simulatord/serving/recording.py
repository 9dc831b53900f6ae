"""Recording: every request a session receives, and every WebSocket frame, becomes one journal Exchange here."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from simulatord.matching.near_misses import NearMiss
from simulatord.matching.request import HttpRequest
from simulatord.responding.reply import Reply
from simulatord.responding.wire import End
from simulatord.sessions.journal import Exchange, ExchangeKind, Frame
from simulatord.sessions.session import Session


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
) -> Exchange:
    """Appends the exchange of one request and the reply it got, as sent; the body is kept up to the limit."""
    size = len(request.body)
    limit = session.limits.max_body_bytes
    if size > limit:
        request = dataclasses.replace(request, body=request.body[:limit])
    return session.journal.append(
        Exchange(
            sequence=0,
            request=request,
            body_size=size,
            body_truncated=size > limit,
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
        )
    )


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
