"""Starts a real simulatord daemon as a child process on free loopback ports, and stops it."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from types import TracebackType

_READY = re.compile(r"^simulatord ready http=(\S+) grpc=(\S+)$")


class DaemonError(RuntimeError):
    """The daemon did not become ready; the message ends with the tail of its output."""


class EmbeddedDaemon:
    """A daemon owned by this process: `with EmbeddedDaemon() as d: d.grpc_address, d.http_url`."""

    def __init__(
        self,
        args: Sequence[str] = (),
        startup_timeout: float = 30.0,
        env: dict[str, str] | None = None,
        server: str | None = None,
    ):
        # server: "hypercorn" or "uvicorn"; None leaves it to SIMULATORD_SERVER, else the daemon's default.
        self.args = [*(("--server", server) if server else ()), *args]
        self.startup_timeout = startup_timeout
        self.env = env
        self.process: subprocess.Popen[str] | None = None
        self.http_url = ""
        self.grpc_address = ""
        self._output: list[str] = []

    def start(self) -> EmbeddedDaemon:
        command = [
            sys.executable,
            "-m",
            "simulatord",
            "serve",
            "--host",
            "127.0.0.1",
            "--http-port",
            "0",
            "--grpc-port",
            "0",
            *self.args,
        ]
        env = {**os.environ, **(self.env or {})}
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1
        )
        found = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                line = line.rstrip("\n")
                self._output.append(line)
                del self._output[:-200]  # keep the tail for error messages only
                ready = _READY.match(line)
                if ready and not found.is_set():
                    self.http_url, self.grpc_address = ready.group(1), ready.group(2)
                    found.set()
            found.set()  # output ended: the daemon exited, so stop waiting for a ready line that cannot come

        threading.Thread(target=read, name="simulatord-output", daemon=True).start()
        if not found.wait(self.startup_timeout) or not self.grpc_address:
            self.stop()
            raise DaemonError("simulatord did not become ready:\n" + "\n".join(self._output[-30:]))
        return self

    @property
    def output(self) -> str:
        return "\n".join(self._output)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Stops with SIGTERM (graceful), killing only if it does not exit in time; returns the exit code."""
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        return process.returncode

    def __enter__(self) -> EmbeddedDaemon:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
