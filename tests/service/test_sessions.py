"""Session lifecycle over real gRPC: create with stubs, get, list with labels and pages, reset, refresh, delete."""

from __future__ import annotations

import time

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2

from simulatord.v1 import session_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import stub


def test_create_with_stubs_serves_at_base_url(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, tenant: str
) -> None:
    created = control.CreateSession(
        pb.CreateSessionRequest(
            parent=f"tenants/{tenant}",
            session_id="checkout",
            session=session_pb2.Session(labels={"suite": "payments"}),
            stubs=[stub(path="/v1/charges", json={"id": "ch_1"})],
        )
    )
    s = created.session
    assert s.name == f"tenants/{tenant}/sessions/checkout"
    assert s.base_url.endswith(f"/tenants/{tenant}/sessions/checkout")
    assert s.host == f"checkout.{tenant}.localhost"
    assert s.routing_header == s.name
    assert s.stub_count == 1 and created.stubs[0].name.startswith(s.name + "/stubs/")
    answer = http.get(s.base_url + "/v1/charges")
    assert answer.status_code == 200 and answer.json() == {"id": "ch_1"}
    assert answer.headers["content-type"] == "application/json"
    got = control.GetSession(pb.GetSessionRequest(name=s.name)).session
    assert got.journal_stats.total_count == 1 and got.labels == {"suite": "payments"}


def test_list_filters_by_label_and_paginates(control: pb_grpc.SimulatorServiceStub, tenant: str) -> None:
    for i in range(5):
        control.CreateSession(
            pb.CreateSessionRequest(
                parent=f"tenants/{tenant}",
                session_id=f"s{i}",
                session=session_pb2.Session(labels={"parity": "even" if i % 2 == 0 else "odd"}),
            )
        )
    names, token = [], ""
    while True:
        page = control.ListSessions(pb.ListSessionsRequest(parent=f"tenants/{tenant}", page_size=2, page_token=token))
        assert len(page.sessions) <= 2
        names += [s.name.rsplit("/", 1)[1] for s in page.sessions]
        token = page.next_page_token
        if not token:
            break
    assert names == ["s0", "s1", "s2", "s3", "s4"]
    even = control.ListSessions(pb.ListSessionsRequest(parent=f"tenants/{tenant}", label_selector="parity=even"))
    assert [s.name.rsplit("/", 1)[1] for s in even.sessions] == ["s0", "s2", "s4"]
    every = control.ListSessions(pb.ListSessionsRequest(parent="tenants/-", page_size=1000))
    assert {f"tenants/{tenant}/sessions/s{i}" for i in range(5)} <= {s.name for s in every.sessions}


def test_delete_then_traffic_gets_session_not_found(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: pb.CreateSessionResponse
) -> None:
    name = session.session.name
    control.DeleteSession(pb.DeleteSessionRequest(name=name))
    answer = http.get(session.session.base_url + "/anything")
    assert answer.status_code == 404 and answer.json()["reason"] == "SESSION_NOT_FOUND"
    with pytest.raises(grpc.RpcError) as caught:
        control.DeleteSession(pb.DeleteSessionRequest(name=name))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    control.DeleteSession(pb.DeleteSessionRequest(name=name, allow_missing=True))


def test_reset_targets(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: pb.CreateSessionResponse
) -> None:
    s = session.session
    control.CreateStub(pb.CreateStubRequest(parent=s.name, stub=stub()))
    http.get(s.base_url + "/hello")
    after = control.ResetSession(pb.ResetSessionRequest(name=s.name, targets=[pb.RESET_TARGET_JOURNAL])).session
    assert after.journal_stats.total_count == 0 and after.stub_count == 1
    assert http.get(s.base_url + "/hello").status_code == 200
    listed = control.ListExchanges(pb.ListExchangesRequest(parent=s.name)).exchanges
    assert [e.sequence for e in listed] == [1]  # sequence numbers restart after a journal reset
    after = control.ResetSession(pb.ResetSessionRequest(name=s.name)).session
    assert after.stub_count == 0 and after.journal_stats.total_count == 0
    assert http.get(s.base_url + "/hello").status_code == 404


def test_refresh_keeps_a_session_alive_and_expiry_removes_it() -> None:
    with (
        EmbeddedDaemon(["--default-ttl", "60"]) as daemon,
        grpc.insecure_channel(daemon.grpc_address) as channel,
    ):
        control = pb_grpc.SimulatorServiceStub(channel)
        short = duration_pb2.Duration(seconds=1, nanos=500_000_000)
        kept = control.CreateSession(
            pb.CreateSessionRequest(parent="tenants/ttl", session=session_pb2.Session(ttl=short))
        )
        dropped = control.CreateSession(
            pb.CreateSessionRequest(parent="tenants/ttl", session=session_pb2.Session(ttl=short))
        )
        default = control.CreateSession(pb.CreateSessionRequest(parent="tenants/ttl")).session
        assert default.ttl.seconds == 60
        deadline = time.monotonic() + 3.5
        while time.monotonic() < deadline:
            control.RefreshSession(pb.RefreshSessionRequest(name=kept.session.name))
            time.sleep(0.4)
        control.GetSession(pb.GetSessionRequest(name=kept.session.name))
        with pytest.raises(grpc.RpcError) as caught:
            control.GetSession(pb.GetSessionRequest(name=dropped.session.name))
        assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_duplicate_session_id(control: pb_grpc.SimulatorServiceStub, tenant: str) -> None:
    control.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}", session_id="dup"))
    with pytest.raises(grpc.RpcError) as caught:
        control.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}", session_id="dup"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    # The same id in another tenant is another session.
    control.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}-other", session_id="dup"))
