"""The session store's contract (sessions.store.SessionStore), held by both stores through a real daemon: the
in-memory default and `--store redis://` against a real redis-server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2

from simulatord.v1 import session_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import SERVER
from tests.redis_support import RedisServer, redis_server
from tests.service.test_bad_input import details

__all__ = ["redis_server"]  # a fixture, used by name

Control = pb_grpc.SimulatorServiceStub
LIMITS = ("--max-sessions", "3", "--max-sessions-per-tenant", "2")


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory"
    server: RedisServer = request.getfixturevalue("redis_server")
    return server.url


@pytest.fixture
def running(store: str) -> Iterator[tuple[EmbeddedDaemon, Control]]:
    with (
        EmbeddedDaemon(["--store", store, *LIMITS], server=SERVER) as daemon,
        grpc.insecure_channel(daemon.grpc_address) as channel,
    ):
        yield daemon, pb_grpc.SimulatorServiceStub(channel)


def create(control: Control, tenant: str, session_id: str = "", ttl: float = 0) -> str:
    settings = session_pb2.Session(ttl=duration_pb2.Duration(seconds=int(ttl))) if ttl else None
    request = pb.CreateSessionRequest(parent=f"tenants/{tenant}", session_id=session_id, session=settings)
    return control.CreateSession(request).session.name


def refused(call: object) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as error:
        call()  # type: ignore[operator]
    return error.value.code(), details(error.value)[0]


def test_a_name_is_taken_once_and_quotas_hold(running: tuple[EmbeddedDaemon, Control]) -> None:
    _, control = running
    create(control, "a", "one")
    assert refused(lambda: create(control, "a", "one")) == (grpc.StatusCode.ALREADY_EXISTS, "SESSION_ALREADY_EXISTS")
    create(control, "a")
    assert refused(lambda: create(control, "a")) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TENANT_QUOTA_EXCEEDED")
    create(control, "b")
    assert refused(lambda: create(control, "c")) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_SESSIONS")


def test_sessions_list_in_creation_order_and_a_deleted_one_is_gone_everywhere(
    running: tuple[EmbeddedDaemon, Control],
) -> None:
    daemon, control = running
    names = [create(control, "a", "first"), create(control, "b", "second"), create(control, "a", "third")]
    listed = control.ListSessions(pb.ListSessionsRequest(parent="tenants/-")).sessions
    assert [s.name for s in listed] == names
    assert [s.name for s in control.ListSessions(pb.ListSessionsRequest(parent="tenants/a")).sessions] == [
        names[0],
        names[2],
    ]
    control.DeleteSession(pb.DeleteSessionRequest(name=names[1]))
    assert refused(lambda: control.GetSession(pb.GetSessionRequest(name=names[1]))) == (
        grpc.StatusCode.NOT_FOUND,
        "SESSION_NOT_FOUND",
    )
    answer = httpx.get(f"{daemon.http_url}/{names[1]}/x")
    assert (answer.status_code, answer.json()["reason"]) == (404, "SESSION_NOT_FOUND")
    create(control, "b", "second")  # the name and the quota slot are free again
    journal = control.ListExchanges(pb.ListExchangesRequest(parent=names[1])).exchanges
    assert list(journal) == []  # a session made again under the same name starts with nothing


def test_an_expired_session_is_swept_and_frees_its_slot(running: tuple[EmbeddedDaemon, Control]) -> None:
    _, control = running
    short = create(control, "a", "short", ttl=1)
    create(control, "a", "long")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        names = [s.name for s in control.ListSessions(pb.ListSessionsRequest(parent="tenants/a")).sessions]
        if short not in names:
            break
        time.sleep(0.1)
    assert short not in names
    create(control, "a", "again")  # the tenant's second slot is free
