"""Daemons started with webhook flags: --webhook-targets (which hosts may be delivered to) and
--max-pending-deliveries. Only loopback is ever delivered to; a forbidden target is refused before anything is sent."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import grpc
import httpx
import pytest
from google.protobuf import json_format

from simulatord.v1 import exchange_pb2, session_pb2, stub_pb2, webhook_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.embedded import EmbeddedDaemon
from tests.service.test_bad_input import details
from tests.service.webhook_support import Receiver, hook, receiver

__all__ = ["receiver"]  # a fixture, used by name

PENDING = webhook_pb2.DELIVERY_STATE_PENDING


@pytest.fixture(scope="module")
def named() -> Iterator[pb_grpc.SimulatorServiceStub]:
    """A daemon that may deliver to the host name `localhost` only (not to 127.0.0.1 by address), and that lets a
    session have at most two deliveries pending."""
    with (
        EmbeddedDaemon(["--webhook-targets", "localhost", "--max-pending-deliveries", "2"]) as daemon,
        grpc.insecure_channel(daemon.grpc_address) as channel,
    ):
        yield pb_grpc.SimulatorServiceStub(channel)


@pytest.fixture
def named_session(named: pb_grpc.SimulatorServiceStub, tenant: str) -> Iterator[session_pb2.Session]:
    created = named.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}"))
    yield created.session
    named.DeleteSession(pb.DeleteSessionRequest(name=created.session.name, allow_missing=True))


def by_name(receiver: Receiver, path: str = "/hook") -> str:
    return receiver.url.replace("127.0.0.1", "localhost") + path


def refused(call: object) -> tuple[grpc.StatusCode, str]:
    assert isinstance(call, grpc.RpcError)
    return call.code(), details(call)[0]


def test_a_host_name_list_allows_its_names_and_refuses_addresses_before_sending(
    named: pb_grpc.SimulatorServiceStub, named_session: session_pb2.Session, receiver: Receiver
) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        named.DeliverWebhooks(
            pb.DeliverWebhooksRequest(parent=named_session.name, webhooks=[hook({"url": receiver.url})])
        )
    assert refused(caught.value) == (grpc.StatusCode.PERMISSION_DENIED, "WEBHOOK_TARGET_FORBIDDEN")
    assert "--webhook-targets" in str(caught.value.details())
    receiver.still(0, 0.1)
    answer = named.DeliverWebhooks(
        pb.DeliverWebhooksRequest(
            parent=named_session.name, webhooks=[hook({"url": by_name(receiver), "bodyText": "hi"})], wait=True
        )
    )
    assert answer.deliveries[0].state == webhook_pb2.DELIVERY_STATE_DELIVERED
    [request] = receiver.wait(1)
    assert (request.path, request.body) == ("/hook", b"hi")


def test_a_callback_to_a_forbidden_target_is_recorded_and_never_sent(
    named: pb_grpc.SimulatorServiceStub, named_session: session_pb2.Session, receiver: Receiver, http: httpx.Client
) -> None:
    stub = json_format.ParseDict(
        {
            "request": {"path": {"exact": "/cb"}},
            "responses": [{"status": 200}],
            "callbacks": [
                {
                    "webhook": {
                        "url": receiver.url + "/{{ request.query.x }}",
                        "bodyText": "x",
                        "retry": {"schedule": "RETRY_SCHEDULE_SLACK", "timeScale": 0.001},
                    }
                }
            ],
        },
        stub_pb2.Stub(),
    )
    named.CreateStub(pb.CreateStubRequest(parent=named_session.name, stub=stub))
    assert http.get(named_session.base_url + "/cb?x=1").status_code == 200
    waited = named.WaitForExchanges(pb.WaitForExchangesRequest(parent=named_session.name, count=2))
    assert waited.satisfied
    attempt = waited.exchanges[1]
    assert attempt.kind == exchange_pb2.EXCHANGE_KIND_WEBHOOK and "--webhook-targets" in attempt.webhook.error
    assert attempt.webhook.url == receiver.url + "/1" and attempt.response.status == 0
    receiver.still(0, 0.1)
    # A forbidden target stays forbidden: the delivery fails at once instead of running its retries.
    assert named.CountExchanges(pb.CountExchangesRequest(parent=named_session.name)).count == 2


def test_a_malformed_webhook_targets_flag_is_one_line_at_start_up() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "simulatord",
            "serve",
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            "--webhook-targets",
            "a b",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "simulatord: cannot start: --webhook-targets: 'a b' is not a keyword, block or host name"
    ]


def test_max_pending_deliveries_is_resource_exhausted(
    named: pb_grpc.SimulatorServiceStub, named_session: session_pb2.Session, tenant: str, receiver: Receiver
) -> None:
    # Deliveries that stay pending: the receiver fails, the retry is a minute away.
    receiver.answers = [(500, {})] * 4
    retry = {"schedule": "RETRY_SCHEDULE_CUSTOM", "delays": ["60s"]}
    webhook = hook({"url": by_name(receiver), "bodyText": "x", "retry": retry})
    name = named_session.name
    with pytest.raises(grpc.RpcError) as caught:
        named.DeliverWebhooks(pb.DeliverWebhooksRequest(parent=name, webhooks=[webhook] * 3))
    assert refused(caught.value) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_DELIVERIES")
    first = named.DeliverWebhooks(pb.DeliverWebhooksRequest(parent=name, webhooks=[webhook] * 2))
    assert [d.state for d in first.deliveries] == [PENDING, PENDING]
    with pytest.raises(grpc.RpcError) as caught:  # at once: the second of the two has not even started yet
        named.DeliverWebhooks(pb.DeliverWebhooksRequest(parent=name, webhooks=[webhook]))
    assert refused(caught.value) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_DELIVERIES")
    receiver.wait(2)
    with pytest.raises(grpc.RpcError) as caught:  # and later, while both wait for their retry
        named.DeliverWebhooks(pb.DeliverWebhooksRequest(parent=name, webhooks=[webhook]))
    assert refused(caught.value) == (grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_DELIVERIES")
    # The bound is per session: another session of the daemon still delivers.
    other = named.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}")).session
    answer = named.DeliverWebhooks(
        pb.DeliverWebhooksRequest(parent=other.name, webhooks=[hook({"url": by_name(receiver)})], wait=True)
    )
    assert answer.deliveries[0].last_status == 500
    named.DeleteSession(pb.DeleteSessionRequest(name=other.name))
    receiver.still(3, 0.1)


def test_a_callback_beyond_max_pending_deliveries_is_recorded(
    named: pb_grpc.SimulatorServiceStub, named_session: session_pb2.Session, receiver: Receiver, http: httpx.Client
) -> None:
    receiver.answers = [(500, {})] * 2
    callback = {
        "webhook": {
            "url": by_name(receiver),
            "bodyText": "x",
            "retry": {"schedule": "RETRY_SCHEDULE_CUSTOM", "delays": ["60s"]},
        }
    }
    stub = json_format.ParseDict(
        {"request": {"path": {"exact": "/cb"}}, "responses": [{"status": 200}], "callbacks": [callback]},
        stub_pb2.Stub(),
    )
    named.CreateStub(pb.CreateStubRequest(parent=named_session.name, stub=stub))
    for _ in range(3):
        assert http.get(named_session.base_url + "/cb").status_code == 200
    receiver.wait(2)
    waited = named.WaitForExchanges(pb.WaitForExchangesRequest(parent=named_session.name, count=6))
    assert waited.satisfied
    webhooks = [e for e in waited.exchanges if e.kind == exchange_pb2.EXCHANGE_KIND_WEBHOOK]
    assert sorted(e.response.status for e in webhooks) == [0, 500, 500]
    [failed] = [e for e in webhooks if e.response.status == 0]
    assert "at most 2" in failed.webhook.error
    receiver.still(2, 0.1)


def test_a_daemon_with_any_target_delivers_to_loopback_by_address_and_by_name(receiver: Receiver) -> None:
    with (
        EmbeddedDaemon(["--webhook-targets", "any"]) as daemon,
        grpc.insecure_channel(daemon.grpc_address) as channel,
    ):
        control = pb_grpc.SimulatorServiceStub(channel)
        name = control.CreateSession(pb.CreateSessionRequest(parent="tenants/any-targets")).session.name
        webhooks = [hook({"url": receiver.url + "/ip"}), hook({"url": by_name(receiver, "/name")})]
        answer = control.DeliverWebhooks(pb.DeliverWebhooksRequest(parent=name, webhooks=webhooks, wait=True))
        assert [d.last_status for d in answer.deliveries] == [200, 200]
        assert sorted(r.path for r in receiver.wait(2)) == ["/ip", "/name"]
