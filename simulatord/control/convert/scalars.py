"""Durations, timestamps and JSON values between protobuf's well-known types and plain Python values."""

from __future__ import annotations

import math
from typing import Any

from google.protobuf import duration_pb2, json_format, struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from simulatord.errors import SpecErrors


def seconds(value: duration_pb2.Duration) -> float:
    return value.seconds + value.nanos / 1e9


def epoch(value: timestamp_pb2.Timestamp) -> float:
    """Seconds since the epoch: the inverse of `timestamp`."""
    return value.seconds + value.nanos / 1e9


def _split(secs: float) -> tuple[int, int]:
    """Whole seconds and nanoseconds, split before scaling: `secs * 1e9` would lose nanoseconds of an epoch."""
    whole = math.floor(secs)
    nanos = round((secs - whole) * 1e9)
    if nanos == 1_000_000_000:
        whole, nanos = whole + 1, 0
    return whole, nanos


def duration(secs: float) -> duration_pb2.Duration:
    whole, nanos = _split(secs)
    d = duration_pb2.Duration()
    d.FromNanoseconds(whole * 1_000_000_000 + nanos)  # normalises a negative duration's signs
    return d


def timestamp(epoch: float) -> timestamp_pb2.Timestamp:
    whole, nanos = _split(epoch)
    return timestamp_pb2.Timestamp(seconds=whole, nanos=nanos)


def _integral(value: Any) -> Any:
    """google.protobuf.Value keeps every number as a double; JSON users expect 1, not 1.0."""
    if isinstance(value, float) and value.is_integer() and math.isfinite(value) and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def from_value(value: struct_pb2.Value, where: str, errors: SpecErrors) -> Any:
    """A google.protobuf.Value as plain JSON; NaN and infinities are refused, as JSON has no spelling for them."""
    try:
        return _integral(json_format.MessageToDict(value))
    except ValueError:
        errors.add(where, "numbers must be finite: JSON has no NaN or Infinity")
        return None


def oneof(msg: Message, group: str, where: str, errors: SpecErrors) -> tuple[str | None, Any]:
    """Which field of a oneof is set and its value, a google.protobuf.Value as plain JSON."""
    kind = msg.WhichOneof(group)
    if kind is None:
        return None, None
    value = getattr(msg, kind)
    return kind, from_value(value, f"{where}.{kind}", errors) if isinstance(value, struct_pb2.Value) else value
