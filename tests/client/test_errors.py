"""gRPC failures come out of the client as Python exceptions a person can read, with the details decoded."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import stub_pb2
from simulatord_client import (
    AlreadyExistsError,
    AsyncSimulator,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    Session,
    Simulator,
    SimulatorError,
    UnavailableError,
    stub,
)

pytest_plugins = ["pytester"]


def test_bad_regex_is_an_invalid_argument_with_field_violations(sim_session: Session) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        sim_session.stub("GET", path_regex="([")
    error = err.value
    assert isinstance(error, SimulatorError)
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert error.reason == "INVALID_STUB"
    assert error.domain == "simulatord"
    assert [v.field for v in error.field_violations] == ["stub.request.path.regex"]
    assert str(error).startswith("invalid stub: stub.request.path.regex: invalid regex:")


def test_many_violations_are_listed_one_per_line(simulator: Simulator) -> None:
    bad = [stub("GET", path_regex="(["), stub("GET", "/ok", status=999)]
    with pytest.raises(InvalidArgumentError) as err, simulator.session(tenant="client-errors", stubs=bad):
        pass
    fields = [v.field for v in err.value.field_violations]
    assert fields == ["stubs[0].request.path.regex", "stubs[1].responses[0].status"]
    message = str(err.value)
    assert message.startswith("invalid stub (2 problems):\n  - stubs[0].request.path.regex: invalid regex")
    assert "\n  - stubs[1].responses[0].status: must be 0 or between 100 and 599, got 999" in message
    assert simulator.list_sessions("client-errors") == []  # all or nothing


def test_unknown_session_is_not_found(simulator: Simulator) -> None:
    with pytest.raises(NotFoundError) as err:
        simulator.delete_session("tenants/client-errors/sessions/nope")
    assert err.value.reason == "SESSION_NOT_FOUND"
    assert err.value.metadata == {"session": "tenants/client-errors/sessions/nope"}
    assert str(err.value) == "session tenants/client-errors/sessions/nope not found [NOT_FOUND, SESSION_NOT_FOUND]"


def test_unknown_stub_and_duplicates(sim_session: Session) -> None:
    with pytest.raises(NotFoundError) as missing:
        sim_session.delete_stub("ghost")
    assert missing.value.reason == "STUB_NOT_FOUND"
    sim_session.stub("GET", "/a", stub_id="dup")
    with pytest.raises(AlreadyExistsError) as dup:
        sim_session.stub("GET", "/a", stub_id="dup")
    assert dup.value.reason == "STUB_ALREADY_EXISTS"


def test_duplicate_session_id(simulator: Simulator) -> None:
    with simulator.session(tenant="client-errors", session_id="fixed"):
        with pytest.raises(AlreadyExistsError) as err, simulator.session(tenant="client-errors", session_id="fixed"):
            pass
        assert err.value.reason == "SESSION_ALREADY_EXISTS"


def test_malformed_tenant(simulator: Simulator) -> None:
    with pytest.raises(InvalidArgumentError) as err, simulator.session(tenant="Not Valid"):
        pass
    assert err.value.field_violations[0].field == "parent"


def test_unreachable_daemon_says_so() -> None:
    with Simulator("127.0.0.1:1", timeout=2) as sim, pytest.raises(UnavailableError) as err:
        sim.list_sessions()
    assert str(err.value).startswith("cannot reach simulatord at 127.0.0.1:1")


def test_async_errors_map_the_same(simulatord_address: str) -> None:
    async def scenario() -> NotFoundError:
        async with AsyncSimulator(simulatord_address) as sim:
            try:
                await sim.delete_session("tenants/client-errors/sessions/nope")
            except NotFoundError as exc:
                return exc
        raise AssertionError("expected NotFoundError")

    error = asyncio.run(scenario())
    assert error.reason == "SESSION_NOT_FOUND" and error.code == grpc.StatusCode.NOT_FOUND


def test_calls_the_client_does_not_wrap_map_errors_too(sim_session: Session, simulatord_address: str) -> None:
    sim = sim_session.simulator
    with pytest.raises(NotFoundError) as err:
        sim.call(lambda stub: stub.GetExchange, pb.GetExchangeRequest(name=f"{sim_session.name}/exchanges/1"))
    assert err.value.reason == "EXCHANGE_NOT_FOUND"
    push = pb.SendWebSocketMessageRequest(parent=sim_session.name, close=stub_pb2.WebSocketClose())

    async def scenario() -> str:
        async with AsyncSimulator(simulatord_address) as aio:
            try:
                await aio.call(lambda stub: stub.SendWebSocketMessage, push)
            except FailedPreconditionError as exc:
                return exc.reason
        return ""

    assert asyncio.run(scenario()) == "NO_WEBSOCKET_CONNECTION"


TRACEBACKS = """
def test_wait_fails(sim_session):
    sim_session.wait_for(timeout=0.1)

def test_call_fails(sim_session):
    sim_session.delete_stub("ghost")

def test_verify_fails(sim_session):
    sim_session.stub("GET", "/never")
    sim_session.verify()
"""


def test_failures_point_at_the_test_not_at_the_client(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, simulatord_address: str
) -> None:
    monkeypatch.setenv("SIMULATORD_ADDRESS", simulatord_address)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    pytester.makepyfile(test_inner=TRACEBACKS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    output = result.stdout.str()
    for line in ("sim_session.wait_for(timeout=0.1)", 'sim_session.delete_stub("ghost")', "sim_session.verify()"):
        assert f">       {line}" in output
    # Every frame of the operations and their drivers is hidden: only the tests' own lines are shown.
    assert "simulatord_client/" not in output.split("= FAILURES =")[1].split("short test summary")[0]
