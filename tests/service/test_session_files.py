"""Sessions as files: ExportSession, the template file it makes, and `simulatord export` / `import` round trips."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest
from google.protobuf import json_format

from simulatord.tools import template_json
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord.v1 import stub_pb2
from simulatord_client import behaviours as b
from simulatord_client import contains, proxy, stub
from simulatord_client.embedded import EmbeddedDaemon
from simulatord_client.errors import from_rpc_error

CLI = [sys.executable, "-m", "simulatord"]


def rich_session(control: pb_grpc.SimulatorServiceStub, tenant: str) -> pb.CreateSessionResponse:
    """A session using most of what a session can hold: settings, matchers, sequences, behaviours, scenarios."""
    request = pb.CreateSessionRequest(
        parent=f"tenants/{tenant}",
        stubs=[
            stub("GET", "/users/{id}", json={"id": 7}, priority=2, description="a user"),
            stub("GET", "/users/{id}", text="fallback"),  # same priority as the next: creation order decides
            stub(
                "POST",
                "/orders",
                json_path={"$.qty": 2},
                headers={"x-key": contains("k")},
                responses=[b.status(503), b.json({"id": 1}, status=201)],
                after_last="cycle",
                times=5,
            ),
            stub("GET", "/feed", response=b.sse(["a", "b"], event_delay=0.01)),
            stub("GET", "/flaky", responses=[b.fault("reset"), b.text("ok")]),
            stub("GET", "/cart", text="empty", required_state="", next_state="filled"),
            stub("GET", "/cart", text="full", required_state="filled"),
            stub("GET", "/hello", response=b.templated(b.text("hi {{ request.query.name }}"))),
        ],
    )
    request.session.labels["suite"] = "files"
    request.session.ttl.FromSeconds(120)
    request.session.unmatched_status = 418
    request.session.journal_limits.max_exchanges = 50
    request.session.redact_headers.append("x-secret")
    return control.CreateSession(request)


def export(control: pb_grpc.SimulatorServiceStub, name: str) -> pb.CreateSessionRequest:
    return control.ExportSession(pb.ExportSessionRequest(name=name)).session


def answers(http: httpx.Client, base_url: str) -> list[tuple[int, str]]:
    seen = []
    for method, path, body in [
        ("GET", "/users/3", None),
        ("POST", "/orders", {"qty": 2}),
        ("POST", "/orders", {"qty": 2}),
        ("GET", "/cart", None),
        ("GET", "/cart", None),
        ("GET", "/hello?name=ada", None),
        ("GET", "/feed", None),
        ("GET", "/nothing", None),
    ]:
        r = http.request(method, base_url + path, json=body, headers={"x-key": "kk"})
        # An unmatched request's body names the session and its stubs, which differ between copies.
        seen.append((r.status_code, r.text if r.status_code != 418 else r.json()["error"]))
    return seen


def test_an_export_imported_again_exports_the_same_bytes_and_answers_the_same(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client
) -> None:
    original = rich_session(control, "files")
    exported = export(control, original.session.name)
    assert exported.stubs[0].description == "a user"
    assert not any(s.name or s.match_count or s.HasField("create_time") for s in exported.stubs)
    assert not (exported.parent or exported.session_id or exported.session.name or exported.session.base_url)
    copy_request = pb.CreateSessionRequest()
    copy_request.CopyFrom(exported)
    copy_request.parent = "tenants/files"
    copy = control.CreateSession(copy_request)
    assert template_json(export(control, copy.session.name)) == template_json(exported)
    copied, originals = answers(http, copy.session.base_url), answers(http, original.session.base_url)
    assert copied == originals
    assert (200, "hi ada") in originals  # the template is rendered, not echoed


def test_an_export_is_a_template_file_for_serve(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, tmp_path: Path
) -> None:
    original = rich_session(control, "files")
    exported = export(control, original.session.name)
    (tmp_path / "shop.json").write_text(template_json(exported))
    with EmbeddedDaemon(["--templates", str(tmp_path)]) as other, grpc.insecure_channel(other.grpc_address) as ch:
        theirs = pb_grpc.SimulatorServiceStub(ch)
        created = theirs.CreateSession(pb.CreateSessionRequest(parent="tenants/files", template="shop"))
        assert template_json(export(theirs, created.session.name)) == template_json(exported)
        assert answers(http, created.session.base_url) == answers(http, original.session.base_url)


def test_exporting_a_missing_session_is_not_found(control: pb_grpc.SimulatorServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        control.ExportSession(pb.ExportSessionRequest(name="tenants/files/sessions/never-made"))
    error = from_rpc_error(caught.value)
    assert (error.code, error.reason) == (grpc.StatusCode.NOT_FOUND, "SESSION_NOT_FOUND")


def test_cli_export_with_its_journal_then_import(
    daemon: EmbeddedDaemon, control: pb_grpc.SimulatorServiceStub, http: httpx.Client, tmp_path: Path
) -> None:
    original = rich_session(control, "files")
    http.get(original.session.base_url + "/users/1")
    http.get(original.session.base_url + "/nothing")
    out, journal = tmp_path / "session.json", tmp_path / "journal.jsonl"
    done = subprocess.run(
        [*CLI, "export", original.session.name, "-o", str(out), "--journal", str(journal),
         "--address", daemon.grpc_address],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert out.read_text() == template_json(export(control, original.session.name))
    recorded = [json.loads(line) for line in journal.read_text().splitlines()]
    assert [(e["request"]["path"], e["response"]["status"]) for e in recorded] == [("/users/1", 200), ("/nothing", 418)]

    imported = subprocess.run(
        [*CLI, "import", str(out), "--tenant", "files", "--session-id", "from-file", "--address", daemon.grpc_address],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("tenants/files/sessions/from-file 8 stubs http")
    assert template_json(export(control, "tenants/files/sessions/from-file")) == out.read_text()


def test_cli_export_remove_proxies_leaves_out_the_stubs_that_proxy(
    daemon: EmbeddedDaemon, control: pb_grpc.SimulatorServiceStub, tmp_path: Path
) -> None:
    upstream = proxy(daemon.http_url, mode="record_once")
    created = control.CreateSession(
        pb.CreateSessionRequest(
            parent="tenants/files",
            stubs=[stub(response=upstream, priority=-1), stub("GET", "/recorded", text="as recorded")],
        )
    )
    name, out = created.session.name, tmp_path / "replay.json"

    def exported(*flags: str) -> list[stub_pb2.Stub]:
        done = subprocess.run(
            [*CLI, "export", name, "-o", str(out), *flags, "--address", daemon.grpc_address],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return list(json_format.Parse(out.read_text(), pb.CreateSessionRequest()).stubs)

    assert [s.responses[0].HasField("proxy") for s in exported()] == [True, False]
    assert [s.request.path.exact for s in exported("--remove-proxies")] == ["/recorded"]
    assert out.read_text() == template_json(
        control.ExportSession(pb.ExportSessionRequest(name=name, remove_proxies=True)).session
    )


def test_cli_import_names_what_is_wrong_with_a_file(daemon: EmbeddedDaemon, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stubs": [{"request": {"path": {"regex": "("}}, "responses": [{"status": 200}]}]}))
    done = subprocess.run(
        [*CLI, "import", str(bad), "--address", daemon.grpc_address], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert "stubs[0].request.path.regex" in done.stderr and "Traceback" not in done.stderr


def test_the_python_client_exports_a_session(simulator: object) -> None:
    from simulatord_client import Simulator

    assert isinstance(simulator, Simulator)
    forward = stub(response=proxy("http://127.0.0.1:9"), priority=-1)
    with simulator.session(stubs=[stub("GET", "/a", text="a", priority=3), forward]) as s:
        exported, replay = s.export(), s.export(remove_proxies=True)
    assert [(x.request.path.exact, x.priority) for x in exported.stubs] == [("/a", 3), ("", -1)]
    assert [(x.request.path.exact, x.priority) for x in replay.stubs] == [("/a", 3)]
