"""Exchange filters into the domain; recorded exchanges, WebSocket frames and near misses back to messages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulatord.control.convert.scalars import duration, timestamp
from simulatord.errors import SpecErrors
from simulatord.matching.request import Routing
from simulatord.names import SessionKey
from simulatord.responding.wire import End
from simulatord.sessions import journal
from simulatord.sessions.journal import Direction, Exchange, ExchangeFilter, ExchangeKind, Frame, MatchState
from simulatord.v1 import exchange_pb2, stub_pb2

if TYPE_CHECKING:
    from simulatord.llm.simulation import LlmRecord
    from simulatord.responding.proxy import ProxyRecord
    from simulatord.v1 import llm_pb2, webhook_pb2
    from simulatord.webhooks.spec import WebhookRecord

_MATCH_STATE = {
    exchange_pb2.MATCH_STATE_UNSPECIFIED: MatchState.ANY,
    exchange_pb2.MATCH_STATE_MATCHED: MatchState.MATCHED,
    exchange_pb2.MATCH_STATE_UNMATCHED: MatchState.UNMATCHED,
}
_ROUTING = {
    Routing.PATH_PREFIX: exchange_pb2.ROUTING_PATH_PREFIX,
    Routing.HOST: exchange_pb2.ROUTING_HOST,
    Routing.HEADER: exchange_pb2.ROUTING_HEADER,
}
_END = {
    End.COMPLETE: exchange_pb2.RESPONSE_END_COMPLETE,
    End.CLIENT_DISCONNECTED: exchange_pb2.RESPONSE_END_CLIENT_DISCONNECTED,
    End.ABORTED: exchange_pb2.RESPONSE_END_ABORTED,
}
_KIND = {
    ExchangeKind.HTTP: exchange_pb2.EXCHANGE_KIND_HTTP,
    ExchangeKind.WEBSOCKET_UPGRADE: exchange_pb2.EXCHANGE_KIND_WEBSOCKET_UPGRADE,
    ExchangeKind.WEBSOCKET_FRAME: exchange_pb2.EXCHANGE_KIND_WEBSOCKET_FRAME,
    ExchangeKind.WEBHOOK: exchange_pb2.EXCHANGE_KIND_WEBHOOK,
}
_DIRECTION = {
    Direction.INBOUND: exchange_pb2.FRAME_DIRECTION_INBOUND,
    Direction.OUTBOUND: exchange_pb2.FRAME_DIRECTION_OUTBOUND,
}


def exchange_filter(msg: exchange_pb2.ExchangeFilter, where: str, errors: SpecErrors) -> ExchangeFilter:
    if msg.match_state not in _MATCH_STATE:
        errors.add(f"{where}.match_state", f"unknown MatchState value {msg.match_state}")
    state = _MATCH_STATE.get(msg.match_state, MatchState.ANY)
    return journal.exchange_filter(state, msg.stub, msg.method, msg.path, msg.path_prefix, where, errors)


def frame_to_proto(frame: Frame) -> exchange_pb2.WebSocketFrame:
    out = exchange_pb2.WebSocketFrame(
        connection=frame.connection, direction=_DIRECTION[frame.direction], size=frame.size, origin=frame.origin
    )
    if frame.close_code is not None:
        out.close.CopyFrom(exchange_pb2.WebSocketCloseFrame(code=frame.close_code, reason=frame.close_reason))
    elif frame.binary is not None:
        out.binary = frame.binary
    else:
        out.text = frame.text or ""
    return out


def exchange_to_proto(value: Exchange, key: SessionKey) -> exchange_pb2.Exchange:
    req = value.request
    return exchange_pb2.Exchange(
        name=key.exchange_name(value.sequence),
        sequence=value.sequence,
        request=exchange_pb2.RecordedRequest(
            method=req.method,
            path=req.path,
            query_string=req.query_string,
            query=[exchange_pb2.QueryParameter(name=n, value=v) for n, v in req.query],
            headers=[stub_pb2.Header(name=n, value=v) for n, v in req.headers],
            body=req.body,
            body_truncated=value.body_truncated,
            body_size=value.body_size,
            receive_time=timestamp(req.receive_time),
            http_version=req.http_version,
            routing=_ROUTING[req.routing],
        ),
        stub=value.stub_name,
        kind=_KIND[value.kind],
        frame=frame_to_proto(value.frame) if value.frame is not None else None,
        llm=_llm_record(value.llm) if value.llm is not None else None,
        webhook=_webhook_attempt(value.webhook) if value.webhook is not None else None,
        proxy=_proxy_record(value.proxy) if value.proxy is not None else None,
        near_misses=[
            exchange_pb2.NearMiss(
                stub=miss.stub_name,
                description=miss.description,
                mismatches=[
                    exchange_pb2.Mismatch(field=x.field, expected=x.expected, actual=x.actual) for x in miss.mismatches
                ],
            )
            for miss in value.near_misses
        ],
        response=exchange_pb2.RecordedResponse(
            status=value.status,
            headers=[stub_pb2.Header(name=n, value=v) for n, v in value.response_headers],
            body_size=value.response_body_size,
            duration=duration(value.duration),
            end=_END[value.end],
            event_count=value.event_count,
            behaviours=value.behaviours,
            error=value.error,
        ),
    )


def _llm_record(record: LlmRecord) -> llm_pb2.LlmExchange:
    # Only exchanges of an LLM simulation carry one, and the LLM layer is loaded by the first of them.
    from simulatord.control.convert.llm import record_to_proto

    return record_to_proto(record)


def _proxy_record(record: ProxyRecord) -> exchange_pb2.ProxyExchange:
    return exchange_pb2.ProxyExchange(
        url=record.url,
        recorded_stub=record.recorded_stub,
        not_recorded=record.not_recorded,
        upstream_latency=duration(record.latency),
    )


def _webhook_attempt(record: WebhookRecord) -> webhook_pb2.WebhookAttempt:
    # Only webhook exchanges carry one, and the webhook code is loaded by the first delivery.
    from simulatord.control.convert.webhooks import attempt_to_proto

    return attempt_to_proto(record)
