"""What a daemon imports before it serves its first plain session: start-up time is mostly import time, so the
parts only some sessions use (the LLM simulation, WebSockets, Quart) load on first use, and this keeps them so."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import http.client, sys
from urllib.parse import urlsplit
from simulatord.embedded import ThreadDaemon
from simulatord_client import Simulator, stub
from simulatord_client.inprocess import InProcessChannel
with ThreadDaemon.from_args() as daemon:
    sim = Simulator(daemon.grpc_address, channel=InProcessChannel(daemon))
    with sim.session(stubs=[stub("GET", "/hello", text="hi")]) as session:
        url = urlsplit(session.url)
        connection = http.client.HTTPConnection(url.hostname, url.port)
        connection.request("GET", url.path + "/hello")
        assert connection.getresponse().read() == b"hi"
        print(" ".join(sorted(name for name in sys.modules if name.split(".")[0] in sys.argv[1:]
                              or name.startswith(tuple(sys.argv[1:])))))
"""

LAZY = [
    "simulatord.llm",
    "simulatord.webhooks.spec",
    "simulatord.serving.deliveries",
    "websockets",
    "quart",
    "jinja2",
    "jsonschema",
    "httpx",
]


def loaded_after_a_plain_session(*watched: str, server: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, *watched],
        env={"SIMULATORD_SERVER": server, "PATH": ""},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(out.stdout.split())


def test_a_plain_session_loads_no_llm_webhook_websocket_quart_template_or_http_client_code() -> None:
    for server in ("uvicorn", "hypercorn"):
        loaded = loaded_after_a_plain_session(*LAZY, server=server)
        assert loaded == set(), f"{server}: {sorted(loaded)}"
