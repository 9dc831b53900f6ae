"""The Anthropic API's wire format: Messages bodies and event streams, token counts, Models, errors."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from typing import Any

from simulatord.llm import tokens
from simulatord.llm.answer import Answer, random_id
from simulatord.llm.conversation import Conversation
from simulatord.llm.spec import ErrorKind
from simulatord.llm.sse import Event, encode

CALL_ID = ("toolu_01", 22)
DEFAULT_MODELS = ("claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5")
PING = b'event: ping\ndata: {"type": "ping"}\n\n'

# kind -> (status, type, message); `{model}` is filled in.
ERRORS: dict[ErrorKind, tuple[int, str, str]] = {
    ErrorKind.BAD_REQUEST: (400, "invalid_request_error", "Invalid request."),
    ErrorKind.UNAUTHORIZED: (401, "authentication_error", "invalid x-api-key"),
    ErrorKind.PERMISSION_DENIED: (
        403,
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    ErrorKind.NOT_FOUND: (404, "not_found_error", "model: {model}"),
    ErrorKind.RATE_LIMITED: (
        429,
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of requests per minute. For details, refer "
        "to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage.",
    ),
    ErrorKind.QUOTA_EXCEEDED: (
        429,
        "rate_limit_error",
        "You have reached your specified workspace API usage limits. You will regain access at the start of the "
        "next month at 00:00 UTC.",
    ),
    ErrorKind.SERVER_ERROR: (500, "api_error", "Internal server error"),
    ErrorKind.UNAVAILABLE: (503, "api_error", "Service unavailable"),
    ErrorKind.OVERLOADED: (529, "overloaded_error", "Overloaded"),
}


def error_body(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}


def error(kind: ErrorKind, message: str, model: str, request_id: str) -> tuple[int, dict[str, Any]]:
    status, error_type, usual = ERRORS[kind]
    body = error_body(error_type, message or usual.format(model=model), request_id)
    if kind is ErrorKind.QUOTA_EXCEEDED:  # the code the SDK raises EnforcedSpendLimitReachedError for
        body["error"]["details"] = {"error_code": "enforced_spend_limit_reached"}
    return status, body


def refused(status: int, message: str, request_id: str) -> dict[str, Any]:
    error_type = "not_found_error" if status == 404 else "invalid_request_error"
    return error_body(error_type, message, request_id)


def request_id(rng: random.Random) -> str:
    return random_id(rng, "req_011C", 20)


def request_headers(rid: str) -> list[tuple[str, str]]:
    return [("request-id", rid), ("anthropic-organization-id", "00000000-0000-4000-8000-000000000000")]


def _rfc3339(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def rate_headers(
    limit_requests: int, remaining_requests: int, limit_tokens: int, remaining_tokens: int, reset_at: float
) -> list[tuple[str, str]]:
    reset = _rfc3339(reset_at)
    return [
        ("anthropic-ratelimit-requests-limit", str(limit_requests)),
        ("anthropic-ratelimit-requests-remaining", str(remaining_requests)),
        ("anthropic-ratelimit-requests-reset", reset),
        ("anthropic-ratelimit-tokens-limit", str(limit_tokens)),
        ("anthropic-ratelimit-tokens-remaining", str(remaining_tokens)),
        ("anthropic-ratelimit-tokens-reset", reset),
    ]


def signature(thinking: str) -> str:
    """A thinking block's signature: opaque, and the same for the same thinking."""
    digest = hashlib.sha512(thinking.encode()).digest()
    return base64.b64encode(digest * 4).decode()


def _stop_reason(answer: Answer) -> str:
    if answer.stop_reason:
        return answer.stop_reason
    if answer.tool_calls:
        return "tool_use"
    if answer.refusal:
        return "refusal"
    return "max_tokens" if answer.truncated else "end_turn"


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


class Turn:
    """One answered Messages request: the message id its body or events share."""

    def __init__(self, conversation: Conversation, answer: Answer, rng: random.Random) -> None:
        self.conversation = conversation
        self.answer = answer
        self.message_id = random_id(rng, "msg_01", 22)

    def _blocks(self) -> list[dict[str, Any]]:
        answer, blocks = self.answer, []
        if answer.thinking:
            blocks.append({"type": "thinking", "thinking": answer.thinking, "signature": signature(answer.thinking)})
        if answer.text or answer.refusal:
            blocks.append({"type": "text", "text": answer.refusal or answer.text})
        for call in answer.tool_calls:
            blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": json.loads(call.arguments)})
        return blocks

    def _message(self, content: list[dict[str, Any]], stop_reason: str | None, output_tokens: int) -> dict[str, Any]:
        return {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.conversation.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": _usage(self.answer.input_tokens, output_tokens),
        }

    def message(self) -> dict[str, Any]:
        return self._message(self._blocks(), _stop_reason(self.answer), self.answer.output_tokens)

    def events(self, error: tuple[int, dict[str, Any]] | None = None) -> list[Event]:
        """message_start, per block content_block_start, deltas and content_block_stop (a ping after the
        first start), message_delta with usage, message_stop; an error becomes `event: error` after the
        tokens that precede it."""
        events = [encode({"type": "message_start", "message": self._message([], None, 1)}, "message_start")]
        for index, block in enumerate(self._blocks()):
            kind = block["type"]
            start: dict[str, Any] = {"type": "text", "text": ""} if kind == "text" else dict(block)
            if kind == "thinking":
                start = {"type": "thinking", "thinking": "", "signature": ""}
            elif kind == "tool_use":
                start["input"] = {}
            events.append(
                encode({"type": "content_block_start", "index": index, "content_block": start}, "content_block_start")
            )
            if index == 0:
                events.append(encode({"type": "ping"}, "ping"))
            for delta, count in self._deltas(block):
                events.append(
                    encode(
                        {"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta", count
                    )
                )
            events.append(encode({"type": "content_block_stop", "index": index}, "content_block_stop"))
        if error is not None:
            stripped = {k: v for k, v in error[1].items() if k != "request_id"}
            return [*self._cut_before_stop(events), encode(stripped, "error")]
        events.append(
            encode(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": _stop_reason(self.answer), "stop_sequence": None},
                    "usage": {"output_tokens": self.answer.output_tokens},
                },
                "message_delta",
            )
        )
        events.append(encode({"type": "message_stop"}, "message_stop"))
        return events

    @staticmethod
    def _cut_before_stop(events: list[Event]) -> list[Event]:
        """A stream that fails mid-way leaves its last block open, as the real one does."""
        return events[:-1] if events and b"content_block_stop" in events[-1].data else events

    @staticmethod
    def _deltas(block: dict[str, Any]) -> list[tuple[dict[str, Any], int]]:
        kind = block["type"]
        if kind == "text":
            return [({"type": "text_delta", "text": t}, 1) for t in tokens.split(block["text"])]
        if kind == "thinking":
            out = [({"type": "thinking_delta", "thinking": t}, 1) for t in tokens.split(block["thinking"])]
            return [*out, ({"type": "signature_delta", "signature": block["signature"]}, 0)]
        arguments = json.dumps(block["input"], separators=(",", ":"), ensure_ascii=False)
        return [({"type": "input_json_delta", "partial_json": t}, 1) for t in tokens.split(arguments)]


def count_tokens(conversation: Conversation) -> dict[str, Any]:
    return {"input_tokens": conversation.input_tokens}


def models(names: tuple[str, ...]) -> dict[str, Any]:
    data = [{"type": "model", "id": name, "display_name": name, "created_at": "2025-09-29T00:00:00Z"} for name in names]
    return {
        "data": data,
        "has_more": False,
        "first_id": names[0] if names else None,
        "last_id": names[-1] if names else None,
    }
