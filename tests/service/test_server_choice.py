"""Which ASGI server and event loop a daemon started without --server/--loop runs: the fastest installed,
hypercorn where HTTP/2 over TLS is expected."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from simulatord.config import resolve_loop, resolve_server
from simulatord_client.embedded import EmbeddedDaemon

AUTO = {"SIMULATORD_SERVER": "auto", "SIMULATORD_LOOP": "auto"}  # the suite's conftest pins a server otherwise
FAST_INSTALLED = all(importlib.util.find_spec(m) for m in ("uvicorn", "httptools", "websockets", "uvloop"))


def test_an_explicit_choice_stands_and_tls_or_hypercorn_keep_asyncio() -> None:
    assert resolve_server("hypercorn", tls=False) == "hypercorn"
    assert resolve_server("uvicorn", tls=True) == "uvicorn"
    assert resolve_server("auto", tls=True) == "hypercorn"
    assert resolve_loop("asyncio", "uvicorn") == "asyncio"
    assert resolve_loop("auto", "hypercorn") == "asyncio"


@pytest.mark.skipif(not FAST_INSTALLED, reason="the fast extra (uvicorn, httptools, uvloop) is not installed")
def test_by_default_the_daemon_serves_with_uvicorn_on_uvloop() -> None:
    with EmbeddedDaemon(["--log-level", "INFO"], env=AUTO) as daemon:
        response = httpx.get(daemon.http_url + "/", headers={"accept": "application/json"})
        assert response.status_code == 200
        assert response.headers["server"] == "uvicorn"
        assert "serving HTTP with uvicorn on uvloop" in daemon.output


def test_by_default_tls_is_served_by_hypercorn_with_http2(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with EmbeddedDaemon(["--tls-cert", str(cert), "--tls-key", str(key)], env=AUTO) as daemon:
        with httpx.Client(http2=True, verify=False, timeout=5) as client:
            response = client.get(daemon.http_url + "/", headers={"accept": "application/json"})
        assert response.http_version == "HTTP/2"
        assert response.headers["server"].startswith("hypercorn")
