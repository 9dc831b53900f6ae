"""The daemon on a thread of the test process (`simulatord.embedded.ThreadDaemon`) and the in-process channel
the client reaches it with: every answer, error and stream as over gRPC, with no loopback round trip."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from simulatord.embedded import ThreadDaemon
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord_client import Simulator, regex, stub
from simulatord_client.errors import (
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    SimulatorError,
    UnauthenticatedError,
    UnavailableError,
)
from simulatord_client.inprocess import InProcessChannel
from tests.helpers import TOKENS, write_auth_file


@pytest.fixture(scope="module")
def daemon() -> Iterator[ThreadDaemon]:
    with ThreadDaemon.from_args() as running:
        yield running


@pytest.fixture(scope="module")
def both(daemon: ThreadDaemon) -> Iterator[tuple[Simulator, Simulator]]:
    """The same daemon through the in-process channel and through gRPC on its port."""
    with (
        Simulator(daemon.grpc_address, channel=InProcessChannel(daemon)) as near,
        Simulator(daemon.grpc_address) as far,
    ):
        yield near, far


def test_sessions_made_in_process_are_served_over_http_and_seen_over_grpc(
    both: tuple[Simulator, Simulator], http: httpx.Client
) -> None:
    near, far = both
    with near.session(stubs=[stub("GET", "/hello", json={"message": "hello"})]) as s:
        assert http.get(f"{s.url}/hello").json() == {"message": "hello"}
        [seen] = s.exchanges(path="/hello")
        assert seen.status == 200
        listed = far.call(lambda stub: stub.ListExchanges, pb.ListExchangesRequest(parent=s.name)).exchanges
        assert [e.request.path for e in listed] == ["/hello"]
        assert s.name in [listed.name for listed in far.list_sessions(s.tenant)]
    assert s.name not in [listed.name for listed in far.list_sessions(s.tenant)]


def _failure(sim: Simulator, make: str) -> SimulatorError:
    with pytest.raises(SimulatorError) as caught:
        if make == "bad regex":
            sim.session(stubs=[stub("GET", "/x", query={"q": regex("(")}, text="x")]).open()
        else:
            sim.call(lambda s: s.GetSession, pb.GetSessionRequest(name="tenants/t/sessions/never-made"))
    return caught.value


@pytest.mark.parametrize("make, kind", [("bad regex", InvalidArgumentError), ("missing", NotFoundError)])
def test_errors_carry_the_same_status_reason_and_field_violations(
    both: tuple[Simulator, Simulator], make: str, kind: type[SimulatorError]
) -> None:
    near, far = (_failure(sim, make) for sim in both)
    assert type(near) is type(far) is kind
    assert (near.code, near.reason, near.field_violations, near.details) == (
        far.code,
        far.reason,
        far.field_violations,
        far.details,
    )
    assert near.reason  # the rich status came through, not only the code


def test_a_wait_answers_before_the_callers_deadline_as_over_grpc(both: tuple[Simulator, Simulator]) -> None:
    near, _ = both
    with near.session() as s:
        request = pb.WaitForExchangesRequest(parent=s.name, count=1)
        request.timeout.FromSeconds(30)
        started = time.monotonic()
        assert not near.call(lambda stub: stub.WaitForExchanges, request, timeout=0.5).satisfied
        assert time.monotonic() - started < 0.5  # the servicer saw the call's deadline
        with pytest.raises(AssertionError, match="0 arrived"):
            s.wait_for(1, timeout=0.2)


def test_a_call_past_its_deadline_is_deadline_exceeded(both: tuple[Simulator, Simulator]) -> None:
    near, _ = both
    many = [stub("GET", f"/item/{i}", query={"q": regex(f"^{i}$")}, text="x") for i in range(2000)]
    request = pb.CreateSessionRequest(parent="tenants/deadline", stubs=many)
    with pytest.raises(DeadlineExceededError):  # 2,000 stubs to check take far longer than a millisecond
        near.call(lambda stub: stub.CreateSession, request, timeout=0.001)


def test_watching_in_process_sees_live_exchanges_and_ends_on_close(
    both: tuple[Simulator, Simulator], http: httpx.Client
) -> None:
    near, _ = both
    with near.session() as s, s.watch(start=0, timeout=10) as stream:
        sent = threading.Thread(target=lambda: [http.get(f"{s.url}/n/{i}") for i in range(3)])
        sent.start()
        assert [next(stream).path for _ in range(3)] == ["/n/0", "/n/1", "/n/2"]
        sent.join()
        stream.close()
        with pytest.raises(StopIteration):
            next(stream)


def test_a_watch_ends_when_its_session_is_deleted(both: tuple[Simulator, Simulator]) -> None:
    near, _ = both
    s = near.session().open()
    stream = s.watch(timeout=10)
    s.close()
    assert list(stream) == []


def test_tokens_are_checked_in_process_too(tmp_path: Path) -> None:
    auth = write_auth_file(tmp_path / "auth.yaml")
    with ThreadDaemon.from_args(["--auth", str(auth)]) as daemon:
        channel = InProcessChannel(daemon)
        with (
            Simulator(daemon.grpc_address, channel=channel, token="") as anonymous,
            pytest.raises(UnauthenticatedError),
        ):
            anonymous.list_sessions("team-a")
        with Simulator(daemon.grpc_address, channel=channel, token=TOKENS["team-a"]) as team_a:
            with team_a.session("team-a") as s:
                assert s.tenant == "team-a"
            with pytest.raises(SimulatorError, match="team-b"):
                team_a.session("team-b").open()


def test_calls_after_stop_say_the_daemon_is_gone() -> None:
    daemon = ThreadDaemon.from_args().start()
    sim = Simulator(daemon.grpc_address, channel=InProcessChannel(daemon))
    daemon.stop()
    with pytest.raises(UnavailableError):
        sim.list_sessions()


def test_a_busy_port_fails_start_up_with_the_flag_to_change(daemon: ThreadDaemon) -> None:
    port = daemon.grpc_address.rsplit(":", 1)[1]
    with pytest.raises(OSError, match="--grpc-port"):
        ThreadDaemon.from_args(["--grpc-port", port]).start()


def test_an_unknown_method_is_unimplemented(daemon: ThreadDaemon) -> None:
    channel = InProcessChannel(daemon)
    call = channel.unary_unary("/simulatord.v1.SimulatorService/NoSuchMethod")
    with pytest.raises(grpc.RpcError) as caught:
        call(b"")
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED  # type: ignore[attr-defined]
