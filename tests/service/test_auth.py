"""The tenant boundary of a daemon started with --auth: every RPC against every kind of caller, listings across
tenants, the open health and reflection services, and the start-up check of the auth file."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from simulatord.v1 import session_pb2, stub_pb2, webhook_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.embedded import DaemonError, EmbeddedDaemon
from simulatord_client.errors import SimulatorError, from_rpc_error
from tests.helpers import TOKENS, bearer, sha256, stub

OWNER = "team-a"  # the tenant every call of the matrix names


@dataclass(frozen=True)
class Target:
    """A session of OWNER with one stub and one recorded exchange, made afresh for each call of the matrix."""

    name: str
    stub: str

    @property
    def parent(self) -> str:
        return f"tenants/{OWNER}"


# One valid request per RPC, naming OWNER's tenant: allowed callers get OK (SendWebSocketMessage: the session has
# no open connection, and FAILED_PRECONDITION shows the call got past the check to the method).
REQUESTS: dict[str, Callable[[Target], Message]] = {
    "CreateSession": lambda t: pb.CreateSessionRequest(parent=t.parent),
    "GetSession": lambda t: pb.GetSessionRequest(name=t.name),
    "ListSessions": lambda t: pb.ListSessionsRequest(parent=t.parent),
    "DeleteSession": lambda t: pb.DeleteSessionRequest(name=t.name),
    "ResetSession": lambda t: pb.ResetSessionRequest(name=t.name),
    "RefreshSession": lambda t: pb.RefreshSessionRequest(name=t.name),
    "SetSessionState": lambda t: pb.SetSessionStateRequest(name=t.name, state="hijacked"),
    "VerifySession": lambda t: pb.VerifySessionRequest(name=t.name),
    "CreateStub": lambda t: pb.CreateStubRequest(parent=t.name, stub=stub(path="/hijack")),
    "BatchCreateStubs": lambda t: pb.BatchCreateStubsRequest(
        parent=t.name, requests=[pb.CreateStubRequest(stub=stub(path="/hijack"))]
    ),
    "GetStub": lambda t: pb.GetStubRequest(name=t.stub),
    "ListStubs": lambda t: pb.ListStubsRequest(parent=t.name),
    "ReplaceStub": lambda t: pb.ReplaceStubRequest(stub=stub_pb2.Stub(name=t.stub, responses=[stub_pb2.Response()])),
    "DeleteStub": lambda t: pb.DeleteStubRequest(name=t.stub),
    "GetExchange": lambda t: pb.GetExchangeRequest(name=f"{t.name}/exchanges/1"),
    "ListExchanges": lambda t: pb.ListExchangesRequest(parent=t.name),
    "CountExchanges": lambda t: pb.CountExchangesRequest(parent=t.name),
    "WaitForExchanges": lambda t: pb.WaitForExchangesRequest(parent=t.name, count=1),
    "WatchExchanges": lambda t: pb.WatchExchangesRequest(parent=t.name, start_sequence=1),
    "SendWebSocketMessage": lambda t: pb.SendWebSocketMessageRequest(
        parent=t.name, message=stub_pb2.WebSocketMessage(text="hijacked")
    ),
    # Port 9 (discard) on loopback: nothing listens, so the delivery fails at once, in the background.
    "DeliverWebhooks": lambda t: pb.DeliverWebhooksRequest(
        parent=t.name, webhooks=[webhook_pb2.Webhook(url="http://127.0.0.1:9/hijack")]
    ),
    "ExportSession": lambda t: pb.ExportSessionRequest(name=t.name),
    "ImportWireMockMappings": lambda t: pb.ImportWireMockMappingsRequest(
        parent=t.name,
        mapping_files=[pb.WireMockFile(path="m.json", content=b'{"request": {"url": "/hijack"}, "response": {}}')],
    ),
    "ImportOpenApi": lambda t: pb.ImportOpenApiRequest(
        parent=t.name, document=b'{"openapi": "3.1.0", "info": {"title": "t", "version": "1"}, "paths": {}}'
    ),
}
ALLOWED = {"SendWebSocketMessage": (grpc.StatusCode.FAILED_PRECONDITION, "NO_WEBSOCKET_CONNECTION")}

# Who calls: its metadata, and what the daemon must answer (None: the call reaches the method).
CALLERS: dict[str, tuple[tuple[tuple[str, str], ...], tuple[grpc.StatusCode, str] | None]] = {
    "no token": ((), (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")),
    "unknown token": (bearer("not-a-token-anyone-was-given"), (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")),
    "not bearer": ((("authorization", f"Basic {TOKENS[OWNER]}"),), (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_INVALID")),
    "another tenant's token": (bearer(TOKENS["team-b"]), (grpc.StatusCode.PERMISSION_DENIED, "TENANT_FORBIDDEN")),
    "the tenant's token": (bearer(TOKENS[OWNER]), None),
    "a token of several tenants": (bearer(TOKENS["multi"]), None),
    "an admin token": (bearer(TOKENS["admin"]), None),
}
ADMIN = bearer(TOKENS["admin"])


def test_the_matrix_covers_every_rpc() -> None:
    service = pb.DESCRIPTOR.services_by_name["SimulatorService"]
    assert set(REQUESTS) == set(service.methods_by_name)


@pytest.fixture(scope="module")
def control(auth_daemon: EmbeddedDaemon) -> Iterator[pb_grpc.SimulatorServiceStub]:
    with grpc.insecure_channel(auth_daemon.grpc_address) as channel:
        yield pb_grpc.SimulatorServiceStub(channel)


@pytest.fixture
def target(control: pb_grpc.SimulatorServiceStub, http: httpx.Client) -> Iterator[Target]:
    def sessions() -> set[str]:
        listed = control.ListSessions(pb.ListSessionsRequest(parent=f"tenants/{OWNER}"), metadata=ADMIN).sessions
        return {s.name for s in listed}

    before = sessions()
    created = control.CreateSession(
        pb.CreateSessionRequest(parent=f"tenants/{OWNER}", stubs=[stub(text="mine")]), metadata=ADMIN
    )
    assert http.get(created.session.base_url + "/hello").text == "mine"
    yield Target(created.session.name, created.stubs[0].name)
    for name in sessions() - before:  # the target, and what an allowed CreateSession made
        control.DeleteSession(pb.DeleteSessionRequest(name=name, allow_missing=True), metadata=ADMIN)


def _invoke(control: pb_grpc.SimulatorServiceStub, rpc: str, request: Message, metadata: Any) -> Message:
    method = getattr(control, rpc)
    if rpc == "WatchExchanges":
        stream = method(request, metadata=metadata, timeout=10)
        try:
            first: Message = next(stream)  # the recorded exchange, replayed
        finally:
            stream.cancel()
        return first
    reply: Message = method(request, metadata=metadata, timeout=10)
    return reply


def _outcome(call: Callable[[], Message]) -> tuple[grpc.StatusCode, str]:
    try:
        call()
    except grpc.RpcError as err:
        error = from_rpc_error(err)
        assert error.domain == "simulatord", error
        return error.code, error.reason
    return grpc.StatusCode.OK, ""


def _tenant_state(control: pb_grpc.SimulatorServiceStub) -> list[tuple[bytes, list[bytes]]]:
    """Everything a caller could change in OWNER's tenant: each session (counters, state, expiry) and its stubs."""
    listed = control.ListSessions(pb.ListSessionsRequest(parent=f"tenants/{OWNER}"), metadata=ADMIN).sessions
    return [
        (
            s.SerializeToString(deterministic=True),
            [
                x.SerializeToString(deterministic=True)
                for x in control.ListStubs(pb.ListStubsRequest(parent=s.name), metadata=ADMIN).stubs
            ],
        )
        for s in listed
    ]


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("rpc", REQUESTS)
def test_every_rpc_checks_the_callers_token(
    control: pb_grpc.SimulatorServiceStub, target: Target, rpc: str, caller: str
) -> None:
    metadata, refused = CALLERS[caller]
    before = _tenant_state(control)
    outcome = _outcome(lambda: _invoke(control, rpc, REQUESTS[rpc](target), metadata))
    if refused is not None:
        assert outcome == refused
        assert _tenant_state(control) == before  # a refused call changed nothing
    else:
        assert outcome == ALLOWED.get(rpc, (grpc.StatusCode.OK, ""))


def test_a_refusal_explains_itself(control: pb_grpc.SimulatorServiceStub, target: Target) -> None:
    def refusal(metadata: Any) -> SimulatorError:
        with pytest.raises(grpc.RpcError) as caught:
            control.GetSession(pb.GetSessionRequest(name=target.name), metadata=metadata)
        return from_rpc_error(caught.value)  # type: ignore[arg-type]

    missing = refusal(())
    assert "requires a token" in missing.details and "SIMULATORD_TOKEN" in missing.details
    forbidden = refusal(bearer(TOKENS["team-b"]))
    assert forbidden.metadata == {"tenant": OWNER, "token": "team-b"}
    assert forbidden.details == "token 'team-b' may not use tenant 'team-a' (it may use: team-b)"
    assert TOKENS["team-b"] not in str(forbidden)
    unknown = refusal(bearer("x" * 40))
    assert unknown.details == "the token is not one this daemon accepts" and "x" * 40 not in str(unknown)


def test_the_token_is_checked_before_the_request(control: pb_grpc.SimulatorServiceStub) -> None:
    # Without a valid token a caller learns nothing, not even that its request is malformed.
    bad = pb.GetSessionRequest(name="not a name")
    assert _outcome(lambda: control.GetSession(bad)) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")
    # With one, a malformed name is INVALID_ARGUMENT as ever, before the tenant is judged.
    code, reason = _outcome(lambda: control.GetSession(bad, metadata=bearer(TOKENS["team-b"])))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    upper = pb.GetSessionRequest(name="tenants/Team-A/sessions/x")
    code, reason = _outcome(lambda: control.GetSession(upper, metadata=bearer(TOKENS["team-b"])))
    assert (code, reason) == (grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


def test_listing_every_tenant_shows_only_the_tenants_a_token_may_use(control: pb_grpc.SimulatorServiceStub) -> None:
    run = secrets.token_hex(4)  # the label of this test's sessions: other tests' sessions stay out of the lists
    names: dict[str, str] = {}  # session name -> tenant, in creation order (the order of listings)
    for tenant in ("team-a", "team-b", "team-c") * 2:
        created = control.CreateSession(
            pb.CreateSessionRequest(parent=f"tenants/{tenant}", session=session_pb2.Session(labels={"run": run})),
            metadata=ADMIN,
        )
        names[created.session.name] = tenant

    def listed(metadata: Any, page_size: int = 0) -> list[str]:
        found, token = [], ""
        while True:
            reply = control.ListSessions(
                pb.ListSessionsRequest(
                    parent="tenants/-", label_selector=f"run={run}", page_size=page_size, page_token=token
                ),
                metadata=metadata,
            )
            found += [s.name for s in reply.sessions]
            if not (token := reply.next_page_token):
                return found

    def of(*tenants: str) -> list[str]:
        return [name for name, tenant in names.items() if tenant in tenants]

    try:
        assert listed(ADMIN) == of("team-a", "team-b", "team-c")
        assert listed(bearer(TOKENS["team-b"])) == of("team-b")
        assert listed(bearer(TOKENS["multi"])) == of("team-a", "team-c")
        assert listed(bearer(TOKENS["multi"]), page_size=1) == of("team-a", "team-c")  # pages keep the filter
        assert _outcome(lambda: listed(())) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")
    finally:
        for name in names:
            control.DeleteSession(pb.DeleteSessionRequest(name=name), metadata=ADMIN)


def test_health_and_reflection_stay_open(auth_daemon: EmbeddedDaemon) -> None:
    # Liveness probes and grpcurl's discovery carry no token.
    with grpc.insecure_channel(auth_daemon.grpc_address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "simulatord.v1.SimulatorService"):
            assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == (
                health_pb2.HealthCheckResponse.SERVING
            )
        assert "simulatord.v1.SimulatorService" in set(ProtoReflectionDescriptorDatabase(channel).get_services())


def test_the_auth_file_may_come_from_the_environment_and_be_json(tmp_path: Path) -> None:
    path = tmp_path / "auth.json"
    path.write_text(json.dumps({"tokens": [{"sha256": sha256(TOKENS["team-a"]), "tenants": ["team-a"]}]}))
    with EmbeddedDaemon(env={"SIMULATORD_AUTH": str(path)}) as daemon, grpc.insecure_channel(daemon.grpc_address) as ch:
        control = pb_grpc.SimulatorServiceStub(ch)
        request = pb.CreateSessionRequest(parent="tenants/team-a")
        assert _outcome(lambda: control.CreateSession(request)) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_MISSING")
        assert control.CreateSession(request, metadata=bearer(TOKENS["team-a"])).session.name


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("tokens: []", r"'tokens' must be a non-empty list"),
        (
            "tokens:\n  - {token: team-a-token-0123456789, tenants: [a]}\n  - {name: b, token: short, tenants: [b]}",
            r"tokens\[1\] \(b\): token must be at least 16 characters",
        ),
        (
            "tokens:\n  - {name: b, token: team-b-token-0123456789, tenants: [Team B]}",
            r"tokens\[0\] \(b\): tenants\[0\]",
        ),
        ("tokens:\n  - {token: team-b-token-0123456789, tenant: [b]}", r"tokens\[0\]: unknown key\(s\) tenant"),
        ("tokens: [{sha256: abc, admin: true}]", r"tokens\[0\]: sha256 must be 64 hexadecimal digits"),
        ("tokens: [", r"not valid YAML"),
    ],
)
def test_a_bad_auth_file_stops_the_start_up_naming_the_entry(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "auth.yaml"
    path.write_text(content)
    with pytest.raises(DaemonError, match=rf"cannot start: auth file {path}: .*{message}"):
        EmbeddedDaemon(["--auth", str(path)], startup_timeout=15).start()


def test_a_missing_auth_file_exits_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.yaml"
    ended = subprocess.run(
        [sys.executable, "-m", "simulatord", "serve", "--auth", str(missing), "--http-port", "0", "--grpc-port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert ended.returncode == 2
    assert ended.stderr.startswith(f"simulatord: cannot start: auth file {missing}: cannot read it:")
    assert len(ended.stderr.strip().splitlines()) == 1


def test_the_cli_passes_its_token(auth_daemon: EmbeddedDaemon, control: pb_grpc.SimulatorServiceStub) -> None:
    run = [sys.executable, "-m", "simulatord"]
    where = ["--address", auth_daemon.grpc_address]
    env = {k: v for k, v in os.environ.items() if k != "SIMULATORD_TOKEN"}

    def cli(*args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*run, *args], capture_output=True, text=True, timeout=30, env={**env, **extra_env})

    assert cli("health", *where).returncode == 0  # health needs no token
    assert cli("health", *where, "--token", TOKENS["team-b"]).returncode == 0
    mine = control.CreateSession(pb.CreateSessionRequest(parent="tenants/team-a"), metadata=ADMIN).session
    theirs = control.CreateSession(pb.CreateSessionRequest(parent="tenants/team-b"), metadata=ADMIN).session
    try:
        refused = cli("sessions", "list", *where)
        assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr and "SIMULATORD_TOKEN" in refused.stderr
        listed = cli("sessions", "list", *where, "--token", TOKENS["team-a"])  # every tenant it may use
        assert listed.returncode == 0 and mine.name in listed.stdout and theirs.name not in listed.stdout
        from_env = cli("sessions", "list", *where, "--tenant", "team-b", SIMULATORD_TOKEN=TOKENS["team-b"])
        assert from_env.returncode == 0 and theirs.name in from_env.stdout and mine.name not in from_env.stdout
        forbidden = cli("sessions", "list", *where, "--tenant", "team-b", "--token", TOKENS["team-a"])
        assert forbidden.returncode == 1 and "PERMISSION_DENIED" in forbidden.stderr

        httpx.get(mine.base_url + "/seen")
        watch = subprocess.Popen(
            [*run, "exchanges", "watch", *where, "--session", mine.name, "--from-start", "--token", TOKENS["team-a"]],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert watch.stdout is not None
        assert "/seen -> 404" in watch.stdout.readline()
        control.DeleteSession(pb.DeleteSessionRequest(name=mine.name), metadata=ADMIN)
        assert watch.wait(10) == 0
        intruder = cli("exchanges", "watch", *where, "--session", theirs.name, "--token", TOKENS["team-a"])
        assert intruder.returncode == 1 and "PERMISSION_DENIED" in intruder.stderr
    finally:
        for name in (mine.name, theirs.name):
            control.DeleteSession(pb.DeleteSessionRequest(name=name, allow_missing=True), metadata=ADMIN)
