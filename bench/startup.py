"""Embedded daemon start-up to the first answered request, A/B across source trees: the figure to watch when
adding imports.

    .venv/bin/python bench/startup.py /tmp/old-tree .     # trees are git worktrees; --runs 7 by default

Two ways of embedding are timed, interleaved between trees:

- process: spawn `python -m simulatord serve` from the tree (its directory first on sys.path) through
  EmbeddedDaemon, create a session with a stub over gRPC and GET it, from spawn to the 200;
- thread: in a fresh Python process that has imported the client (as a test process using the pytest plugin
  has), from `ThreadDaemon.from_args().start()` to the 200 of the first GET on a session created in process.
  Only trees that have `simulatord/embedded.py`.

Compile the trees first (`python -m compileall -q TREE/simulatord`): with PYTHONDONTWRITEBYTECODE set, source
that was never compiled is compiled on every start. Prints median and min milliseconds per tree and way.
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "client" / "python"))

from simulatord_client import Simulator, stub  # noqa: E402
from simulatord_client.embedded import EmbeddedDaemon  # noqa: E402

# Run in a fresh interpreter per measurement, with the tree first on sys.path; prints milliseconds.
THREAD = """
import http.client, sys, time
from urllib.parse import urlsplit
from simulatord_client import Simulator, stub
from simulatord_client.inprocess import InProcessChannel
started = time.perf_counter()
from simulatord.embedded import ThreadDaemon
daemon = ThreadDaemon.from_args().start()
sim = Simulator(daemon.grpc_address, channel=InProcessChannel(daemon))
session = sim.session(stubs=[stub("GET", "/hello", json={"message": "hello"})], ttl=None).open()
url = urlsplit(session.url)
connection = http.client.HTTPConnection(url.hostname, url.port)
connection.request("GET", url.path + "/hello")
assert connection.getresponse().status == 200
print((time.perf_counter() - started) * 1000)
daemon.stop()
"""


def first_answer(base_url: str) -> None:
    url = urlsplit(base_url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port)
    connection.request("GET", url.path + "/hello")
    assert connection.getresponse().status == 200
    connection.close()


def process(tree: str) -> float:
    started = time.perf_counter()
    daemon = EmbeddedDaemon(env={"PYTHONPATH": tree}).start()
    try:
        with Simulator(daemon.grpc_address) as sim:
            session = sim.session(stubs=[stub("GET", "/hello", json={"message": "hello"})], ttl=None).open()
            first_answer(session.url)
            return (time.perf_counter() - started) * 1000
    finally:
        daemon.stop()


def thread(tree: str) -> float:
    path = os.pathsep.join([tree, str(Path(tree) / "client" / "python")])
    out = subprocess.run(
        [sys.executable, "-c", THREAD], env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True
    )
    if out.returncode:
        raise RuntimeError(out.stderr)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trees", nargs="+", help="source trees whose daemons to start")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    trees = [str(Path(t).resolve()) for t in args.trees]
    ways = {"process": process, "thread": thread}
    times: dict[tuple[str, str], list[float]] = {}
    here = os.getcwd()
    for _ in range(args.runs):
        for tree in trees:
            for way, measure in ways.items():
                if way == "thread" and not (Path(tree) / "simulatord" / "embedded.py").exists():
                    continue
                os.chdir(tree)  # `python -m simulatord` imports the package from the working directory
                try:
                    times.setdefault((tree, way), []).append(measure(tree))
                finally:
                    os.chdir(here)
    for (tree, way), values in times.items():
        print(f"{tree} [{way}]: median {statistics.median(values):.0f} ms, min {min(values):.0f} ms")


if __name__ == "__main__":
    main()
