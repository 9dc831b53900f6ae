"""Near misses: the stubs that came closest to matching an unmatched request, and each field that differed."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from simulatord.matching.matchers import MatchResult, Mismatch, RequestMatcher, show
from simulatord.matching.request import HttpRequest


@dataclass(frozen=True, slots=True)
class NearMiss:
    """A candidate that did not match a request, and why."""

    stub_name: str
    description: str
    mismatches: tuple[Mismatch, ...]


class Candidate(Protocol):
    """Anything with a name, a description and a matcher: a stub."""

    @property
    def name(self) -> str: ...

    @property
    def description(self) -> str: ...

    @property
    def matcher(self) -> RequestMatcher: ...


C = TypeVar("C", bound=Candidate)


def nearest(
    candidates: Sequence[C],
    request: HttpRequest,
    limit: int = 3,
    extra: Callable[[C], list[Mismatch]] | None = None,
) -> tuple[NearMiss, ...]:
    """The `limit` candidates closest to matching `request`, closest first (ties keep candidate order).

    `extra` adds mismatches that are not the matcher's (e.g. a scenario state), each counted as one more field.
    """
    scored: list[tuple[float, int, C, MatchResult]] = []
    for order, candidate in enumerate(candidates):
        result = candidate.matcher.match(request)
        if extra is not None:
            more = extra(candidate)
            if more:
                result = MatchResult(result.mismatches + tuple(more), result.checked + 1)
        scored.append((result.distance, order, candidate, result))
    scored.sort(key=lambda s: (s[0], s[1]))
    return tuple(NearMiss(c.name, c.description, result.mismatches) for _, _, c, result in scored[:limit])


def describe_mismatches(mismatches: Sequence[Mismatch]) -> str:
    """`field: expected X, got Y; ...`, one clause per mismatch."""
    return "; ".join(f"{m.field}: expected {m.expected}, got {show(m.actual)}" for m in mismatches)
