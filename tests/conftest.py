"""Shared fixtures: real daemons per test process on free loopback ports (one open, one with --auth), a gRPC stub
and an HTTP client."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import grpc
import httpx
import pytest

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import SERVER, write_auth_file

_tenant_numbers = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    # Every daemon a test starts, in a fixture or in its body, inherits this, so the whole suite runs on one
    # server: SIMULATORD_TEST_SERVER=uvicorn pytest ... runs it on uvicorn.
    os.environ["SIMULATORD_SERVER"] = SERVER
    # Tests deliver webhooks to loopback only; a daemon a test starts with --webhook-targets still says otherwise.
    os.environ.setdefault("SIMULATORD_WEBHOOK_TARGETS", "loopback")


@pytest.fixture(scope="session")
def daemon() -> Iterator[EmbeddedDaemon]:
    with EmbeddedDaemon(server=SERVER) as running:
        yield running


@pytest.fixture(scope="session")
def auth_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDaemon]:
    """A daemon started with --auth: the tokens of tests.helpers.TOKENS, for tests of the tenant boundary."""
    path = write_auth_file(tmp_path_factory.mktemp("auth") / "auth.yaml")
    with EmbeddedDaemon(["--auth", str(path)], server=SERVER) as running:
        yield running


@pytest.fixture(scope="session")
def channel(daemon: EmbeddedDaemon) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(daemon.grpc_address) as ch:
        yield ch


@pytest.fixture(scope="session")
def control(channel: grpc.Channel) -> pb_grpc.SimulatorServiceStub:
    return pb_grpc.SimulatorServiceStub(channel)


@pytest.fixture(scope="session")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


@pytest.fixture
def tenant() -> str:
    """A tenant of its own for each test, so tests never see each other's sessions."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    return f"t-{worker}-{os.getpid()}-{next(_tenant_numbers)}"


@pytest.fixture
def session(control: pb_grpc.SimulatorServiceStub, tenant: str) -> Iterator[pb.CreateSessionResponse]:
    created = control.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}"))
    yield created
    control.DeleteSession(pb.DeleteSessionRequest(name=created.session.name, allow_missing=True))
