"""What sessions in Redis and relaying between replicas cost: one daemon with the memory store, one with
`--store redis://`, and a request served through a replica that does not own its session, side by side.

    bench/setup.sh                       # wrk; redis-server comes from Debian (apt-get install redis-server)
    .venv/bin/python bench/replicas.py   # 3 interleaved reps of 4 s per run, about 2 minutes
    .venv/bin/python bench/replicas.py --reps 1 --duration 2 --json /tmp/replicas.json

Profiles, each a fresh daemon (uvicorn on uvloop when installed, as `--server auto` picks) holding one session with
one plain stub (`GET /hello`), the journal on as always:

- `memory`: `--store memory`, the default;
- `redis`: `--store unix:///...` on a redis-server this script starts (no snapshots), the session's owner;
- `relayed`: a second replica on the same Redis, which does not own the session: every request and control call
  goes to the owner through it (HTTP through the daemon's HTTP client, gRPC through a channel per replica).

Measured per profile: req/s at c16 and p50/p99 at c1 (`wrk -t1`, 127.0.0.1 only), and the p50/p99 of a control
call (`CountExchanges`, 300 calls). Ratios are against `memory` in the same run. On a 2-core machine the daemons,
redis-server and wrk share the cores, so throughput ratios say what the work costs, not what more machines give.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from loadgen import run_wrk  # noqa: E402

from simulatord.v1 import simulator_service_pb2 as pb  # noqa: E402
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc  # noqa: E402
from simulatord.v1 import stub_pb2  # noqa: E402
from simulatord_client.embedded import EmbeddedDaemon  # noqa: E402

PROFILES = ("memory", "redis", "relayed")


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    directory = Path(tempfile.mkdtemp(prefix="sd-bench-redis-"))
    socket = directory / "redis.sock"
    process = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", str(socket), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while not socket.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.01)
        yield f"unix://{socket}"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


def control_p(control: pb_grpc.SimulatorServiceStub, session: str, calls: int) -> tuple[float, float]:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        control.CountExchanges(pb.CountExchangesRequest(parent=session))
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=4.0)
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args()
    for tool in ("wrk", "redis-server"):
        if shutil.which(tool) is None:
            sys.exit(f"bench/replicas.py needs {tool} (bench/setup.sh installs wrk; apt-get install redis-server)")
    hello = stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(method="GET", path=stub_pb2.PathMatcher(exact="/hello")),
        responses=[stub_pb2.Response(status=200, body_text='{"message":"hello"}')],
    )
    rows: dict[str, list[dict[str, float]]] = {p: [] for p in PROFILES}
    # The journal is bounded so that a long run measures steady state, not a growing journal.
    args = ["--journal-max-exchanges", "1000"]
    with redis_server() as url, contextlib.ExitStack() as stack:
        memory = stack.enter_context(EmbeddedDaemon(["--store", "memory", *args]))
        owner = stack.enter_context(EmbeddedDaemon(["--store", url, *args]))
        other = stack.enter_context(EmbeddedDaemon(["--store", url, *args]))
        targets = {}
        for profile, creator, served_by in (
            ("memory", memory, memory),
            ("redis", owner, owner),
            ("relayed", owner, other),
        ):
            made = pb_grpc.SimulatorServiceStub(stack.enter_context(grpc.insecure_channel(creator.grpc_address)))
            session = made.CreateSession(pb.CreateSessionRequest(parent="tenants/bench")).session.name
            made.CreateStub(pb.CreateStubRequest(parent=session, stub=hello))
            asked = pb_grpc.SimulatorServiceStub(stack.enter_context(grpc.insecure_channel(served_by.grpc_address)))
            targets[profile] = (f"{served_by.http_url}/{session}/hello", asked, session)
        for url_, _, _ in targets.values():  # warm-up, untimed
            run_wrk(url_, 16, 1)
        for rep in range(a.reps):
            order = PROFILES[rep % 3 :] + PROFILES[: rep % 3]
            for profile in order:
                target, control, session = targets[profile]
                c16 = run_wrk(target, 16, a.duration)
                c1 = run_wrk(target, 1, a.duration)
                p50, p99 = control_p(control, session, a.calls)
                rows[profile].append(
                    {
                        "rps_c16": c16["rps"],
                        "p50_c1": c1["p50_ms"],
                        "p99_c1": c1["p99_ms"],
                        "ctl_p50": p50,
                        "ctl_p99": p99,
                    }
                )
                print(f"rep {rep + 1} {profile}: {c16['rps']:.0f} req/s", file=sys.stderr)
    summary = {p: {k: statistics.median(r[k] for r in rows[p]) for k in rows[p][0]} for p in PROFILES}
    base = summary["memory"]
    print("| profile | req/s c16 | vs memory | p50 c1 ms | p99 c1 ms | CountExchanges p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for p in PROFILES:
        s = summary[p]
        print(
            f"| {p} | {s['rps_c16']:,.0f} | {s['rps_c16'] / base['rps_c16']:.2f}x | {s['p50_c1']:.2f} | "
            f"{s['p99_c1']:.2f} | {s['ctl_p50']:.2f} | {s['ctl_p99']:.2f} |"
        )
    if a.json:
        a.json.write_text(json.dumps({"runs": rows, "medians": summary}, indent=2))


if __name__ == "__main__":
    main()
