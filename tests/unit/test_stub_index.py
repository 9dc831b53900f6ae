"""The per-(method, path) stub index picks exactly what the plain linear scan over every stub picks."""

from __future__ import annotations

import random

import pytest

from simulatord.errors import SpecErrors
from simulatord.matching import matchers as m
from simulatord.matching.request import HttpRequest
from simulatord.names import SessionKey
from simulatord.responding.reply import ResponseSpec
from simulatord.sessions.journal import JournalLimits
from simulatord.sessions.session import Session
from simulatord.sessions.stubs import SequenceEnd, Stub

METHODS = ("GET", "POST", "DELETE")
PATHS = ("/a", "/a/b", "/b", "/items/1", "/items/2", "/")


def _path(rng: random.Random) -> m.PathTest | None:
    errors = SpecErrors()
    kind = rng.choice(("exact", "exact", "exact", "prefix", "template", "none"))
    if kind == "none":
        return None
    if kind == "template":
        return m.path_test("template", "/items/{id}", "path", errors)
    return m.path_test(kind, rng.choice(PATHS), "path", errors)


def _matcher(rng: random.Random, depth: int = 0) -> m.RequestMatcher:
    errors = SpecErrors()
    headers = []
    if rng.random() < 0.2:
        headers.append(
            m.field_value_test("headers", "x-k", m.string_test("equals", "1", False, "v", errors), False, "h", errors)
        )
    any_of = ()
    if depth == 0 and rng.random() < 0.15:  # a nested matcher with its own path: not indexable at the top
        any_of = (_matcher(rng, 1), _matcher(rng, 1))
    method = rng.choice((*METHODS, ""))
    if rng.random() < 0.05:  # two method tests that disagree: can never match
        extra: tuple[m.FieldTest, ...] = (m.MethodTest("PUT"),)
    else:
        extra = ()
    built = m.request_matcher(method=method, path=_path(rng), headers=headers, any_of=any_of)
    if extra:
        built = m.RequestMatcher(built.tests + extra, built.path)
    errors.raise_if_any()
    return built


def _stubs(seed: int, count: int) -> list[Stub]:
    rng = random.Random(seed)
    stubs = []
    for i in range(count):
        responses = tuple(ResponseSpec(status=200 + j) for j in range(rng.randint(1, 3)))
        stubs.append(
            Stub(
                id=f"s{i}",
                name=f"s{i}",
                matcher=_matcher(rng),
                responses=responses,
                after_last=rng.choice(tuple(SequenceEnd)),
                priority=rng.choice((0, 0, 1, 5)),
                times=rng.choice((0, 0, 1, 2)),
                required_state=rng.choice(("", "", "", "open")),
                next_state=rng.choice(("", "", "open", "closed")),
                scenario=rng.choice(("", "", "flow")),
            )
        )
    return stubs


def _requests(seed: int, count: int) -> list[HttpRequest]:
    rng = random.Random(seed + 1)
    out = []
    for _ in range(count):
        headers = (("x-k", "1"),) if rng.random() < 0.3 else ()
        path = rng.choice((*PATHS, "/a/b/c", "/nope", "/items/9"))
        out.append(HttpRequest(rng.choice((*METHODS, "PUT")), path, headers=headers))
    return out


class LinearSession(Session):
    """The reference: every request tries every HTTP stub, as before the index existed."""

    def candidates(self, request: HttpRequest) -> tuple[Stub, ...]:
        return self._ordered


def _session(cls: type[Session], stubs: list[Stub], batches: int) -> Session:
    session = cls(SessionKey("t", "s"), 60.0, JournalLimits())
    size = max(1, len(stubs) // batches)
    for start in range(0, len(stubs), size):  # several batches: order numbers span add_stubs calls
        session.add_stubs(stubs[start : start + size])
    return session


def _outcome(session: Session, request: HttpRequest) -> tuple[object, ...]:
    chosen = session.select(request)
    return (
        chosen.stub.name if chosen.stub else None,
        chosen.response.status if chosen.response else None,
        tuple(miss.stub_name for miss in chosen.near_misses),
        session.state,
        tuple(sorted(session.scenarios.items())),
    )


@pytest.mark.parametrize("seed", range(60))
def test_index_selects_like_the_linear_scan(seed: int) -> None:
    count = random.Random(seed).randint(1, 60)
    indexed = _session(Session, _stubs(seed, count), batches=1 + seed % 3)
    linear = _session(LinearSession, _stubs(seed, count), batches=1 + seed % 3)
    for request in _requests(seed, 150):
        assert _outcome(indexed, request) == _outcome(linear, request), request
    assert [s.match_count for s in indexed.stubs] == [s.match_count for s in linear.stubs]


def test_index_follows_replace_and_delete() -> None:
    errors = SpecErrors()

    def exact(stub_id: str, path: str, priority: int = 0) -> Stub:
        matcher = m.request_matcher("GET", m.path_test("exact", path, "path", errors))
        return Stub(stub_id, stub_id, matcher, (ResponseSpec(),), priority=priority)

    session = Session(SessionKey("t", "s"), 60.0, JournalLimits())
    session.add_stubs([exact("a", "/x"), exact("b", "/x"), exact("c", "/y")])
    get_x = HttpRequest("GET", "/x")
    assert session.select(get_x).stub.name == "b"  # type: ignore[union-attr]  # newest first
    session.replace_stub(exact("a", "/x", priority=1))
    assert session.select(get_x).stub.name == "a"  # type: ignore[union-attr]
    session.replace_stub(exact("a", "/z", priority=1))
    assert session.select(get_x).stub.name == "b"  # type: ignore[union-attr]
    session.delete_stub("b")
    missed = session.select(get_x)
    assert missed.stub is None
    assert {miss.stub_name for miss in missed.near_misses} == {"a", "c"}  # near misses still see every stub
    assert session.candidates(HttpRequest("GET", "/nowhere")) == ()


def test_index_keys() -> None:
    errors = SpecErrors()
    assert m.request_matcher("GET", m.path_test("exact", "/a", "p", errors)).index_key() == ("GET", "/a")
    assert m.request_matcher("", m.path_test("exact", "/a", "p", errors)).index_key() == ("", "/a")
    assert m.request_matcher("GET", m.path_test("prefix", "/a", "p", errors)).index_key() is None
    assert m.request_matcher("GET").index_key() is None
