"""Server-sent events as the providers write them, each tagged with the output tokens it carries for pacing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """One encoded event and how many output tokens it carries (0: framing, sent without a token's wait)."""

    data: bytes
    tokens: int = 0


def encode(payload: Any, event: str = "", tokens: int = 0) -> Event:
    """`event: NAME` (when named) and one `data:` line of compact JSON, as both providers send them."""
    data = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    head = f"event: {event}\n" if event else ""
    return Event(f"{head}data: {data}\n\n".encode(), tokens)


def raw(text: str) -> Event:
    return Event(text.encode())
