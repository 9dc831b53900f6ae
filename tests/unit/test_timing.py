"""Delay distributions and dribbles: draws, seeds, bounds and validation with field paths."""

from __future__ import annotations

import math
import statistics

import pytest

from simulatord.errors import SpecErrors
from simulatord.responding import timing


def build(kind: str, **params: float) -> tuple[timing.Delay | None, list[str]]:
    errors = SpecErrors()
    delay = timing.delay(kind, "d", errors, **params)  # type: ignore[arg-type]
    return delay, [v.field for v in errors.violations]


def test_fixed_is_fixed() -> None:
    delay, problems = build("fixed", fixed=0.25)
    assert not problems and delay is not None
    assert {delay.sample() for _ in range(5)} == {0.25}


def test_uniform_stays_in_bounds_and_spreads() -> None:
    delay, _ = build("uniform", low=0.1, high=0.3, seed=1)
    assert delay is not None
    draws = [delay.sample() for _ in range(500)]
    assert all(0.1 <= d <= 0.3 for d in draws)
    assert max(draws) - min(draws) > 0.15


def test_a_seed_repeats_the_draws_and_no_seed_does_not() -> None:
    first, _ = build("lognormal", median=0.05, sigma=1.0, seed=7)
    second, _ = build("lognormal", median=0.05, sigma=1.0, seed=7)
    assert first is not None and second is not None
    assert [first.sample() for _ in range(20)] == [second.sample() for _ in range(20)]
    a, _ = build("uniform", low=0, high=1)
    b, _ = build("uniform", low=0, high=1)
    assert a is not None and b is not None
    assert [a.sample() for _ in range(5)] != [b.sample() for _ in range(5)]


def test_lognormal_has_its_median_and_a_long_tail() -> None:
    delay, _ = build("lognormal", median=0.1, sigma=1.0, seed=3)
    assert delay is not None
    draws = [delay.sample() for _ in range(4000)]
    assert statistics.median(draws) == pytest.approx(0.1, rel=0.1)
    assert max(draws) > 1.0, "sigma 1 reaches 10x the median"


def test_the_cap_bounds_every_draw() -> None:
    delay, _ = build("lognormal", median=1.0, sigma=3.0, seed=5, cap=2.0)
    assert delay is not None
    assert max(delay.sample() for _ in range(1000)) == 2.0


@pytest.mark.parametrize(
    ("kind", "params", "field"),
    [
        ("", {}, "d"),
        ("fixed", {"fixed": -1}, "d.fixed"),
        ("fixed", {"fixed": 601}, "d.fixed"),
        ("uniform", {"low": 0.5, "high": 0.1}, "d.uniform.max"),
        ("uniform", {"low": -0.1, "high": 0.1}, "d.uniform.min"),
        ("lognormal", {"median": 0, "sigma": 1}, "d.lognormal.median"),
        ("lognormal", {"median": 1, "sigma": -1}, "d.lognormal.sigma"),
        ("lognormal", {"median": 1, "sigma": math.nan}, "d.lognormal.sigma"),
        ("lognormal", {"median": 1, "sigma": 11}, "d.lognormal.sigma"),
        ("fixed", {"fixed": 1, "cap": -1}, "d.cap"),
    ],
)
def test_bad_parameters_name_their_field(kind: str, params: dict[str, float], field: str) -> None:
    delay, problems = build(kind, **params)
    assert delay is None
    assert problems == [field]


def test_dribble_spaces_its_writes_over_the_duration() -> None:
    errors = SpecErrors()
    dribble = timing.dribble(4, 1.0, "x", errors)
    assert dribble is not None
    pause, parts = dribble.pieces(b"0123456789")
    assert parts == [b"0123", b"4567", b"89"]
    assert pause * len(parts) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("chunk", "seconds", "field"), [(0, 1, "x.chunk_bytes"), (-2, 1, "x.chunk_bytes"), (1, 0, "x.duration")]
)
def test_bad_dribbles(chunk: int, seconds: float, field: str) -> None:
    errors = SpecErrors()
    assert timing.dribble(chunk, seconds, "x", errors) is None
    assert [v.field for v in errors.violations] == [field]
