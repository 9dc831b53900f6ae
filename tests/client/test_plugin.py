"""The pytest plugin, exercised the way users meet it: inner test files run by `pytester` against real daemons.

Inner runs are subprocesses: an in-process run restores `sys.modules` afterwards, which drops modules it
imported first (httpcore internals, grpc pieces) and breaks exception identity for later tests.
"""

from __future__ import annotations

import re

import pytest

from simulatord_client import Simulator
from simulatord_client.pytest_plugin import _session_id

pytest_plugins = ["pytester"]

ISOLATION = """
import os
import re
import httpx
import pytest

@pytest.mark.parametrize("n", range(4))
def test_isolated(sim_session, n):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    sim_session.stub("GET", "/who", json={"n": n})
    for _ in range(n + 1):  # a count of its own, so a leak from another test would show
        assert httpx.get(f"{sim_session.url}/who", headers={"x-who": f"{worker}-{n}"}).json() == {"n": n}
    assert sim_session.count() == n + 1
    assert [r.headers["x-who"] for r in sim_session.exchanges()] == [f"{worker}-{n}"] * (n + 1)
    assert sim_session.tenant.startswith("pytest-") and sim_session.tenant.endswith(f"-{worker}")
    assert re.fullmatch(f"test-isolated-{n}-[a-z2-7]{{26}}", sim_session.id)
    assert sim_session.get().labels["pytest-test"] == f"test_isolated_{n}_"
    expected = os.environ.get("EXPECTED_ADDRESS")
    if expected:
        assert sim_session.simulator.address == expected
    print("WORKER", worker, "ADDRESS", sim_session.simulator.address)
"""


ASYNC = """
import asyncio
import httpx
from simulatord_client import AsyncSimulator

def test_async_code(simulatord_address):
    async def scenario():
        async with AsyncSimulator(simulatord_address) as sim, sim.session() as s:
            await s.stub("GET", "/a", text="a")
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{s.url}/a")).text == "a"
            await s.verify()
    asyncio.run(scenario())
"""

TYPO = """
import pytest

@pytest.mark.simulatord(verfiy=True)
def test_typo(sim_session):
    pass
"""


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    # The outer run may itself be an xdist worker or point at a daemon; inner runs must not inherit that.
    for name in (
        "PYTEST_XDIST_WORKER",
        "PYTEST_XDIST_TESTRUNUID",
        "PYTEST_XDIST_WORKER_COUNT",
        "SIMULATORD_ADDRESS",
        "SIMULATORD_TOKEN",
        "SIMULATORD_TENANT",
    ):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("name", ["test_x", "test_" + "very_long_name_" * 10, "test_p[ünïcode-1]", "___"])
def test_session_ids_keep_a_readable_prefix_and_128_random_bits(name: str) -> None:
    # The session URL is what the code under test reaches the session by, so ids must be unguessable.
    ids = {_session_id(name) for _ in range(200)}
    assert len(ids) == 200
    for session_id in ids:
        assert re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", session_id), session_id  # a valid id
        prefix, _, random = session_id.rpartition("-")
        assert re.fullmatch("[a-z2-7]{26}", random) and prefix.startswith("test")


def test_embedded_daemon_by_default(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_inner=ISOLATION, test_async=ASYNC)
    result = pytester.runpytest_subprocess("-rP", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=5)
    addresses = {line.split("ADDRESS ")[1] for line in result.outlines if line.startswith("WORKER")}
    assert len(addresses) == 1  # one daemon for the whole run


KIND = """
def test_kind(simulatord_daemon, simulator, sim_session):
    print("KIND", type(simulatord_daemon).__name__, type(simulator.channel).__name__)
"""


@pytest.mark.parametrize(
    "option, kind",
    [((), "ThreadDaemon InProcessChannel"), (("--simulatord-embedded=process",), "EmbeddedDaemon Channel")],
)
def test_the_embedded_daemon_runs_on_a_thread_unless_asked_for_a_process(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, option: tuple[str, ...], kind: str
) -> None:
    pytester.makepyfile(test_inner=ISOLATION, test_kind=KIND)
    result = pytester.runpytest_subprocess("-rP", "-p", "no:cacheprovider", *option)
    result.assert_outcomes(passed=5)
    assert f"KIND {kind}" in result.outlines


def test_xdist_workers_get_a_daemon_and_a_tenant_each(pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_inner=ISOLATION)
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_address_option_and_marker_typos(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, simulatord_address: str
) -> None:
    clean_env.setenv("EXPECTED_ADDRESS", simulatord_address)
    pytester.makepyfile(test_inner=ISOLATION, test_typo=TYPO)
    result = pytester.runpytest_subprocess(f"--simulatord-address={simulatord_address}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*unknown simulatord marker option(s): verfiy*"])


VERIFY = """
import httpx
import pytest

@pytest.mark.simulatord(verify=True)
def test_leaves_an_unused_stub(sim_session):
    sim_session.stub("GET", "/never-called", stub_id="unused-one")

@pytest.mark.simulatord(verify=True)
def test_fails_on_its_own(sim_session):
    sim_session.stub("GET", "/never-called")
    assert 1 == 2

@pytest.mark.simulatord(verify=True)
def test_all_used(sim_session):
    sim_session.stub("GET", "/a", expect=1)
    httpx.get(f"{sim_session.url}/a")

def test_not_verified(sim_session):
    sim_session.stub("GET", "/unused")

@pytest.mark.simulatord(labels={"team": "payments"}, ttl=5, stubs=[], unmatched_status=418)
def test_marker_settings(sim_session):
    info = sim_session.get()
    assert info.labels["team"] == "payments"
    assert info.ttl.seconds == 5
    assert httpx.get(f"{sim_session.url}/x").status_code == 418
"""


def test_verify_marker_reports_at_teardown(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, simulatord_address: str
) -> None:
    clean_env.setenv("SIMULATORD_ADDRESS", simulatord_address)
    pytester.makepyfile(test_inner=VERIFY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_leaves_an_unused_stub*",
            "*failed verification: 1 unused stub(s)*",
            "*- unused-one [[]GET /never-called[]]*",
        ]
    )
    assert "ERROR at teardown of test_fails_on_its_own" not in result.stdout.str()


def test_verify_option_applies_to_every_test(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, simulatord_address: str
) -> None:
    clean_env.setenv("SIMULATORD_ADDRESS", simulatord_address)
    pytester.makepyfile(test_inner=VERIFY)
    result = pytester.runpytest_subprocess("--simulatord-verify", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1, errors=3)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_not_verified*"])


MIGRATED = '''
"""A suite written for a home-grown threaded mock server: unchanged, it now runs on simulatord."""
import time

import httpx


class UserService:
    def __init__(self, base_url):
        self.http = httpx.Client(base_url=base_url, timeout=5)

    def get_user(self, user_id):
        response = self.http.get(f"/users/{user_id}", params={"fields": "name"}, headers={"X-Api-Key": "k"})
        response.raise_for_status()
        return response.json()

    def create_user(self, name):
        return self.http.post("/users", json={"name": name})


def test_get_user(mock_http_server):
    mock_http_server.register("GET", "/users/42", json={"id": 42, "name": "Ada"})
    assert UserService(mock_http_server.url).get_user(42) == {"id": 42, "name": "Ada"}
    requests = mock_http_server.get_requests()
    assert len(requests) == 1
    assert requests[0].method == "GET"
    assert requests[0].path == "/users/42"
    assert requests[0].query["fields"] == "name"
    assert requests[0].headers["x-api-key"] == "k"
    assert mock_http_server.request_count("GET", "/users/42") == 1


def test_create_user_sends_json(mock_http_server):
    mock_http_server.register("POST", "/users", status=201, json={"id": 1}, headers={"Location": "/users/1"})
    response = UserService(mock_http_server.url).create_user("Ada")
    assert response.status_code == 201
    assert response.headers["location"] == "/users/1"
    assert mock_http_server.get_requests()[0].json() == {"name": "Ada"}
    assert mock_http_server.get_requests()[0].body == b'{"name":"Ada"}'


def test_retry_then_success(mock_http_server):
    mock_http_server.register_sequence("GET", "/flaky", responses=[
        {"status": 503, "text": "busy"},
        {"status": 200, "json": {"ok": True}, "headers": {"X-Attempt": "2"}},
    ])
    client = httpx.Client(base_url=mock_http_server.url)
    assert client.get("/flaky").status_code == 503
    second = client.get("/flaky")
    assert second.json() == {"ok": True} and second.headers["x-attempt"] == "2"
    assert mock_http_server.request_count(path="/flaky") == 2


def test_slow_endpoint_and_plain_bodies(mock_http_server):
    mock_http_server.register("GET", "/slow", text="late", delay_seconds=0.2)
    mock_http_server.register("GET", "/blob", body=b"\\x00\\x01")
    started = time.monotonic()
    assert httpx.get(f"{mock_http_server.url}/slow").text == "late"
    assert time.monotonic() - started >= 0.2
    assert httpx.get(f"{mock_http_server.url}/blob").content == b"\\x00\\x01"


def test_reset_and_override(mock_http_server):
    mock_http_server.register("GET", "/v", text="one")
    mock_http_server.register("GET", "/v", text="two")  # the later registration wins
    assert httpx.get(f"{mock_http_server.url}/v").text == "two"
    assert httpx.get(f"{mock_http_server.url}/unknown").status_code == 404
    assert mock_http_server.request_count() == 2
    mock_http_server.reset()
    assert mock_http_server.get_requests() == []
    assert httpx.get(f"{mock_http_server.url}/v").status_code == 404
'''


def test_shared_daemon_from_the_environment_under_xdist(
    pytester: pytest.Pytester, clean_env: pytest.MonkeyPatch, simulator: Simulator, simulatord_address: str
) -> None:
    # One xdist run (they are the slow part) covers both the isolation file and the migrated suite,
    # whose tests are written for a home-grown mock server and pass unchanged on `mock_http_server`.
    clean_env.setenv("SIMULATORD_ADDRESS", simulatord_address)
    clean_env.setenv("EXPECTED_ADDRESS", simulatord_address)
    before = {s.name for s in simulator.list_sessions()}
    pytester.makepyfile(test_inner=ISOLATION, test_migrated=MIGRATED)
    result = pytester.runpytest_subprocess("-p", "xdist", "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=9)
    leftovers = [s.name for s in simulator.list_sessions() if s.name not in before]
    assert leftovers == []  # every inner session was deleted at teardown
