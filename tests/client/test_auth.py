"""The Python client and the pytest plugin against a daemon started with --auth: the token reaches every call,
heartbeats and watch streams included, comes from SIMULATORD_TOKEN by default, and refusals say what to do."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from simulatord_client import (
    AsyncSimulator,
    PermissionDeniedError,
    Simulator,
    UnauthenticatedError,
    proxy,
)
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import TOKENS

pytest_plugins = ["pytester"]

TTL = 0.9  # heartbeats every 0.3 s: a session outlives its ttl only if they get through


@pytest.fixture(autouse=True)
def no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIMULATORD_TOKEN", raising=False)
    monkeypatch.delenv("SIMULATORD_TENANT", raising=False)


def test_the_sync_client_sends_its_token_on_every_call(auth_daemon: EmbeddedDaemon, http: httpx.Client) -> None:
    with (
        Simulator(auth_daemon.grpc_address, token=TOKENS["team-a"]) as sim,
        sim.session(tenant="team-a", ttl=TTL) as s,
    ):
        s.stub("GET", "/hello", text="hi")
        with s.watch() as stream:
            assert http.get(f"{s.url}/hello").text == "hi"
            assert next(stream).path == "/hello"
        time.sleep(TTL * 1.7)  # past the ttl: only the heartbeats keep the session
        assert s.get().name == s.name
        assert [e.path for e in s.wait_for(path="/hello")] == ["/hello"]
        listed = [x.name for x in sim.list_sessions()]  # `tenants/-`: only the tenants the token may use
        assert s.name in listed and all(name.startswith("tenants/team-a/") for name in listed)
        s.verify()


def test_the_async_client_sends_its_token_on_every_call(auth_daemon: EmbeddedDaemon) -> None:
    async def scenario() -> list[str]:
        async with (
            AsyncSimulator(auth_daemon.grpc_address, token=TOKENS["team-b"]) as sim,
            sim.session(tenant="team-b", ttl=TTL) as s,
            httpx.AsyncClient() as http,
        ):
            await s.stub("GET", "/hello", text="hi")
            async with s.watch() as stream:
                assert (await http.get(f"{s.url}/hello")).text == "hi"
                seen = [(await anext(stream)).path]
            await asyncio.sleep(TTL * 1.7)
            assert (await s.get()).name == s.name
            seen += [e.path for e in await s.exchanges()]
            return seen

    assert asyncio.run(scenario()) == ["/hello", "/hello"]


def test_the_token_defaults_to_the_environment(auth_daemon: EmbeddedDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SIMULATORD_TOKEN", TOKENS["team-a"] + "\n")  # as a secret read from a file may
    with Simulator(auth_daemon.grpc_address) as sim, sim.session(tenant="team-a") as s:
        assert s.get().name == s.name

    async def scenario() -> None:
        async with AsyncSimulator(auth_daemon.grpc_address) as sim, sim.session(tenant="team-a") as s:
            assert (await s.get()).name == s.name

    asyncio.run(scenario())
    with Simulator(auth_daemon.grpc_address, token="") as sim, pytest.raises(UnauthenticatedError):
        sim.list_sessions()  # token="" sends none, whatever the environment says


def test_refusals_say_where_the_token_comes_from(auth_daemon: EmbeddedDaemon) -> None:
    with Simulator(auth_daemon.grpc_address) as sim, pytest.raises(UnauthenticatedError) as missing:
        sim.session(tenant="team-a").open()
    assert missing.value.reason == "TOKEN_MISSING"
    assert str(missing.value) == (
        f"simulatord at {auth_daemon.grpc_address} requires a token: set SIMULATORD_TOKEN (or pass token=...) "
        "[UNAUTHENTICATED, TOKEN_MISSING]"
    )
    with (
        Simulator(auth_daemon.grpc_address, token="not-a-token-anyone-was-given") as sim,
        pytest.raises(UnauthenticatedError) as invalid,
    ):
        sim.list_sessions()
    assert invalid.value.reason == "TOKEN_INVALID" and "check SIMULATORD_TOKEN" in str(invalid.value)
    assert "not-a-token-anyone-was-given" not in str(invalid.value)

    async def forbidden() -> PermissionDeniedError:
        async with AsyncSimulator(auth_daemon.grpc_address, token=TOKENS["team-b"]) as sim:
            with pytest.raises(PermissionDeniedError) as caught:
                await sim.session(tenant="team-a").open()
            return caught.value

    denied = asyncio.run(forbidden())
    assert denied.reason == "TENANT_FORBIDDEN" and denied.metadata["tenant"] == "team-a"
    assert str(denied).startswith("token 'team-b' may not use tenant 'team-a' (it may use: team-b): use a tenant")


def test_a_target_outside_the_allow_list_is_not_blamed_on_the_token(simulator: Simulator) -> None:
    with simulator.session() as s, pytest.raises(PermissionDeniedError) as caught:
        s.stub(response=proxy("http://192.0.2.1:8080"))
    assert caught.value.reason == "PROXY_TARGET_FORBIDDEN" and "--webhook-targets" in str(caught.value)
    assert "token" not in str(caught.value)


def test_a_token_does_no_harm_without_auth(simulator: Simulator, simulatord_address: str) -> None:
    with Simulator(simulatord_address, token="whatever-token-0123456789") as sim, sim.session() as s:
        assert s.get().name == s.name


PLUGIN = """
import httpx

def test_uses_the_token(sim_session, simulator):
    sim_session.stub("GET", "/ok", text="ok")
    assert httpx.get(f"{sim_session.url}/ok").text == "ok"
    assert sim_session.tenant == "team-a"
    assert simulator.list_sessions("team-a")[0].name == sim_session.name
"""


def test_the_plugin_takes_the_token_from_its_option_or_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, auth_daemon: EmbeddedDaemon
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    monkeypatch.delenv("SIMULATORD_ADDRESS", raising=False)
    pytester.makepyfile(test_inner=PLUGIN)
    address = f"--simulatord-address={auth_daemon.grpc_address}"
    options = pytester.runpytest_subprocess(
        address, f"--simulatord-token={TOKENS['team-a']}", "--simulatord-tenant=team-a", "-p", "no:cacheprovider"
    )
    options.assert_outcomes(passed=1)
    monkeypatch.setenv("SIMULATORD_TOKEN", TOKENS["team-a"])
    monkeypatch.setenv("SIMULATORD_TENANT", "team-a")
    environment = pytester.runpytest_subprocess(address, "-p", "no:cacheprovider")
    environment.assert_outcomes(passed=1)
    monkeypatch.delenv("SIMULATORD_TOKEN")
    missing = pytester.runpytest_subprocess(address, "-p", "no:cacheprovider")
    missing.assert_outcomes(errors=1)
    missing.stdout.fnmatch_lines(["*requires a token: set SIMULATORD_TOKEN*"])
