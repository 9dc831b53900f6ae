"""Exchange filters into the domain; recorded exchanges, WebSocket frames and near misses to messages and back."""

from __future__ import annotations

from typing import TYPE_CHECKING

from simulatord.control.convert.scalars import duration, epoch, seconds, timestamp
from simulatord.errors import SpecErrors
from simulatord.matching.matchers import Mismatch
from simulatord.matching.near_misses import NearMiss
from simulatord.matching.request import HttpRequest, Routing
from simulatord.names import SessionKey
from simulatord.responding.proxy import ProxyRecord
from simulatord.responding.wire import End
from simulatord.sessions import journal
from simulatord.sessions.journal import Direction, Exchange, ExchangeFilter, ExchangeKind, Frame, MatchState
from simulatord.v1 import exchange_pb2

if TYPE_CHECKING:
    from simulatord.llm.simulation import LlmRecord
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
# The way back, for a journal read from a store outside the process. A value this version does not know (or
# UNSPECIFIED) reads as the domain's default rather than failing the whole journal.
_ROUTING_FROM = {v: k for k, v in _ROUTING.items()}
_END_FROM = {v: k for k, v in _END.items()}
_KIND_FROM = {v: k for k, v in _KIND.items()}
_DIRECTION_FROM = {v: k for k, v in _DIRECTION.items()}


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
    # Filled in place rather than built from nested constructors, which copy every sub-message once more: this
    # runs for every exchange a listing, a watcher or a store outside the process (stores.redis_store) reads.
    req = value.request
    out = exchange_pb2.Exchange(
        name=key.exchange_name(value.sequence), sequence=value.sequence, stub=value.stub_name, kind=_KIND[value.kind]
    )
    request = out.request
    request.method = req.method
    request.path = req.path
    request.query_string = req.query_string
    query = request.query
    for n, v in req.query:
        query.add(name=n, value=v)
    headers = request.headers
    for n, v in req.headers:
        headers.add(name=n, value=v)
    request.body = req.body
    request.body_truncated = value.body_truncated
    request.body_size = value.body_size
    request.receive_time.CopyFrom(timestamp(req.receive_time))
    request.http_version = req.http_version
    request.routing = _ROUTING[req.routing]
    if value.frame is not None:
        out.frame.CopyFrom(frame_to_proto(value.frame))
    if value.llm is not None:
        out.llm.CopyFrom(_llm_record(value.llm))
    if value.webhook is not None:
        out.webhook.CopyFrom(_webhook_attempt(value.webhook))
    if value.proxy is not None:
        out.proxy.CopyFrom(_proxy_record(value.proxy))
    for miss in value.near_misses:
        near = out.near_misses.add(stub=miss.stub_name, description=miss.description)
        for x in miss.mismatches:
            near.mismatches.add(field=x.field, expected=x.expected, actual=x.actual)
    response = out.response
    response.status = value.status
    headers = response.headers
    for n, v in value.response_headers:
        headers.add(name=n, value=v)
    response.body_size = value.response_body_size
    response.duration.CopyFrom(duration(value.duration))
    response.end = _END[value.end]
    response.event_count = value.event_count
    response.behaviours.extend(value.behaviours)
    response.error = value.error
    return out


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


def frame_from_proto(msg: exchange_pb2.WebSocketFrame) -> Frame:
    payload = msg.WhichOneof("payload")
    return Frame(
        connection=msg.connection,
        direction=_DIRECTION_FROM.get(msg.direction, Direction.INBOUND),
        text=msg.text if payload == "text" else None,
        binary=msg.binary if payload == "binary" else None,
        close_code=msg.close.code if payload == "close" else None,
        close_reason=msg.close.reason if payload == "close" else "",
        size=msg.size,
        origin=msg.origin,
    )


def exchange_from_proto(msg: exchange_pb2.Exchange) -> Exchange:
    """The journal's record back from its message: how a journal kept outside the process (Redis) is read back."""
    req = msg.request
    res = msg.response
    return Exchange(
        sequence=msg.sequence,
        request=HttpRequest(
            method=req.method,
            path=req.path,
            query_string=req.query_string,  # `query` is derived from it
            headers=tuple((h.name, h.value) for h in req.headers),
            body=req.body,
            receive_time=epoch(req.receive_time),
            http_version=req.http_version,
            routing=_ROUTING_FROM.get(req.routing, Routing.PATH_PREFIX),
        ),
        body_size=req.body_size,
        body_truncated=req.body_truncated,
        stub_name=msg.stub,
        near_misses=tuple(
            NearMiss(
                stub_name=miss.stub,
                description=miss.description,
                mismatches=tuple(
                    Mismatch(field=x.field, expected=x.expected, actual=x.actual) for x in miss.mismatches
                ),
            )
            for miss in msg.near_misses
        ),
        status=res.status,
        response_headers=tuple((h.name, h.value) for h in res.headers),
        response_body_size=res.body_size,
        duration=seconds(res.duration),
        end=_END_FROM.get(res.end, End.COMPLETE),
        event_count=res.event_count,
        behaviours=tuple(res.behaviours),
        error=res.error,
        # `size` stays the default: the journal estimates it when it takes the exchange
        kind=_KIND_FROM.get(msg.kind, ExchangeKind.HTTP),
        frame=frame_from_proto(msg.frame) if msg.HasField("frame") else None,
        llm=_llm_from_proto(msg.llm) if msg.HasField("llm") else None,
        webhook=_webhook_from_proto(msg.webhook) if msg.HasField("webhook") else None,
        proxy=_proxy_from_proto(msg.proxy) if msg.HasField("proxy") else None,
    )


def _llm_from_proto(msg: llm_pb2.LlmExchange) -> LlmRecord:
    # As for _llm_record: the LLM layer is loaded only when a journal holds an exchange of an LLM simulation.
    from simulatord.llm.simulation import LlmRecord

    return LlmRecord(
        endpoint=msg.endpoint,
        model=msg.model,
        message_count=msg.message_count,
        tools=tuple(msg.tools),
        rule=msg.rule,
        stream=msg.stream,
        turn=msg.turn,
        input_tokens=msg.usage.input_tokens,
        output_tokens=msg.usage.output_tokens,
        refusal_reason=msg.refusal_reason,
    )


def _proxy_from_proto(msg: exchange_pb2.ProxyExchange) -> ProxyRecord:
    return ProxyRecord(
        url=msg.url,
        latency=seconds(msg.upstream_latency),
        recorded_stub=msg.recorded_stub,
        not_recorded=msg.not_recorded,
    )


def _webhook_from_proto(msg: webhook_pb2.WebhookAttempt) -> WebhookRecord:
    # As for _webhook_attempt: the webhook code is loaded only when a journal holds a delivery attempt.
    from simulatord.webhooks.spec import WebhookRecord

    return WebhookRecord(
        delivery_id=msg.delivery_id,
        attempt=msg.attempt,
        url=msg.url,
        response_body=msg.response_body,
        error=msg.error,
        callback_of=msg.callback_of,
    )
