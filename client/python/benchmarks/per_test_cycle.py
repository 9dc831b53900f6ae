"""Measures what a session per test costs: create (with a stub), one HTTP call, read the journal, delete.

Run: `.venv/bin/python client/python/benchmarks/per_test_cycle.py [--iterations 300] [--address HOST:PORT]`
(without an address it starts an EmbeddedDaemon). Prints the median and other percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import httpx

from simulatord_client import EmbeddedDaemon, Simulator, stub


def cycle(sim: Simulator, http: httpx.Client) -> float:
    """One test's worth of simulator use, timed end to end, exactly as the `sim_session` fixture does it."""
    start = time.perf_counter()
    with sim.session(tenant="bench", stubs=[stub("GET", "/users/{id}", json={"id": 7})]) as s:
        response = http.get(f"{s.url}/users/7")
        assert response.status_code == 200
        exchanges = s.exchanges()
        assert len(exchanges) == 1 and exchanges[0].path == "/users/7"
    return (time.perf_counter() - start) * 1000


def measure(address: str, iterations: int, warmup: int) -> list[float]:
    with Simulator(address) as sim, httpx.Client(timeout=10) as http:
        for _ in range(warmup):  # connections, code paths and caches warm, as in a real suite
            cycle(sim, http)
        return [cycle(sim, http) for _ in range(iterations)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=30)
    parser.add_argument("--address", default=os.environ.get("SIMULATORD_ADDRESS"))
    args = parser.parse_args()
    if args.address:
        samples = measure(args.address, args.iterations, args.warmup)
    else:
        with EmbeddedDaemon() as daemon:
            samples = measure(daemon.grpc_address, args.iterations, args.warmup)
    cuts = statistics.quantiles(samples, n=100)
    print(
        f"per-test cycle over {len(samples)} iterations: median {statistics.median(samples):.2f} ms, "
        f"p10 {cuts[9]:.2f} ms, p90 {cuts[89]:.2f} ms, p99 {cuts[98]:.2f} ms, mean {statistics.fmean(samples):.2f} ms"
    )


if __name__ == "__main__":
    main()
