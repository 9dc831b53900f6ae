"""The embedded simulatord peer: the daemon on a thread of a test process, as the pytest plugin starts it by
default, driven through simulatord_client's in-process channel.

Modes (mirroring httpserver_peer.py, so that both in-process tools are measured the same way):
  cycle-worker - start ThreadDaemon once (as the plugin's session fixture does), then for each line "N" on
                 stdin run N per-test cycles and print one JSON line of per-cycle milliseconds;
  startup      - with the client imported first (a test process using the plugin has it), time from starting
                 the daemon (its import included) to the first 200 of a stub on a session made in process;
                 print the milliseconds.
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from urllib.parse import urlsplit

import httpx

from simulatord_client import Simulator, stub
from simulatord_client.inprocess import InProcessChannel

HELLO = {"message": "hello"}


def cycle_worker() -> None:
    from simulatord.embedded import ThreadDaemon

    with ThreadDaemon.from_args() as daemon, Simulator(daemon.grpc_address, channel=InProcessChannel(daemon)) as sim:
        client = httpx.Client()  # one persistent client, as the code under test would keep one
        hello = stub("GET", "/hello", json=HELLO)
        print("ready", flush=True)
        for line in sys.stdin:
            times = []
            for _ in range(int(line)):
                t0 = time.perf_counter()
                with sim.session(tenant="bench", stubs=[hello]) as s:
                    r = client.get(s.url + "/hello")
                    reqs = s.exchanges()
                times.append((time.perf_counter() - t0) * 1000)
                # Checked after timing: a wrong answer must fail the run, not skew it.
                assert r.status_code == 200 and r.json() == HELLO, r.text
                assert len(reqs) == 1, reqs
            print(json.dumps(times), flush=True)


def startup() -> None:
    t0 = time.perf_counter()
    from simulatord.embedded import ThreadDaemon

    daemon = ThreadDaemon.from_args().start()
    sim = Simulator(daemon.grpc_address, channel=InProcessChannel(daemon))
    session = sim.session(tenant="bench", stubs=[stub("GET", "/hello", json=HELLO)], ttl=None).open()
    url = urlsplit(session.url)
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port)
    connection.request("GET", url.path + "/hello")
    status = connection.getresponse().status
    elapsed = (time.perf_counter() - t0) * 1000
    assert status == 200, status
    print(f"{elapsed:.3f}", flush=True)
    daemon.stop()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["cycle-worker", "startup"])
    if ap.parse_args().mode == "startup":
        startup()
    else:
        cycle_worker()


if __name__ == "__main__":
    main()
