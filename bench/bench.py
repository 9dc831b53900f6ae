"""The benchmark driver: measures simulatord and its peers (WireMock, mountebank, pytest-httpserver)
in one interleaved run and writes bench/results/latest.{json,svg}; run it through bench/run.sh."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import report
from loadgen import run_wrk, wrk_version
from tools import ALL, REPO, WORK, LoopbackReceiver, Simulatord, Tool, WireMock

RESULTS = Path(__file__).resolve().parent / "results"

# (full, quick) defaults; --quick swaps in the second value for every option left unset.
DEFAULTS = {
    "duration": (6.0, 2.0),  # seconds per wrk run
    "warmup": (4.0, 1.0),  # least seconds of untimed wrk per tool before the throughput runs
    "warmup_max": (40.0, 4.0),  # most seconds of warm-up: stops earlier once req/s stops rising
    "reps": (5, 1),  # interleaved repetitions of every throughput run
    "cycles": (200, 30),  # per-test cycles per tool
    "cycle_blocks": (5, 3),  # the cycles are run in this many interleaved blocks
    "startup_reps": (5, 2),
    "rss_requests": (1_000_000, 20_000),
    "rss_idle": (3.0, 2.0),  # idle seconds before reading RSS
    "rss_max_seconds": (90.0, 5.0),  # cap on the RSS drive per tool: slow servers cannot reach 1M in time
    "scale_sessions": (1000, 100),
    "scale_stubs": (50, 50),
    "scale_reps": (2, 1),
    "scale_duration": (5.0, 2.0),  # seconds per wrk run in the scale phase
    "wiremock_scale_budget": (60.0, 10.0),  # seconds allowed for importing WireMock's mappings
    "watch_requests": (300, 50),
    "control_rounds": (300, 30),  # rounds of the control-plane lifecycle, every RPC once per round
    "llm_reps": (3, 1),  # interleaved repetitions of the LLM comparison (every profile, both daemons)
    "llm_duration": (4.0, 2.0),  # seconds per wrk run of the LLM comparison
    "llm_streams": (30, 10),  # 500-token streams read per stream profile and repetition
    "webhook_rounds": (500, 60),  # single-webhook deliveries per daemon, each beside a Health.Check and a GET
    "webhook_batches": (10, 3),  # DeliverWebhooks calls of --webhook-batch webhooks per daemon
    "webhook_batch": (100, 100),  # webhooks per batch call: 100 is the most one DeliverWebhooks call takes
}
# Phases that share one warm, long-lived server per tool; the others start fresh processes.
LONG_LIVED = ("throughput", "cycle", "control")
# The daemon on its default server (hypercorn) and on its optional fast one; both get the scale phase.
SIMULATORDS = ("simulatord", "simulatord-hypercorn")
PHASES = ["startup", "throughput", "cycle", "control", "rss", "scale", "watch", "llm_webhooks"]
WEBHOOK_BLOCKS = 5  # the webhook rounds and batches run in this many interleaved blocks


def log(msg: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def stats(xs: list[float]) -> dict:
    if not xs:
        return {}
    s = sorted(xs)

    def pct(p: float) -> float:
        return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]

    return {
        "median": statistics.median(s),
        "p90": pct(90),
        "p99": pct(99),
        "min": s[0],
        "max": s[-1],
        "mean": statistics.fmean(s),
        "n": len(s),
    }


def rotate(items: list, k: int) -> list:
    """Interleaving: each repetition starts with a different tool, so drift hits every tool alike."""
    k %= len(items) or 1
    return items[k:] + items[:k]


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.a = args
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        self.logdir = WORK / "run" / stamp
        self.tools: dict[str, Tool] = {}
        self.every_tool: list[Tool] = []  # everything make() created, closed at exit whatever happens
        self.res: dict = {"tools": {}, "errors": {}, "phase_seconds": {}}

    # -- bookkeeping ---------------------------------------------------------------------------------
    def t(self, name: str) -> dict:
        return self.res["tools"].setdefault(name, {})

    def fail(self, name: str, phase: str, exc: BaseException) -> None:
        log(f"!! {name} failed in {phase}: {exc!r}")
        self.res["errors"].setdefault(name, {})[phase] = "".join(traceback.format_exception_only(exc)).strip()
        (self.logdir / f"{name}.{phase}.traceback.txt").write_text("".join(traceback.format_exception(exc)))

    def make(self, name: str) -> Tool | None:
        try:
            tool = ALL[name](self.logdir)
            self.every_tool.append(tool)
            return tool
        except Exception as e:  # e.g. simulatord not importable yet: still benchmark the peers
            self.fail(name, "init", e)
            return None

    # -- phases --------------------------------------------------------------------------------------
    def startup(self) -> None:
        """Spawn to first 200 on the stub, each tool started with its stub in the fastest way it offers."""
        samples: dict[str, list[float]] = {n: [] for n in self.a.tools}
        embedded: dict[str, list[float]] = {n: [] for n in self.a.tools}
        idle: dict[str, list[int]] = {n: [] for n in self.a.tools}
        for rep in range(self.a.startup_reps):
            for name in rotate(self.a.tools, rep):
                tool = self.make(name)
                if tool is None:
                    continue
                try:
                    samples[name].append(tool.start(preload=True))
                    time.sleep(1.0)  # let start-up work settle before reading the idle footprint
                    idle[name].append(tool.proc.rss_kb())
                except Exception as e:
                    self.fail(name, "startup", e)
                finally:
                    tool.close()
                if getattr(tool, "EMBEDDED", False):  # and the pytest plugin's default: the daemon on a thread
                    try:
                        embedded[name].append(tool.start_embedded())
                    except Exception as e:
                        self.fail(name, "startup-embedded", e)
        for name in self.a.tools:
            if samples[name]:
                self.t(name)["startup_ms"] = stats(samples[name]) | {"samples": samples[name]}
                self.t(name)["rss_after_start_mb"] = statistics.median(idle[name]) / 1024
            if embedded[name]:
                self.t(name)["startup_embedded_ms"] = stats(embedded[name]) | {"samples": embedded[name]}

    def start_long_lived(self) -> None:
        for name in self.a.tools:
            tool = self.make(name)
            if tool is None:
                continue
            try:
                tool.start(preload=False)
                self.tools[name] = tool
            except Exception as e:
                self.fail(name, "start", e)
                tool.close()

    @staticmethod
    def load(tool: Tool, url: str, conns: int, seconds: float, limit: int | None = None) -> dict:
        """One wrk run plus the server's CPU time per request: on a shared, busy machine req/s falls
        with the CPU others take, while CPU per request stays close to the server's real cost."""
        assert tool.proc is not None
        before = tool.proc.cpu_seconds()
        r = run_wrk(url, conns, seconds, limit=limit)
        if r["requests"]:
            r["server_cpu_us_per_req"] = (tool.proc.cpu_seconds() - before) * 1e6 / r["requests"]
        return r

    def warm_up(self, url: str) -> list[float]:
        """Untimed load until req/s stops rising (or the cap): WireMock's JIT needs ~20-30 s to reach
        steady state, the Python and Node servers a second. Returns the req/s of each chunk."""
        chunk = 1.0 if self.a.quick else 2.0
        seen: list[float] = []
        spent = 0.0
        while spent < self.a.warmup_max:
            seen.append(run_wrk(url, 16, chunk)["rps"])
            spent += chunk
            # At least 3 chunks (2 in --quick) so "no longer rising" compares real measurements.
            if spent >= self.a.warmup and len(seen) >= (2 if self.a.quick else 3) and seen[-1] < 1.05 * max(seen[:-1]):
                break
        return seen

    def throughput(self) -> None:
        names = list(self.tools)
        for name in names:
            try:
                self.t(name)["warmup"] = self.warm_up(self.tools[name].hello_url)
            except Exception as e:
                self.fail(name, "warmup", e)
        runs: dict[str, dict[int, list[dict]]] = {n: {1: [], 16: []} for n in names}
        for rep in range(self.a.reps):
            for name in rotate(names, rep):
                tool = self.tools[name]
                for conns in (1, 16):
                    try:
                        tool.clear_journal()
                        r = self.load(tool, tool.hello_url, conns, self.a.duration)
                        runs[name][conns].append(r)
                        log(
                            f"  {name:18s} c{conns:<2d} rep {rep + 1}: {r['rps']:9.0f} req/s  "
                            f"p50 {r.get('p50_ms', 0):7.3f} ms  p99 {r.get('p99_ms', 0):7.3f} ms"
                            + (f"  non-2xx {r['non_2xx']}" if r["non_2xx"] else "")
                        )
                    except Exception as e:
                        self.fail(name, f"throughput-c{conns}", e)
        for name in names:
            out = {}
            for conns, rs in runs[name].items():
                if rs:
                    out[f"c{conns}"] = {
                        k: statistics.median([r[k] for r in rs if k in r])
                        for k in ("rps", "p50_ms", "p75_ms", "p90_ms", "p99_ms", "server_cpu_us_per_req")
                        if any(k in r for r in rs)
                    }
                    out[f"c{conns}"]["runs"] = rs
            self.t(name)["throughput"] = out

    def cycle(self) -> None:
        # (result key, tool, function); simulatord runs on its shared daemon through raw generated stubs and
        # through simulatord_client, and (default row) against the pytest plugin's embedded daemon.
        entries = []
        for name, tool in self.tools.items():
            entries.append((name, "cycle_ms", tool, tool.cycles))
            if hasattr(tool, "cycles_client"):
                entries.append((name, "cycle_client_ms", tool, tool.cycles_client))
            if getattr(tool, "EMBEDDED", False):
                entries.append((name, "cycle_embedded_ms", tool, tool.cycles_embedded))
        per_block = max(1, self.a.cycles // self.a.cycle_blocks)
        samples: dict[tuple[str, str], list[float]] = {(n, k): [] for n, k, _, _ in entries}
        broken: set[tuple[str, str]] = set()
        for name, key, tool, fn in entries:
            try:
                tool.clear_journal()
                tool.cycle_setup()
                fn(max(5, per_block // 4))  # untimed warm-up of both client and server paths
            except Exception as e:
                self.fail(name, key, e)
                broken.add((name, key))
        for block in range(self.a.cycle_blocks):
            n = per_block if block < self.a.cycle_blocks - 1 else self.a.cycles - per_block * block
            for name, key, _, fn in rotate(entries, block):
                if (name, key) in broken:
                    continue  # one failure is enough: further samples would be incomparable
                try:
                    samples[(name, key)] += fn(n)
                except Exception as e:
                    self.fail(name, key, e)
                    broken.add((name, key))
        for (name, key), xs in samples.items():
            if xs:
                self.t(name)[key] = stats(xs)
                log(f"  {name:18s} {key:16s} median {stats(xs)['median']:.2f} ms over {len(xs)}")
        if isinstance(self.tools.get("wiremock"), WireMock):
            self.tools["wiremock"].restore_hello()

    def control(self) -> None:
        """Latency of every unary control RPC, each called once per round of a session's whole life."""
        for name in [n for n in SIMULATORDS if n in self.tools]:
            try:
                samples = self.tools[name].control_latencies(self.a.control_rounds)
                self.res.setdefault("control", {})[name] = {k: stats(v) for k, v in samples.items()}
                c = self.res["control"][name]
                log(f"  {name:18s} control: " + ", ".join(f"{k} {v['median']:.2f}" for k, v in c.items()))
            except Exception as e:
                self.fail(name, "control", e)

    def stop_long_lived(self) -> None:
        for tool in self.tools.values():
            tool.close()
        self.tools.clear()

    def rss(self) -> None:
        """Fresh process per tool, N requests (or the time cap), idle, then RSS of the whole tree."""
        for name in self.a.tools:
            tool = self.make(name)
            if tool is None:
                continue
            try:
                tool.start(preload=True)
                time.sleep(1.0)
                before = tool.proc.rss_kb()
                r = self.load(tool, tool.hello_url, 16, self.a.rss_max_seconds, limit=self.a.rss_requests)
                time.sleep(self.a.rss_idle)  # idle: let GCs and buffers settle, as between test files
                after = tool.proc.rss_kb()
                self.t(name)["rss"] = {
                    "requests_target": self.a.rss_requests,
                    "requests_served": r["requests"],
                    "capped_by_time": r["requests"] < self.a.rss_requests,
                    "drive_seconds": r["elapsed_s"],
                    "rss_before_mb": before / 1024,
                    "rss_after_mb": after / 1024,
                    "non_2xx": r["non_2xx"],
                }
                log(f"  {name:18s} RSS {before / 1024:7.1f} -> {after / 1024:7.1f} MB after {r['requests']} req")
            except Exception as e:
                self.fail(name, "rss", e)
            finally:
                tool.close()

    def scale(self) -> None:
        """simulatord with S sessions x K stubs (target stub last) vs one stub; WireMock with S*K mappings."""
        a = self.a
        out: dict = {"sessions": a.scale_sessions, "stubs_per_session": a.scale_stubs}
        self.res["scale"] = out
        targets: list[tuple[str, str, str]] = []  # (tool, case, url)
        started: list[Tool] = []
        for sim_name in [n for n in SIMULATORDS if n in a.tools]:
            if not (sim := self.make(sim_name)):
                continue
            try:
                sim.start()
                started.append(sim)
                from google.protobuf import struct_pb2

                svc = sim.svc
                decoys = []
                for j in range(a.scale_stubs - 1):
                    v = struct_pb2.Value()
                    v.struct_value.update({"item": j})
                    decoys.append(sim.make_stub(f"/item/{j}", v))
                t0 = time.perf_counter()
                sessions = []
                for _ in range(a.scale_sessions):
                    # The /hello stub comes last: a first-match scan has to pass every decoy.
                    sessions.append(
                        sim.api.CreateSession(
                            svc.CreateSessionRequest(parent="tenants/scale", stubs=[*decoys, sim.hello_stub]),
                            timeout=60,
                        ).session
                    )
                create_s = time.perf_counter() - t0
                target = sessions[len(sessions) // 2]
                out[sim_name] = {
                    "create_seconds": create_s,
                    "sessions_per_second": a.scale_sessions / create_s,
                    "rss_mb": sim.proc.rss_kb() / 1024,
                }
                log(f"  {sim_name}: {a.scale_sessions} sessions x {a.scale_stubs} stubs in {create_s:.1f}s")
                targets += [
                    (sim_name, "one-stub session", sim.hello_url),
                    (sim_name, f"{a.scale_stubs}-stub session", target.base_url + "/hello"),
                ]
            except Exception as e:
                self.fail(sim_name, "scale", e)
        if "wiremock" in a.tools and not a.no_wiremock_scale and (wm := self.make("wiremock")):
            try:
                wm.start(preload=True)
                started.append(wm)
                # WireMock has no sessions: the nearest equivalent is one URL prefix per "session",
                # all S*K mappings in the one server (as a shared WireMock would hold them).
                # Imported in chunks of 20 "sessions" within a time budget: WireMock's import slows
                # down as mappings accumulate (50,000 took minutes here), so the run stays bounded and
                # reports how far it got.
                t0 = time.perf_counter()
                loaded = 0
                for first in range(0, a.scale_sessions, 20):
                    if time.perf_counter() - t0 > a.wiremock_scale_budget:
                        break
                    maps = []
                    for i in range(first, min(first + 20, a.scale_sessions)):
                        maps += [wm._mapping(f"/s{i}/item/{j}") for j in range(a.scale_stubs - 1)]
                        maps.append(wm._mapping(f"/s{i}/hello"))
                    wm.import_mappings(maps)
                    loaded = min(first + 20, a.scale_sessions)
                create_s = time.perf_counter() - t0
                n_maps = loaded * a.scale_stubs
                out["wiremock"] = {
                    "create_seconds": create_s,
                    "sessions_loaded": loaded,
                    "mappings_loaded": n_maps,
                    "mappings_per_second": n_maps / create_s,
                    "budget_hit": loaded < a.scale_sessions,
                    "rss_mb": wm.proc.rss_kb() / 1024,
                }
                log(f"  wiremock: imported {n_maps} mappings in {create_s:.1f}s")
                targets += [("wiremock", f"prefix among {n_maps} mappings", wm.base + f"/s{loaded // 2}/hello")]
            except Exception as e:
                self.fail("wiremock", "scale", e)
        # WireMock's one-stub baseline is its throughput-phase result (a fresh server with one stub).
        by_name = {t.name: t for t in started}
        for _, _, url in targets:
            self.warm_up(url)
        runs: dict[tuple[str, str], dict[int, list[dict]]] = {(n, lab): {1: [], 16: []} for n, lab, _ in targets}
        for rep in range(a.scale_reps):
            for name, label, url in rotate(targets, rep):
                for conns in (1, 16):
                    try:
                        r = self.load(by_name[name], url, conns, a.scale_duration)
                        runs[(name, label)][conns].append(r)
                        log(f"  scale {name} {label} c{conns}: {r['rps']:.0f} req/s p99 {r.get('p99_ms', 0):.2f} ms")
                    except Exception as e:
                        self.fail(name, f"scale-{label}-c{conns}", e)
        rows = []
        for (name, label), by_c in runs.items():
            row = {"server": name, "case": label}
            for conns, rs in by_c.items():
                if rs:
                    row[f"c{conns}"] = {
                        k: statistics.median([r[k] for r in rs if k in r])
                        for k in ("rps", "p50_ms", "p99_ms", "server_cpu_us_per_req")
                        if any(k in r for r in rs)
                    }
            rows.append(row)
        out["rows"] = rows
        for tool in started:
            tool.close()

    def watch(self) -> None:
        """Time from sending a request to its exchange arriving on a WatchExchanges stream."""
        if "simulatord" not in self.a.tools or not (sim := self.make("simulatord")):
            return
        old_switch = sys.getswitchinterval()
        # The watch thread must timestamp promptly; the default 5 ms GIL switch interval would add
        # up to 5 ms of our own making to the tail.
        sys.setswitchinterval(0.0001)
        call = None
        try:
            sim.start()
            svc = sim.svc
            sim.api.ResetSession(svc.ResetSessionRequest(name=sim.session.name, targets=[svc.RESET_TARGET_JOURNAL]))
            # start_sequence=1 on an empty journal: nothing is replayed, and a request that races the
            # subscription is still delivered, so no message can be lost to start-up ordering.
            call = sim.api.WatchExchanges(svc.WatchExchangesRequest(parent=sim.session.name, start_sequence=1))
            arrivals: dict[int, tuple[float, int, int]] = {}
            cond = threading.Condition()

            def pump() -> None:
                try:
                    for msg in call:
                        if msg.HasField("exchange"):
                            t, wall = time.perf_counter(), time.time_ns()
                            ex = msg.exchange
                            with cond:
                                arrivals[ex.sequence] = (t, wall, ex.request.receive_time.ToNanoseconds())
                                cond.notify_all()
                except Exception:
                    pass  # cancelled at the end

            th = threading.Thread(target=pump, daemon=True)
            th.start()
            warm, total = 20, 20 + self.a.watch_requests
            sent: dict[int, tuple[float, float]] = {}
            stalled = 0
            for i in range(total):
                seq = i + 1  # the journal was reset and only this loop sends: sequences are 1, 2, ...
                t_send = time.perf_counter()
                r = sim.http.get(sim.hello_url)
                sent[seq] = (t_send, time.perf_counter())
                if r.status_code != 200:
                    raise AssertionError(r.text)
                with cond:
                    # Each request waits for its own message before the next is sent (an idle
                    # watcher, as in a test). A message that does not come within 200 ms is counted
                    # as stalled; it is still timed when it does arrive.
                    if not cond.wait_for(lambda s=seq: s in arrivals, timeout=0.2):
                        stalled += seq > warm
            with cond:
                cond.wait_for(lambda: len(arrivals) >= total, timeout=2.0)
            send_to_watch, resp_to_watch, arrival_to_watch = [], [], []
            for seq in range(warm + 1, total + 1):
                if seq in arrivals:
                    t_arr, wall_ns, recv_ns = arrivals[seq]
                    send_to_watch.append((t_arr - sent[seq][0]) * 1000)
                    resp_to_watch.append((t_arr - sent[seq][1]) * 1000)
                    # Same host, same wall clock: the daemon's receive_time to the message's arrival here.
                    arrival_to_watch.append((wall_ns - recv_ns) / 1e6)
            self.res["watch"] = {
                "requests": self.a.watch_requests,
                "stalled_over_200ms": stalled,
                "never_delivered": self.a.watch_requests - len(send_to_watch),
                "send_to_watch_ms": stats(send_to_watch),
                "server_arrival_to_watch_ms": stats(arrival_to_watch),
                "response_to_watch_ms": stats(resp_to_watch),
            }
            w = self.res["watch"]
            log(
                f"  watch: send->watch p50 {w['send_to_watch_ms']['median']:.3f} ms "
                f"p99 {w['send_to_watch_ms']['p99']:.3f} ms; stalled {stalled}, "
                f"never delivered {w['never_delivered']}"
            )
        except Exception as e:
            self.fail("simulatord", "watch", e)
        finally:
            if call is not None:
                call.cancel()
            sys.setswitchinterval(old_switch)
            sim.close()

    def llm_webhooks(self) -> None:
        """Both simulatord rows, fresh daemons: the LLM simulation against a plain stub serving the same bytes
        (bench/llm.py), and webhook deliveries to a loopback receiver against the daemon's plain round trips."""
        a = self.a
        names = [n for n in SIMULATORDS if n in a.tools]
        if not names:
            return
        import llm  # imported here, like the daemon's modules: the peers can be measured without them

        out: dict = {
            "params": {
                "llm_reps": a.llm_reps,
                "llm_duration": a.llm_duration,
                "llm_streams": a.llm_streams,
                "stream_tokens": llm.TOKENS,
                "webhook_rounds": a.webhook_rounds,
                "webhook_batches": a.webhook_batches,
                "webhook_batch": a.webhook_batch,
            }
        }
        self.res["llm_webhooks"] = out
        receiver = LoopbackReceiver()
        sims: dict[str, Simulatord] = {}
        targets: dict = {}
        try:
            for name in names:
                if not (sim := self.make(name)):
                    continue
                try:
                    sim.start()
                    sims[name] = sim
                    targets[name] = llm.prepare(sim.api, "bench")
                    llm.warm_up(targets[name], 1.0 if a.quick else 2.0)
                    sim.webhook_setup(receiver)
                    sim.webhook_latencies(20, {})  # untimed warm-up: the daemon's HTTP client, the receiver
                    sim.deliver(a.webhook_batch)
                except Exception as e:
                    self.fail(name, "llm_webhooks-start", e)
                    sims.pop(name, None)
            rows: dict[str, dict[str, list[float]]] = {n: {} for n in sims}
            broken: set[str] = set()
            for rep in range(a.llm_reps):
                for name in rotate(list(sims), rep):
                    if name in broken:
                        continue
                    try:
                        llm.measure(targets[name], rows[name], rep, a.llm_duration, a.llm_streams)
                        log(
                            f"  {name:18s} llm rep {rep + 1}: "
                            + ", ".join(f"{k} {v[-1]:.0f}" for k, v in rows[name].items())
                        )
                    except Exception as e:
                        self.fail(name, "llm", e)
                        broken.add(name)
            for name in sims:
                if name not in broken and rows[name]:
                    out.setdefault(name, {})["llm"] = {"profiles": llm.summary(rows[name]), "runs": rows[name]}
            lat: dict[str, dict[str, list[float]]] = {n: {} for n in sims}
            batch_s: dict[str, list[float]] = {n: [] for n in sims}
            received0 = {n: 0 for n in sims}
            bad0 = {n: 0 for n in sims}
            broken = set()
            for block in range(WEBHOOK_BLOCKS):
                n_rounds = a.webhook_rounds // WEBHOOK_BLOCKS + (block < a.webhook_rounds % WEBHOOK_BLOCKS)
                n_batches = a.webhook_batches // WEBHOOK_BLOCKS + (block < a.webhook_batches % WEBHOOK_BLOCKS)
                for name in rotate(list(sims), block):
                    if name in broken:
                        continue
                    sim = sims[name]
                    r0, b0 = receiver.received, receiver.bad_signatures
                    try:
                        sim.webhook_latencies(n_rounds, lat[name])
                        for _ in range(n_batches):
                            t0 = time.perf_counter()
                            sim.deliver(a.webhook_batch)
                            batch_s[name].append(time.perf_counter() - t0)
                    except Exception as e:
                        self.fail(name, "webhooks", e)
                        broken.add(name)
                    received0[name] += receiver.received - r0
                    bad0[name] += receiver.bad_signatures - b0
            for name in sims:
                if name in broken or not lat[name]:
                    continue
                st = {k: stats(v) for k, v in lat[name].items()}
                floor = st["health"]["median"] + st["plain_get"]["median"]
                wh: dict = {
                    "deliver_one_ms": st["deliver_one"],
                    "health_ms": st["health"],
                    "plain_get_ms": st["plain_get"],
                    # One delivery is one gRPC round trip in and one HTTP exchange out: its floor is the sum.
                    "deliver_one_p50_over_floor": st["deliver_one"]["median"] / floor,
                    "received": received0[name],
                    "bad_signatures": bad0[name],
                }
                if batch_s[name]:
                    per_s = [a.webhook_batch / s for s in batch_s[name]]
                    wh["batch"] = {
                        "size": a.webhook_batch,
                        "calls": len(per_s),
                        "seconds": batch_s[name],
                        "deliveries_per_s": statistics.median(per_s),
                        # Deliveries of a call go one after another; the plain equivalent is sequential GETs.
                        "plain_gets_per_s": 1000 / st["plain_get"]["median"],
                    }
                    wh["batch"]["ratio_to_plain_gets"] = (
                        wh["batch"]["deliveries_per_s"] / wh["batch"]["plain_gets_per_s"]
                    )
                out.setdefault(name, {})["webhooks"] = wh
                log(
                    f"  {name:18s} webhooks: deliver one p50 {st['deliver_one']['median']:.2f} ms "
                    f"(Health {st['health']['median']:.2f} + GET {st['plain_get']['median']:.2f} ms), "
                    + (f"batch {wh['batch']['deliveries_per_s']:.0f}/s, " if "batch" in wh else "")
                    + f"bad signatures {bad0[name]}"
                )
        finally:
            for sim in sims.values():
                sim.close()
            receiver.close()

    # -- driver --------------------------------------------------------------------------------------
    def run(self) -> dict:
        t_all = time.perf_counter()
        started = datetime.now(UTC)
        load_start = loadavg()
        plan = [p for p in PHASES if p not in self.a.skip]
        long_lived = False
        for phase in plan:
            # Throughput and cycle share one long-lived instance per tool (warm, as in a test run);
            # the other phases start their own fresh processes.
            if phase in LONG_LIVED and not long_lived:
                t0 = time.perf_counter()
                log("phase: start long-lived servers")
                self.start_long_lived()
                long_lived = True
                self.res["phase_seconds"]["start-long-lived"] = round(time.perf_counter() - t0, 1)
            elif phase not in LONG_LIVED:
                self.stop_long_lived()
            log(f"phase: {phase} (load average {loadavg()})")
            self.res.setdefault("loadavg_at_phase_start", {})[phase] = loadavg()
            t0 = time.perf_counter()
            getattr(self, phase)()
            self.res["phase_seconds"][phase] = round(time.perf_counter() - t0, 1)
        self.stop_long_lived()
        self.res["meta"] = meta(self.a, started, time.perf_counter() - t_all, load_start)
        self.res["ratios"] = report.ratios(self.res)
        return self.res


def _cmd(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except Exception as e:  # a missing tool is reported, not fatal
        return f"unavailable ({e.__class__.__name__})"


def install_log() -> dict:
    """Latest entry per item, plus the most recent real install time, from setup.sh's append-only log."""
    out: dict = {}
    p = WORK / "install-log.tsv"
    if p.exists():
        for line in p.read_text().splitlines():
            date, item, secs, status = line.split("\t")
            e = out.setdefault(item, {})
            e["last_status"] = status
            if status == "installed":
                e["last_install_seconds"], e["last_install_date"] = float(secs), date
    return out


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def meta(a: argparse.Namespace, started: datetime, seconds: float, load_start: str) -> dict:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "?",
    )
    mem = next(
        ln.split(":", 1)[1].strip()
        for ln in Path("/proc/meminfo").read_text().splitlines()
        if ln.startswith("MemTotal")
    )
    versions = {}
    for name in a.tools:
        try:
            versions[name] = ALL[name].version(ALL[name].__new__(ALL[name]))
        except Exception:
            versions[name] = "?"
    git = _cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    dirty = bool(
        subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "simulatord"], capture_output=True, text=True
        ).stdout.strip()
    )
    return {
        "started": started.isoformat(timespec="seconds"),
        "total_seconds": round(seconds, 1),
        "mode": "quick" if a.quick else "full",
        "command": " ".join(["bench/run.sh", *sys.argv[1:]]),
        "args": {k: v for k, v in vars(a).items()},
        "machine": {
            "cpu": cpu,
            "cores": os.cpu_count(),
            "memory": mem,
            "kernel": platform.release(),
            # Other work on the machine skews everything; interleaving only evens it out.
            "loadavg_start": load_start,
            "loadavg_end": loadavg(),
        },
        "software": {
            "python": platform.python_version(),
            "java": _cmd(["java", "-version"]),
            "node": _cmd(["node", "--version"]),
            "wrk": wrk_version(),
            "tools": versions,
            "simulatord_git": git + ("-dirty" if dirty else ""),
        },
        "install": install_log(),
    }


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smoke run: every default below takes its quick value")
    for k in DEFAULTS:
        ap.add_argument(
            "--" + k.replace("_", "-"),
            type=type(DEFAULTS[k][0]),
            default=None,
            help=f"default {DEFAULTS[k][0]}, quick {DEFAULTS[k][1]}",
        )
    ap.add_argument("--tools", default=",".join(ALL), help="comma-separated subset of " + ",".join(ALL))
    ap.add_argument("--skip", default="", help="comma-separated phases to skip: " + ",".join(PHASES))
    ap.add_argument("--no-wiremock-scale", action="store_true", help="scale phase for simulatord only")
    ap.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    ap.add_argument("--render", type=Path, help="only re-render the markdown and SVG of this result JSON")
    a = ap.parse_args()
    for k, (full, quick) in DEFAULTS.items():
        if getattr(a, k) is None:
            setattr(a, k, quick if a.quick else full)
    a.tools = [t for t in a.tools.split(",") if t]
    unknown = set(a.tools) - set(ALL)
    if unknown:
        ap.error(f"unknown tools: {unknown}")
    a.skip = [p for p in a.skip.split(",") if p]
    return a


def main() -> None:
    a = parse()
    if a.render:
        # Re-draw the table and chart of an earlier run, e.g. after changing report.py.
        res = json.loads(a.render.read_text())
        report.chart(res, a.render.with_suffix(".svg"))
        print(report.markdown(res))
        return
    run = Run(a)
    run.logdir.mkdir(parents=True, exist_ok=True)
    log(f"logs in {run.logdir}")
    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl-C, so every server we started is stopped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        res = run.run()
    finally:
        for tool in run.every_tool:
            with contextlib.suppress(Exception):
                tool.close()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1, default=str) + "\n")
    svg = a.out.with_suffix(".svg")
    report.chart(res, svg)
    print(report.markdown(res))
    log(f"wrote {a.out} and {svg}")


if __name__ == "__main__":
    main()
