"""What a WebSocket stub does once connected: messages on connect, rules answering incoming messages, closes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from simulatord.errors import SpecErrors
from simulatord.matching.matchers import BodyTest
from simulatord.matching.request import HttpRequest
from simulatord.responding import templating
from simulatord.responding.reply import MAX_DELAY_SECONDS, ResponseSpec
from simulatord.responding.templating import JsonTemplate

if TYPE_CHECKING:
    from jinja2.environment import Template

DEFAULT_CLOSE_CODE = 1000
GOING_AWAY = 1001
MAX_CLOSE_REASON_BYTES = 123  # a close frame's payload is at most 125 bytes, two of them the code (RFC 6455 5.5)
# A WebSocket stub without responses accepts the upgrade; its sequence then only counts matches.
ACCEPT_UPGRADE = (ResponseSpec(101),)
# What an upgrade's response may carry: the wait and the rewrites; the rest needs an HTTP body to shape.
UPGRADE_BEHAVIOURS = ("template", "rate_limit", "delay")


@dataclass(frozen=True)
class OutMessage:
    """One message to send: text or bytes, optionally a template rendered at send time."""

    text: str | None = None
    binary: bytes | None = None
    delay: float = 0.0
    text_template: Template | None = None
    json_template: JsonTemplate | None = None

    @property
    def templated(self) -> bool:
        return self.text_template is not None or self.json_template is not None


@dataclass(frozen=True)
class CloseSpec:
    code: int = DEFAULT_CLOSE_CODE
    reason: str = ""
    delay: float = 0.0


@dataclass(frozen=True)
class Rule:
    """Answers incoming messages that pass every test (an empty list passes everything)."""

    tests: tuple[BodyTest, ...]
    replies: tuple[OutMessage, ...]
    close: CloseSpec | None = None

    def matches(self, message: HttpRequest) -> bool:
        return all(test.test(message) for test in self.tests)


@dataclass(frozen=True)
class Conversation:
    """A WebSocket stub's behaviour once connected."""

    subprotocol: str = ""
    on_connect: tuple[OutMessage, ...] = ()
    rules: tuple[Rule, ...] = ()
    close_after_connect: CloseSpec | None = None

    def accepts(self, request: HttpRequest) -> bool:
        """A stub with a subprotocol only answers clients that offer it."""
        if not self.subprotocol:
            return True
        offered = ",".join(request.header_values("sec-websocket-protocol"))
        return self.subprotocol in (p.strip() for p in offered.split(","))


def _delay_ok(delay: float, where: str, errors: SpecErrors) -> None:
    if not 0 <= delay <= MAX_DELAY_SECONDS:
        errors.add(f"{where}.delay", f"must be between 0 and {MAX_DELAY_SECONDS:.0f} seconds")


def close_spec(code: int, reason: str, delay: float, where: str, errors: SpecErrors) -> CloseSpec:
    """Validates a close; code 0 is a normal close (1000)."""
    code = code or DEFAULT_CLOSE_CODE
    if code != DEFAULT_CLOSE_CODE and not 3000 <= code <= 4999:
        errors.add(f"{where}.code", f"must be 0, 1000 or between 3000 and 4999, got {code}")
    if len(reason.encode()) > MAX_CLOSE_REASON_BYTES:
        errors.add(f"{where}.reason", f"must be at most {MAX_CLOSE_REASON_BYTES} bytes of UTF-8")
    _delay_ok(delay, where, errors)
    return CloseSpec(code, reason, delay)


def out_message(
    kind: str | None, payload: Any, template: bool, delay: float, where: str, errors: SpecErrors
) -> OutMessage:
    """Validates a message to send; `kind` is text, binary or json (the payload oneof), `payload` its value."""
    _delay_ok(delay, where, errors)
    if kind is None:
        errors.add(f"{where}.payload", "set one of text, binary or json")
        return OutMessage(text="", delay=delay)
    if kind == "binary":
        if template:
            errors.add(f"{where}.template", "binary messages cannot be templates; use text or json")
        return OutMessage(binary=bytes(payload), delay=delay)
    if kind == "text":
        compiled = templating.compile_text(str(payload), f"{where}.text", errors) if template else None
        return OutMessage(text=str(payload), delay=delay, text_template=compiled)
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    json_template = templating.compile_json(payload, f"{where}.json", errors) if template else None
    return OutMessage(text=text, delay=delay, json_template=json_template)


def conversation(
    subprotocol: str,
    on_connect: tuple[OutMessage, ...],
    rules: tuple[Rule, ...],
    close_after_connect: CloseSpec | None,
    where: str,
    errors: SpecErrors,
) -> Conversation:
    if any(c in subprotocol for c in " ,\r\n\t"):
        errors.add(f"{where}.subprotocol", f"{subprotocol!r} is not a subprotocol token")
    return Conversation(subprotocol, on_connect, rules, close_after_connect)


def check_upgrade_response(spec: ResponseSpec, where: str, errors: SpecErrors) -> None:
    """A WebSocket stub's response accepts (101) or refuses the upgrade; delivery shaping cannot apply to it."""
    for behaviour in spec.behaviours:
        if behaviour.name not in UPGRADE_BEHAVIOURS:
            field = getattr(behaviour, "field", behaviour.name)  # a behaviour named apart from its Response field
            errors.add(f"{where}.{field}", "does not apply to a WebSocket upgrade's response")
