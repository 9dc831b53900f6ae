"""Routing unit tests: base-URL prefix, virtual host and header addressing of sessions."""

from __future__ import annotations

from simulatord.http_front.routing import header_problem, route
from simulatord.names import SessionKey


def test_path_prefix_keeps_the_rest_of_the_path() -> None:
    found = route("/tenants/acme/sessions/s1/v1/chat/completions", [], "localhost")
    assert found is not None
    assert found.key == SessionKey("acme", "s1")
    assert found.path == "/v1/chat/completions"
    assert found.routing == "path_prefix"


def test_bare_prefix_is_the_root_path() -> None:
    found = route("/tenants/acme/sessions/s1", [], "localhost")
    assert found is not None and found.path == "/"


def test_header_wins_and_path_is_untouched() -> None:
    found = route("/v1/models", [(b"x-simulatord-session", b"tenants/acme/sessions/s1")], "localhost")
    assert found is not None and found.key == SessionKey("acme", "s1") and found.path == "/v1/models"
    assert found.routing == "header"


def test_host_routing_with_port() -> None:
    found = route("/v1/models", [(b"host", b"s1.acme.localhost:8080")], "localhost")
    assert found is not None and found.key == SessionKey("acme", "s1") and found.routing == "host"


def test_unaddressed_requests_and_bad_ids() -> None:
    assert route("/v1/models", [(b"host", b"127.0.0.1:8080")], "localhost") is None
    assert route("/tenants/ACME/sessions/s1/x", [], "localhost") is None
    assert route("/v1", [(b"x-simulatord-session", b"garbage")], "localhost") is None
    assert route("/v1", [(b"host", b"a.b.c.localhost")], "localhost") is None


def test_header_problem_says_why_the_routing_header_names_no_session() -> None:
    assert header_problem([(b"host", b"127.0.0.1:8080")]) is None
    assert header_problem([(b"x-simulatord-session", b"garbage")]) == (
        "must be 'tenants/{tenant}/sessions/{session}', got 'garbage'"
    )
    problem = header_problem([(b"x-simulatord-session", b"tenants/acme/sessions/S1")])
    assert problem is not None and problem.startswith("ids in 'tenants/acme/sessions/S1' must be 1-63 characters")
