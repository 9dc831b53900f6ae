"""A WireMock root directory converted and programmed into a real daemon: each request is answered as WireMock
answers it (status, headers, body bytes, the scenario's sequence, faults as connection errors)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from simulatord.control.convert import wiremock
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc

ROOT = Path(__file__).resolve().parents[1] / "fixtures" / "wiremock"
NO_ROUTE = b'{"error":"no route"}'
JSON = {"content-type": "application/json"}
TEXT = {"content-type": "text/plain"}
# The response headers compared: those the mappings set, and the content type nobody set must stay unset.
COMPARED_HEADERS = ("content-type", "location", "cache-control", "set-cookie", "x-source")


@dataclass(frozen=True)
class Case:
    """One request and how WireMock answers it."""

    id: str
    method: str
    path: str
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)  # sent
    content: bytes = b""  # sent
    expect: dict[str, str | list[str]] = field(default_factory=dict)  # response headers; [] means absent


def _json(obj: object) -> bytes:
    return json.dumps(obj).encode()


CASES = [
    Case(
        "path-template",
        "GET",
        "/users/7",
        200,
        b'{"id":7,"name":"Ada","tags":["admin","ops"],"score":9.5}',
        expect={**JSON, "x-source": "template"},
    ),
    Case("priority-1-wins", "GET", "/users/42", 410, b"gone", expect=TEXT),
    Case("catch-all-priority-10", "DELETE", "/nowhere", 404, NO_ROUTE, expect=JSON),
    Case("query", "GET", "/search?q=shoes&page=2", 200, b"3 results", expect=TEXT),
    Case("query-regex-miss", "GET", "/search?q=shoes&page=two", 404, NO_ROUTE),
    Case("query-absent-miss", "GET", "/search?q=shoes&page=2&debug=1", 404, NO_ROUTE),
    Case("url-with-query", "GET", "/api/v1/status?verbose=true", 200, b"all systems go", expect={"content-type": []}),
    Case("url-query-miss", "GET", "/api/v1/status?verbose=false", 404, NO_ROUTE),
    Case(
        "headers",
        "GET",
        "/secure",
        200,
        b'{"secret":true}',
        headers={"Accept": "application/json", "X-Api-Key": "abc123"},
        expect={"content-type": []},
    ),
    Case(
        "header-does-not-match",
        "GET",
        "/secure",
        404,
        NO_ROUTE,
        headers={"Accept": "application/json", "X-Api-Key": "abc123", "X-Debug": "TRUE"},
    ),
    Case("header-missing", "GET", "/secure", 404, NO_ROUTE, headers={"Accept": "application/json"}),
    Case(
        "basic-auth",
        "GET",
        "/admin",
        200,
        b"welcome admin",
        headers={"Authorization": "Basic YWRtaW46czNjcmV0"},
        expect=TEXT,
    ),
    Case("basic-auth-wrong", "GET", "/admin", 404, NO_ROUTE, headers={"Authorization": "Basic YWRtaW46d3Jvbmc="}),
    Case(
        "json-body-extra-elements",
        "POST",
        "/orders",
        201,
        b'{"id":1001,"status":"created"}',
        content=_json({"qty": 2, "item": "book", "gift": True}),
        expect={**JSON, "location": "/orders/1001"},
    ),
    Case("json-body-miss", "POST", "/orders", 404, NO_ROUTE, content=_json({"item": "pen", "qty": 2})),
    Case(
        "json-path",
        "POST",
        "/orders/validate",
        422,
        b'{"error":"too many items"}',
        content=_json({"customer": {"email": "ada@example.com"}, "items": [{"qty": 1}, {"qty": 11}]}),
        expect=JSON,
    ),
    Case(
        "json-path-miss",
        "POST",
        "/orders/validate",
        404,
        NO_ROUTE,
        content=_json({"customer": {"email": "ada@example.com"}, "items": [{"qty": 1}]}),
    ),
    Case("body-file", "GET", "/catalog", 200, (ROOT / "__files" / "catalog.json").read_bytes(), expect=JSON),
    Case("base64-body", "GET", "/logo.png", 200, b"\x89PNG\r\n\x1a\n", expect={"content-type": "image/png"}),
    Case("binary-body", "POST", "/upload", 204, b"", content=b"\x00\x01\x02\x03"),
    Case("binary-body-miss", "POST", "/upload", 404, NO_ROUTE, content=b"\x00\x01\x02"),
    Case("any-method-or", "GET", "/ping", 200, b"pong", headers={"X-Env": "prod"}, expect=TEXT),
    Case("any-method-or-post", "POST", "/ping", 200, b"pong", headers={"X-Env": "staging"}),
    Case("or-miss", "GET", "/ping", 404, NO_ROUTE, headers={"X-Env": "dev"}),
    Case("body-regex", "PUT", "/notes", 200, b"noted", content=b"call me:\nurgent"),
    Case("body-does-not-match", "PUT", "/notes", 404, NO_ROUTE, content=b"urgent draft"),
    Case(
        "cookie-and-header-lists",
        "GET",
        "/profile",
        200,
        b"profile",
        headers={"Cookie": "other=1; session=abc"},
        expect={**TEXT, "set-cookie": ["theme=dark; Path=/", "lang=en; Path=/"], "cache-control": "no-store"},
    ),
    Case("cookie-miss", "GET", "/profile", 404, NO_ROUTE, headers={"Cookie": "session=abcd"}),
    Case("url-pattern", "GET", "/files/readme.txt", 200, b"a text file", expect=TEXT),
    Case("url-pattern-miss", "GET", "/files/README.txt", 404, NO_ROUTE),
]
# The scenario: (method, status, body), in order, from the initial state.
CART = [
    ("GET", 200, b"empty"),
    ("POST", 201, b"added"),
    ("GET", 200, b"1 item"),
    ("POST", 409, b"already filled"),
    ("DELETE", 204, b""),
    ("GET", 200, b"empty"),
    ("DELETE", 404, NO_ROUTE),
    ("POST", 201, b"added"),
    ("GET", 200, b"1 item"),
]
FAULTS = {
    "/faults/reset": httpx.ReadError,
    "/faults/empty": httpx.RemoteProtocolError,
    "/faults/garbage": httpx.RemoteProtocolError,
    "/faults/malformed": httpx.RemoteProtocolError,
}
# Everything the fixture's mappings hold that is not converted exactly: (mapping, field).
EXPECTED_GAPS = {
    ("cart-empty", "requiredScenarioState"),
    ("cart-add", "requiredScenarioState"),
    ("profile", "request.cookies.session"),
    ("fault-malformed", "response.fault"),
}


def send(client: httpx.Client, base_url: str, case: Case) -> httpx.Response:
    return client.request(case.method, base_url + case.path, headers=case.headers, content=case.content or None)


def check(response: httpx.Response, case: Case) -> None:
    assert (response.status_code, response.content) == (case.status, case.body), case.id
    for name, expected in case.expect.items():
        values = response.headers.get_list(name)
        assert values == (expected if isinstance(expected, list) else [expected]), (case.id, name)


def converted() -> wiremock.Conversion:
    mappings, files = wiremock.load_directory(ROOT)
    return wiremock.convert(mappings, files)


def new_session(control: pb_grpc.SimulatorServiceStub, conversion: wiremock.Conversion) -> pb.CreateSessionResponse:
    tenant = f"wiremock-{os.getpid()}"
    return control.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}", stubs=conversion.stubs))


@pytest.fixture(scope="module")
def conversion() -> wiremock.Conversion:
    return converted()


@pytest.fixture
def imported(
    control: pb_grpc.SimulatorServiceStub, conversion: wiremock.Conversion
) -> Iterator[pb.CreateSessionResponse]:
    created = new_session(control, conversion)
    yield created
    control.DeleteSession(pb.DeleteSessionRequest(name=created.session.name, allow_missing=True))


def test_the_fixture_converts_with_only_the_expected_gaps(conversion: wiremock.Conversion) -> None:
    assert len(conversion.stubs) == 27
    assert {(g.mapping, g.field) for g in conversion.unmapped} == EXPECTED_GAPS
    by_name = {s.description: s for s in conversion.stubs}
    assert by_name["user-42-gone"].priority > by_name["get-user"].priority > by_name["catch-all"].priority
    assert by_name["cart-filled"].priority == by_name["get-user"].priority + 1


def test_the_daemon_takes_every_converted_stub(
    imported: pb.CreateSessionResponse, conversion: wiremock.Conversion
) -> None:
    assert [s.description for s in imported.stubs] == [s.description for s in conversion.stubs]
    assert all(s.name for s in imported.stubs)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_each_request_is_answered_as_wiremock_answers(
    http: httpx.Client, imported: pb.CreateSessionResponse, case: Case
) -> None:
    check(send(http, imported.session.base_url, case), case)


def test_the_scenario_runs_through_its_states(http: httpx.Client, imported: pb.CreateSessionResponse) -> None:
    url = imported.session.base_url + "/cart"
    answers = [(m, *_answer(http.request(m, url))) for m, _, _ in CART]
    assert answers == CART


def _answer(response: httpx.Response) -> tuple[int, bytes]:
    return response.status_code, response.content


@pytest.mark.parametrize("path", list(FAULTS))
def test_faults_are_connection_errors(imported: pb.CreateSessionResponse, path: str) -> None:
    with httpx.Client(timeout=5) as fresh, pytest.raises(FAULTS[path]):
        fresh.get(imported.session.base_url + path)


def test_delays_and_dribbles_take_their_time(http: httpx.Client, imported: pb.CreateSessionResponse) -> None:
    for path, body, at_least in (("/slow", b"finally", 0.14), ("/dribble", b"0123456789abcdef", 0.14)):
        started = time.monotonic()
        response = http.get(imported.session.base_url + path)
        assert (response.status_code, response.content) == (200, body)
        assert time.monotonic() - started >= at_least, path
