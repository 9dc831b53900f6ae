"""Test runner of the compose example: drives the checkout app against simulated payments APIs.

It runs inside the `tests` container of docker-compose.yml, talks to the daemon over gRPC by service
name (`simulatord:50051`) with the generated stubs of the simulatord package, and to the app over HTTP
(`http://app:8000`). Each test creates its own session from the `payments` template (loaded by the
daemon from examples/compose/templates/), so tests are isolated and could run in parallel.

The engine does not run healthchecks under podman, so the runner waits for readiness itself: gRPC
health with retries for the daemon, GET /healthz for the app. Prints a pytest-style report and exits
0 when every test passed, 1 otherwise (docker/podman-compose `--exit-code-from tests` passes it on).

Settings (env): SIMULATORD_GRPC_ADDRESS (simulatord:50051), APP_URL (http://app:8000),
READY_TIMEOUT_S (90), TENANT (compose-example).
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import grpc
from google.protobuf import duration_pb2, json_format
from grpc_health.v1 import health_pb2, health_pb2_grpc

from simulatord.v1 import exchange_pb2, session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as svc
from simulatord.v1 import simulator_service_pb2_grpc as svc_grpc

GRPC_ADDRESS = os.environ.get("SIMULATORD_GRPC_ADDRESS", "simulatord:50051")
APP_URL = os.environ.get("APP_URL", "http://app:8000").rstrip("/")
READY_TIMEOUT_S = float(os.environ.get("READY_TIMEOUT_S", "90"))
TENANT = os.environ.get("TENANT", "compose-example")
RPC_TIMEOUT_S = 10.0


# ---- readiness ---------------------------------------------------------------------------------------


def wait_for_daemon(channel: grpc.Channel) -> None:
    """Polls grpc.health.v1 Check until the daemon says SERVING (DNS may not even resolve at first)."""
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            resp = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
            if resp.status == health_pb2.HealthCheckResponse.SERVING:
                return
            last = health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
        except grpc.RpcError as err:
            last = f"{err.code().name}: {err.details()}"
        time.sleep(0.5)
    raise RuntimeError(f"simulatord at {GRPC_ADDRESS} not SERVING after {READY_TIMEOUT_S:.0f} s ({last})")


def wait_for_app() -> None:
    """Polls the app's /healthz until it answers 200."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(APP_URL + "/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.5)
    raise RuntimeError(f"app at {APP_URL} not ready after {READY_TIMEOUT_S:.0f} s ({last})")


# ---- helpers -----------------------------------------------------------------------------------------


class Context:
    """What every test gets: the control-service stub."""

    def __init__(self, channel: grpc.Channel) -> None:
        self.sim = svc_grpc.SimulatorServiceStub(channel)

    @contextmanager
    def session(self, test_name: str, template: str = "payments") -> Iterator[session_pb2.Session]:
        """A fresh session from a template (examples/compose/templates/), deleted afterwards."""
        resp = self.sim.CreateSession(
            svc.CreateSessionRequest(
                parent=f"tenants/{TENANT}",
                template=template,
                session=session_pb2.Session(labels={"test": test_name.replace("_", "-")[:63]}),
            ),
            timeout=RPC_TIMEOUT_S,
        )
        try:
            yield resp.session
        finally:
            self.sim.DeleteSession(
                svc.DeleteSessionRequest(name=resp.session.name, allow_missing=True), timeout=RPC_TIMEOUT_S
            )

    def add_stub(self, session: session_pb2.Session, stub: dict[str, Any]) -> stub_pb2.Stub:
        """Creates a stub given in proto3 JSON form (the same form as the template files)."""
        msg = json_format.ParseDict(stub, stub_pb2.Stub())
        resp: svc.CreateStubResponse = self.sim.CreateStub(
            svc.CreateStubRequest(parent=session.name, stub=msg), timeout=RPC_TIMEOUT_S
        )
        return resp.stub

    def wait_for_charges(self, session: session_pb2.Session, count: int) -> list[exchange_pb2.Exchange]:
        """Blocks until `count` POST /v1/charges were recorded (the app calls upstream synchronously, but
        waiting is the robust pattern for asynchronous callers too)."""
        resp = self.sim.WaitForExchanges(
            svc.WaitForExchangesRequest(
                parent=session.name,
                filter=exchange_pb2.ExchangeFilter(method="POST", path="/v1/charges"),
                count=count,
                timeout=duration_pb2.Duration(seconds=5),
            ),
            timeout=RPC_TIMEOUT_S,
        )
        assert resp.satisfied, f"expected {count} charge(s), saw {resp.count}; others: {resp.other_exchanges}"
        return list(resp.exchanges)

    def list_exchanges(self, session: session_pb2.Session) -> list[exchange_pb2.Exchange]:
        """Every recorded exchange of the session, in order."""
        resp = self.sim.ListExchanges(
            svc.ListExchangesRequest(parent=session.name, page_size=1000), timeout=RPC_TIMEOUT_S
        )
        return list(resp.exchanges)

    def verify(self, session: session_pb2.Session) -> None:
        """Fails with the daemon's readable report when expectations are not met."""
        resp = self.sim.VerifySession(svc.VerifySessionRequest(name=session.name), timeout=RPC_TIMEOUT_S)
        assert resp.ok, "VerifySession:\n" + resp.summary


def checkout(session: session_pb2.Session, order: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """Calls the app, pointing it at this session's simulated payments API."""
    req = urllib.request.Request(
        APP_URL + "/checkout",
        data=json.dumps(order).encode(),
        method="POST",
        headers={"content-type": "application/json", "x-upstream-base-url": session.base_url},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def header(exchange: exchange_pb2.Exchange, name: str) -> str | None:
    """The first value of a recorded request header (names are recorded lower case)."""
    return next((h.value for h in exchange.request.headers if h.name == name), None)


def new_order(card_token: str = "tok_visa", amount: int = 1250) -> dict[str, Any]:
    return {
        "order_id": f"ord-{uuid.uuid4().hex[:12]}",
        "amount": amount,
        "currency": "eur",
        "card_token": card_token,
    }


# ---- tests -------------------------------------------------------------------------------------------


def test_successful_checkout_charges_the_card(ctx: Context) -> None:
    with ctx.session("successful-checkout") as session:
        assert session.base_url.startswith("http://simulatord:8080/"), session.base_url
        order = new_order()
        status, body = checkout(session, order)
        assert (status, body.get("status"), body.get("charge_id")) == (201, "paid", "ch_default"), (
            status,
            body,
        )

        [charge] = ctx.wait_for_charges(session, 1)
        assert charge.stub, "the template's default stub should have answered"
        assert header(charge, "authorization") == "Bearer sk_test_compose", header(charge, "authorization")
        assert header(charge, "idempotency-key") == order["order_id"]
        sent = json.loads(charge.request.body)
        assert sent == {
            "amount": 1250,
            "currency": "eur",
            "source": "tok_visa",
            "metadata": {"order_id": order["order_id"]},
        }, sent
        assert charge.response.status == 200
        ctx.verify(session)


def test_declined_card_is_reported_as_402(ctx: Context) -> None:
    with ctx.session("declined-card") as session:
        # Overrides the template's default for one card token: same priority, newer stub wins.
        decline = ctx.add_stub(
            session,
            {
                "description": "tok_chargeDeclined is declined",
                "request": {
                    "method": "POST",
                    "path": {"exact": "/v1/charges"},
                    "body": [{"jsonPath": {"expression": "$.source", "equals": "tok_chargeDeclined"}}],
                },
                "responses": [{"status": 402, "bodyJson": {"error": {"code": "card_declined"}}}],
                "expect": {"atLeast": "1", "atMost": "1"},
            },
        )
        status, body = checkout(session, new_order(card_token="tok_chargeDeclined"))
        assert (status, body.get("status"), body.get("reason")) == (402, "declined", "card_declined"), body

        exchanges = ctx.list_exchanges(session)
        assert [(e.stub, e.response.status) for e in exchanges] == [(decline.name, 402)], exchanges
        ctx.verify(session)


def test_provider_outage_is_retried_once_with_the_same_idempotency_key(ctx: Context) -> None:
    with ctx.session("provider-outage") as session:
        ctx.add_stub(
            session,
            {
                "description": "first attempt fails, the retry succeeds",
                "request": {"method": "POST", "path": {"exact": "/v1/charges"}},
                "responses": [
                    {"status": 503, "bodyJson": {"error": {"code": "unavailable"}}},
                    {"status": 200, "bodyJson": {"id": "ch_after_retry", "status": "succeeded"}},
                ],
                "afterLast": "SEQUENCE_END_STOP_MATCHING",
            },
        )
        order = new_order()
        status, body = checkout(session, order)
        assert (status, body.get("charge_id")) == (201, "ch_after_retry"), (status, body)

        attempts = ctx.wait_for_charges(session, 2)
        assert [e.response.status for e in attempts] == [503, 200], attempts
        assert {header(e, "idempotency-key") for e in attempts} == {order["order_id"]}
        ctx.verify(session)


def test_provider_down_gives_502(ctx: Context) -> None:
    with ctx.session("provider-down") as session:
        ctx.add_stub(
            session,
            {
                "request": {"method": "POST", "path": {"exact": "/v1/charges"}},
                "responses": [{"status": 500, "bodyText": "boom"}],
            },
        )
        status, body = checkout(session, new_order())
        assert (status, body.get("status")) == (502, "payment_unavailable"), (status, body)
        assert len(ctx.wait_for_charges(session, 2)) == 2  # one try plus one retry, no more


def test_yaml_template_declines_every_card(ctx: Context) -> None:
    with ctx.session("declining-provider", template="payments-declining") as session:
        assert session.labels["upstream"] == "payments", session.labels
        status, body = checkout(session, new_order(card_token="tok_visa"))
        assert (status, body.get("reason")) == (402, "card_declined"), (status, body)
        [charge] = ctx.wait_for_charges(session, 1)
        assert charge.response.status == 402
        assert ("request-id", "req_declined_example") in {(h.name, h.value) for h in charge.response.headers}


def test_sessions_are_isolated(ctx: Context) -> None:
    # Two simulated providers at once, each with its own session and base URL:
    # what one records the other never sees.
    with ctx.session("isolation-a") as a, ctx.session("isolation-b") as b:
        assert a.base_url != b.base_url
        ctx.add_stub(
            b,
            {
                "request": {"method": "POST", "path": {"exact": "/v1/charges"}},
                "responses": [{"status": 200, "bodyJson": {"id": "ch_from_b"}}],
            },
        )
        assert checkout(a, new_order())[1].get("charge_id") == "ch_default"
        assert checkout(b, new_order())[1].get("charge_id") == "ch_from_b"
        assert checkout(b, new_order())[1].get("charge_id") == "ch_from_b"
        assert (len(ctx.list_exchanges(a)), len(ctx.list_exchanges(b))) == (1, 2)


TESTS: list[Callable[[Context], None]] = [
    test_successful_checkout_charges_the_card,
    test_declined_card_is_reported_as_402,
    test_provider_outage_is_retried_once_with_the_same_idempotency_key,
    test_provider_down_gives_502,
    test_yaml_template_declines_every_card,
    test_sessions_are_isolated,
]


def main() -> int:
    started = time.monotonic()
    print("=" * 30 + " test session starts " + "=" * 30, flush=True)
    channel = grpc.insecure_channel(GRPC_ADDRESS)
    try:
        wait_for_daemon(channel)
        wait_for_app()
    except RuntimeError as err:
        print(f"ERROR readiness: {err}", flush=True)
        print(f"{'=' * 20} 1 error in {time.monotonic() - started:.2f}s {'=' * 20}", flush=True)
        return 1
    print(f"simulatord ready at {GRPC_ADDRESS}, app ready at {APP_URL}", flush=True)
    print(f"collected {len(TESTS)} items\n", flush=True)

    ctx = Context(channel)
    failures: list[tuple[str, str]] = []
    for test in TESTS:
        try:
            test(ctx)
        except Exception:  # an assertion, an RPC error or a network error: all are failures
            failures.append((test.__name__, traceback.format_exc()))
            print(f"run_tests.py::{test.__name__} FAILED", flush=True)
        else:
            print(f"run_tests.py::{test.__name__} PASSED", flush=True)

    for name, tb in failures:
        print(f"\n{'_' * 20} {name} {'_' * 20}\n{tb}", flush=True)
    passed = len(TESTS) - len(failures)
    parts = ([f"{len(failures)} failed"] if failures else []) + [f"{passed} passed"]
    print(f"\n{'=' * 20} {', '.join(parts)} in {time.monotonic() - started:.2f}s {'=' * 20}", flush=True)
    channel.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
