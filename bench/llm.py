"""The LLM simulation's cost on one daemon, side by side with a plain stub serving the same bytes.

    .venv/bin/python bench/llm.py                 # 5 interleaved repetitions of 4 s per profile
    .venv/bin/python bench/llm.py --reps 1 --duration 2

Two comparisons, each against a plain stub on the same daemon and session kind, so the ratio is the price of
the simulation (parsing the conversation, selecting a rule, counting tokens, writing the provider's format):

1. Non-streaming `POST /v1/chat/completions` with `wrk -t1 -c16` (OpenAI and Anthropic), against a stub whose
   body is a completion of the same size. Requests per second, median of the repetitions, and the ratio.
2. A 500-token streamed reply with no delays, read whole by one httpx client, against a stub whose SSE stream
   holds the very events the simulation sent (recorded from it first). Tokens per second and the ratio: a ratio
   near 1 means the simulation streams at the wire's pace.

Load goes to 127.0.0.1 only (wrk is refused anything else) and every loop is bounded by a count or a duration.

`prepare`, `warm_up`, `measure` and `summary` work on any running daemon's control channel: bench/bench.py's
`llm_webhooks` phase runs them on both simulatord rows of the benchmark.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "client" / "python"))
sys.path.insert(0, str(ROOT / "bench"))

from loadgen import run_wrk  # noqa: E402

from simulatord.v1 import llm_pb2, session_pb2, stub_pb2  # noqa: E402
from simulatord.v1 import simulator_service_pb2 as pb  # noqa: E402
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc  # noqa: E402
from simulatord_client import llm  # noqa: E402
from simulatord_client.embedded import EmbeddedDaemon  # noqa: E402

TEXT = "The simulated model answers this benchmark with a short sentence of ordinary prose."
TOKENS = 500
LONG = " ".join(["token"] * TOKENS)  # exactly 500 tokens by the token rule: `token`, then ` token` 499 times
REQUESTS = {
    "openai": ("/v1/chat/completions", {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello there"}]}),
    "anthropic": (
        "/v1/messages",
        {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": [{"role": "user", "content": "Hello there"}]},
    ),
}
STREAM_SIMULATED = f"openai {TOKENS}-token stream simulated"
STREAM_PLAIN = f"openai {TOKENS}-token stream plain stub"


def session(
    control: pb_grpc.SimulatorServiceStub,
    tenant: str,
    simulation: llm_pb2.LlmSimulation | None = None,
    stubs: tuple[stub_pb2.Stub, ...] = (),
) -> str:
    settings = session_pb2.Session(llm=simulation)
    created = control.CreateSession(pb.CreateSessionRequest(parent=f"tenants/{tenant}", session=settings, stubs=stubs))
    return created.session.base_url


def plain_stub(path: str, body: bytes, content_type: str) -> stub_pb2.Stub:
    return stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(method="POST", path=stub_pb2.PathMatcher(exact=path)),
        responses=[
            stub_pb2.Response(body_bytes=body, headers=[stub_pb2.Header(name="content-type", value=content_type)])
        ],
    )


def sse_stub(path: str, events: list[str]) -> stub_pb2.Stub:
    stream = stub_pb2.SseStream(
        events=[stub_pb2.SseEvent(event=e.get("event", ""), data=e["data"]) for e in map(parse_event, events)]
    )
    return stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(method="POST", path=stub_pb2.PathMatcher(exact=path)),
        responses=[stub_pb2.Response(sse=stream)],
    )


def parse_event(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in block.splitlines():
        name, _, value = line.partition(": ")
        fields[name] = value
    return fields


def read_stream(url: str, body: dict[str, object]) -> tuple[float, list[str]]:
    """Seconds to read a whole stream, and its events."""
    with httpx.Client(timeout=30) as http:
        started = time.perf_counter()
        with http.stream("POST", url, json=body) as reply:
            raw = reply.read()
        elapsed = time.perf_counter() - started
    return elapsed, [b for b in raw.decode().split("\n\n") if b.strip()]


@dataclass
class Targets:
    """What one daemon serves for the comparison: wrk targets (url, POST body) and the two streams' URLs."""

    wrk: dict[str, tuple[str, bytes]]
    streams: dict[str, str]
    stream_body: dict[str, object]


def prepare(control: pb_grpc.SimulatorServiceStub, tenant_prefix: str = "bench") -> Targets:
    """Creates the sessions on a running daemon: per provider a simulation and a plain stub serving a sample of
    its reply, and the 500-token stream with a stub replaying the very events the simulation sent."""
    wrk: dict[str, tuple[str, bytes]] = {}
    for provider, (path, body) in REQUESTS.items():
        sim = (llm.openai if provider == "openai" else llm.anthropic)(default=TEXT)
        llm_url = session(control, f"{tenant_prefix}-llm-{provider}", sim) + path
        sample = httpx.post(llm_url, json=body, timeout=10)
        assert sample.status_code == 200, sample.text
        stub_url = (
            session(
                control,
                f"{tenant_prefix}-stub-{provider}",
                stubs=(plain_stub(path, sample.content, "application/json"),),
            )
            + path
        )
        wrk[f"{provider} simulated"] = (llm_url, json.dumps(body).encode())
        wrk[f"{provider} plain stub"] = (stub_url, json.dumps(body).encode())
    # Streams: the simulation's 500-token reply, and a stub replaying the same events.
    stream_sim = llm.openai(default=LONG)
    stream_path, stream_body = REQUESTS["openai"]
    stream_body = {**stream_body, "stream": True}
    stream_llm = session(control, f"{tenant_prefix}-stream-llm", stream_sim) + stream_path
    _, events = read_stream(stream_llm, stream_body)
    stream_stub = session(control, f"{tenant_prefix}-stream-stub", stubs=(sse_stub(stream_path, events),)) + stream_path
    streams = {STREAM_SIMULATED: stream_llm, STREAM_PLAIN: stream_stub}
    return Targets(wrk, streams, stream_body)


def warm_up(targets: Targets, seconds: float = 1.0, streams: int = 3) -> None:
    """Untimed: a short wrk run per target and a few streams, so the first timed run is not the first served."""
    for url, body in targets.wrk.values():
        run_wrk(url, 16, seconds, post=body)
    for url in targets.streams.values():
        for _ in range(streams):
            read_stream(url, targets.stream_body)


def measure(targets: Targets, rows: dict[str, list[float]], rep: int, duration: float, streams: int) -> None:
    """One repetition: req/s of every wrk target (c16) and tokens/s of both streams (median of `streams` reads),
    appended to `rows` by name; `rep` rotates the order so that drift hits every target alike."""
    order = list(targets.wrk.items())
    order = order[rep % len(order) :] + order[: rep % len(order)]
    for name, (url, body) in order:
        result = run_wrk(url, 16, duration, post=body)
        assert result["non_2xx"] == 0, result
        rows.setdefault(name, []).append(result["rps"])
    for name, url in sorted(targets.streams.items(), key=lambda item: (rep % 2 == 0) ^ ("plain" in item[0])):
        times = [read_stream(url, targets.stream_body)[0] for _ in range(streams)]
        rows.setdefault(name, []).append(TOKENS / statistics.median(times))


def summary(rows: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    """Medians and ratios per profile: {profile: {simulated, plain, ratio, unit}}, ratio = simulated / plain."""
    out: dict[str, dict[str, float]] = {}
    for provider in REQUESTS:
        sim_rps = statistics.median(rows[f"{provider} simulated"])
        stub_rps = statistics.median(rows[f"{provider} plain stub"])
        out[f"{provider} non-streaming req/s, c16"] = {
            "simulated": sim_rps,
            "plain": stub_rps,
            "ratio": sim_rps / stub_rps,
        }
    sim_tps = statistics.median(rows[STREAM_SIMULATED])
    stub_tps = statistics.median(rows[STREAM_PLAIN])
    out[f"openai {TOKENS}-token stream, tokens/s"] = {
        "simulated": sim_tps,
        "plain": stub_tps,
        "ratio": sim_tps / stub_tps,
    }
    return out


def table(result: dict[str, dict[str, float]]) -> str:
    lines = ["| profile | simulated | plain stub | simulated / plain |", "|---|---|---|---|"]
    for profile, r in result.items():
        lines.append(f"| {profile} | {r['simulated']:,.0f} | {r['plain']:,.0f} | {r['ratio']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved repetitions")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--streams", type=int, default=30, help="500-token streams read per profile and repetition")
    args = parser.parse_args()

    daemon = EmbeddedDaemon().start()
    rows: dict[str, list[float]] = {}
    try:
        with grpc.insecure_channel(daemon.grpc_address) as channel:
            targets = prepare(pb_grpc.SimulatorServiceStub(channel))
            warm_up(targets)
            for rep in range(args.reps):
                measure(targets, rows, rep, args.duration, args.streams)
                print(f"repetition {rep + 1}/{args.reps} done", file=sys.stderr)
    finally:
        daemon.stop()
    print(table(summary(rows)))


if __name__ == "__main__":
    main()
