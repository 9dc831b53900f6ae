"""End-to-end test of the container deliverables: compose file, images and the example stack under podman.

The stack (daemon, example app, test-runner container; see docker-compose.yml and examples/compose/)
must finish with the runner's exit code 0. Also checked: the daemon image keeps its HEALTHCHECK and
runs as a non-root user, and the daemon stops with exit code 0 when compose stops it (SIGTERM via init).

Needs the machine prepared by scripts/podman-setup.sh (podman with runc, the private containers.conf,
the debootstrap-built python:3.11-slim stand-in, podman-compose and check-jsonschema in a tool venv).
When that was not done the tests skip with the reason -- except under CI=true, where they run the
setup script themselves and fail if it fails, so a CI machine can never silently skip them.
SIMULATORD_E2E_SETUP=1 makes a local run do the same. Every subprocess has a timeout.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

REPO = Path(__file__).resolve().parents[2]
STATE_DIR = Path(os.environ.get("SIMULATORD_PODMAN_DIR", REPO / ".podman"))
SETUP_SCRIPT = REPO / "scripts" / "podman-setup.sh"
COMPOSE_FILE = REPO / "docker-compose.yml"
REPLICAS_FILE = REPO / "examples" / "replicas" / "docker-compose.yml"
DAEMON_IMAGE = "localhost/simulatord:dev"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
IN_CI = os.environ.get("CI", "").lower() == "true"
RUN_SETUP = IN_CI or os.environ.get("SIMULATORD_E2E_SETUP") == "1"

SETUP_TIMEOUT_S = 900  # fresh machine: apt ~25 s, debootstrap ~60 s; generous for a slow mirror
WHEEL_TIMEOUT_S = 600
BUILD_TIMEOUT_S = 900
UP_TIMEOUT_S = 300
DOWN_TIMEOUT_S = 120

# The module-scoped setup may run inside whichever test comes first, so both get the large timeout.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(SETUP_TIMEOUT_S + WHEEL_TIMEOUT_S + BUILD_TIMEOUT_S + UP_TIMEOUT_S + DOWN_TIMEOUT_S),
]


def _unavailable(reason: str) -> NoReturn:
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: the e2e stack must run in CI)")
    pytest.skip(f"{reason}; run `sudo bash scripts/podman-setup.sh` first (or set SIMULATORD_E2E_SETUP=1)")


def _run(
    cmd: list[str], *, env: dict[str, str], timeout: float, check: bool = True, log: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs a command from the repo root with a hard timeout; on failure the message has the output tail."""
    try:
        proc = subprocess.run(
            cmd, cwd=REPO, env=env, timeout=timeout, capture_output=True, text=True, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as err:
        out = err.stdout or ""
        if isinstance(out, bytes):  # TimeoutExpired may carry bytes even with text=True
            out = out.decode(errors="replace")
        pytest.fail(f"timed out after {timeout:.0f} s: {' '.join(cmd)}\n{out[-4000:]}")
    if log is not None:
        log.write_text(f"$ {' '.join(cmd)}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}\n")
    if check and proc.returncode != 0:
        pytest.fail(
            f"exit {proc.returncode}: {' '.join(cmd)}\n--- stdout (tail)\n{proc.stdout[-6000:]}"
            f"\n--- stderr (tail)\n{proc.stderr[-3000:]}"
        )
    return proc


def _sourced_env() -> dict[str, str] | None:
    """The process environment plus what <state dir>/env exports, or None when it was never written."""
    env_file = STATE_DIR / "env"
    if not env_file.is_file():
        return None
    # Let bash evaluate the file so that it stays the single source of truth for the settings.
    out = subprocess.run(
        ["bash", "-c", 'source "$1" && env -0', "bash", str(env_file)],
        capture_output=True,
        timeout=30,
        check=True,
        stdin=subprocess.DEVNULL,
    ).stdout.decode()
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


def _missing(env: dict[str, str]) -> str | None:
    """What is not ready yet, or None."""
    for tool in ("podman", "podman-compose", "check-jsonschema"):
        if shutil.which(tool, path=env.get("PATH")) is None:
            return f"{tool} not found"
    for image in ("docker.io/library/python:3.11-slim", "docker.io/library/redis:7-bookworm"):
        probe = subprocess.run(
            ["podman", "image", "exists", image], env=env, timeout=60, capture_output=True, stdin=subprocess.DEVNULL
        )
        if probe.returncode != 0:
            return f"base image {image} (debootstrap stand-in) not built"
    return None


@pytest.fixture(scope="module")
def podman_env() -> dict[str, str]:
    """Environment for podman/podman-compose with the private configuration; sets it up in CI."""
    env = _sourced_env()
    problem = f"podman not configured (no {STATE_DIR / 'env'})" if env is None else _missing(env)
    if problem is not None and RUN_SETUP:
        if os.geteuid() != 0:
            pytest.fail(f"{problem}, and scripts/podman-setup.sh must run as root")
        started = time.monotonic()
        _run(["bash", str(SETUP_SCRIPT)], env=dict(os.environ), timeout=SETUP_TIMEOUT_S)
        print(f"podman-setup.sh took {time.monotonic() - started:.0f} s")
        env = _sourced_env()
        problem = "setup script wrote no env file" if env is None else _missing(env)
    if problem is not None or env is None:
        _unavailable(problem or "podman not configured")
    env["BUILDAH_FORMAT"] = "docker"  # keep HEALTHCHECK (the OCI image format has no such field)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module", autouse=True)
def _restore_ip_forward() -> Iterator[None]:
    """netavark may turn on IPv4 forwarding; put it back as it was (harmless either way)."""
    path = Path("/proc/sys/net/ipv4/ip_forward")
    before = path.read_text() if path.exists() else None
    yield
    try:
        if before is not None and path.read_text() != before:
            path.write_text(before)
    except OSError:
        pass


@pytest.fixture(scope="module")
def wheels(podman_env: dict[str, str]) -> float:
    """The wheels on the host that the images install (no network inside the builds); seconds it took."""
    started = time.monotonic()
    wheels = REPO / "dist" / "wheels"
    shutil.rmtree(wheels, ignore_errors=True)  # no stale simulatord wheel from an older tree
    # setuptools reuses build/lib between builds, so a module deleted from the tree would still ship.
    shutil.rmtree(REPO / "build", ignore_errors=True)
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", ".[fast,redis]", "-w", str(wheels)],
        env=podman_env,
        timeout=WHEEL_TIMEOUT_S,
    )
    return time.monotonic() - started


@pytest.mark.parametrize("compose_file", [COMPOSE_FILE, REPLICAS_FILE], ids=["example", "replicas"])
def test_compose_file_matches_the_compose_spec(podman_env: dict[str, str], compose_file: Path) -> None:
    proc = _run(
        ["check-jsonschema", "--builtin-schema", "vendor.compose-spec", str(compose_file)],
        env=podman_env,
        timeout=120,
    )
    assert "ok" in proc.stdout


def _up(compose: list[str], env: dict[str, str], log: Path) -> str:
    """Runs the stack until its `tests` service exits; fails unless it passed. Returns the log."""
    up = _run(
        [*compose, "up", "--abort-on-container-exit", "--exit-code-from", "tests"],
        env=env,
        timeout=UP_TIMEOUT_S,
        check=False,
        log=log,
    )
    output = ANSI_ESCAPE.sub("", up.stdout + up.stderr)  # podman-compose colours its log prefixes
    assert up.returncode == 0, f"stack exited {up.returncode} (full log: {log}):\n{output[-8000:]}"
    # The runner's pytest-style closing line, e.g. "===== 5 passed in 1.2s =====".
    summary = re.search(r"=+ ((?:\d+ failed, )?\d+ passed) in [\d.]+s =+", output)
    assert summary and "failed" not in summary.group(1), output[-8000:]
    return output


def _down(compose: list[str], env: dict[str, str]) -> None:
    _run([*compose, "down", "-t", "10"], env=env, timeout=DOWN_TIMEOUT_S, check=False)
    # Each rebuild leaves the previous images dangling; the private storage would grow by ~200 MB a run.
    _run(["podman", "image", "prune", "-f"], env=env, timeout=DOWN_TIMEOUT_S, check=False)


def test_two_replicas_behind_one_address_serve_every_session(
    podman_env: dict[str, str], wheels: float, tmp_path: Path
) -> None:
    project = f"simulatord-replicas-e2e-{os.getpid()}"
    compose = ["podman-compose", "-f", str(REPLICAS_FILE), "-p", project]
    _run([*compose, "build"], env=podman_env, timeout=BUILD_TIMEOUT_S, log=tmp_path / "build.log")
    try:
        _up(compose, podman_env, tmp_path / "up.log")
    finally:
        _down(compose, podman_env)


def test_compose_stack_passes(podman_env: dict[str, str], wheels: float, tmp_path: Path) -> None:
    env = dict(podman_env)
    # Unique project and host ports, so a developer's own stack or a parallel run does not collide.
    project = f"simulatord-e2e-{os.getpid()}"
    env.update(
        SIMULATORD_HOST_HTTP_PORT=str(_free_port()),
        SIMULATORD_HOST_GRPC_PORT=str(_free_port()),
        APP_HOST_PORT=str(_free_port()),
    )
    compose = ["podman-compose", "-f", str(COMPOSE_FILE), "-p", project]
    timings: dict[str, float] = {"wheels": wheels}  # 1. the wheels (the fixture)

    # 2. Images.
    started = time.monotonic()
    _run([*compose, "build"], env=env, timeout=BUILD_TIMEOUT_S, log=tmp_path / "build.log")
    timings["build"] = time.monotonic() - started
    inspect = _run(
        ["podman", "image", "inspect", DAEMON_IMAGE, "--format", "{{.Config.User}}|{{.Config.Healthcheck}}"],
        env=env,
        timeout=60,
    ).stdout.strip()
    user, healthcheck = inspect.split("|", 1)
    assert user and not user.startswith(("0", "root")), f"daemon image runs as {user!r}"
    assert "simulatord health" in healthcheck, f"daemon image lost its HEALTHCHECK: {healthcheck}"

    # 3. The stack, then always down.
    try:
        started = time.monotonic()
        _up(compose, env, tmp_path / "up.log")
        timings["up"] = time.monotonic() - started

        states = _run(
            [
                "podman",
                "ps",
                "-a",
                "--filter",
                f"label=io.podman.compose.project={project}",
                "--format",
                "{{.Names}} {{.ExitCode}}",
            ],
            env=env,
            timeout=60,
        ).stdout
        daemon = [line for line in states.splitlines() if "_simulatord_" in line]
        # podman-compose stops the other services with SIGTERM once tests exit: a graceful stop is 0.
        assert daemon and daemon[0].split()[-1] == "0", f"daemon did not stop cleanly:\n{states}"
    finally:
        _down(compose, env)
        print("timings (s): " + ", ".join(f"{k}={v:.1f}" for k, v in timings.items()))
