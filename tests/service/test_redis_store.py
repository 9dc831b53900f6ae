"""`serve --store redis://`: sessions, stubs, counters, scenario states and journals outlive the daemon, against a
real redis-server; and what a daemon does when Redis is away."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2, json_format

from simulatord.v1 import session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import SERVER
from tests.redis_support import RedisServer, redis_server
from tests.service.test_bad_input import details

__all__ = ["redis_server"]  # a fixture, used by name

Control = pb_grpc.SimulatorServiceStub
T = TypeVar("T")


@contextlib.contextmanager
def daemon_on(store: str, *args: str) -> Iterator[tuple[EmbeddedDaemon, Control]]:
    with (
        EmbeddedDaemon(["--store", store, *args], server=SERVER) as running,
        grpc.insecure_channel(running.grpc_address) as channel,
    ):
        yield running, pb_grpc.SimulatorServiceStub(channel)


def eventually(call: Callable[[], T], within: float = 15.0) -> T:
    """The call's answer once it stops failing with UNAVAILABLE or DEADLINE_EXCEEDED (relayed to an owner that is
    gone or stalled, whose lease has yet to run out)."""
    deadline = time.monotonic() + within
    while True:
        try:
            return call()
        except grpc.RpcError as exc:
            waiting = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
            if exc.code() not in waiting or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def parse_stub(spec: dict[str, object]) -> stub_pb2.Stub:
    return json_format.ParseDict(spec, stub_pb2.Stub())


def seconds(value: float) -> duration_pb2.Duration:
    out = duration_pb2.Duration()
    out.FromNanoseconds(round(value * 1e9))
    return out


# A sequence, a scenario, a `times` limit and a miss: everything a restart could get wrong.
STUBS = {
    "seq": {
        "request": {"method": "GET", "path": {"exact": "/seq"}},
        "responses": [{"status": 200, "bodyText": "one"}, {"status": 200, "bodyText": "two"}, {"status": 503}],
        "afterLast": "SEQUENCE_END_STOP_MATCHING",
    },
    "login": {
        "request": {"method": "POST", "path": {"exact": "/login"}},
        "responses": [{"status": 204}],
        "scenario": "auth",
        "nextState": "in",
    },
    "me": {
        "request": {"method": "GET", "path": {"exact": "/me"}},
        "responses": [{"status": 200, "bodyJson": {"user": "ada"}}],
        "scenario": "auth",
        "requiredState": "in",
        "times": 2,
    },
}


def program(control: Control, tenant: str) -> pb.CreateSessionResponse:
    created = control.CreateSession(
        pb.CreateSessionRequest(
            parent=f"tenants/{tenant}",
            session_id="kept",
            session=session_pb2.Session(
                labels={"suite": "redis"}, ttl=seconds(600), journal_limits=session_pb2.JournalLimits(max_exchanges=50)
            ),
        )
    )
    for stub_id, spec in STUBS.items():
        control.CreateStub(pb.CreateStubRequest(parent=created.session.name, stub_id=stub_id, stub=parse_stub(spec)))
    return created


def snapshot(control: Control, name: str) -> dict[str, object]:
    """Everything the control plane says about a session, less what a new daemon says differently (its URLs)."""
    session = control.GetSession(pb.GetSessionRequest(name=name)).session
    for field in ("base_url", "host"):
        session.ClearField(field)
    return {
        "session": session,
        "stubs": list(control.ListStubs(pb.ListStubsRequest(parent=name)).stubs),
        "exchanges": list(control.ListExchanges(pb.ListExchangesRequest(parent=name, page_size=1000)).exchanges),
        "export": control.ExportSession(pb.ExportSessionRequest(name=name)).session,
    }


def test_a_restarted_daemon_has_every_session_as_it_was_and_carries_on_where_it_stopped(
    redis_server: RedisServer,
) -> None:
    with daemon_on(redis_server.url) as (first, control):
        created = program(control, "team")
        name, base = created.session.name, first.http_url + "/" + created.session.name
        with httpx.Client(timeout=10) as http:
            assert http.get(base + "/seq").text == "one"
            assert http.get(base + "/me").status_code == 404  # not logged in yet: a near miss on the state
            assert http.post(base + "/login").status_code == 204
            assert http.get(base + "/me").json() == {"user": "ada"}
            http.post(base + "/unknown", content=b"\x00\xffbinary", headers={"x-trace": "a", "X-Trace": "b"})
        before = snapshot(control, name)
        other = control.CreateSession(pb.CreateSessionRequest(parent="tenants/other")).session.name
        control.DeleteSession(pb.DeleteSessionRequest(name=other))

    with daemon_on(redis_server.url) as (second, control):
        assert snapshot(control, name) == before
        listed = control.ListSessions(pb.ListSessionsRequest(parent="tenants/-")).sessions
        assert [s.name for s in listed] == [name]  # the deleted session stays deleted
        base = second.http_url + "/" + name
        with httpx.Client(timeout=10) as http:
            assert http.get(base + "/seq").text == "two"  # the sequence goes on from where it was
            assert http.get(base + "/me").json() == {"user": "ada"}  # the scenario is still logged in
            assert http.get(base + "/me").status_code == 404  # and `times: 2` counted the match before the restart
        journal = control.ListExchanges(pb.ListExchangesRequest(parent=name)).exchanges
        assert [e.sequence for e in journal] == list(range(1, 9))
        assert journal[5].stub.endswith("/stubs/seq") and journal[7].near_misses
        stats = control.GetSession(pb.GetSessionRequest(name=name)).session.journal_stats
        assert (stats.total_count, stats.last_sequence) == (8, 8)


def test_what_a_control_call_answered_survives_a_sigkill(redis_server: RedisServer) -> None:
    with daemon_on(redis_server.url) as (first, control):
        created = program(control, "team")
        name, base = created.session.name, first.http_url + "/" + created.session.name
        with httpx.Client(timeout=10) as http:
            for _ in range(20):
                http.get(base + "/seq")
        counted = control.CountExchanges(pb.CountExchangesRequest(parent=name))
        assert first.process is not None
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)

    with daemon_on(redis_server.url) as (_, control):
        # The killed daemon's lease runs out first: until then its sessions are its own, and calls for them
        # fail with UNAVAILABLE (they are relayed to it); then the new one takes them over.
        started = time.monotonic()
        again = eventually(lambda: control.CountExchanges(pb.CountExchangesRequest(parent=name)))
        assert 1.0 < time.monotonic() - started < 10.0
        assert again == counted and again.count == 20
        [seq] = [s for s in control.ListStubs(pb.ListStubsRequest(parent=name)).stubs if s.name.endswith("/seq")]
        assert seq.match_count == 3  # the sequence ran out (stop matching): the other 17 requests were misses


def test_a_long_journal_written_in_bursts_comes_back_whole_and_in_order(redis_server: RedisServer) -> None:
    # 1,200 exchanges between two control calls: the writer splits them over several commands (500 at most).
    with daemon_on(redis_server.url) as (first, control):
        name = control.CreateSession(pb.CreateSessionRequest(parent="tenants/team")).session.name
        with httpx.Client(timeout=10) as http:
            for n in range(1200):
                http.post(f"{first.http_url}/{name}/{n}", content=b"%d" % n * 100)
        before = control.GetSession(pb.GetSessionRequest(name=name)).session.journal_stats
    with daemon_on(redis_server.url) as (_, control):
        after = control.GetSession(pb.GetSessionRequest(name=name)).session.journal_stats
        assert after == before and after.retained_count == 1200
        token, seen = "", []
        while True:
            page = control.ListExchanges(pb.ListExchangesRequest(parent=name, page_size=1000, page_token=token))
            seen += [(e.sequence, e.request.path, e.request.body) for e in page.exchanges]
            if not (token := page.next_page_token):
                break
        assert seen == [(n + 1, f"/{n}", b"%d" % n * 100) for n in range(1200)]


def test_journal_evictions_and_resets_are_kept_as_the_journal_made_them(redis_server: RedisServer) -> None:
    with daemon_on(redis_server.url) as (first, control):
        created = control.CreateSession(
            pb.CreateSessionRequest(
                parent="tenants/team",
                session=session_pb2.Session(journal_limits=session_pb2.JournalLimits(max_exchanges=3)),
            )
        )
        name, base = created.session.name, first.http_url + "/" + created.session.name
        reset = control.CreateSession(pb.CreateSessionRequest(parent="tenants/team")).session.name
        with httpx.Client(timeout=10) as http:
            for n in range(5):
                http.get(f"{base}/{n}")
                http.get(f"{first.http_url}/{reset}/{n}")
            control.ResetSession(pb.ResetSessionRequest(name=reset, targets=[pb.RESET_TARGET_JOURNAL]))
            http.get(f"{first.http_url}/{reset}/after")

    with daemon_on(redis_server.url) as (_, control):
        kept = control.ListExchanges(pb.ListExchangesRequest(parent=name)).exchanges
        assert [(e.sequence, e.request.path) for e in kept] == [(3, "/2"), (4, "/3"), (5, "/4")]
        stats = control.GetSession(pb.GetSessionRequest(name=name)).session.journal_stats
        assert (stats.total_count, stats.retained_count, stats.evicted_count) == (5, 3, 2)
        after = control.ListExchanges(pb.ListExchangesRequest(parent=reset)).exchanges
        assert [(e.sequence, e.request.path) for e in after] == [(1, "/after")]


def test_a_session_that_expired_while_no_daemon_ran_is_not_loaded_and_leaves_nothing_behind(
    redis_server: RedisServer,
) -> None:
    with daemon_on(redis_server.url) as (_, control):
        short = control.CreateSession(
            pb.CreateSessionRequest(parent="tenants/team", session=session_pb2.Session(ttl=seconds(1)))
        ).session.name
        long = control.CreateSession(pb.CreateSessionRequest(parent="tenants/team")).session.name
        control.RefreshSession(pb.RefreshSessionRequest(name=long, ttl=seconds(900)))
    time.sleep(1.2)
    with daemon_on(redis_server.url) as (_, control):
        with pytest.raises(grpc.RpcError) as gone:
            control.GetSession(pb.GetSessionRequest(name=short))
        assert details(gone.value)[0] == "SESSION_NOT_FOUND"
        kept = control.GetSession(pb.GetSessionRequest(name=long)).session
        assert kept.ttl.seconds == 900
    keys = subprocess.run(
        ["redis-cli", "-s", str(redis_server.socket), "--raw", "keys", "*"], capture_output=True, text=True, check=True
    ).stdout.split()
    # No journal (nothing was recorded), nothing of the expired session: its name, its owner, its definition.
    assert sorted(keys) == sorted(["sd:sessions", "sd:tenant:team", f"sd:session:{long}", f"sd:owner:{long}"])


def test_control_calls_say_unavailable_while_redis_is_away_and_traffic_is_still_served(
    redis_server: RedisServer,
) -> None:
    with daemon_on(redis_server.url) as (running, control):
        created = control.CreateSession(pb.CreateSessionRequest(parent="tenants/team"))
        name = created.session.name
        redis_server.stop()
        with httpx.Client(timeout=10) as http:
            assert http.get(f"{running.http_url}/{name}/x").status_code == 404  # served from memory as ever
        with pytest.raises(grpc.RpcError) as away:
            control.CreateStub(pb.CreateStubRequest(parent=name, stub=parse_stub(STUBS["seq"])), timeout=20)
        assert away.value.code() == grpc.StatusCode.UNAVAILABLE
        assert details(away.value)[0] == "SESSION_STORE_UNAVAILABLE"
        assert "the change is made and served" in (away.value.details() or "")
        redis_server.start()  # an empty Redis: the writer catches up with everything it could not write
        control.CountExchanges(pb.CountExchangesRequest(parent=name), timeout=20)
    with daemon_on(redis_server.url) as (_, control):
        assert len(control.ListStubs(pb.ListStubsRequest(parent=name)).stubs) == 1
        assert [e.request.path for e in control.ListExchanges(pb.ListExchangesRequest(parent=name)).exchanges] == ["/x"]


def test_a_redis_that_restarts_empty_is_written_again_whole(redis_server: RedisServer) -> None:
    with daemon_on(redis_server.url) as (first, control):
        created = program(control, "team")
        name = created.session.name
        assert httpx.get(f"{first.http_url}/{name}/seq").text == "one"
        before = snapshot(control, name)
        redis_server.stop()
        redis_server.start()  # empty: no snapshots
        # The replica's next heartbeat finds its lease gone and nobody owning its sessions: it writes them again.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not redis_keys(redis_server):
            time.sleep(0.2)
        control.CountExchanges(pb.CountExchangesRequest(parent=name))  # answered once the write is done
    with daemon_on(redis_server.url) as (_, control):
        assert snapshot(control, name) == before


def redis_keys(server: RedisServer) -> list[str]:
    listed = subprocess.run(
        ["redis-cli", "-s", str(server.socket), "--raw", "keys", "sd:session:*"], capture_output=True, text=True
    )
    return listed.stdout.split()


def serve_once(*args: str) -> subprocess.CompletedProcess[str]:
    """`simulatord serve ARGS` on free ports, expected to exit by itself."""
    argv = [sys.executable, "-m", "simulatord", "serve", "--http-port", "0", "--grpc-port", "0", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_a_store_that_does_not_answer_stops_the_daemon_at_start_with_one_line() -> None:
    finished = serve_once("--store", "redis://:secret@127.0.0.1:1/0")
    assert finished.returncode == 2
    assert finished.stderr.startswith("simulatord: cannot start: the session store at redis://:***@127.0.0.1:1/0")
    assert "secret" not in finished.stderr
    bad = serve_once("--store", "postgres://x")
    assert bad.returncode == 2 and "--store must be memory or a URL of redis://" in bad.stderr
