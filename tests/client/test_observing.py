"""Observing a session through the client: exchange records, counts, waits, live watching, verification."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import pytest

from simulatord_client import AsyncSimulator, Session, Simulator, at_least, contains, never, stub
from simulatord_client import behaviours as b
from simulatord_client import operations as ops


def test_exchange_records_are_friendly(sim_session: Session, http: httpx.Client) -> None:
    ref = sim_session.stub("POST", "/orders", status=201, json={"id": 1})
    http.post(f"{sim_session.url}/orders?tag=a&tag=b&x=1", json={"qty": 2}, headers={"X-Request-Id": "r1"})
    http.get(f"{sim_session.url}/missing")
    first, second = sim_session.exchanges()
    assert (first.sequence, first.method, first.path, first.status) == (1, "POST", "/orders", 201)
    assert first.query == {"tag": "a", "x": "1"}
    assert first.query_params == (("tag", "a"), ("tag", "b"), ("x", "1"))
    assert first.url_path == "/orders?tag=a&tag=b&x=1"
    assert first.headers["x-request-id"] == first.headers["X-REQUEST-ID"] == "r1"
    assert "Content-Type" in first.headers
    assert first.json() == {"qty": 2} and first.text == '{"qty":2}'
    assert first.stub == ref.name and first.stub_id == ref.id and first.matched
    assert str(first) == f"#1 POST /orders?tag=a&tag=b&x=1 -> 201 ({ref.id})"
    assert first.behaviours == () and second.behaviours == ()
    assert not second.matched and second.status == 404 and second.stub == second.stub_id == ""
    assert "path: expected exact '/orders'" in str(second.near_misses[0])
    with pytest.raises(AttributeError):
        first.method = "GET"  # type: ignore[misc]


def test_an_exchange_names_the_behaviours_that_shaped_it(sim_session: Session, http: httpx.Client) -> None:
    sim_session.stub("GET", "/slow", response=b.timed(b.templated(b.text("{{ request.path }}")), delay=0.01))
    assert http.get(f"{sim_session.url}/slow").text == "/slow"
    (slow,) = sim_session.exchanges(path="/slow")
    assert slow.behaviours == ("template", "delay")


def test_filters_and_counts(sim_session: Session, http: httpx.Client) -> None:
    users = sim_session.stub("GET", "/users/{id}", json={})
    sim_session.stub("POST", "/users", status=201)
    for path in ("/users/1", "/users/2", "/nope"):
        http.get(f"{sim_session.url}{path}")
    http.post(f"{sim_session.url}/users")
    assert sim_session.count() == 4
    assert sim_session.count(method="get") == 3
    assert sim_session.count(path="/users/1") == 1
    assert sim_session.count(path_prefix="/users") == 3
    assert sim_session.count(matched=False) == 1
    assert sim_session.count(matched=True) == 3
    assert sim_session.count(stub=users) == 2
    assert sim_session.count(stub=users.id) == 2
    assert [r.path for r in sim_session.exchanges(stub=users.name)] == ["/users/1", "/users/2"]
    assert [r.method for r in sim_session.exchanges(method="POST")] == ["POST"]


def test_listings_read_every_page_in_both_drivers(
    sim_session: Session, http: httpx.Client, simulatord_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ops, "PAGE_SIZE", 2)  # five exchanges and three stubs take several pages
    stubs = [stub("GET", f"/{n}", text=str(n)) for n in range(3)]
    sim_session.add(*stubs)
    for n in range(5):
        http.get(f"{sim_session.url}/{n}")
    assert [e.sequence for e in sim_session.exchanges()] == [1, 2, 3, 4, 5]
    assert [e.path for e in sim_session.exchanges(matched=False)] == ["/3", "/4"]
    assert len(sim_session.list_stubs()) == 3

    async def scenario() -> tuple[list[str], int]:
        async with AsyncSimulator(simulatord_address) as sim, sim.session(tenant="client-pages", stubs=stubs) as s:
            async with httpx.AsyncClient() as client:
                for n in range(5):
                    await client.get(f"{s.url}/{n}")
            return [e.path for e in await s.exchanges(matched=True)], len(await s.list_stubs())

    assert asyncio.run(scenario()) == (["/0", "/1", "/2"], 3)


def test_wait_for_returns_what_arrived(sim_session: Session, http: httpx.Client) -> None:
    sim_session.stub("POST", "/hook", status=204)

    def later() -> None:
        time.sleep(0.2)
        for _ in range(2):
            http.post(f"{sim_session.url}/hook", json={"n": 1})

    threading.Thread(target=later).start()
    got = sim_session.wait_for(2, timeout=5, method="POST", path="/hook")
    assert [r.sequence for r in got] == [1, 2]


def test_wait_for_timeout_lists_what_arrived_instead(sim_session: Session, http: httpx.Client) -> None:
    sim_session.stub("GET", "/users/{id}", json={})
    http.get(f"{sim_session.url}/users/1")
    http.post(f"{sim_session.url}/user", json={})
    with pytest.raises(AssertionError) as err:
        sim_session.wait_for(1, timeout=0.3, method="POST", path="/users")
    message = str(err.value)
    assert message.startswith("timed out after 0.3s waiting for 1 request(s) matching [POST /users]")
    assert ": 0 arrived" in message
    assert "other requests that arrived" in message
    assert "#1 GET /users/1 -> 200" in message
    assert "#2 POST /user -> 404 (unmatched)" in message
    assert "path: expected template '/users/{id}', got '/user'" in message


def test_wait_for_timeout_on_a_silent_session(sim_session: Session) -> None:
    with pytest.raises(AssertionError, match="the session received no requests at all"):
        sim_session.wait_for(timeout=0.1)


def test_watch_replays_then_streams_live(sim_session: Session, http: httpx.Client) -> None:
    sim_session.stub(path_prefix="/", status=200)
    http.get(f"{sim_session.url}/before")

    def later() -> None:
        time.sleep(0.2)
        http.post(f"{sim_session.url}/skip")
        http.get(f"{sim_session.url}/after")

    threading.Thread(target=later).start()
    seen = []
    with sim_session.watch(method="GET", timeout=10) as stream:
        for request in stream:
            seen.append(request.path)
            if request.path == "/after":
                break
    assert seen == ["/before", "/after"]


def test_watch_ends_when_the_session_is_deleted(simulator: Simulator, http: httpx.Client) -> None:
    with simulator.session(tenant="client-watch") as s:
        stream = s.watch(start=0)
        threading.Timer(0.2, lambda: simulator.delete_session(s.name)).start()
        assert list(stream) == []


def test_watch_stops_at_its_timeout(sim_session: Session) -> None:
    start = time.perf_counter()
    assert list(sim_session.watch(timeout=0.3)) == []
    assert time.perf_counter() - start < 3


def test_async_watch(simulatord_address: str) -> None:
    async def scenario() -> list[str]:
        async with AsyncSimulator(simulatord_address) as sim, sim.session(tenant="client-async") as s:
            await s.stub(path_prefix="/", text="ok")
            async with httpx.AsyncClient() as http:
                await http.get(f"{s.url}/one")
                seen = []
                async with s.watch() as stream:
                    async for request in stream:
                        seen.append(request.path)
                        if len(seen) == 1:
                            # Sent at once, while the watch may still be sending /one: the live part of the
                            # stream must deliver it even though no one was waiting when it was recorded.
                            await http.get(f"{s.url}/two")
                        else:
                            break
            return seen

    assert asyncio.run(scenario()) == ["/one", "/two"]


def test_verify_passes_when_everything_was_used(sim_session: Session, http: httpx.Client) -> None:
    sim_session.stub("GET", "/a", expect=1)
    sim_session.stub("GET", "/guard", expect=never())
    http.get(f"{sim_session.url}/a")
    sim_session.verify()


def test_verify_message_reads_like_a_diff(sim_session: Session, http: httpx.Client) -> None:
    sim_session.stub(
        "GET",
        "/users/{id}",
        headers={"authorization": contains("Bearer")},
        expect=at_least(2),
        description="user lookup",
    )
    sim_session.stub("DELETE", "/users/{id}", stub_id="delete-user")
    http.get(f"{sim_session.url}/users/1", headers={"authorization": "Bearer x"})
    http.get(f"{sim_session.url}/users/2", headers={"authorization": "Basic y"})
    with pytest.raises(AssertionError) as err:
        sim_session.verify()
    message = str(err.value)
    lines = message.splitlines()
    assert lines[0] == (
        f"simulatord session {sim_session.name} failed verification: "
        "1 unmet expectation(s), 1 unused stub(s), 1 unmatched request(s)"
    )
    assert "Stubs whose expected call count was not met:" in lines
    assert any(
        "[GET /users/{id} (+1 condition)] 'user lookup': expected at least 2, matched 1 time(s)" in line
        for line in lines
    )
    assert "  - delete-user [DELETE /users/{id}]" in lines
    assert "  - #2 GET /users/2 -> 404" in lines
    assert "        headers.authorization: expected contains 'Bearer', got 'Basic y'" in lines
    assert "        method: expected DELETE, got 'GET'" in lines


def test_verify_async(simulatord_address: str) -> None:
    async def scenario() -> str:
        async with AsyncSimulator(simulatord_address) as sim, sim.session(tenant="client-async") as s:
            await s.add(stub("GET", "/never"))
            try:
                await s.verify()
            except AssertionError as exc:
                return str(exc)
            return ""

    assert "Stubs never used:" in asyncio.run(scenario())
