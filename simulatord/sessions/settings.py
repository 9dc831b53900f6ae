"""A session's settings as programmed (labels, ttl, journal limits, unmatched status), validated in one place."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from simulatord.errors import SpecErrors
from simulatord.responding.reply import header_name
from simulatord.sessions.journal import JournalLimits

if TYPE_CHECKING:
    from simulatord.llm.spec import SimulationSpec

MAX_TTL_SECONDS = 7 * 24 * 3600
LABEL_KEY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_./-]{0,62})?")
LABEL_VALUE = re.compile(r"[A-Za-z0-9_./-]{0,63}")


@dataclass(frozen=True)
class SessionSettings:
    """What a client may set on a session; zero values take the daemon's defaults."""

    labels: Mapping[str, str] = field(default_factory=dict)
    ttl: float | None = None  # None: the daemon's default
    max_exchanges: int = 0
    max_bytes: int = 0
    max_body_bytes: int = 0
    unmatched_status: int = 0
    redact_headers: frozenset[str] = frozenset()  # lower-case names
    llm: SimulationSpec | None = None  # a built-in LLM provider simulation
    llm_source: object = None  # the LlmSimulation message as programmed, echoed back to clients

    def limits(self, defaults: JournalLimits) -> JournalLimits:
        return JournalLimits(
            self.max_exchanges or defaults.max_exchanges,
            self.max_bytes or defaults.max_bytes,
            self.max_body_bytes or defaults.max_body_bytes,
        )


def check_labels(labels: Mapping[str, str], where: str, errors: SpecErrors) -> None:
    """Keys and values that label selectors (`key=value,key`) can always express."""
    for key, value in sorted(labels.items()):
        if not LABEL_KEY.fullmatch(key):
            errors.add(f"{where}[{key!r}]", "label keys are 1-63 characters of A-Z, a-z, 0-9, '_', '.', '/', '-'")
        elif not LABEL_VALUE.fullmatch(value):
            errors.add(
                f"{where}[{key!r}]", f"label value {value!r} may hold up to 63 of A-Z, a-z, 0-9, '_', '.', '/', '-'"
            )


def ttl(seconds: float, where: str, errors: SpecErrors) -> float | None:
    """A session's time to live; 0 (unset) is None, the daemon's default."""
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_TTL_SECONDS:
        errors.add(where, f"must be between 0 and {MAX_TTL_SECONDS} seconds")
        return None
    return seconds or None


def session_settings(
    labels: Mapping[str, str],
    ttl_seconds: float,
    max_exchanges: int,
    max_bytes: int,
    max_body_bytes: int,
    unmatched_status: int,
    where: str,
    errors: SpecErrors,
    redact_headers: Sequence[str] = (),
) -> SessionSettings:
    """Validates settings; `where` is the Session message's path."""
    for i, name in enumerate(redact_headers):
        if not header_name(name):
            errors.add(f"{where}.redact_headers[{i}]", f"{name[:60]!r} is not an HTTP field name")
    check_labels(labels, f"{where}.labels", errors)
    for name, value in (("max_exchanges", max_exchanges), ("max_bytes", max_bytes), ("max_body_bytes", max_body_bytes)):
        if value < 0:
            errors.add(f"{where}.journal_limits.{name}", "must not be negative")
    if unmatched_status and not 100 <= unmatched_status <= 599:
        errors.add(f"{where}.unmatched_status", "must be 0 or between 100 and 599")
    return SessionSettings(
        labels=dict(labels),
        ttl=ttl(ttl_seconds, f"{where}.ttl", errors),
        max_exchanges=max(max_exchanges, 0),
        max_bytes=max(max_bytes, 0),
        max_body_bytes=max(max_body_bytes, 0),
        unmatched_status=unmatched_status,
        redact_headers=frozenset(name.lower() for name in redact_headers),
    )
