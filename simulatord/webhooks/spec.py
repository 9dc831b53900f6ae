"""A webhook as programmed (target, body, signing, retries, faults) and stubs' callbacks, validated when programmed."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from simulatord.errors import SpecErrors
from simulatord.responding import sandbox
from simulatord.responding.reply import FRAMING_HEADERS, encode_body, header_problem
from simulatord.responding.templating import JsonTemplate, compile_json, compile_text, has_markers
from simulatord.webhooks.signing import Profile, SignatureFault, Signer, fault_problem

if TYPE_CHECKING:
    from jinja2.environment import Template

MAX_ATTEMPTS = 20
MAX_TIMEOUT = 120.0
MAX_WAIT = 3 * 24 * 3600.0  # a provider's longest schedule (Stripe) spans three days
DEFAULT_TIMEOUT = 10.0
MAX_BODY_BYTES = 4 * 1024 * 1024


class Schedule(StrEnum):
    NONE = "none"
    STRIPE = "stripe"
    SLACK = "slack"
    STANDARD = "standard"
    CUSTOM = "custom"


# The waits before each retry, in seconds, as the providers document them (webhook.proto says where from).
SCHEDULES: dict[Schedule, tuple[float, ...]] = {
    Schedule.NONE: (),
    Schedule.STRIPE: (60, 300, 1800, 7200, 18000, 36000, 36000, 43200, 43200, 72000),
    Schedule.SLACK: (0, 60, 300),
    Schedule.STANDARD: (0, 5, 300, 1800, 7200, 18000, 36000, 36000),
}


@dataclass(frozen=True)
class RetryPolicy:
    timeout: float = DEFAULT_TIMEOUT
    schedule: Schedule = Schedule.NONE
    delays: tuple[float, ...] = ()  # the waits before retries 1, 2, ... (already the schedule's for providers)
    time_scale: float = 1.0
    max_attempts: int = 0  # 0: one more than the delays

    def waits(self) -> tuple[float, ...]:
        """The scaled waits before each retry, cut to the attempts allowed."""
        waits = tuple(d * self.time_scale for d in self.delays)
        return waits[: self.max_attempts - 1] if self.max_attempts else waits


@dataclass(frozen=True)
class WebhookSpec:
    """One webhook to deliver. For a callback, `templates` renders url, header values and body per trigger."""

    url: str
    method: str = "POST"
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    event: str = ""
    signer: Signer | None = None
    hook_id: str = "1"
    retry: RetryPolicy = RetryPolicy()
    signature_fault: SignatureFault = SignatureFault.NONE
    duplicate: bool = False
    templates: WebhookTemplates | None = field(default=None, compare=False)


@dataclass(frozen=True)
class WebhookTemplates:
    """The parts of a callback's webhook that hold template markers, compiled when programmed."""

    url: Template | None
    headers: tuple[Template | None, ...]  # parallel to WebhookSpec.headers
    text: Template | None = None
    json: JsonTemplate | None = None


@dataclass(frozen=True)
class CallbackSpec:
    webhook: WebhookSpec
    delay: float = 0.0


@dataclass(frozen=True, slots=True)
class WebhookRecord:
    """What the journal keeps of one delivery attempt (the proto's WebhookAttempt)."""

    delivery_id: str
    attempt: int
    url: str
    response_body: bytes = b""
    error: str = ""
    callback_of: str = ""


def url_problem(url: str) -> str | None:
    """Why `url` cannot be delivered to, or None."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises for a port that is not a number
    except ValueError as exc:
        return f"is not a URL: {exc}"
    if parts.scheme not in ("http", "https"):
        return f"must be an http or https URL, got {url[:80]!r}"
    if not parts.hostname:
        return "must name a host"
    return None


def retry_policy(
    timeout: float,
    schedule: Schedule | None,
    delays: Sequence[float],
    time_scale: float,
    max_attempts: int,
    where: str,
    errors: SpecErrors,
) -> RetryPolicy:
    if not (math.isfinite(timeout) and 0 <= timeout <= MAX_TIMEOUT):
        errors.add(f"{where}.timeout", f"must be between 0 and {MAX_TIMEOUT:g} seconds")
        timeout = 0.0
    if schedule is None:
        errors.add(f"{where}.schedule", "unknown RetrySchedule value")
        schedule = Schedule.NONE
    if schedule is Schedule.CUSTOM:
        if not delays:
            errors.add(f"{where}.delays", "RETRY_SCHEDULE_CUSTOM needs at least one delay")
        for i, delay in enumerate(delays):
            if not (math.isfinite(delay) and 0 <= delay <= MAX_WAIT):
                errors.add(f"{where}.delays[{i}]", f"must be between 0 and {MAX_WAIT:g} seconds")
    elif delays:
        errors.add(f"{where}.delays", "are only for RETRY_SCHEDULE_CUSTOM")
    if len(delays) >= MAX_ATTEMPTS:
        errors.add(f"{where}.delays", f"at most {MAX_ATTEMPTS - 1} retries")
    if not (math.isfinite(time_scale) and 0 <= time_scale <= 1000):
        errors.add(f"{where}.time_scale", "must be between 0 and 1000 (0: 1)")
        time_scale = 1.0
    if not 0 <= max_attempts <= MAX_ATTEMPTS:
        errors.add(f"{where}.max_attempts", f"must be between 0 and {MAX_ATTEMPTS}")
        max_attempts = 0
    waits = tuple(delays) if schedule is Schedule.CUSTOM else SCHEDULES[schedule]
    return RetryPolicy(timeout or DEFAULT_TIMEOUT, schedule, waits, time_scale or 1.0, max_attempts)


def webhook(
    url: str,
    method: str,
    headers: Mapping[str, str],
    body_kind: str | None,
    body: Any,
    event: str,
    signer: Signer | None,
    hook_id: str,
    retry: RetryPolicy,
    signature_fault: SignatureFault,
    duplicate: bool,
    where: str,
    errors: SpecErrors,
    templated: bool = False,
) -> WebhookSpec:
    """Validates a webhook; `templated` (a stub's callback) compiles the parts that hold template markers."""
    if not url:
        errors.add(f"{where}.url", "is required")
    elif not (templated and has_markers(url)) and (problem := url_problem(url)) is not None:
        errors.add(f"{where}.url", problem)
    method = (method or "POST").upper()
    if not method.isalpha() or len(method) > 16:
        errors.add(f"{where}.method", f"{method[:20]!r} is not an HTTP method")
    pairs: list[tuple[str, str]] = []
    for name, value in sorted(headers.items()):
        at = f"{where}.headers[{name!r}]"
        problem = header_problem(name, value) if not (templated and has_markers(value)) else None
        if problem is not None:
            errors.add(at, problem)
        elif name.lower() in FRAMING_HEADERS:
            errors.add(at, f"{name} is set by the daemon from the body")
        else:
            pairs.append((name, value))
    encoded, content_type = encode_body(body_kind, body, pairs)
    pairs.extend(content_type)
    if len(encoded) > MAX_BODY_BYTES:
        errors.add(f"{where}.{body_kind}", f"must be at most {MAX_BODY_BYTES} bytes")
    if signer is not None and (problem := fault_problem(signer.profile, signature_fault, signer.custom)):
        errors.add(f"{where}.fault.signature", problem)
    elif signer is None and signature_fault is not SignatureFault.NONE:
        errors.add(f"{where}.fault.signature", "needs signing: an unsigned webhook has no signature to spoil")
    if signer is not None and signer.profile is Profile.GITHUB and hook_id and not hook_id.isdigit():
        errors.add(f"{where}.signing.hook_id", "GitHub hook ids are numbers")
    templates = None
    if templated:
        templates = WebhookTemplates(
            url=compile_text(url, f"{where}.url", errors),
            headers=tuple(compile_text(v, f"{where}.headers[{n!r}]", errors) for n, v in pairs),
            text=compile_text(str(body), f"{where}.body_text", errors) if body_kind == "body_text" else None,
            json=compile_json(body, f"{where}.body_json", errors) if body_kind == "body_json" else None,
        )
        if templates.url is None and not any(templates.headers) and templates.text is None and templates.json is None:
            templates = None
    return WebhookSpec(
        url=url,
        method=method,
        headers=tuple(pairs),
        body=encoded,
        event=event,
        signer=signer,
        hook_id=hook_id or "1",
        retry=retry,
        signature_fault=signature_fault,
        duplicate=duplicate,
        templates=templates,
    )


async def rendered(spec: WebhookSpec, values: Mapping[str, Any]) -> WebhookSpec:
    """The webhook with its templates rendered (in the sandbox, off the event loop when slow)."""
    templates = spec.templates
    if templates is None:
        return spec

    def render() -> WebhookSpec:
        url = sandbox.render(templates.url, values) if templates.url is not None else spec.url
        if (problem := url_problem(url)) is not None:
            raise ValueError(f"the rendered url {url[:80]!r} {problem}")
        headers = tuple(
            (name, value if template is None else sandbox.render(template, values).strip())
            for (name, value), template in zip(spec.headers, templates.headers, strict=True)
        )
        body = spec.body
        if templates.text is not None:
            body = sandbox.render(templates.text, values).encode()
        elif templates.json is not None:
            body = templates.json.render_bytes(values)
        return dataclasses.replace(spec, url=url, headers=headers, body=body, templates=None)

    return await sandbox.run(render)


def callback(spec: WebhookSpec, delay: float, where: str, errors: SpecErrors) -> CallbackSpec:
    if not (math.isfinite(delay) and 0 <= delay <= MAX_WAIT):
        errors.add(f"{where}.delay", f"must be between 0 and {MAX_WAIT:g} seconds")
        delay = 0.0
    return CallbackSpec(spec, delay)
