"""The OpenAI API's wire format: Chat Completions, Responses, Embeddings and Models bodies, streams and errors."""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from collections.abc import Iterator
from typing import Any

from simulatord.llm import tokens
from simulatord.llm.answer import HEX, Answer, random_id
from simulatord.llm.conversation import Conversation
from simulatord.llm.spec import ErrorKind
from simulatord.llm.sse import Event, encode, raw

CALL_ID = ("call_", 24)
DEFAULT_MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-5", "text-embedding-3-small", "text-embedding-3-large")
DONE = raw("data: [DONE]\n\n")
PING = b": ping\n\n"
FINGERPRINT = "fp_5f3c1a9b2e"  # one backend configuration, as a real deployment reports for a while

# kind -> (status, type, code, message); `{model}` is filled in.
ERRORS: dict[ErrorKind, tuple[int, str, str | None, str]] = {
    ErrorKind.BAD_REQUEST: (400, "invalid_request_error", None, "Invalid request."),
    ErrorKind.UNAUTHORIZED: (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    ErrorKind.PERMISSION_DENIED: (403, "invalid_request_error", None, "You are not allowed to sample from this model"),
    ErrorKind.NOT_FOUND: (
        404,
        "invalid_request_error",
        "model_not_found",
        "The model `{model}` does not exist or you do not have access to it.",
    ),
    ErrorKind.RATE_LIMITED: (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-simulatord on requests per min (RPM). Please try again "
        "later. Visit https://platform.openai.com/account/rate-limits to learn more.",
    ),
    ErrorKind.QUOTA_EXCEEDED: (
        429,
        "insufficient_quota",
        "insufficient_quota",
        "You exceeded your current quota, please check your plan and billing details. For more information on this "
        "error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
    ),
    ErrorKind.SERVER_ERROR: (
        500,
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    ErrorKind.UNAVAILABLE: (503, "server_error", None, "The engine is currently overloaded, please try again later."),
    ErrorKind.OVERLOADED: (503, "server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(message: str, error_type: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error(kind: ErrorKind, message: str, model: str) -> tuple[int, dict[str, Any]]:
    status, error_type, code, usual = ERRORS[kind]
    return status, error_body(message or usual.format(model=model or "the model"), error_type, None, code)


def refused(status: int, message: str, param: str | None, code: str | None) -> dict[str, Any]:
    return error_body(message, "invalid_request_error", param, code)


def request_headers(rng: random.Random) -> list[tuple[str, str]]:
    return [
        ("x-request-id", random_id(rng, "req_", 32, HEX)),
        ("openai-organization", "org-simulatord"),
        ("openai-version", "2020-10-01"),
        ("openai-processing-ms", str(rng.randint(80, 900))),
    ]


def reset_text(seconds: float) -> str:
    """The reset headers' duration format: `1s`, `6m0s`, `250ms`."""
    if seconds < 1:
        return f"{max(math.ceil(seconds * 1000), 1)}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def rate_headers(
    limit_requests: int, remaining_requests: int, limit_tokens: int, remaining_tokens: int, reset: float
) -> list[tuple[str, str]]:
    return [
        ("x-ratelimit-limit-requests", str(limit_requests)),
        ("x-ratelimit-limit-tokens", str(limit_tokens)),
        ("x-ratelimit-remaining-requests", str(remaining_requests)),
        ("x-ratelimit-remaining-tokens", str(remaining_tokens)),
        ("x-ratelimit-reset-requests", reset_text(reset)),
        ("x-ratelimit-reset-tokens", reset_text(reset)),
    ]


def _finish_reason(answer: Answer) -> str:
    if answer.stop_reason:
        return answer.stop_reason
    if answer.tool_calls:
        return "tool_calls"
    return "length" if answer.truncated else "stop"


def _usage(answer: Answer, n: int) -> dict[str, Any]:
    output = answer.output_tokens * n
    return {
        "prompt_tokens": answer.input_tokens,
        "completion_tokens": output,
        "total_tokens": answer.input_tokens + output,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class Turn:
    """One answered request: the ids and timestamp its body or stream share."""

    def __init__(self, conversation: Conversation, answer: Answer, rng: random.Random, now: float) -> None:
        self.conversation = conversation
        self.answer = answer
        self.rng = rng
        self.created = int(now)
        self.model = conversation.model
        self.fingerprint = FINGERPRINT

    # --- Chat Completions ----------------------------------------------------------------------

    def chat_id(self) -> str:
        return random_id(self.rng, "chatcmpl-", 29)

    def chat(self) -> dict[str, Any]:
        answer, n = self.answer, self.conversation.n
        message: dict[str, Any] = {
            "role": "assistant",
            "content": None if answer.refusal else (answer.text or None),
            "refusal": answer.refusal or None,
            "annotations": [],
        }
        if answer.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in answer.tool_calls
            ]
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": _finish_reason(answer)}
            for i in range(n)
        ]
        return {
            "id": self.chat_id(),
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": choices,
            "usage": _usage(answer, n),
            "service_tier": "default",
            "system_fingerprint": self.fingerprint,
        }

    def chat_events(self, error: tuple[int, dict[str, Any]] | None = None) -> list[Event]:
        """The chunks of a streamed completion, ending `data: [DONE]`, or the error's `data:` line after the
        tokens that precede it."""
        answer, conversation = self.answer, self.conversation
        chunk_id = self.chat_id()
        usage_field = conversation.include_usage

        def chunk(index: int, delta: dict[str, Any], finish: str | None = None, count: int = 0) -> Event:
            payload: dict[str, Any] = {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "service_tier": "default",
                "system_fingerprint": self.fingerprint,
                "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }
            if usage_field:
                payload["usage"] = None
            return encode(payload, tokens=count)

        events: list[Event] = []
        for i in range(conversation.n):
            events.append(chunk(i, {"role": "assistant", "content": "", "refusal": None}))
            if answer.refusal:
                events.extend(chunk(i, {"refusal": t}, count=1) for t in tokens.split(answer.refusal))
            else:
                events.extend(chunk(i, {"content": t}, count=1) for t in tokens.split(answer.text))
            for k, call in enumerate(answer.tool_calls):
                head = {"index": k, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
                events.append(chunk(i, {"tool_calls": [head]}, count=tokens.count(call.name)))
                for piece in tokens.split(call.arguments):
                    events.append(chunk(i, {"tool_calls": [{"index": k, "function": {"arguments": piece}}]}, count=1))
            if error is None:
                events.append(chunk(i, {}, _finish_reason(answer)))
        if error is not None:
            return [*events, encode(error[1])]
        if usage_field:
            events.append(
                encode(
                    {
                        "id": chunk_id,
                        "object": "chat.completion.chunk",
                        "created": self.created,
                        "model": self.model,
                        "service_tier": "default",
                        "system_fingerprint": self.fingerprint,
                        "choices": [],
                        "usage": _usage(answer, conversation.n),
                    }
                )
            )
        events.append(DONE)
        return events

    # --- Responses -----------------------------------------------------------------------------

    def _items(self) -> list[dict[str, Any]]:
        # Generated once per turn: an item keeps its id from `response.output_item.added` to the completed
        # response, as the real stream's do (the SDKs' accumulators and clients correlate them by id).
        if not hasattr(self, "_output"):
            self._output = self._new_items()
        return self._output

    def _new_items(self) -> list[dict[str, Any]]:
        answer, items = self.answer, []
        if answer.thinking:
            items.append(
                {
                    "type": "reasoning",
                    "id": random_id(self.rng, "rs_", 48, HEX),
                    "summary": [{"type": "summary_text", "text": answer.thinking}],
                }
            )
        if answer.text or answer.refusal:
            part: dict[str, Any] = (
                {"type": "refusal", "refusal": answer.refusal}
                if answer.refusal
                else {"type": "output_text", "text": answer.text, "annotations": [], "logprobs": []}
            )
            items.append(
                {
                    "type": "message",
                    "id": random_id(self.rng, "msg_", 48, HEX),
                    "status": "completed",
                    "role": "assistant",
                    "content": [part],
                }
            )
        for call in answer.tool_calls:
            items.append(
                {
                    "type": "function_call",
                    "id": random_id(self.rng, "fc_", 48, HEX),
                    "call_id": call.id,
                    "name": call.name,
                    "arguments": call.arguments,
                    "status": "completed",
                }
            )
        return items

    def response(self, status: str = "completed", failure: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.conversation.body if isinstance(self.conversation.body, dict) else {}
        answer = self.answer
        done = status == "completed"
        incomplete = done and answer.truncated
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "status": "incomplete" if incomplete else status,
            "background": False,
            "error": failure,
            "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "model": self.model,
            "output": self._items() if done else [],
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": body.get("text") or {"format": {"type": "text"}},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": {
                "input_tokens": answer.input_tokens,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": answer.output_tokens,
                "output_tokens_details": {"reasoning_tokens": tokens.count(answer.thinking)},
                "total_tokens": answer.total_tokens,
            }
            if done
            else None,
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    @property
    def response_id(self) -> str:
        if not hasattr(self, "_response_id"):
            self._response_id = random_id(self.rng, "resp_", 48, HEX)
        return self._response_id

    def response_events(self, error: tuple[int, dict[str, Any]] | None = None) -> list[Event]:
        """`response.created` … deltas … `response.completed`; with an error, `response.failed` after the
        tokens that precede it."""
        sequence = iter(range(1_000_000))
        events: list[Event] = []

        def emit(kind: str, count: int = 0, **fields: Any) -> None:
            events.append(encode({"type": kind, "sequence_number": next(sequence), **fields}, kind, count))

        emit("response.created", response=self.response("in_progress"))
        emit("response.in_progress", response=self.response("in_progress"))
        for index, item in enumerate(self._items()):
            self._item_events(emit, index, item)
        if error is not None:
            failure = {"code": "server_error", "message": error[1]["error"]["message"]}
            emit("response.failed", response=self.response("failed", failure))
        else:
            emit("response.completed", response=self.response())
        return events

    def _item_events(self, emit: Any, index: int, item: dict[str, Any]) -> None:
        item_id = item["id"]
        kind = item["type"]
        if kind == "function_call":
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "arguments": "", "status": "in_progress"},
            )
            for piece in tokens.split(item["arguments"]):
                emit("response.function_call_arguments.delta", 1, item_id=item_id, output_index=index, delta=piece)
            emit(
                "response.function_call_arguments.done",
                item_id=item_id,
                output_index=index,
                name=item["name"],
                arguments=item["arguments"],
            )
        elif kind == "reasoning":
            text = item["summary"][0]["text"]
            emit("response.output_item.added", output_index=index, item={**item, "summary": []})
            where = {"item_id": item_id, "output_index": index, "summary_index": 0}
            emit("response.reasoning_summary_part.added", **where, part={"type": "summary_text", "text": ""})
            for piece in tokens.split(text):
                emit("response.reasoning_summary_text.delta", 1, **where, delta=piece)
            emit("response.reasoning_summary_text.done", **where, text=text)
            emit("response.reasoning_summary_part.done", **where, part={"type": "summary_text", "text": text})
        else:
            part = item["content"][0]
            emit(
                "response.output_item.added",
                output_index=index,
                item={**item, "status": "in_progress", "content": []},
            )
            where = {"item_id": item_id, "output_index": index, "content_index": 0}
            refusal = part["type"] == "refusal"
            empty = {"type": "refusal", "refusal": ""} if refusal else {**part, "text": ""}
            emit("response.content_part.added", **where, part=empty)
            text = part["refusal"] if refusal else part["text"]
            kind_name = "response.refusal" if refusal else "response.output_text"
            extra: dict[str, Any] = {} if refusal else {"logprobs": []}
            for piece in tokens.split(text):
                emit(f"{kind_name}.delta", 1, **where, delta=piece, **extra)
            emit(f"{kind_name}.done", **where, **({"refusal": text} if refusal else {"text": text, "logprobs": []}))
            emit("response.content_part.done", **where, part=part)
        emit("response.output_item.done", output_index=index, item=item)


# --- Embeddings and Models -----------------------------------------------------------------------


def _vector(model: str, text: str, dimensions: int) -> list[float]:
    """A unit vector that depends only on the model and the text: the same input embeds the same way."""
    seed = int.from_bytes(hashlib.sha256(f"{model}\0{text}".encode()).digest()[:8], "big")
    rng = random.Random(seed)
    values = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [v / norm for v in values]


def _inputs(value: Any) -> Iterator[str]:
    items = (
        [value]
        if isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], int))
        else value
    )
    for item in items:
        yield item if isinstance(item, str) else " ".join(str(t) for t in item)


MAX_DIMENSIONS = 3072


def embeddings(conversation: Conversation) -> dict[str, Any]:
    body = conversation.body
    model = conversation.model
    dimensions = body.get("dimensions") or (3072 if "large" in model else 1536)
    dimensions = min(dimensions, MAX_DIMENSIONS)
    as_base64 = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(_inputs(body["input"])):
        vector = _vector(model, text, dimensions)
        encoded: Any = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": encoded})
    usage = {"prompt_tokens": conversation.input_tokens, "total_tokens": conversation.input_tokens}
    return {"object": "list", "data": data, "model": model, "usage": usage}


def models(names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": [{"id": name, "object": "model", "created": 1_715_367_049, "owned_by": "system"} for name in names],
    }
