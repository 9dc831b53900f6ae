"""Session verification as pure code: unused stubs, unmet call counts, unmatched requests and the readable summary."""

from __future__ import annotations

import pytest

from simulatord.errors import SpecErrors
from simulatord.matching import matchers as m
from simulatord.matching.request import HttpRequest
from simulatord.names import SessionKey
from simulatord.responding import ratelimit
from simulatord.responding.reply import Reply, ResponseSpec
from simulatord.serving import answers
from simulatord.serving.recording import record
from simulatord.sessions.journal import Exchange, ExchangeKind, JournalLimits
from simulatord.sessions.session import Session
from simulatord.sessions.stubs import Stub
from simulatord.sessions.verify import MAX_UNMATCHED, verify

KEY = SessionKey("t", "s")


def stub(
    stub_id: str,
    method: str,
    path: str,
    *,
    description: str = "",
    at_least: int | None = None,
    at_most: int | None = None,
    priority: int = 0,
    rate_limit: ratelimit.RateLimitRule | None = None,
) -> Stub:
    errors = SpecErrors()
    matcher = m.request_matcher(method, m.path_test("exact", path, "path", errors))
    errors.raise_if_any()
    return Stub(
        id=stub_id,
        name=KEY.stub_name(stub_id),
        matcher=matcher,
        responses=(ResponseSpec(),),
        description=description,
        expect_at_least=at_least,
        expect_at_most=at_most,
        priority=priority,
        rate_limit=rate_limit,
    )


def session_with(*stubs: Stub) -> Session:
    session = Session(KEY, 60.0, JournalLimits())
    session.add_stubs(stubs)
    return session


def serve(session: Session, request: HttpRequest, *, websocket: bool = False) -> Exchange:
    """What the serving layer does with one request, minus delivery: select a stub, then record the exchange as
    serving/recording.py does (the stub's name when one answered, the near misses when none did)."""
    selection = session.select(request, websocket=websocket)
    stub_name, status, near_misses = "", session.unmatched_status, selection.near_misses
    if selection.stub is not None and selection.response is not None:
        stub_name, status, near_misses = selection.stub.name, selection.response.status, ()
    return session.journal.append(
        Exchange(
            sequence=0,
            request=request,
            body_size=len(request.body),
            body_truncated=False,
            stub_name=stub_name,
            near_misses=near_misses,
            status=status,
            response_headers=(),
            response_body_size=0,
            duration=0.0,
            kind=ExchangeKind.WEBSOCKET_UPGRADE if websocket else ExchangeKind.HTTP,
        )
    )


def get(path: str, query: str = "") -> HttpRequest:
    return HttpRequest("GET", path, query)


def serve_times(session: Session, request: HttpRequest, times: int) -> None:
    for _ in range(times):
        serve(session, request)


def stub_ids(stubs: tuple[Stub, ...]) -> list[str]:
    return [s.id for s in stubs]


# --- all well ------------------------------------------------------------------------------------


def test_a_session_whose_stubs_all_matched_and_whose_requests_all_matched_is_ok() -> None:
    session = session_with(stub("users", "GET", "/users"), stub("health", "GET", "/health"))
    serve(session, get("/users"))
    serve(session, get("/health"))
    report = verify(session)
    assert report.ok
    assert (report.unused_stubs, report.unmet_expectations, report.unmatched) == ((), (), ())
    assert report.summary() == ""


def test_an_empty_session_is_ok() -> None:
    report = verify(session_with())
    assert report.ok and report.summary() == ""


# --- unused stubs --------------------------------------------------------------------------------


def test_a_stub_without_an_expectation_that_never_matched_is_reported_unused() -> None:
    session = session_with(stub("users", "GET", "/users"), stub("delete", "DELETE", "/users", description="remover"))
    serve(session, get("/users"))
    report = verify(session)
    assert not report.ok
    assert stub_ids(report.unused_stubs) == ["delete"]
    assert report.unmet_expectations == () and report.unmatched == ()
    assert report.summary() == "Stubs never used:\n  - tenants/t/sessions/s/stubs/delete (remover)"


def test_unused_stubs_are_listed_in_creation_order_not_trial_order() -> None:
    session = session_with(
        stub("first", "GET", "/a"), stub("second", "GET", "/b", priority=5), stub("third", "GET", "/c")
    )
    assert stub_ids(session.stubs) == ["second", "third", "first"]  # trial order: priority, then newest
    assert stub_ids(verify(session).unused_stubs) == ["first", "second", "third"]


@pytest.mark.parametrize("at_most", [0, 2])
def test_a_stub_expected_at_most_n_times_may_go_unused(at_most: int) -> None:
    report = verify(session_with(stub("optional", "GET", "/maybe", at_most=at_most)))
    assert report.ok, report.summary()


def test_a_stub_expected_at_least_zero_times_may_go_unused() -> None:
    assert verify(session_with(stub("optional", "GET", "/maybe", at_least=0))).ok


# --- expectations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at_least", "at_most", "matches", "met", "words"),
    [
        (2, None, 1, False, "at least 2"),
        (2, None, 2, True, "at least 2"),
        (2, None, 5, True, "at least 2"),
        (None, 1, 1, True, "at most 1"),
        (None, 1, 2, False, "at most 1"),
        (2, 2, 1, False, "exactly 2"),
        (2, 2, 2, True, "exactly 2"),
        (2, 2, 3, False, "exactly 2"),
        (1, 3, 0, False, "between 1 and 3"),
        (1, 3, 3, True, "between 1 and 3"),
        (1, 3, 4, False, "between 1 and 3"),
    ],
)
def test_call_count_expectations_are_checked_against_the_match_count(
    at_least: int | None, at_most: int | None, matches: int, met: bool, words: str
) -> None:
    session = session_with(stub("counted", "GET", "/count", description="counter", at_least=at_least, at_most=at_most))
    serve_times(session, get("/count"), matches)
    report = verify(session)
    assert report.ok is met
    assert report.unused_stubs == ()
    if met:
        assert report.unmet_expectations == () and report.summary() == ""
    else:
        assert stub_ids(report.unmet_expectations) == ["counted"]
        assert report.summary() == (
            "Stubs whose expected call count was not met:\n"
            f"  - tenants/t/sessions/s/stubs/counted (counter): expected {words}, matched {matches} time(s)"
        )


def test_a_stub_with_an_unmet_expectation_is_not_also_reported_unused() -> None:
    report = verify(session_with(stub("needed", "GET", "/needed", at_least=1)))
    assert stub_ids(report.unmet_expectations) == ["needed"]
    assert report.unused_stubs == ()


# --- unmatched requests --------------------------------------------------------------------------


def test_unmatched_requests_are_listed_in_journal_order_with_their_near_misses() -> None:
    session = session_with(stub("users", "GET", "/users", description="user list"))
    serve(session, get("/user", "page=2"))
    serve(session, get("/users"))
    serve(session, HttpRequest("POST", "/users"))
    report = verify(session)
    assert [e.sequence for e in report.unmatched] == [1, 3]
    assert [miss.stub_name for miss in report.unmatched[0].near_misses] == ["tenants/t/sessions/s/stubs/users"]
    assert report.summary() == (
        "Requests no stub matched:\n"
        "  - #1 GET /user?page=2\n"
        "      nearest user list: path: expected exact '/users', got /user\n"
        "  - #3 POST /users\n"
        "      nearest user list: method: expected GET, got POST"
    )


def test_an_unmatched_request_to_a_session_without_stubs_says_there_were_none() -> None:
    session = session_with()
    serve(session, get("/anything"))
    assert (
        verify(session).summary() == "Requests no stub matched:\n  - #1 GET /anything\n      (the session has no stubs)"
    )


def test_rate_limited_answers_are_exchanges_of_their_stub_not_unmatched_requests() -> None:
    errors = SpecErrors()
    rule = ratelimit.private(ratelimit.rule(1, 60.0, "", "", None, "rate_limit", errors), "limited")
    errors.raise_if_any()
    session = session_with(stub("limited", "GET", "/limited", rate_limit=rule))
    first, second = serve(session, get("/limited")), serve(session, get("/limited"))
    assert (first.status, second.status) == (200, 429)
    assert verify(session).ok


def test_at_most_max_unmatched_exchanges_are_listed_the_oldest_first() -> None:
    assert MAX_UNMATCHED == 100  # VerifySessionResponse.unmatched_exchanges promises "at most 100"
    session = session_with(stub("users", "GET", "/users"))
    serve(session, get("/users"))
    serve_times(session, get("/nope"), MAX_UNMATCHED + 5)
    report = verify(session)
    assert [e.sequence for e in report.unmatched] == list(range(2, MAX_UNMATCHED + 2))
    assert report.summary().count("\n  - #") == MAX_UNMATCHED


def test_an_unmatched_upgrade_in_a_session_with_only_http_stubs_does_not_claim_the_session_has_no_stubs() -> None:
    session = session_with(stub("users", "GET", "/users"))
    serve(session, get("/users"))
    serve(session, get("/socket"), websocket=True)
    summary = verify(session).summary()
    assert "#2 GET /socket" in summary
    assert "(the session has no stubs)" not in summary
    assert "(the session has no WebSocket stubs)" in summary


@pytest.mark.parametrize(
    "refusal", [answers.body_too_large(1000), answers.body_too_slow(0.5), answers.ambiguous_framing()]
)
def test_a_request_refused_before_any_stub_was_tried_says_why_not_that_there_are_no_stubs(refusal: Reply) -> None:
    session = session_with(stub("users", "POST", "/users"))
    record(session, HttpRequest("POST", "/users"), refusal, 0.0)
    summary = verify(session).summary()
    assert f"(no stub was tried: {refusal.error})" in summary
    assert "the session has no stubs" not in summary


# --- everything at once --------------------------------------------------------------------------


def test_the_summary_lists_unmet_expectations_then_unused_stubs_then_unmatched_requests() -> None:
    session = session_with(
        stub("lookup", "GET", "/users/1", description="user lookup", at_least=2),
        stub("delete", "DELETE", "/users/1"),
        stub("optional", "GET", "/health", at_most=1),
    )
    serve(session, get("/users/1"))
    serve(session, get("/users/2", "verbose=1"))
    report = verify(session)
    assert stub_ids(report.unmet_expectations) == ["lookup"]
    assert stub_ids(report.unused_stubs) == ["delete"]
    assert [e.sequence for e in report.unmatched] == [2]
    assert report.summary().splitlines() == [
        "Stubs whose expected call count was not met:",
        "  - tenants/t/sessions/s/stubs/lookup (user lookup): expected at least 2, matched 1 time(s)",
        "Stubs never used:",
        "  - tenants/t/sessions/s/stubs/delete",
        "Requests no stub matched:",
        "  - #2 GET /users/2?verbose=1",
        "      nearest tenants/t/sessions/s/stubs/optional: path: expected exact '/health', got /users/2",
        "      nearest user lookup: path: expected exact '/users/1', got /users/2",
        "      nearest tenants/t/sessions/s/stubs/delete: method: expected DELETE, got GET; "
        "path: expected exact '/users/1', got /users/2",
    ]
