"""Reading an LLM API request: the conversation rules match on, and the refusals the real API would answer with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from simulatord.llm import tokens
from simulatord.llm.spec import Endpoint, Provider


@dataclass(frozen=True)
class Refused(Exception):
    """A request the real API rejects: its status, error type and message, and the parameter at fault."""

    status: int
    message: str
    param: str | None = None
    code: str | None = None


@dataclass(frozen=True)
class Conversation:
    """What one request asks, as rules and replies need it; the same fields for every provider."""

    endpoint: Endpoint
    model: str = ""
    system: str = ""
    message_count: int = 0
    last_user: str = ""
    tools: tuple[str, ...] = ()
    turn: int = 0
    # None: the conversation does not end with a tool result; otherwise the tool it answers ("" when unknown).
    tool_result_for: str | None = None
    stream: bool = False
    include_usage: bool = False
    n: int = 1
    input_tokens: int = 0
    max_tokens: int = 0  # 0: no limit asked
    thinking: bool = False  # Anthropic extended thinking asked for
    body: Any = None  # the parsed body, for endpoint-specific fields (embeddings input, dimensions)


def _json(body: bytes, provider: Provider) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        if provider is Provider.OPENAI:
            raise Refused(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
                "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
                "JSON. If you have trouble figuring out how to fix this, please contact us through our help center "
                "at help.openai.com.)",
            ) from None
        raise Refused(400, "There was an error parsing the body: the request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise Refused(400, "The request body must be a JSON object.")
    return value


def _text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list joined by newlines."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str) and part.get("type") != "tool_result":
                parts.append(part["text"])
        return "\n".join(parts)
    return ""


def _stream(body: dict[str, Any], provider: Provider) -> bool:
    stream = body.get("stream", False)
    if stream is None:
        return False
    if not isinstance(stream, bool):
        raise Refused(400, _type_message(provider, "stream", "a boolean", stream), "stream", "invalid_type")
    return stream


def _type_message(provider: Provider, param: str, expected: str, value: Any) -> str:
    if provider is Provider.OPENAI:
        return f"Invalid type for '{param}': expected {expected}, but got {type(value).__name__} instead."
    return f"{param}: Input should be {expected}"


def _model(body: dict[str, Any], provider: Provider) -> str:
    model = body.get("model")
    if model is None:
        if provider is Provider.OPENAI:
            raise Refused(400, "you must provide a model parameter")
        raise Refused(400, "model: Field required")
    if not isinstance(model, str):
        raise Refused(400, _type_message(provider, "model", "a string", model), "model", "invalid_type")
    return model


def _tool_names(tools: Any, provider: Provider, endpoint: Endpoint) -> tuple[str, ...]:
    if tools is None:
        return ()
    if not isinstance(tools, list):
        raise Refused(400, _type_message(provider, "tools", "an array", tools), "tools", "invalid_type")
    names = []
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        if endpoint is Endpoint.CHAT and isinstance(tool.get("function"), dict):
            name = tool["function"].get("name")
        else:
            name = tool.get("name")
        if isinstance(name, str):
            names.append(name)
    return tuple(names)


def _tool_tokens(body: dict[str, Any]) -> int:
    tools = body.get("tools")
    return tokens.count_value(tools) if isinstance(tools, list) and tools else 0


# --- OpenAI Chat Completions ---------------------------------------------------------------------


def _chat(body: dict[str, Any], strict: bool) -> Conversation:
    model = _model(body, Provider.OPENAI)
    messages = body.get("messages")
    if messages is None:
        raise Refused(400, "Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(messages, list):
        raise Refused(400, _type_message(Provider.OPENAI, "messages", "an array", messages), "messages", "invalid_type")
    if not messages:
        raise Refused(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    stream = _stream(body, Provider.OPENAI)
    options = body.get("stream_options")
    if options is not None and not stream and strict:
        raise Refused(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.", "stream_options")
    n = body.get("n", 1)
    if n is None:
        n = 1
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
        raise Refused(400, f"{n!r} is not valid for 'n': it must be an integer from 1 to 128.", "n", "invalid_value")
    system: list[str] = []
    last_user = ""
    turn = 0
    tool_names: dict[str, str] = {}  # call id -> tool name
    open_calls: list[str] = []  # call ids of the latest assistant message still without a tool message
    input_tokens = tokens.REPLY_PRIMING + _tool_tokens(body)
    ends_with: str | None = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise Refused(
                400, f"Invalid type for 'messages[{i}]': expected an object.", f"messages.[{i}]", "invalid_type"
            )
        role = message.get("role")
        content = message.get("content")
        text = _text(content)
        input_tokens += tokens.MESSAGE_OVERHEAD + tokens.count(text)
        if role not in ("system", "developer", "user", "assistant", "tool", "function"):
            raise Refused(
                400,
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', 'user', 'function', 'tool', "
                "and 'developer'.",
                f"messages[{i}].role",
                "invalid_value",
            )
        if open_calls and role != "tool" and strict:
            raise Refused(
                400,
                "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(open_calls)}",
                f"messages.[{i}].role",
            )
        ends_with = None
        if role in ("system", "developer"):
            system.append(text)
        elif role == "user":
            turn += 1
            last_user = text
        elif role == "assistant":
            calls = message.get("tool_calls") or []
            open_calls = []
            for call in calls if isinstance(calls, list) else ():
                if isinstance(call, dict) and isinstance(call.get("id"), str):
                    function = call["function"] if isinstance(call.get("function"), dict) else {}
                    tool_names[call["id"]] = str(function.get("name", ""))
                    open_calls.append(call["id"])
                    input_tokens += tokens.count_value(function)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if strict and (not isinstance(call_id, str) or call_id not in tool_names):
                raise Refused(
                    400,
                    "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with "
                    "'tool_calls'.",
                    f"messages.[{i}].role",
                )
            if call_id in open_calls:
                open_calls.remove(call_id)
            ends_with = tool_names.get(call_id, "") if isinstance(call_id, str) else ""
    if open_calls and strict:
        raise Refused(
            400,
            "An assistant message with 'tool_calls' must be followed by tool messages responding to each "
            f"'tool_call_id'. The following tool_call_ids did not have response messages: {', '.join(open_calls)}",
            f"messages.[{len(messages) - 1}].role",
        )
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or 0
    return Conversation(
        endpoint=Endpoint.CHAT,
        model=model,
        system="\n".join(system),
        message_count=len(messages),
        last_user=last_user,
        tools=_tool_names(body.get("tools"), Provider.OPENAI, Endpoint.CHAT),
        turn=turn,
        tool_result_for=ends_with,
        stream=stream,
        include_usage=bool(isinstance(options, dict) and options.get("include_usage")),
        n=n,
        input_tokens=input_tokens,
        max_tokens=max_tokens if isinstance(max_tokens, int) else 0,
        body=body,
    )


# --- OpenAI Responses ----------------------------------------------------------------------------


def _responses(body: dict[str, Any], strict: bool) -> Conversation:
    model = _model(body, Provider.OPENAI)
    stream = _stream(body, Provider.OPENAI)
    items = body.get("input")
    instructions = body.get("instructions")
    system = [instructions] if isinstance(instructions, str) else []
    if items is None:
        items = []
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list):
        raise Refused(
            400, _type_message(Provider.OPENAI, "input", "a string or an array", items), "input", "invalid_type"
        )
    last_user = ""
    turn = 0
    calls: dict[str, str] = {}
    ends_with: str | None = None
    input_tokens = tokens.REPLY_PRIMING + _tool_tokens(body) + tokens.count("\n".join(system))
    chained = bool(body.get("previous_response_id"))  # earlier calls live on the server: unknown here
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise Refused(400, f"Invalid type for 'input[{i}]': expected an object.", f"input[{i}]", "invalid_type")
        kind = item.get("type", "message")
        ends_with = None
        if kind == "message":
            role = item.get("role")
            text = _text(item.get("content"))
            input_tokens += tokens.MESSAGE_OVERHEAD + tokens.count(text)
            if role in ("system", "developer"):
                system.append(text)
            elif role == "user":
                turn += 1
                last_user = text
        elif kind == "function_call":
            call_id = item.get("call_id")
            if isinstance(call_id, str):
                calls[call_id] = str(item.get("name", ""))
            input_tokens += tokens.count_value(item.get("arguments", ""))
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if strict and not chained and call_id not in calls:
                raise Refused(400, f"No tool call found for function call output with call_id {call_id}.", "input")
            ends_with = calls.get(call_id, "") if isinstance(call_id, str) else ""
            input_tokens += tokens.count_value(item.get("output", ""))
    max_tokens = body.get("max_output_tokens") or 0
    return Conversation(
        endpoint=Endpoint.RESPONSES,
        model=model,
        system="\n".join(system),
        message_count=len(items),
        last_user=last_user,
        tools=_tool_names(body.get("tools"), Provider.OPENAI, Endpoint.RESPONSES),
        turn=turn,
        tool_result_for=ends_with,
        stream=stream,
        input_tokens=input_tokens,
        max_tokens=max_tokens if isinstance(max_tokens, int) else 0,
        body=body,
    )


# --- OpenAI Embeddings ---------------------------------------------------------------------------


def _embeddings(body: dict[str, Any], strict: bool) -> Conversation:
    model = _model(body, Provider.OPENAI)
    texts = body.get("input")
    if texts is None:
        raise Refused(400, "Missing required parameter: 'input'.", "input", "missing_required_parameter")
    if isinstance(texts, str) or (isinstance(texts, list) and texts and isinstance(texts[0], int)):
        texts = [texts]
    if not isinstance(texts, list) or not texts:
        raise Refused(400, "'input' must be a non-empty string or array.", "input", "invalid_value")
    count = 0
    for text in texts:
        count += tokens.count(text) if isinstance(text, str) else len(text) if isinstance(text, list) else 0
    dimensions = body.get("dimensions")
    if dimensions is not None and (not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1):
        raise Refused(400, f"Invalid value for 'dimensions': {dimensions!r}.", "dimensions", "invalid_value")
    encoding = body.get("encoding_format", "float")
    if encoding not in (None, "float", "base64"):
        raise Refused(
            400, f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'.", "encoding_format"
        )
    return Conversation(endpoint=Endpoint.EMBEDDINGS, model=model, input_tokens=count, body=body)


# --- Anthropic Messages --------------------------------------------------------------------------


def _anthropic_messages(body: dict[str, Any], strict: bool, endpoint: Endpoint) -> Conversation:
    model = _model(body, Provider.ANTHROPIC)
    counting = endpoint is Endpoint.COUNT_TOKENS
    max_tokens = body.get("max_tokens")
    if max_tokens is None and not counting and strict:
        raise Refused(400, "max_tokens: Field required")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1):
        raise Refused(400, "max_tokens: Input should be greater than or equal to 1")
    messages = body.get("messages")
    if messages is None:
        raise Refused(400, "messages: Field required")
    if not isinstance(messages, list):
        raise Refused(400, "messages: Input should be a valid list")
    if not messages and strict:
        raise Refused(400, "messages: at least one message is required")
    stream = False if counting else _stream(body, Provider.ANTHROPIC)
    system_value = body.get("system")
    system = _text(system_value)
    thinking = body.get("thinking")
    thinking_on = isinstance(thinking, dict) and thinking.get("type") == "enabled"
    if thinking_on and strict and isinstance(thinking, dict):
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise Refused(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if isinstance(max_tokens, int) and budget >= max_tokens:
            raise Refused(400, "`max_tokens` must be greater than `thinking.budget_tokens`.")
    last_user = ""
    turn = 0
    input_tokens = tokens.REPLY_PRIMING + _tool_tokens(body) + tokens.count(system)
    tool_names: dict[str, str] = {}
    pending: list[str] = []  # tool_use ids of the previous assistant message
    ends_with: str | None = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise Refused(400, f"messages.{i}: Input should be a valid dictionary")
        role = message.get("role")
        if role not in ("user", "assistant"):
            if role == "system":
                raise Refused(
                    400,
                    'messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, '
                    'not "system" as an input message role.',
                )
            raise Refused(400, f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user" and strict:
            raise Refused(400, 'messages: first message must use the "user" role')
        content = message.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": content}]
        input_tokens += tokens.MESSAGE_OVERHEAD
        results: list[str] = []
        uses: list[str] = []
        texts: list[str] = []
        for block in blocks:
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "text" and isinstance(block.get("text"), str):
                texts.append(block["text"])
            elif kind == "tool_use" and isinstance(block.get("id"), str):
                tool_names[block["id"]] = str(block.get("name", ""))
                uses.append(block["id"])
                input_tokens += tokens.count_value(block.get("input", {}))
            elif kind == "tool_result":
                results.append(str(block.get("tool_use_id", "")))
                input_tokens += tokens.count_value(block.get("content", ""))
            elif kind == "thinking" and isinstance(block.get("thinking"), str):
                input_tokens += tokens.count(block["thinking"])
        input_tokens += tokens.count("\n".join(texts))
        if strict:
            unexpected = [r for r in results if r not in pending]
            if unexpected:
                raise Refused(
                    400,
                    f"messages.{i}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{', '.join(unexpected)}. Each `tool_result` block must have a corresponding `tool_use` block in "
                    "the previous message.",
                )
            missing = [p for p in pending if p not in results]
            if missing:
                raise Refused(
                    400,
                    f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: "
                    f"{', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in "
                    "the next message.",
                )
        pending = uses if role == "assistant" else []
        if role == "user":
            ends_with = tool_names.get(results[-1], "") if results else None
            if texts or not results:
                turn += 1
                last_user = "\n".join(texts)
        else:
            ends_with = None
    return Conversation(
        endpoint=endpoint,
        model=model,
        system=system,
        message_count=len(messages),
        last_user=last_user,
        tools=_tool_names(body.get("tools"), Provider.ANTHROPIC, endpoint),
        turn=turn,
        tool_result_for=ends_with,
        stream=stream,
        input_tokens=input_tokens,
        max_tokens=max_tokens if isinstance(max_tokens, int) else 0,
        thinking=thinking_on,
        body=body,
    )


def read(endpoint: Endpoint, provider: Provider, body: bytes, strict: bool) -> Conversation:
    """The request's conversation; raises Refused for what the provider's API would reject."""
    if endpoint is Endpoint.MODELS:
        return Conversation(endpoint=endpoint)
    value = _json(body, provider)
    if endpoint is Endpoint.CHAT:
        return _chat(value, strict)
    if endpoint is Endpoint.RESPONSES:
        return _responses(value, strict)
    if endpoint is Endpoint.EMBEDDINGS:
        return _embeddings(value, strict)
    return _anthropic_messages(value, strict, endpoint)
