"""The dashboard's domain -> JSON conversion: sessions, stubs and exchanges as the browser shows them, and the
"copy as curl" and "copy as stub" texts of a recorded request."""

from __future__ import annotations

import base64
import json
import re
import shlex
from typing import Any

from simulatord.sessions.journal import Exchange, ExchangeKind, Frame
from simulatord.sessions.session import Session
from simulatord.sessions.stubs import Stub

# Headers a copied curl command leaves out: curl sets them itself (or they describe the original connection).
_CURL_SKIP = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "accept-encoding", "x-simulatord-session"}
)
# A path with `{name}` segments is a template for the Python client's `path` argument, so such a literal path
# must be given as an explicit exact matcher there.
_TEMPLATE_VAR = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*(=\*\*)?\}")


def _text(data: bytes) -> dict[str, Any]:
    """A body as the browser shows it: UTF-8 text when it is that, else base64."""
    try:
        return {"text": data.decode("utf-8"), "base64": ""}
    except UnicodeDecodeError:
        return {"text": "", "base64": base64.b64encode(data).decode()}


def stub_to_json(stub: Stub, session: Session) -> dict[str, Any]:
    """One stub with its counters: how often it matched and where its response sequence stands."""
    return {
        "name": stub.name,
        "id": stub.id,
        "description": stub.description,
        "summary": _stub_summary(stub.source),
        "priority": stub.priority,
        "match_count": stub.match_count,
        "times": stub.times,
        "exhausted": stub.exhausted,
        "responses": len(stub.responses),
        # The index of the response the next match serves (the sequence position), as take_response picks it.
        "next_response": _next_response(stub),
        "after_last": str(stub.after_last),
        "expectation": stub.expectation_text(),
        "scenario": stub.scenario,
        "required_state": stub.required_state,
        "next_state": stub.next_state,
        "current_state": session.state_of(stub.scenario),
        "rate_limited_count": stub.rate_limited_count,
        "websocket": stub.websocket is not None,
        "callbacks": len(stub.callbacks),
    }


def _next_response(stub: Stub) -> int:
    count = len(stub.responses)
    index = stub.match_count
    if index < count:
        return index
    return index % count if str(stub.after_last) == "cycle" else count - 1


def _stub_summary(source: object) -> str:
    """`GET /path` from the stub as programmed (the proto message the control plane kept), duck-typed so this
    module needs no generated code."""
    request = getattr(source, "request", None)
    if request is None:
        return ""
    method = getattr(request, "method", "") or "ANY"
    path = getattr(request, "path", None)
    shown = ""
    if path is not None and hasattr(path, "WhichOneof"):
        kind = path.WhichOneof("kind")
        if kind:
            value = getattr(path, kind)
            shown = value if kind in ("exact", "template") else f"{kind} {value}"
    return f"{method} {shown or '(any path)'}"


def session_to_json(session: Session) -> dict[str, Any]:
    """A session as the session list shows it."""
    journal = session.journal
    return {
        "name": session.key.name,
        "tenant": session.key.tenant,
        "session": session.key.session,
        "labels": dict(session.labels),
        "create_time": session.create_time,
        "expire_time": session.expire_time,
        "exchanges": journal.total_count,
        "kept": len(journal),
        "stubs": len(session.stubs),
    }


def session_detail(session: Session, base_url: str) -> dict[str, Any]:
    """A session with its scenario state, stubs (in trial order) and journal counters."""
    journal = session.journal
    return {
        **session_to_json(session),
        "base_url": base_url,
        "state": session.state,
        "scenarios": dict(session.scenarios),
        "unmatched_status": session.unmatched_status,
        "stub_list": [stub_to_json(s, session) for s in session.stubs],
        "journal": {
            "total": journal.total_count,
            "kept": len(journal),
            "evicted": journal.evicted_count,
            "first_sequence": journal.first_sequence,
            "last_sequence": journal.last_sequence,
            "retained_bytes": journal.retained_bytes,
        },
        "pending_deliveries": session.pending_deliveries,
    }


def _outcome(exchange: Exchange) -> str:
    if exchange.kind is ExchangeKind.WEBHOOK:
        return "webhook"
    if exchange.kind is ExchangeKind.WEBSOCKET_FRAME:
        return "frame"
    if exchange.unmatched:
        return "unmatched"
    return "error" if exchange.error else "matched"


def exchange_summary(exchange: Exchange) -> dict[str, Any]:
    """One line of the live list."""
    req = exchange.request
    out: dict[str, Any] = {
        "sequence": exchange.sequence,
        "kind": str(exchange.kind),
        "outcome": _outcome(exchange),
        "method": req.method,
        "path": req.path,
        "query_string": req.query_string,
        "status": exchange.status,
        "stub": exchange.stub_name,
        "receive_time": req.receive_time,
        "duration": exchange.duration,
        "event_count": exchange.event_count,
        "near_misses": len(exchange.near_misses),
    }
    if exchange.frame is not None:
        out["frame"] = _frame(exchange.frame)
    if exchange.webhook is not None:
        out["webhook_url"] = exchange.webhook.url
        out["attempt"] = exchange.webhook.attempt
    return out


def _frame(frame: Frame) -> dict[str, Any]:
    out: dict[str, Any] = {
        "connection": frame.connection,
        "direction": str(frame.direction),
        "size": frame.size,
        "origin": frame.origin,
    }
    if frame.close_code is not None:
        out["close"] = {"code": frame.close_code, "reason": frame.close_reason}
    elif frame.binary is not None:
        out["binary"] = base64.b64encode(frame.binary).decode()
    else:
        out["text"] = frame.text or ""
    return out


def exchange_detail(exchange: Exchange, session: Session, base_url: str) -> dict[str, Any]:
    """Everything the journal holds of one exchange, its WebSocket frames when it is an upgrade, and the texts
    of "copy as curl" and "copy as stub"."""
    req = exchange.request
    out = exchange_summary(exchange)
    out["request"] = {
        "method": req.method,
        "path": req.path,
        "query_string": req.query_string,
        "query": [[n, v] for n, v in req.query],
        "headers": [[n, v] for n, v in req.headers],
        "body": _text(req.body),
        "body_size": exchange.body_size,
        "body_truncated": exchange.body_truncated,
        "http_version": req.http_version,
        "routing": str(req.routing),
    }
    out["response"] = {
        "status": exchange.status,
        "headers": [[n, v] for n, v in exchange.response_headers],
        "body_size": exchange.response_body_size,
        "end": str(exchange.end),
        "event_count": exchange.event_count,
        "behaviours": list(exchange.behaviours),
        "error": exchange.error,
        "duration": exchange.duration,
    }
    out["near_miss_list"] = [
        {
            "stub": miss.stub_name,
            "description": miss.description,
            "mismatches": [{"field": m.field, "expected": m.expected, "actual": m.actual} for m in miss.mismatches],
        }
        for miss in exchange.near_misses
    ]
    if exchange.llm is not None:
        llm = exchange.llm
        out["llm"] = {
            "endpoint": llm.endpoint,
            "model": llm.model,
            "message_count": llm.message_count,
            "tools": list(llm.tools),
            "rule": llm.rule,
            "stream": llm.stream,
            "turn": llm.turn,
            "input_tokens": llm.input_tokens,
            "output_tokens": llm.output_tokens,
            "refusal_reason": llm.refusal_reason,
        }
    if exchange.webhook is not None:
        hook = exchange.webhook
        out["webhook"] = {
            "delivery_id": hook.delivery_id,
            "attempt": hook.attempt,
            "url": hook.url,
            "response_body": _text(hook.response_body),
            "error": hook.error,
            "callback_of": hook.callback_of,
        }
    if exchange.kind is ExchangeKind.WEBSOCKET_UPGRADE:
        # The frames of this connection, in order (they are exchanges of their own in the journal).
        out["frames"] = [
            {"sequence": e.sequence, **_frame(e.frame)}
            for e in session.journal.since(exchange.sequence + 1)
            if e.frame is not None and e.frame.connection == exchange.sequence
        ]
    if exchange.kind in (ExchangeKind.HTTP, ExchangeKind.WEBSOCKET_UPGRADE):
        out["curl"] = as_curl(exchange, base_url)
        out["stub_python"] = as_python_stub(exchange)
        out["stub_json"] = json.dumps(as_stub_json(exchange), indent=2)
    return out


def as_curl(exchange: Exchange, base_url: str) -> str:
    """A curl command that sends the recorded request again to the same session."""
    req = exchange.request
    url = base_url.rstrip("/") + req.path + (f"?{req.query_string}" if req.query_string else "")
    words = ["curl", "-X", req.method, url]
    for name, value in req.headers:
        if name not in _CURL_SKIP:
            words += ["-H", f"{name}: {value}"]
    if req.body:
        try:
            words += ["--data-binary", req.body.decode("utf-8")]
        except UnicodeDecodeError:
            # Binary bodies do not survive a shell word: say how big it was instead.
            words += ["--data-binary", f"@body-{exchange.body_size}-bytes.bin"]
    return " ".join(shlex.quote(w) for w in words)


def _body_condition(exchange: Exchange) -> tuple[str, Any] | None:
    """The body condition of a stub matching this request: JSON equality for a JSON body, else the exact bytes;
    none for an empty body, and none for a truncated one (the journal lacks its end, so no condition on it could
    be known to match)."""
    req = exchange.request
    if not req.body or exchange.body_truncated:
        return None
    if req.has_json:
        return "json", req.json()
    try:
        return "text", req.body.decode("utf-8")
    except UnicodeDecodeError:
        return "bytes", req.body


def _query(exchange: Exchange) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for name, value in exchange.request.query:
        grouped.setdefault(name, []).append(value)
    return grouped


def _status(exchange: Exchange) -> int:
    # A matched request keeps the status it was served; an unmatched one gets the plainest useful answer.
    return exchange.status if exchange.stub_name and 100 <= exchange.status <= 599 else 200


def as_python_stub(exchange: Exchange) -> str:
    """`s.stub(...)` with the Python client (simulatord_client) that matches this request."""
    req = exchange.request
    if _TEMPLATE_VAR.search(req.path):
        args = [repr(req.method), f"stub_pb2.PathMatcher(exact={req.path!r})"]
    else:
        args = [repr(req.method), repr(req.path)]
    query = _query(exchange)
    if query:
        shown = {name: values[0] if len(values) == 1 else values for name, values in query.items()}
        args.append(f"query={shown!r}")
    body = _body_condition(exchange)
    if body is not None:
        kind, value = body
        args.append(f"json_body={value!r}" if kind == "json" else f"body_equals={value!r}")
    args.append(f"status={_status(exchange)}")
    return f"s.stub({', '.join(args)})"


def as_stub_json(exchange: Exchange) -> dict[str, Any]:
    """The Stub message, in proto JSON, that CreateStub accepts and that matches this request."""
    req = exchange.request
    request: dict[str, Any] = {"method": req.method, "path": {"exact": req.path}}
    query = [{"name": name, "value": {"equals": v}} for name, values in _query(exchange).items() for v in values]
    if query:
        request["query"] = query
    body = _body_condition(exchange)
    if body is not None:
        kind, value = body
        if kind == "json":
            request["body"] = [{"json_equals": value}]
        else:
            raw = value.encode() if isinstance(value, str) else value
            request["body"] = [{"equals": base64.b64encode(raw).decode()}]
    return {"request": request, "responses": [{"status": _status(exchange)}]}
