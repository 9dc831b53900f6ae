"""The README's grpcurl examples run against a real daemon, through descriptors discovered by reflection; what it
says of the serve flags and the benchmark matches the code."""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
from pathlib import Path

import grpc
import httpx
from google.protobuf import descriptor_pool, json_format, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from simulatord.cli import build_parser
from simulatord.config import flags
from simulatord_client.embedded import EmbeddedDaemon

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def grpcurl_calls() -> list[tuple[str, str]]:
    """(method path, JSON body) for each grpcurl command in the README, in order."""
    text = README.read_text()
    calls = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for command in re.split(r"\n(?=[a-z])", block.replace("\\\n", " ")):
            if command.startswith("grpcurl"):
                words = shlex.split(command)
                calls.append((words[-1], words[words.index("-d") + 1]))
    return calls


def test_readme_grpcurl_examples_work() -> None:
    calls = grpcurl_calls()
    assert [c[0].rsplit("/", 1)[1] for c in calls] == [
        "CreateSession",
        "WaitForExchanges",
        "WatchExchanges",
        "VerifySession",
        "DeleteSession",
    ]
    with EmbeddedDaemon() as daemon, grpc.insecure_channel(daemon.grpc_address) as channel:
        # Like grpcurl, know the service only through reflection, not through our generated code.
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName("simulatord.v1.SimulatorService")

        def invoke(path: str, body: str) -> dict:  # type: ignore[type-arg]
            method = service.FindMethodByName(path.rsplit("/", 1)[1])
            request_class = message_factory.GetMessageClass(method.input_type)
            response_class = message_factory.GetMessageClass(method.output_type)
            request = json_format.Parse(body, request_class())
            full = f"/{service.full_name}/{method.name}"
            if method.server_streaming:
                stream = channel.unary_stream(full, request_class.SerializeToString, response_class.FromString)(request)
                first = next(iter(stream))
                stream.cancel()
                return json_format.MessageToDict(first)
            rpc = channel.unary_unary(full, request_class.SerializeToString, response_class.FromString)
            return json_format.MessageToDict(rpc(request, timeout=10))

        created = invoke(*calls[0])
        base_url = created["session"]["baseUrl"]
        assert base_url == f"{daemon.http_url}/tenants/acme/sessions/checkout"
        answer = httpx.post(base_url + "/v1/charges", headers={"authorization": "Bearer sk-test"})
        assert answer.status_code == 201 and answer.json() == {"id": "ch_1", "status": "succeeded"}
        assert invoke(*calls[1])["satisfied"] is True
        assert invoke(*calls[2])["exchange"]["request"]["path"] == "/v1/charges"
        assert invoke(*calls[3])["ok"] is True
        assert invoke(*calls[4]) == {}


def test_readme_behaviours_example_works() -> None:
    from simulatord_client import Simulator
    from simulatord_client import behaviours as b

    snippet = re.search(r"```python\nfrom simulatord_client import behaviours as b\n(.*?)```", README.read_text(), re.S)
    assert snippet is not None
    with EmbeddedDaemon() as daemon, Simulator(daemon.grpc_address) as sim, sim.session(tenant="readme") as s:
        exec(snippet.group(1), {"b": b, "s": s})
        assert [httpx.get(s.url + "/v1/usage").status_code for _ in range(2)] == [429, 200]
        lines: list[str] = []
        try:
            with httpx.stream("POST", s.url + "/v1/chat/completions") as stream:
                lines.extend(line for line in stream.iter_lines() if line)
        except httpx.ReadError:
            pass  # the stream is reset after two events, as the example says
        assert lines == ['data: {"delta": "Hel"}', 'data: {"delta": "lo"}']
        assert httpx.get(s.url + "/v1/flaky").json() == {"ok": 1}
        try:
            httpx.get(s.url + "/v1/flaky")
            raise AssertionError("the second answer is a connection reset")
        except httpx.ReadError:
            pass
        assert [r.status for r in s.exchanges()] == [429, 200, 200, 200, 0]


def test_the_serve_synopsis_lists_every_flag_with_its_default() -> None:
    synopsis = re.search(r"```\n(simulatord serve .*?)```", README.read_text(), re.S)
    assert synopsis is not None
    shown = dict(re.findall(r"(--[a-z-]+)(?: ([^\s\]]+))?", synopsis.group(1)))
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    serve = commands.choices["serve"]
    every = {o for action in serve._actions for o in action.option_strings if o.startswith("--") and o != "--help"}
    assert set(shown) == every
    for setting in flags():
        if isinstance(setting.default, (int, float)) or (isinstance(setting.default, str) and setting.default):
            flag, default = "--" + setting.name.replace("_", "-"), setting.default
            if not setting.metadata["choices"]:
                assert shown[flag] == (f"{default:g}" if isinstance(default, float) else str(default)), flag


def test_the_quick_bench_is_said_to_take_one_time_and_its_help_installs_nothing(tmp_path: Path) -> None:
    said = {
        doc: re.findall(r"--quick\W+(?:smoke run, )?about (\d+ minutes?)", (ROOT / doc).read_text())
        for doc in ("README.md", "bench/README.md")
    }
    assert said == {"README.md": ["4 minutes"], "bench/README.md": ["4 minutes"]}
    work = tmp_path / "bench-work"
    env = {**os.environ, "BENCH_WORK": str(work)}
    shown = subprocess.run([ROOT / "bench/run.sh", "--help"], capture_output=True, text=True, timeout=60, env=env)
    assert shown.returncode == 0 and shown.stdout.startswith("usage: bench/run.sh")
    assert "--quick" in shown.stdout and "[setup]" not in shown.stderr
    assert not work.exists()
