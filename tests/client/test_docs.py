"""The docs' Python examples run: blocks marked `<!-- doctest: file.py -->` (README.md, docs/python-client.md,
docs/llm.md, docs/webhooks.md, docs/proxy.md) as test files, every block of the two behaviours docs against a real
daemon, which must accept what they build, the LLM page's grpcurl CreateSession body as a real session, and the
webhooks page's grpcurl DeliverWebhooks body as a real delivery."""

from __future__ import annotations

import ast
import hashlib
import hmac
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from google.protobuf import json_format

from simulatord.v1 import simulator_service_pb2, stub_pb2, webhook_pb2
from simulatord_client import Session, Simulator
from tests.service.webhook_support import Receiver, receiver

pytest_plugins = ["pytester"]
__all__ = ["receiver"]  # a fixture, used by name

ROOT = Path(__file__).resolve().parents[2]
DOCS = (
    ROOT / "README.md",
    ROOT / "docs" / "python-client.md",
    ROOT / "docs" / "llm.md",
    ROOT / "docs" / "webhooks.md",
    ROOT / "docs" / "proxy.md",
)
BEHAVIOUR_DOCS = ("behaviours-faults-streaming.md", "behaviours-state-websockets.md")
_BLOCK = re.compile(r"<!-- doctest: (\S+) -->\n```python\n(.*?)\n```", re.DOTALL)
_PYTHON = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _blocks() -> list[tuple[str, str]]:
    return [block for doc in DOCS for block in _BLOCK.findall(doc.read_text())]


def test_the_docs_have_tested_examples() -> None:
    assert [name for name, _ in _blocks()] == [
        "test_readme_example.py",
        "test_readme_llm.py",
        "test_quickstart.py",
        "test_migrated.py",
        "test_llm_quickstart.py",
        "test_llm_rules.py",
        "test_llm_errors.py",
        "test_llm_limits.py",
        "test_llm_streams.py",
        "test_llm_strict.py",
        "conftest.py",
        "test_webhooks_quickstart.py",
        "test_webhooks_custom.py",
        "test_webhooks_retries.py",
        "test_webhooks_faults.py",
        "test_webhooks_callbacks.py",
        "test_proxy_record.py",
    ]


def test_doc_examples_pass(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, simulatord_address: str) -> None:
    monkeypatch.setenv("SIMULATORD_ADDRESS", simulatord_address)  # the outer run's daemon: no start-up here
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    blocks = _blocks()
    pytester.makepyfile(**{name.removesuffix(".py"): code for name, code in blocks})
    # A subprocess, because an in-process run drops the modules it imported first from sys.modules.
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=sum(len(re.findall(r"^def test_", code, re.MULTILINE)) for _, code in blocks))


class _Programmer:
    """Creates in a session every stub or response an example builds, so the daemon checks each of them."""

    def __init__(self, session: Callable[[], Session]) -> None:
        self.session = session  # a function: a doc may create the session it programs
        self._paths = (f"/doc-example-{n}" for n in itertools.count(1))

    def accept(self, value: Any) -> None:
        if isinstance(value, list):
            for item in value:
                self.accept(item)
        elif isinstance(value, stub_pb2.Stub):
            self.session().add(value)
        elif isinstance(value, stub_pb2.Response):
            self.session().stub(path=next(self._paths), response=value)


def _run(doc: str, namespace: dict[str, Any], programmer: _Programmer) -> int:
    """Runs each block's statements in order, in one namespace, so that a name a block uses must be defined by
    an earlier one, and programs what its expressions and assignments build. Returns the block count."""
    blocks = _PYTHON.findall((ROOT / "docs" / doc).read_text())
    for block in blocks:
        tree = ast.parse(block, doc)
        for statement in tree.body:
            if isinstance(statement, ast.Expr):
                programmer.accept(eval(compile(ast.Expression(statement.value), doc, "eval"), namespace))
                continue
            exec(compile(ast.Module([statement], type_ignores=[]), doc, "exec"), namespace)
            if isinstance(statement, ast.Assign):
                for target in statement.targets:
                    if isinstance(target, ast.Name):
                        programmer.accept(namespace[target.id])
    return len(blocks)


def _pushed(session: Session) -> bool:
    return any(e.exchange.frame.text == "going down" for e in session.exchanges(path="/rooms/lobby"))


def test_behaviour_docs_examples_run(
    sim_session: Session, simulatord_address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _run(BEHAVIOUR_DOCS[0], {}, _Programmer(lambda: sim_session)) == 5
    assert len(sim_session.list_stubs()) == 5

    # The second doc sets up its own Simulator and session, from SIMULATORD_ADDRESS.
    monkeypatch.setenv("SIMULATORD_ADDRESS", simulatord_address)
    namespace: dict[str, Any] = {}
    try:
        assert _run(BEHAVIOUR_DOCS[1], namespace, _Programmer(lambda: namespace["session"])) == 7
        assert len(namespace["session"].list_stubs()) == 9  # 8 built, and the chat stub the push example adds
        # The example reads until the daemon closes, so the pushed frame went out; its record follows at once,
        # but on another task: look again for a bounded moment rather than race it.
        deadline = time.monotonic() + 5
        while not _pushed(namespace["session"]) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _pushed(namespace["session"])
    finally:
        if "sim" in namespace:
            namespace["session"].close()
            namespace["sim"].close()


def test_the_path_kind_examples_of_the_client_doc_create_stubs(sim_session: Session) -> None:
    row = next(line for line in DOCS[1].read_text().splitlines() if line.startswith("| other path kinds"))
    calls = re.findall(r"`(s\.stub\(.*?\))`", row)
    assert len(calls) == 3
    for call in calls:
        eval(call, {"s": sim_session})  # each as a reader would copy it: a TypeError or a refused stub fails here
    kinds = {s.request.path.WhichOneof("kind") for s in sim_session.list_stubs()}
    assert kinds == {"prefix", "glob", "regex"}


def test_llm_grpcurl_example_creates_a_working_session(simulator: Simulator, http: httpx.Client) -> None:
    """The grpcurl body of docs/llm.md is a valid CreateSessionRequest whose session answers the curl beneath it."""
    text = (ROOT / "docs" / "llm.md").read_text()
    block = re.search(r"<!-- grpcurl: llm session -->\n```bash\ngrpcurl -plaintext -d '(.*?)' 127\.0\.0\.1", text, re.S)
    assert block, "docs/llm.md lost its grpcurl CreateSession example"
    request = json_format.Parse(block.group(1), simulator_service_pb2.CreateSessionRequest())
    assert request.session.llm.rules[0].id == "weather"
    request.parent = "tenants/docs-llm"
    request.session_id = f"assistant-{secrets.token_hex(8)}"  # runs sharing a daemon stay apart
    created = simulator.stub.CreateSession(request, timeout=10)
    try:
        curl = re.search(r"-d '(\{\"model\".*?)'\n", text)
        assert curl, "docs/llm.md lost its curl example"
        answer = http.post(f"{created.session.base_url}/v1/chat/completions", json=json.loads(curl.group(1)))
        assert answer.status_code == 200
        assert answer.json()["choices"][0]["message"]["content"] == "I only know the weather."
    finally:
        simulator.stub.DeleteSession(simulator_service_pb2.DeleteSessionRequest(name=created.session.name), timeout=10)


def test_webhooks_grpcurl_example_delivers(sim_session: Session, receiver: Receiver) -> None:
    """The grpcurl body of docs/webhooks.md is a valid DeliverWebhooksRequest that delivers a verifiable webhook."""
    text = (ROOT / "docs" / "webhooks.md").read_text()
    block = re.search(
        r"<!-- grpcurl: deliver webhooks -->\n```bash\ngrpcurl -plaintext -d '(.*?)' 127\.0\.0\.1", text, re.S
    )
    assert block, "docs/webhooks.md lost its grpcurl DeliverWebhooks example"
    request = json_format.Parse(block.group(1), simulator_service_pb2.DeliverWebhooksRequest())
    request.parent = sim_session.name
    [webhook] = request.webhooks
    webhook.url = webhook.url.replace("http://127.0.0.1:9000", receiver.url)  # the doc's receiver is this one
    answer = sim_session.simulator.call(lambda stub: stub.DeliverWebhooks, request, timeout=20)
    [delivery] = answer.deliveries
    assert (delivery.state, delivery.attempts) == (webhook_pb2.DELIVERY_STATE_DELIVERED, 1)
    [arrived] = receiver.wait(1)
    assert (arrived.path, arrived.headers["x-github-event"], arrived.headers["x-github-hook-id"]) == (
        "/hooks/github",
        "push",
        "42",
    )
    expected = "sha256=" + hmac.new(b"s3cret", arrived.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(arrived.headers["x-hub-signature-256"], expected)
