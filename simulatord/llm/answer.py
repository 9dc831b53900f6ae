"""What the simulated model says to one request, before any provider's wire format: text, calls, reason, usage."""

from __future__ import annotations

import base64
import random
import string
from dataclasses import dataclass

from simulatord.llm import tokens
from simulatord.llm.conversation import Conversation
from simulatord.llm.spec import DEFAULT_TEXT, Endpoint, ReplySpec, ToolCall

_ALNUM = string.ascii_letters + string.digits
_ALNUM_ONLY = bytes.maketrans(b"+/", b"xQ")
HEX = "0123456789abcdef"


def random_id(rng: random.Random, prefix: str, length: int, alphabet: str = _ALNUM) -> str:
    """An id in a provider's format: `chatcmpl-…`, `msg_01…`, `toolu_01…`, `call_…`, `req_…`. Ids are made
    for every request, so this is one call into the generator, not one per character."""
    if alphabet is HEX:
        return f"{prefix}{rng.getrandbits(4 * length):0{length}x}"
    # Base64 of random bytes with its two symbols swapped for letters: alphanumeric, as the providers' ids are.
    return prefix + base64.b64encode(rng.randbytes(length)).translate(_ALNUM_ONLY)[:length].decode()


@dataclass(frozen=True)
class Answer:
    """The reply to send, with ids generated and usage counted by the token rule (or as programmed)."""

    text: str
    thinking: str
    refusal: str
    tool_calls: tuple[ToolCall, ...]
    stop_reason: str  # empty: the provider's natural reason for what the answer holds
    input_tokens: int
    output_tokens: int
    truncated: bool = False  # the text was cut at the request's max tokens

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


def filler(count: int) -> str:
    """Text of exactly `count` tokens, streamed before an error that comes mid-stream."""
    words = tokens.split(" " + DEFAULT_TEXT)  # each repetition starts with a spaced word, so none merge
    out: list[str] = []
    while len(out) < count:
        out.extend(words)
    return "".join(out[:count]).lstrip()


def answer(reply: ReplySpec, conversation: Conversation, rng: random.Random, call_prefix: str, call_len: int) -> Answer:
    calls = tuple(
        call if call.id else ToolCall(random_id(rng, call_prefix, call_len), call.name, call.arguments)
        for call in reply.tool_calls
    )
    text = reply.text
    # Thinking is only shown where the request can see it: Anthropic with thinking enabled, or a Responses
    # reasoning summary; Chat Completions never shows it. What is not shown is not counted either.
    thinking = reply.thinking if conversation.thinking or conversation.endpoint is Endpoint.RESPONSES else ""
    if reply.error is not None and reply.error.after_tokens:
        text = filler(reply.error.after_tokens)
    truncated = False
    limit = conversation.max_tokens
    if limit and not calls and not reply.stop_reason and len(pieces := tokens.split(text)) > limit:
        text, truncated = "".join(pieces[:limit]), True  # as a real model stops at max tokens
    output = tokens.count(text) + tokens.count(thinking) + tokens.count(reply.refusal)
    for call in calls:
        output += tokens.count(call.name) + tokens.count(call.arguments)
    return Answer(
        text=text,
        thinking=thinking,
        refusal=reply.refusal,
        tool_calls=calls,
        stop_reason=reply.stop_reason,
        input_tokens=reply.input_tokens or conversation.input_tokens,
        output_tokens=reply.output_tokens or output,
        truncated=truncated,
    )
