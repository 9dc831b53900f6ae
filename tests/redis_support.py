"""A real redis-server (Debian's, which .ci/run installs) for one test, on a Unix socket of its own.

Without redis-server the tests that need it skip locally and fail under CI=true, so CI can never skip them."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() == "true"


@dataclass
class RedisServer:
    """One redis-server process; `url` is what `simulatord serve --store` takes."""

    socket: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        # No snapshots, no append-only file: the data lives as long as the process, which is all a test needs.
        self.process = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", str(self.socket), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start (exit code {self.process.poll()})")
            time.sleep(0.01)

    def stop(self) -> None:
        """Stops Redis (its data goes with it): clients see the socket refuse them."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        reason = "redis-server is not installed (apt-get install redis-server; .ci/run does)"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: the Redis store tests must run in CI)")
        pytest.skip(reason)
    # A short directory of its own: a Unix socket's path is limited to about 100 bytes.
    directory = Path(tempfile.mkdtemp(prefix="sd-redis-"))
    server = RedisServer(directory / "redis.sock")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
