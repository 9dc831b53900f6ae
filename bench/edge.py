"""In-process cost of the HTTP edge per plain-stub request (route, freeze, select, send, record), no server.

    .venv/bin/python bench/edge.py                                # this checkout
    .venv/bin/python bench/edge.py /tmp/old-tree .                # interleaved A/B of source trees (worktrees)
    .venv/bin/python bench/edge.py --instructions /tmp/old-tree . # the same A/B in instructions, under callgrind

Each tree runs in its own process (imports do not mix); prints min and median microseconds per request over
7 rounds of 20,000 requests. The server's own share (hypercorn or uvicorn) is not in this figure: it is what
our code adds on top, and the figure to watch when changing the request path. Times on a shared 2-core machine
drift by 10-20% between runs; `--instructions` counts CPU instructions per request with valgrind's callgrind
(the difference between a run of 3,000 and one of 1,000 requests, so start-up cancels out), which repeats to
within a fraction of a percent whatever else the machine is doing.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROUNDS, PER_ROUND = 7, 20_000


def measure(rounds: int = ROUNDS, per_round: int = PER_ROUND, warm_up: int = 2000) -> list[float]:
    from google.protobuf import struct_pb2

    from simulatord.errors import SpecErrors
    from simulatord.http_front.edge import SimulatedTraffic
    from simulatord.names import SessionKey
    from simulatord.sessions.service import Addressing, Simulator
    from simulatord.sessions.store import MemoryStore
    from simulatord.v1 import stub_pb2

    store = MemoryStore()
    sim = Simulator(store, Addressing("http://127.0.0.1:1", "localhost"))
    key = SessionKey("bench", "s1")
    body = struct_pb2.Value()
    body.struct_value.update({"message": "hello"})
    msg = stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(method="GET", path=stub_pb2.PathMatcher(exact="/hello")),
        responses=[stub_pb2.Response(status=200, body_json=body)],
    )
    try:  # this tree: a serving layer under the edge, conversion by resource, settings as one value
        from simulatord.control.convert import stubs
        from simulatord.serving import DataPlane
        from simulatord.sessions.settings import SessionSettings

        built = stubs.stub(msg, key.name, "hello", "stub", "id", SpecErrors(), time.time())
        sim.create_session(key, SessionSettings(), [built])
        served: object = DataPlane(store)
    except ImportError:  # older trees: the edge took the Simulator, convert was one module
        from simulatord.control import convert  # type: ignore[attr-defined]

        # Older trees' convert.stub took fewer arguments; pass the ones it has.
        args = [msg, key, "hello", "stub", "id", SpecErrors(), time.time()]
        stub = convert.stub(*args[: len(inspect.signature(convert.stub).parameters)])
        sim.create_session(key, {}, None, sim.limits(), 404, [stub])  # type: ignore[call-arg, arg-type]
        served = sim

    async def inner(scope, receive, send):  # type: ignore[no-untyped-def]
        raise AssertionError("the request should have been served by the edge")

    edge = SimulatedTraffic(inner, served, "localhost", 1 << 20)  # type: ignore[arg-type]
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/tenants/bench/sessions/s1/hello",
        "query_string": b"",
        "http_version": "1.1",
        "headers": [(b"host", b"127.0.0.1:8080"), (b"user-agent", b"wrk"), (b"accept", b"*/*")],
    }
    request = {"type": "http.request", "body": b"", "more_body": False}

    async def receive():  # type: ignore[no-untyped-def]
        return request

    async def send(message):  # type: ignore[no-untyped-def]
        pass

    async def run() -> list[float]:
        for _ in range(warm_up):
            await edge(scope, receive, send)
        out = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(per_round):
                await edge(scope, receive, send)
            out.append((time.perf_counter() - t0) / per_round * 1e6)
        return out

    return asyncio.run(run())


def instructions(tree: str, count: int) -> int:
    """CPU instructions callgrind counts for one child process serving `count` requests of `tree`."""
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    done = subprocess.run(
        [*valgrind, sys.executable, __file__, "--count", str(count), tree],
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count in callgrind's output:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--tree":  # child: measure the tree put first on sys.path
        sys.path.insert(0, sys.argv[2])
        print(" ".join(f"{x:.3f}" for x in measure()))
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--count":  # child under callgrind: serve this many, once
        sys.path.insert(0, sys.argv[3])
        measure(rounds=1, per_round=int(sys.argv[2]), warm_up=200)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--instructions":
        trees = [str(Path(t).resolve()) for t in sys.argv[2:]] or [str(Path(__file__).resolve().parent.parent)]
        for tree in trees:
            per_request = (instructions(tree, 3000) - instructions(tree, 1000)) / 2000
            print(f"{tree}: {per_request:,.0f} instructions/request")
        return
    trees = [str(Path(t).resolve()) for t in sys.argv[1:]] or [str(Path(__file__).resolve().parent.parent)]
    samples: dict[str, list[float]] = {t: [] for t in trees}
    for _ in range(2):  # interleaved, so drift on a shared machine hits every tree alike
        for tree in trees:
            out = subprocess.run([sys.executable, __file__, "--tree", tree], capture_output=True, text=True, check=True)
            samples[tree] += [float(x) for x in out.stdout.split()]
    for tree, xs in samples.items():
        print(f"{tree}: min {min(xs):.2f} us/request, median {statistics.median(xs):.2f}")


if __name__ == "__main__":
    main()
