"""The client's one conversion to `google.protobuf.Duration`, rounded to the nearest nanosecond.

Example: `duration(0.25)`, `duration(timedelta(milliseconds=250))` and `duration(Duration(nanos=250_000_000))`
are the same message.
"""

from __future__ import annotations

import datetime as _dt

from google.protobuf import duration_pb2

#: A span of time: seconds (int or float), a timedelta, or a Duration message (used as it is).
DurationLike = float | _dt.timedelta | duration_pb2.Duration

_NANOS_PER_SECOND = 1_000_000_000


def duration(value: DurationLike) -> duration_pb2.Duration:
    """A Duration from seconds, a timedelta or a Duration, rounded to the nearest nanosecond."""
    if isinstance(value, duration_pb2.Duration):
        return value
    if isinstance(value, _dt.timedelta):
        # Whole days, seconds and microseconds: exact, where total_seconds() would go through a float.
        nanos = (value.days * 86_400 + value.seconds) * _NANOS_PER_SECOND + value.microseconds * 1_000
    else:
        nanos = round(value * _NANOS_PER_SECOND)
    out = duration_pb2.Duration()
    out.FromNanoseconds(nanos)
    return out
