"""The pytest-httpserver peer: serves the /hello stub on a port for wrk, or runs the per-test cycle in-process as a pytest suite would."""

# pytest-httpserver has no daemon of its own: tests start it inside the test process.
# The benchmark therefore drives it from this small subprocess, in two modes:
#   serve        - start HTTPServer with the stub, print "ready http://HOST:PORT", serve until SIGTERM
#   cycle-worker - start HTTPServer once (as the `httpserver` session fixture does), then for each
#                  line "N" on stdin run N cycles and print one JSON line of per-cycle milliseconds.
from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

import httpx
from pytest_httpserver import HTTPServer

HELLO = {"message": "hello"}


def serve(host: str, port: int) -> None:
    # Defaults are kept (threaded=False, request log on) because that is what a test suite gets.
    server = HTTPServer(host=host, port=port)
    server.expect_request("/hello", method="GET").respond_with_json(HELLO)
    server.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"ready http://{host}:{server.port}", flush=True)
    stop.wait()
    server.stop()


def cycle_worker(host: str) -> None:
    server = HTTPServer(host=host, port=0)
    server.start()
    # One persistent client, as a test suite would keep one; the server closes connections itself.
    client = httpx.Client()
    url = server.url_for("/hello")
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            server.expect_request("/hello", method="GET").respond_with_json(HELLO)
            r = client.get(url)
            log = server.log
            server.clear()
            times.append((time.perf_counter() - t0) * 1000)
            # Checked after timing: a wrong answer must fail the run, not skew it.
            assert r.status_code == 200 and r.json() == HELLO, r.text
            assert len(log) == 1 and log[0][0].path == "/hello", log
        print(json.dumps(times), flush=True)
    server.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["serve", "cycle-worker"])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()
    if a.mode == "serve":
        serve(a.host, a.port)
    else:
        cycle_worker(a.host)


if __name__ == "__main__":
    main()
