"""Session lifecycle through the client: create/delete around `with`, heartbeats, initial stubs, async."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from simulatord_client import (
    AsyncSimulator,
    InvalidArgumentError,
    NotFoundError,
    Simulator,
    StubLike,
    stub,
    when,
)


def _exists(sim: Simulator, name: str) -> bool:
    return any(s.name == name for s in sim.list_sessions("-"))


def test_with_block_creates_then_deletes(simulator: Simulator, http: httpx.Client) -> None:
    with simulator.session(tenant="client-life", labels={"suite": "client"}) as s:
        assert s.name.startswith("tenants/client-life/sessions/")
        assert s.tenant == "client-life"
        assert s.url.endswith(f"/tenants/client-life/sessions/{s.id}")
        assert s.host.startswith(f"{s.id}.client-life.")
        assert s.routing_header == s.name
        assert _exists(simulator, s.name)
        assert s.get().labels["suite"] == "client"
        name = s.name
    assert not _exists(simulator, name)
    assert http.get(f"{s.url}/anything").status_code == 404


def test_session_is_deleted_when_the_block_raises(simulator: Simulator) -> None:
    with pytest.raises(RuntimeError, match="boom"), simulator.session(tenant="client-life") as s:
        name = s.name
        raise RuntimeError("boom")
    assert not _exists(simulator, name)


def test_initial_stubs_come_with_the_create_call(simulator: Simulator, http: httpx.Client) -> None:
    stubs: list[StubLike] = [stub("GET", "/a", text="a"), when("GET", "/b").respond(201, text="b")]
    with simulator.session(tenant="client-life", stubs=stubs) as s:
        assert [ref.stub.request.path.exact for ref in s.initial_stubs] == ["/a", "/b"]
        assert http.get(f"{s.url}/a").text == "a"
        assert http.get(f"{s.url}/b").status_code == 201


def test_initial_stubs_with_chosen_ids(simulator: Simulator, http: httpx.Client) -> None:
    with simulator.session(tenant="client-life", stubs=[stub("GET", "/a", text="a", stub_id="get-a")]) as s:
        assert [ref.id for ref in s.initial_stubs] == ["get-a"]
        http.get(f"{s.url}/a")
        assert s.count(stub="get-a") == 1


def test_a_session_whose_chosen_id_stubs_are_refused_is_deleted(simulator: Simulator, simulatord_address: str) -> None:
    # A chosen stub id sends the initial stubs in a second call after CreateSession; when that one fails the
    # session must not be left behind, in either driver.
    refused = [stub("GET", "/a", stub_id="fine"), stub("GET", path_regex="([")]
    with pytest.raises(InvalidArgumentError), simulator.session(tenant="client-refused", stubs=refused):
        pass

    async def scenario() -> None:
        async with AsyncSimulator(simulatord_address) as sim:
            with pytest.raises(InvalidArgumentError):
                async with sim.session(tenant="client-refused", stubs=refused):
                    pass

    asyncio.run(scenario())
    assert simulator.list_sessions("client-refused") == []


def _heartbeat_threads() -> int:
    return [t.name for t in threading.enumerate()].count("simulatord-heartbeats")


def test_heartbeat_keeps_a_short_ttl_session_alive(simulator: Simulator) -> None:
    # Every session has a 1.5 s ttl (the daemon sweeps every second); all but `dropped` send heartbeats.
    beating_before = _heartbeat_threads()
    with (
        simulator.session(tenant="client-life", ttl=1.5) as kept,
        simulator.session(tenant="client-life", ttl=1.5) as also_kept,
        simulator.session(tenant="client-life", ttl=1.5, heartbeat=False) as dropped,
    ):
        assert kept.heartbeat_interval == pytest.approx(0.5)
        time.sleep(3.2)
        assert kept.get().name == kept.name
        assert also_kept.get().name == also_kept.name
        # One thread beats for every session of a Simulator, so a test's session costs no thread of its own.
        assert _heartbeat_threads() - beating_before <= 1
        with pytest.raises(NotFoundError) as err:
            dropped.get()
        assert err.value.reason == "SESSION_NOT_FOUND"
    # Leaving the block deleted `kept`; deleting the expired `dropped` was not an error either.
    assert not _exists(simulator, kept.name)


def test_using_a_session_before_it_is_created_says_how() -> None:
    s = Simulator("127.0.0.1:1").session()
    with pytest.raises(RuntimeError, match=r"with sim\.session"):
        _ = s.url


def test_a_misspelt_session_keyword_is_a_type_error(simulator: Simulator) -> None:
    with pytest.raises(TypeError, match=r"session\(\) got unexpected keyword argument\(s\): tll"):
        simulator.session(tll=5)  # type: ignore[call-arg]


def test_async_session_lifecycle(simulatord_address: str) -> None:
    async def scenario() -> str:
        async with AsyncSimulator(simulatord_address) as sim:
            async with sim.session(tenant="client-async", ttl=1.2, stubs=[stub("GET", "/a", json=[1])]) as s:
                await asyncio.sleep(2.5)  # outlives its ttl thanks to the heartbeat task
                ref = await s.stub("POST", "/b", status=202)
                async with httpx.AsyncClient() as http:
                    assert (await http.get(f"{s.url}/a")).json() == [1]
                    assert (await http.post(f"{s.url}/b")).status_code == 202
                assert [r.path for r in await s.exchanges()] == ["/a", "/b"]
                assert await s.count(stub=ref) == 1
                with pytest.raises(AssertionError, match=r"waiting for 2 request\(s\) matching \[\* /b\].*: 1 arrived"):
                    await s.wait_for(2, timeout=0.2, path="/b")
                await s.verify()
                name = s.name
            assert not any(x.name == name for x in await sim.list_sessions("client-async"))
            return name

    assert asyncio.run(scenario()).startswith("tenants/client-async/")


def test_async_session_is_deleted_on_exception(simulatord_address: str) -> None:
    async def scenario() -> None:
        async with AsyncSimulator(simulatord_address) as sim:
            with pytest.raises(ValueError):
                async with sim.session(tenant="client-async") as s:
                    name = s.name
                    raise ValueError
            with pytest.raises(NotFoundError):
                await sim.delete_session(name)

    asyncio.run(scenario())
