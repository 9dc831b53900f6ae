"""The client's one seconds-to-Duration rule: nearest nanosecond, the same in every builder."""

from __future__ import annotations

import datetime
from typing import Any

import pytest
from google.protobuf import duration_pb2

from simulatord_client import behaviours as b
from simulatord_client import duration, stub


@pytest.mark.parametrize(
    ("value", "nanos"),
    [
        (1.001, 1_001_000_000),  # 1.001 * 1e9 is 1000999999.9999999 as a float: rounded, not truncated
        (0.0000000019, 2),
        (7, 7_000_000_000),
        (datetime.timedelta(days=1, microseconds=3), 86_400_000_003_000),
        (duration_pb2.Duration(seconds=2, nanos=5), 2_000_000_005),
    ],
)
def test_one_duration_rule(value: Any, nanos: int) -> None:
    assert duration(value).ToNanoseconds() == nanos


def test_every_builder_uses_the_one_duration_rule() -> None:
    seconds, nanos = 1.001, 1_001_000_000  # int(seconds * 1e9) would be one nanosecond short
    assert stub(delay=seconds).responses[0].delay.ToNanoseconds() == nanos
    assert b.timed(b.text("x"), delay=seconds).delay.ToNanoseconds() == nanos
    assert b.ws_text("x", delay=seconds).delay.ToNanoseconds() == nanos
    assert b.rate_limit(1, seconds).period.ToNanoseconds() == nanos
    assert b.fault("hang", hang_for=seconds).fault.hang_for.ToNanoseconds() == nanos
