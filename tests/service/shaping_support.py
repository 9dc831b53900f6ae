"""Fixtures and helpers shared by the timing, fault and streaming tests: a real daemon with a short stream bound."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from simulatord.v1 import exchange_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.durations import duration
from simulatord_client.embedded import EmbeddedDaemon

# Streams and hangs that never end by themselves end after this, so tests can watch the bound act.
MAX_STREAM_SECONDS = 2.0
Control = pb_grpc.SimulatorServiceStub
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def shaping_daemon() -> Iterator[EmbeddedDaemon]:
    with EmbeddedDaemon(["--max-stream-seconds", str(MAX_STREAM_SECONDS)]) as running:
        yield running


@pytest.fixture(scope="module")
def shaping_control(shaping_daemon: EmbeddedDaemon) -> Iterator[pb_grpc.SimulatorServiceStub]:
    with grpc.insecure_channel(shaping_daemon.grpc_address) as channel:
        yield pb_grpc.SimulatorServiceStub(channel)


def stub(path: str, *responses: stub_pb2.Response, **fields: Any) -> stub_pb2.Stub:
    return stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact=path)), responses=list(responses), **fields
    )


@dataclass
class Sim:
    """One session of the shaping daemon: its URLs and its journal."""

    control: pb_grpc.SimulatorServiceStub
    name: str
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def exchanges(self, count: int = 1, path: str = "", timeout: float = 5.0) -> list[exchange_pb2.Exchange]:
        """Waits until `count` exchanges (for `path`) are recorded: streams are recorded when they end."""
        done = self.control.WaitForExchanges(
            pb.WaitForExchangesRequest(
                parent=self.name,
                filter=exchange_pb2.ExchangeFilter(path=path),
                count=count,
                timeout=duration(timeout),
            )
        )
        assert done.satisfied, f"only {done.count} of {count} exchanges recorded"
        return list(done.exchanges)


def program(control: pb_grpc.SimulatorServiceStub, *stubs: stub_pb2.Stub) -> Sim:
    tenant = f"shaping-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-{os.getpid()}-{next(_numbers)}"
    created = control.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}", stubs=list(stubs)))
    return Sim(control, created.session.name, created.session.base_url)
