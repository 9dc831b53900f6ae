"""A webhook receiver for tests: a real HTTP server on loopback that records what arrives and answers as told;
and the GitHub oracle, @octokit/webhooks-methods, run by node."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from google.protobuf import json_format

from simulatord.v1 import webhook_pb2

NODE_CLIENT = Path(__file__).resolve().parents[2] / "client" / "node"


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # names lower case
    body: bytes
    at: float = 0.0  # time.monotonic() when the request had arrived (the same clock as the daemon's, on one host)


@dataclass
class Answer:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0  # seconds to wait before answering


@dataclass
class Receiver:
    """Records every request; answers each with the next of `answers` ((status, headers) or an Answer), then 200."""

    url: str
    received: list[Received] = field(default_factory=list)
    answers: list[tuple[int, dict[str, str]] | Answer] = field(default_factory=list)
    arrived: threading.Condition = field(default_factory=threading.Condition)

    def wait(self, count: int, timeout: float = 5.0) -> list[Received]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} requests arrived, {count} expected")
            return list(self.received)

    def still(self, count: int, seconds: float) -> list[Received]:
        """Asserts that no more than `count` requests arrive within `seconds` (a bounded wait)."""
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.received) > count, seconds)
            assert len(self.received) == count, f"{len(self.received)} requests arrived, {count} expected"
            return list(self.received)

    def _next_answer(self) -> Answer:
        with self.arrived:
            answer = self.answers.pop(0) if self.answers else Answer()
        return answer if isinstance(answer, Answer) else Answer(answer[0], answer[1])


@contextlib.contextmanager
def serving_receiver() -> Iterator[Receiver]:
    state: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            at = time.monotonic()
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            me = state[0]
            answer = me._next_answer()
            try:
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)
            except OSError:  # the daemon gave up on a slow answer (its timeout): nobody is left to answer
                pass
            finally:
                with me.arrived:  # recorded once answered, so a test that saw it may rely on the journal too
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    me.received.append(Received(self.command, self.path, headers, body, at))
                    me.arrived.notify_all()

        do_POST = do_PUT = do_GET = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.append(Receiver(f"http://127.0.0.1:{server.server_port}"))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with serving_receiver() as running:
        yield running


@pytest.fixture
def refusing_url() -> Iterator[str]:
    """A loopback URL whose port refuses connections: bound (so no other test takes it) but never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/hook"


def hook(fields: dict[str, object]) -> webhook_pb2.Webhook:
    return json_format.ParseDict(fields, webhook_pb2.Webhook())


def octokit_verify(cases: list[tuple[str, bytes, str | None]]) -> list[bool | str]:
    """@octokit/webhooks-methods verify(secret, payload, signature) per case: true, false, or the error it threw."""
    if shutil.which("node") is None:
        pytest.skip("node is not installed: the GitHub oracle is @octokit/webhooks-methods")
    script = """
import { verify } from "@octokit/webhooks-methods";
import { readFileSync } from "node:fs";
const out = [];
for (const [secret, body, signature] of JSON.parse(readFileSync(0, "utf8"))) {
  try { out.push(await verify(secret, body, signature ?? undefined)); } catch (e) { out.push(String(e.message)); }
}
console.log(JSON.stringify(out));
"""
    done = subprocess.run(
        ["node", "--input-type=module", "-e", script],
        input=json.dumps([(secret, body.decode(), signature) for secret, body, signature in cases]),
        capture_output=True,
        text=True,
        cwd=NODE_CLIENT,
        env={**os.environ, "NODE_NO_WARNINGS": "1"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, f"node failed (run `npm ci` in client/node?): {done.stderr}"
    result: list[bool | str] = json.loads(done.stdout)
    return result
