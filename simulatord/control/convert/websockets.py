"""WebSocketBehaviour, WebSocketMessage and WebSocketClose messages into the domain's conversations."""

from __future__ import annotations

from simulatord.control.convert.matchers import body_matchers
from simulatord.control.convert.scalars import oneof, seconds
from simulatord.errors import SpecErrors
from simulatord.responding import websocket as ws
from simulatord.v1 import stub_pb2


def close_spec(msg: stub_pb2.WebSocketClose, where: str, errors: SpecErrors) -> ws.CloseSpec:
    return ws.close_spec(msg.code, msg.reason, seconds(msg.delay), where, errors)


def out_message(msg: stub_pb2.WebSocketMessage, where: str, errors: SpecErrors) -> ws.OutMessage:
    kind, payload = oneof(msg, "payload", where, errors)
    return ws.out_message(kind, payload, msg.template, seconds(msg.delay), where, errors)


def conversation(msg: stub_pb2.WebSocketBehaviour, where: str, errors: SpecErrors) -> ws.Conversation:
    rules = tuple(
        ws.Rule(
            tests=tuple(body_matchers(rule.message, f"{where}.rules[{i}].message", errors)),
            replies=tuple(
                out_message(r, f"{where}.rules[{i}].replies[{j}]", errors) for j, r in enumerate(rule.replies)
            ),
            close=close_spec(rule.close, f"{where}.rules[{i}].close", errors) if rule.HasField("close") else None,
        )
        for i, rule in enumerate(msg.rules)
    )
    return ws.conversation(
        msg.subprotocol,
        tuple(out_message(m, f"{where}.on_connect[{i}]", errors) for i, m in enumerate(msg.on_connect)),
        rules,
        close_spec(msg.close_after_connect, f"{where}.close_after_connect", errors)
        if msg.HasField("close_after_connect")
        else None,
        where,
        errors,
    )
