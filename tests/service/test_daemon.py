"""The daemon process: health, reflection, graceful SIGTERM, templates, CLI, and hostile HTTP that must not hurt it."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.embedded import DaemonError, EmbeddedDaemon
from tests.helpers import stub


def test_health_and_reflection(daemon: EmbeddedDaemon, channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "simulatord.v1.SimulatorService"):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    assert {"simulatord.v1.SimulatorService", "grpc.health.v1.Health", reflection.SERVICE_NAME} <= services
    described = database.FindFileContainingSymbol("simulatord.v1.SimulatorService")
    assert described.package == "simulatord.v1"


def test_own_pages_answer_and_sessions_are_served_before_and_after_them() -> None:
    # A daemon of its own: the Quart app behind its own pages is loaded by the first request that needs it.
    with EmbeddedDaemon() as daemon, grpc.insecure_channel(daemon.grpc_address) as channel:
        control = pb_grpc.SimulatorServiceStub(channel)
        created = control.CreateSession(pb.CreateSessionRequest(parent="tenants/pages", stubs=[stub(text="fine")]))
        assert httpx.get(created.session.base_url + "/hello").text == "fine"
        index = httpx.get(daemon.http_url + "/")
        assert index.status_code == 200
        assert index.json()["service"] == "simulatord" and index.json()["sessions"] == 1
        missing = httpx.get(daemon.http_url + "/no/session/here")
        assert missing.status_code == 404 and missing.json()["reason"] == "NO_SESSION"
        assert httpx.get(created.session.base_url + "/hello").text == "fine"


def test_sigterm_stops_gracefully_and_ends_watchers() -> None:
    daemon = EmbeddedDaemon().start()
    with grpc.insecure_channel(daemon.grpc_address) as channel:
        control = pb_grpc.SimulatorServiceStub(channel)
        created = control.CreateSession(pb.CreateSessionRequest(parent="tenants/stop"))
        stream = control.WatchExchanges(pb.WatchExchangesRequest(parent=created.session.name))
        ended: list[grpc.StatusCode] = []
        live = threading.Event()

        def consume() -> None:
            for _ in stream:
                live.set()
            ended.append(stream.code())

        reader = threading.Thread(target=consume)
        reader.start()
        # The watch is surely live on the server once it has delivered something; a SIGTERM that raced the
        # stream's start would end a call that never began, which is not what this test is about.
        httpx.get(created.session.base_url + "/ping")
        assert live.wait(5)
        assert daemon.stop() == 0
        reader.join(5)
        assert ended == [grpc.StatusCode.OK]


def test_malformed_http_and_oversize_bodies_do_not_hurt_anyone(tmp_path: Path) -> None:
    with EmbeddedDaemon(["--max-body-bytes", "1000"]) as daemon, grpc.insecure_channel(daemon.grpc_address) as channel:
        control = pb_grpc.SimulatorServiceStub(channel)
        victim = control.CreateSession(pb.CreateSessionRequest(parent="tenants/victim", stubs=[stub(text="fine")]))
        attacker = control.CreateSession(pb.CreateSessionRequest(parent="tenants/attacker"))
        host, port = daemon.http_url.removeprefix("http://").split(":")
        for garbage in (
            b"\x00\x01\x02 garbage\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost",
        ):
            with socket.create_connection((host, int(port)), timeout=5) as raw:
                raw.sendall(garbage)
                raw.shutdown(socket.SHUT_WR)
                with contextlib.suppress(OSError):  # a reset is an acceptable answer to garbage
                    raw.recv(65536)
        big = httpx.post(attacker.session.base_url + "/upload", content=b"x" * 5000)
        assert big.status_code == 413 and big.json()["reason"] == "BODY_TOO_LARGE"
        recorded = control.ListExchanges(pb.ListExchangesRequest(parent=attacker.session.name)).exchanges
        assert [(e.request.path, e.response.status) for e in recorded] == [("/upload", 413)]
        assert httpx.get(victim.session.base_url + "/hello").text == "fine"
        assert len(control.ListExchanges(pb.ListExchangesRequest(parent=victim.session.name)).exchanges) == 1


def test_templates_are_loaded_and_checked_at_start_up(tmp_path: Path) -> None:
    (tmp_path / "payments.json").write_text(
        json.dumps(
            {
                "session": {"labels": {"from": "template"}},
                "stubs": [
                    {
                        "request": {"method": "GET", "path": {"exact": "/v1/balance"}},
                        "responses": [{"status": 200, "bodyJson": {"available": 100}}],
                    }
                ],
            }
        )
    )
    (tmp_path / "weather.yaml").write_text(
        "stubs:\n  - request: {path: {template: '/forecast/{city}'}}\n    responses: [{bodyText: sunny}]\n"
    )
    with EmbeddedDaemon(["--templates", str(tmp_path)]) as daemon, grpc.insecure_channel(daemon.grpc_address) as ch:
        control = pb_grpc.SimulatorServiceStub(ch)
        created = control.CreateSession(
            pb.CreateSessionRequest(
                parent="tenants/tpl", template="payments", stubs=[stub(path="/extra", text="extra")]
            )
        )
        assert created.session.labels == {"from": "template"} and created.session.stub_count == 2
        assert httpx.get(created.session.base_url + "/v1/balance").json() == {"available": 100}
        assert httpx.get(created.session.base_url + "/extra").text == "extra"
        weather = control.CreateSession(pb.CreateSessionRequest(parent="tenants/tpl", template="weather"))
        assert httpx.get(weather.session.base_url + "/forecast/oslo").text == "sunny"
    (tmp_path / "broken.json").write_text(json.dumps({"stubs": [{"request": {"path": {"regex": "("}}}]}))
    with pytest.raises(DaemonError, match=r"cannot start: .*broken\.json: .*request.path.regex: invalid regex"):
        EmbeddedDaemon(["--templates", str(tmp_path)], startup_timeout=15).start()


def test_cli_health_sessions_and_watch(
    daemon: EmbeddedDaemon, control: pb_grpc.SimulatorServiceStub, http: httpx.Client
) -> None:
    run = [sys.executable, "-m", "simulatord"]
    ok = subprocess.run([*run, "health", "--address", daemon.grpc_address], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and "SERVING" in ok.stdout
    down = subprocess.run(
        [*run, "health", "--address", "127.0.0.1:1", "--timeout", "0.5"], capture_output=True, timeout=30
    )
    assert down.returncode == 1
    created = control.CreateSession(pb.CreateSessionRequest(parent="tenants/cli", stubs=[stub()]))
    http.get(created.session.base_url + "/hello")
    http.get(created.session.base_url + "/missing")
    listed = subprocess.run(
        [*run, "sessions", "list", "--address", daemon.grpc_address, "--tenant", "cli"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert created.session.name in listed.stdout and created.session.base_url in listed.stdout
    watch = subprocess.Popen(
        [
            *run,
            "exchanges",
            "watch",
            "--address",
            daemon.grpc_address,
            "--session",
            created.session.name,
            "--from-start",
            "--color",
            "never",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert watch.stdout is not None
    lines = [watch.stdout.readline() for _ in range(2)]
    lines.append(watch.stdout.readline())  # the near-miss line of the unmatched request
    control.DeleteSession(pb.DeleteSessionRequest(name=created.session.name))
    assert watch.wait(10) == 0
    assert "GET     /hello -> 200" in lines[0]
    assert "GET     /missing -> 404" in lines[1] and "UNMATCHED" in lines[1]
    assert "near miss" in lines[2] and "path: expected exact '/hello'" in lines[2]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SIMULATORD_ADDRESS", "SIMULATORD_TOKEN")}
    return subprocess.run(
        [sys.executable, "-m", "simulatord", *args], capture_output=True, text=True, timeout=30, env=env
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


COMMANDS = (["health"], ["sessions", "list"], ["exchanges", "watch", "--session", "tenants/cli/sessions/s1"])


def test_cli_commands_without_a_daemon_say_so_in_one_line() -> None:
    address = f"127.0.0.1:{_free_port()}"  # nothing listens there any more
    for command in COMMANDS:
        ended = _cli(*command, "--address", address)
        assert ended.returncode == 1, command
        assert ended.stderr.splitlines() == [
            f"simulatord: cannot reach the daemon at {address} (is it running? start it with `simulatord serve`, "
            "or give its gRPC address as --address or SIMULATORD_ADDRESS)"
        ], command


def test_cli_commands_given_the_http_port_name_the_grpc_port(daemon: EmbeddedDaemon) -> None:
    address = daemon.http_url.removeprefix("http://")
    for command in COMMANDS:
        ended = _cli(*command, "--address", address)
        assert ended.returncode == 1, command
        assert ended.stderr.splitlines() == [
            f"simulatord: {address} answers HTTP, not gRPC: is it the daemon's HTTP port (--http-port)? Commands "
            "need its gRPC port (simulatord serve --grpc-port, default 50051): give it as --address or "
            "SIMULATORD_ADDRESS"
        ], command


def test_cli_names_the_flag_of_a_malformed_name(daemon: EmbeddedDaemon) -> None:
    where = ["--address", daemon.grpc_address]
    session = _cli("exchanges", "watch", *where, "--session", "checkout")
    assert session.returncode == 2 and "parent" not in session.stderr
    assert session.stderr.splitlines()[-1] == (
        "simulatord exchanges watch: error: argument --session: must be 'tenants/{tenant}/sessions/{session}', "
        "got 'checkout'; give the session's full name, e.g. tenants/acme/sessions/checkout (`simulatord sessions list`)"
    )
    ids = _cli("exchanges", "watch", *where, "--session", "tenants/Acme/sessions/checkout")
    assert ids.returncode == 2
    assert "argument --session: ids in 'tenants/Acme/sessions/checkout' must be 1-63 characters" in ids.stderr
    tenant = _cli("sessions", "list", *where, "--tenant", "tenants/acme")
    assert tenant.returncode == 2 and "parent" not in tenant.stderr
    assert "argument --tenant: tenant id 'tenants/acme' must be 1-63 characters" in tenant.stderr
    assert "give the id alone (acme, not tenants/acme), or - for every tenant" in tenant.stderr


def test_a_busy_port_is_named_with_the_flag_that_sets_it(daemon: EmbeddedDaemon) -> None:
    http_port = daemon.http_url.rsplit(":", 1)[1]
    grpc_port = daemon.grpc_address.rsplit(":", 1)[1]
    for kind, flag, ports in (
        ("HTTP", "--http-port", ["--http-port", http_port, "--grpc-port", "0"]),
        ("gRPC", "--grpc-port", ["--http-port", "0", "--grpc-port", grpc_port]),
    ):
        busy = ports[ports.index(flag) + 1]
        ended = _cli("serve", "--host", "127.0.0.1", *ports)
        assert ended.returncode == 2
        assert ended.stderr.splitlines() == [
            f"simulatord: cannot start: the {kind} port {busy} on 127.0.0.1 is in use (another simulatord?): "
            f"choose another with {flag}, or {flag} 0 for any free one"
        ]
