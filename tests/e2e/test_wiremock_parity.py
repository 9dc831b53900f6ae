"""The same requests to a real WireMock (the standalone jar, on `java`) serving tests/fixtures/wiremock and to a
simulatord session programmed with its converted mappings: both must answer alike.

Skipped when there is no `java` or no jar: WIREMOCK_JAR names one, else the one the benchmark installs under
.bench-work/npm/node_modules/wiremock is used."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from tests.service.test_wiremock_import import (
    CART,
    CASES,
    COMPARED_HEADERS,
    FAULTS,
    ROOT,
    Case,
    converted,
    new_session,
    send,
)

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 60.0

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


def _jar() -> Path | None:
    named = os.environ.get("WIREMOCK_JAR")
    if named:
        return Path(named) if Path(named).is_file() else None
    found = sorted((REPO / ".bench-work" / "npm" / "node_modules" / "wiremock").glob("**/wiremock-standalone-*.jar"))
    return found[-1] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def wiremock_url() -> Iterator[str]:
    jar, java = _jar(), shutil.which("java")
    if jar is None or java is None:
        pytest.skip("needs java and a WireMock standalone jar (WIREMOCK_JAR)")
    port = _free_port()
    command = [java, "-jar", str(jar), "--root-dir", str(ROOT), "--port", str(port), "--disable-banner"]
    command += ["--bind-address", "127.0.0.1"]
    with tempfile.TemporaryFile() as log:  # not a pipe: nobody reads it while WireMock runs
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while True:
                if process.poll() is not None:
                    log.seek(0)
                    error = log.read().decode(errors="replace")
                    pytest.fail(f"WireMock exited with {process.returncode}: {error[-2000:]}")
                try:
                    if httpx.get(url + "/__admin/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"WireMock did not start within {START_TIMEOUT:g} s")
                time.sleep(0.2)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture(scope="module")
def simulatord_url(control: pb_grpc.SimulatorServiceStub) -> Iterator[str]:
    created = new_session(control, converted())
    yield created.session.base_url
    control.DeleteSession(pb.DeleteSessionRequest(name=created.session.name, allow_missing=True))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_answers_match(http: httpx.Client, wiremock_url: str, simulatord_url: str, case: Case) -> None:
    theirs, ours = send(http, wiremock_url, case), send(http, simulatord_url, case)
    assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content)
    for name in COMPARED_HEADERS:
        assert ours.headers.get_list(name) == theirs.headers.get_list(name), name


def test_scenario_matches(http: httpx.Client, wiremock_url: str, control: pb_grpc.SimulatorServiceStub) -> None:
    http.post(wiremock_url + "/__admin/scenarios/reset").raise_for_status()
    created = new_session(control, converted())
    try:
        for method, _, _ in CART:
            theirs = http.request(method, wiremock_url + "/cart")
            ours = http.request(method, created.session.base_url + "/cart")
            assert (ours.status_code, ours.content) == (theirs.status_code, theirs.content), method
    finally:
        control.DeleteSession(pb.DeleteSessionRequest(name=created.session.name, allow_missing=True))


@pytest.mark.parametrize("path", list(FAULTS))
def test_faults_are_connection_errors_on_both(wiremock_url: str, simulatord_url: str, path: str) -> None:
    for base in (wiremock_url, simulatord_url):
        with httpx.Client(timeout=5) as fresh, pytest.raises(httpx.TransportError):
            fresh.get(base + path)
