"""granian (a Rust ASGI server) as a candidate third HTTP server for the daemon: plain-stub req/s and what our
connection faults do under it, against the same app on uvicorn (httptools, uvloop) and hypercorn.

    bench/setup.sh && .bench-work/venv/bin/pip install granian    # this script installs nothing itself
    .bench-work/venv/bin/python bench/granian.py                  # 3 interleaved reps of 3 s per run
    .bench-work/venv/bin/python bench/granian.py --reps 1 --duration 2 --json /tmp/granian.json

Each profile is one process holding the daemon's parts as `simulatord.server.run` assembles them (session store,
data plane, `create_app`, the gRPC `SimulatorService` on grpc.aio in the same event loop); only the HTTP server
differs:

- `hypercorn`: the daemon's `_hypercorn` (asyncio loop), as `simulatord serve --server hypercorn` runs it;
- `uvicorn`: the daemon's `_uvicorn` (httptools) on uvloop, as `--server uvicorn --loop uvloop` runs it;
- `granian-embed`: granian's embedded server (`granian.server.embed.Server`) as a task in the same uvloop loop
  as grpc.aio: the only arrangement in which granian could serve the daemon's sessions;
- `granian-workers`: granian as its authors run it (`python -m granian --interface asgi --workers 1`, uvloop): the
  app and a grpc.aio server of its own are built in granian's worker process. Its best case, for reference.

The session is made over gRPC with one plain stub (`GET /hello`) and one stub per connection fault; each fault is
probed once over a raw socket. Load is `wrk -t1` at c1 and c16 on 127.0.0.1 only, `--reps` repetitions
interleaved (the order rotates), after an untimed warm-up; every loop is bounded by a count or a duration.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
# Run as a script, this file's directory comes first on sys.path, and its name would shadow the granian package:
# drop it, and reach bench/'s modules as the namespace package `bench` from the checkout's root instead.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]
sys.path.insert(0, str(ROOT))

PROFILES = ("hypercorn", "uvicorn", "granian-embed", "granian-workers")
HELLO = {"message": "hello"}
TENANT = "granian"
# Fault stubs: path -> (Fault fields, body). Each answers with a fault the daemon performs on the raw connection.
FAULTS = {
    "reset": ({"kind": "FAULT_KIND_RESET"}, b""),
    "close": ({"kind": "FAULT_KIND_CLOSE"}, b""),
    "garbage": ({"kind": "FAULT_KIND_GARBAGE", "garbage": b"NOT HTTP AT ALL\r\n"}, b""),
    "truncated": ({"kind": "FAULT_KIND_TRUNCATED_BODY", "after_body_bytes": 10}, b"x" * 100),
}
# What a client sees when the fault works, per probe.
EXPECTED = {
    "reset": "connection reset (RST)",
    "close": "closed, no response (FIN)",
    "garbage": "raw bytes: 'NOT HTTP AT ALL'",
    "truncated": "HTTP 200, content-length 100, 10 body bytes, then closed",
}


# -- the server process ------------------------------------------------------------------------------------------
def assemble(public_url: str) -> tuple[Any, Any]:
    """The ASGI app and the gRPC servicer over one session store, as simulatord.server.run builds them."""
    from simulatord.config import Settings
    from simulatord.control.servicer import SimulatorServicer
    from simulatord.http_front import create_app
    from simulatord.serving import DataPlane
    from simulatord.serving.metrics import Metrics
    from simulatord.serving.outbound import Outbound
    from simulatord.sessions.journal import JournalLimits
    from simulatord.sessions.service import Addressing, Simulator
    from simulatord.sessions.store import MemoryStore
    from simulatord.webhooks.targets import Targets

    s = Settings()
    store = MemoryStore(s.max_sessions, s.max_sessions_per_tenant)
    simulator = Simulator(
        store,
        Addressing(public_url, s.host_suffix),
        default_ttl=s.default_ttl,
        default_limits=JournalLimits(s.journal_max_exchanges, s.journal_max_bytes, s.journal_max_body_bytes),
        journal_budget=s.journal_budget_bytes,
    )
    metrics = Metrics()
    outbound = Outbound(
        Targets.parse("loopback"), s.webhook_concurrency, s.max_pending_deliveries, simulator.clock, metrics
    )
    plane = DataPlane(store, simulator.clock, outbound, metrics)
    app = create_app(plane, s.host_suffix, s.max_body_bytes, s.max_stream_seconds, s.request_read_timeout)
    return app, SimulatorServicer(simulator, {}, None, outbound, metrics)


async def start_grpc(servicer: Any, port: int) -> Any:
    import grpc
    from grpc_health.v1 import health, health_pb2_grpc

    from simulatord.v1 import simulator_service_pb2_grpc

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    simulator_service_pb2_grpc.add_SimulatorServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    return server, bound


async def serve(profile: str, port: int) -> None:
    """One profile in this process's event loop: gRPC on a free port, HTTP on `port`; SIGTERM stops both."""
    from simulatord import server as daemon
    from simulatord.config import Settings

    app, servicer = assemble(f"http://127.0.0.1:{port}")
    grpc_server, grpc_port = await start_grpc(servicer, 0)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if profile in ("hypercorn", "uvicorn"):
        run = daemon._hypercorn if profile == "hypercorn" else daemon._uvicorn
        sock = daemon._listen("127.0.0.1", port, "HTTP", "--http-port")
        task = asyncio.create_task(run(app, sock, Settings(), stop))
    else:
        from granian.constants import HTTPModes, Interfaces
        from granian.log import LogLevels
        from granian.server.embed import Server

        embedded = Server(
            app,
            address="127.0.0.1",
            port=port,
            interface=Interfaces.ASGI,
            http=HTTPModes.http1,
            log_level=LogLevels.warning,
        )
        task = asyncio.create_task(embedded.serve())
        stop_task = asyncio.create_task(stop.wait())
        stop_task.add_done_callback(lambda _: embedded.signal_handler_interrupt())
    print(f"ready grpc=127.0.0.1:{grpc_port} loop={type(loop).__module__}", flush=True)
    await stop.wait()
    with contextlib.suppress(asyncio.CancelledError, TimeoutError):
        await asyncio.wait_for(task, 10)
    await grpc_server.stop(1)


def worker_app() -> Any:
    """granian's factory (`bench.granian:worker_app`): the app in granian's own worker process, with a grpc.aio
    server started in the worker's loop on the ASGI lifespan startup (its port from BENCH_GRANIAN_GRPC_PORT)."""
    app, servicer = assemble(os.environ["BENCH_GRANIAN_URL"])
    grpc_port = int(os.environ["BENCH_GRANIAN_GRPC_PORT"])
    held: list[Any] = []

    async def with_grpc(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and not held:
            held.append(await start_grpc(servicer, grpc_port))
        await app(scope, receive, send)

    return with_grpc


# -- the driver --------------------------------------------------------------------------------------------------
class Served:
    """One profile's server process, its session and URLs."""

    def __init__(self, profile: str, logdir: Path) -> None:
        from bench.procs import Proc, free_port

        self.profile = profile
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        if profile == "granian-workers":
            grpc_port = free_port()
            env = os.environ | {
                "BENCH_GRANIAN_URL": self.base,
                "BENCH_GRANIAN_GRPC_PORT": str(grpc_port),
                "PYTHONPATH": str(ROOT),
            }
            argv = [sys.executable, "-m", "granian", "--interface", "asgi", "--factory", "--http", "1"]
            argv += ["--workers", "1", "--loop", "uvloop", "--log-level", "warning", "--host", "127.0.0.1"]
            argv += ["--port", str(self.port), "bench.granian:worker_app"]
            self.proc = Proc(profile, argv, logdir, cwd=ROOT, env=env)
            self.grpc = f"127.0.0.1:{grpc_port}"
            self.loop = "uvloop (granian --loop uvloop)"
        else:
            argv = [sys.executable, str(Path(__file__).resolve()), "serve", profile, "--port", str(self.port)]
            if profile != "hypercorn":
                argv.append("--uvloop")
            self.proc = Proc(profile, argv, logdir)
            line = self.proc.wait_line(lambda s: s.startswith("ready "), 60)
            fields = dict(kv.split("=", 1) for kv in line.split()[1:])
            self.grpc, self.loop = fields["grpc"], fields["loop"]

    def create_session(self) -> None:
        import grpc
        import httpx
        from google.protobuf import struct_pb2

        from simulatord.v1 import simulator_service_pb2 as svc
        from simulatord.v1 import simulator_service_pb2_grpc as svc_grpc
        from simulatord.v1 import stub_pb2

        def get(path: str) -> stub_pb2.RequestMatcher:
            return stub_pb2.RequestMatcher(method="GET", path=stub_pb2.PathMatcher(exact=path))

        body = struct_pb2.Value()
        body.struct_value.update(HELLO)
        stubs = [stub_pb2.Stub(request=get("/hello"), responses=[stub_pb2.Response(status=200, body_json=body)])]
        for name, (fault, fault_body) in FAULTS.items():
            response = stub_pb2.Response(status=200, body_bytes=fault_body, fault=stub_pb2.Fault(**fault))
            stubs.append(stub_pb2.Stub(request=get(f"/{name}"), responses=[response]))
        with grpc.insecure_channel(self.grpc) as channel:
            api = svc_grpc.SimulatorServiceStub(channel)
            request = svc.CreateSessionRequest(parent=f"tenants/{TENANT}", stubs=stubs)
            session = api.CreateSession(request, wait_for_ready=True, timeout=60).session
        self.session_url = session.base_url
        self.hello_url = session.base_url + "/hello"
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                r = httpx.get(self.hello_url, timeout=5)
                if r.status_code == 200 and r.json() == HELLO:
                    return
            if not self.proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.profile}: {self.hello_url} does not serve the stub")
            time.sleep(0.05)


def probe(url: str) -> str:
    """One GET over a raw socket; what came back, in words."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    data = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
        try:
            while chunk := sock.recv(65536):
                data += chunk
                if b"FAULT_UNSUPPORTED" in data:
                    break
        except ConnectionResetError:
            return "connection reset (RST)" + (f" after {len(data)} bytes" if data else "")
        except TimeoutError:
            return f"no close within 5 s ({len(data)} bytes)"
    if not data:
        return "closed, no response (FIN)"
    if not data.startswith(b"HTTP/"):
        return f"raw bytes: {data.strip().decode(errors='replace')!r}"
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode()
    if b"FAULT_UNSUPPORTED" in data:
        return f"HTTP {status} FAULT_UNSUPPORTED (the server exposes no connection)"
    length = next(
        (
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ),
        "none",
    )
    return f"HTTP {status}, content-length {length}, {len(body)} body bytes, then closed"


def measure(args: argparse.Namespace) -> dict:
    import granian

    from bench.loadgen import run_wrk, wrk_version
    from bench.procs import cpu_seconds

    logdir = Path(tempfile.mkdtemp(prefix="granian-bench-"))
    out: dict = {
        "granian": granian.__version__,
        "embed_api": importlib.util.find_spec("granian.server.embed") is not None,
        "wrk": wrk_version(),
        "duration": args.duration,
        "reps": args.reps,
        "loadavg_start": Path("/proc/loadavg").read_text().split()[:3],
        "profiles": {},
    }
    served: dict[str, Served] = {}
    try:
        for profile in args.profiles:
            s = Served(profile, logdir)
            served[profile] = s
            s.create_session()
            faults = {name: probe(f"{s.session_url}/{name}") for name in FAULTS}
            out["profiles"][profile] = {"loop": s.loop, "faults": faults, "runs": {"c1": [], "c16": []}}
            print(f"{profile}: serving {s.hello_url} ({s.loop}); faults: {faults}", file=sys.stderr)
        for s in served.values():  # untimed: until the server and wrk have settled
            run_wrk(s.hello_url, 16, args.warmup)
        names = list(served)
        for rep in range(args.reps):
            k = rep % len(names)
            for profile in names[k:] + names[:k]:
                s = served[profile]
                for conns in (1, 16):
                    before = cpu_seconds(s.proc.pid)
                    r = run_wrk(s.hello_url, conns, args.duration)
                    r["server_cpu_us_per_req"] = (cpu_seconds(s.proc.pid) - before) * 1e6 / max(1, r["requests"])
                    out["profiles"][profile]["runs"][f"c{conns}"].append(r)
                    print(
                        f"  rep {rep + 1} {profile:16s} c{conns:<2d} {r['rps']:8.0f} req/s  "
                        f"p99 {r.get('p99_ms', 0):.2f} ms  {r['server_cpu_us_per_req']:.0f} us/req"
                        + (f"  non-2xx {r['non_2xx']}" if r["non_2xx"] else ""),
                        file=sys.stderr,
                    )
    finally:
        for s in served.values():
            s.proc.stop()
    for p in out["profiles"].values():
        for c, runs in p["runs"].items():
            if runs:
                p[c] = {
                    k: statistics.median(r[k] for r in runs if k in r)
                    for k in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_req")
                }
    out["loadavg_end"] = Path("/proc/loadavg").read_text().split()[:3]
    out["logs"] = str(logdir)
    return out


def markdown(res: dict) -> str:
    ps = res["profiles"]
    lines = [
        f"granian {res['granian']} (embedded API `granian.server.embed`: {'yes' if res['embed_api'] else 'no'}); "
        f"{res['reps']} interleaved reps of {res['duration']:g} s, medians; load average "
        f"{' '.join(res['loadavg_start'])} at the start, {' '.join(res['loadavg_end'])} at the end.",
        "",
        "| profile | loop | req/s c1 | p50 c1 ms | CPU us/req c1 "
        "| req/s c16 | p50 c16 ms | p99 c16 ms | CPU us/req c16 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, p in ps.items():
        c1, c16 = p.get("c1", {}), p.get("c16", {})
        cells = [
            f"{c1.get('rps', 0):,.0f}",
            f"{c1.get('p50_ms', 0):.3f}",
            f"{c1.get('server_cpu_us_per_req', 0):.0f}",
            f"{c16.get('rps', 0):,.0f}",
            f"{c16.get('p50_ms', 0):.3f}",
            f"{c16.get('p99_ms', 0):.3f}",
            f"{c16.get('server_cpu_us_per_req', 0):.0f}",
        ]
        lines.append(f"| {name} | {p['loop']} | " + " | ".join(cells) + " |")
    lines += ["", "| ratio (req/s) | c1 | c16 |", "|---|---|---|"]
    for g in ("granian-embed", "granian-workers"):
        for base in ("uvicorn", "hypercorn"):
            if g in ps and base in ps and "c1" in ps[g] and "c1" in ps[base]:
                r1 = ps[g]["c1"]["rps"] / ps[base]["c1"]["rps"]
                r16 = ps[g]["c16"]["rps"] / ps[base]["c16"]["rps"]
                lines.append(f"| {g} / {base} | {r1:.2f} | {r16:.2f} |")
    lines += ["", "| fault | what a client should see | " + " | ".join(ps) + " |", "|---" * (len(ps) + 2) + "|"]
    for fault in FAULTS:
        lines.append(f"| {fault} | {EXPECTED[fault]} | " + " | ".join(p["faults"][fault] for p in ps.values()) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command")
    srv = sub.add_parser("serve", help="(internal) serve one profile in this process")
    srv.add_argument("profile", choices=("hypercorn", "uvicorn", "granian-embed"))
    srv.add_argument("--port", type=int, required=True)
    srv.add_argument("--uvloop", action="store_true")
    ap.add_argument("--duration", type=float, default=3.0, help="seconds per wrk run")
    ap.add_argument("--reps", type=int, default=3, help="interleaved repetitions")
    ap.add_argument("--warmup", type=float, default=2.0, help="untimed wrk seconds per profile first")
    ap.add_argument("--profiles", default=",".join(PROFILES), help="comma-separated subset of " + ",".join(PROFILES))
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.command == "serve":
        if args.uvloop:
            import uvloop

            uvloop.run(serve(args.profile, args.port))
        else:
            asyncio.run(serve(args.profile, args.port))
        return
    if importlib.util.find_spec("granian") is None:
        sys.exit("granian is not importable: .bench-work/venv/bin/pip install granian (this script installs nothing)")
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing: run bench/setup.sh")
    args.profiles = [p for p in args.profiles.split(",") if p]
    unknown = set(args.profiles) - set(PROFILES)
    if unknown:
        ap.error(f"unknown profiles: {unknown}")
    res = measure(args)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n")
    print(markdown(res))


if __name__ == "__main__":
    main()
