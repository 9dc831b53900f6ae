"""Process plumbing for the benchmark: spawning servers in their own process group, free ports,
and the RSS of a process tree."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path


def free_port() -> int:
    """A port the kernel just handed out on loopback; a tiny race remains, acceptable for a bench."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    # /proc/PID/task/TID/children lists direct children per thread; cheaper than scanning all of /proc.
    kids: list[int] = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                kids += [int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
    except OSError:
        pass
    return kids


def tree(pid: int) -> list[int]:
    """pid and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def rss_kb(pid: int) -> int:
    """VmRSS summed over the process tree (shared pages are counted once per process)."""
    total = 0
    for p in tree(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the process tree so far (all threads; children still running)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            # Fields after the ")" of the command name: utime and stime are the 12th and 13th.
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


class Proc:
    """A server process we started: own session/process group, stdout and stderr copied to log files."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        logdir: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        stdin: bool = False,
    ) -> None:
        logdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.argv = argv
        self._err = open(logdir / f"{name}.stderr.log", "ab")  # noqa: SIM115 - closed in stop()
        self._out_log = open(logdir / f"{name}.stdout.log", "ab")  # noqa: SIM115
        self.lines: queue.Queue[str] = queue.Queue()
        # start_new_session: SIGTERM goes to this server's group only (java/node helpers included),
        # never to anything we did not start.
        self.popen = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self._err,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            start_new_session=True,
        )
        self.pid = self.popen.pid
        # Drain stdout continuously so a chatty server never blocks on a full pipe.
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            self._out_log.write(raw)
            self._out_log.flush()
            self.lines.put(raw.decode(errors="replace").rstrip("\n"))

    def wait_line(self, predicate, timeout: float) -> str:
        """First stdout line satisfying predicate; raises if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"{self.name}: no ready line within {timeout}s")
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.popen.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; see its logs") from None
                continue
            if predicate(line):
                return line

    def alive(self) -> bool:
        return self.popen.poll() is None

    def rss_kb(self) -> int:
        return rss_kb(self.pid)

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._reader.join(2)
        self._err.close()
        self._out_log.close()
