"""How much one tenant's hostile stubs delay another tenant: the victim's latency alone, then under attack.

    .venv/bin/python bench/stall.py                      # this checkout
    .venv/bin/python bench/stall.py --tree /tmp/old-tree # a daemon from another source tree (a git worktree)

A victim session answers a plain stub; an attacker session, on the same daemon, programs what issue 10 found
stalling everyone: a template looping 2000 x 2000 times, `lipsum(n=20000)`, a catastrophic body regex
`(a+)+$` (against 24 `a`s and a `b`: half a second on a backtracking engine), a template folding
`10**(10**6)` when programmed. Two attacker threads hit those stubs (and reprogram the folding one) while
the victim sends 400 sequential GETs (`--requests`); the same victim run without the attack is the baseline.
Traffic is loopback only and bounded (the attack stops when the victim is done, every request has a 10 s
timeout). Prints the victim's p50, p99 and max in milliseconds for both runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import threading
import time
from pathlib import Path

import grpc
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "client" / "python"))

from simulatord.v1 import simulator_service_pb2 as pb  # noqa: E402
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc  # noqa: E402
from simulatord.v1 import stub_pb2  # noqa: E402
from simulatord_client.embedded import EmbeddedDaemon  # noqa: E402

VICTIM_REQUESTS = 400
TEMPLATE = stub_pb2.ResponseTemplate()


def at(path: str, response: stub_pb2.Response, **request: object) -> stub_pb2.Stub:
    return stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact=path), **request),  # type: ignore[arg-type]
        responses=[response],
    )


HOSTILE = [
    at(
        "/loop",
        stub_pb2.Response(
            body_text="{% for i in range(2000) %}{% for j in range(2000) %}x{% endfor %}{% endfor %}",
            template=TEMPLATE,
        ),
    ),
    at("/lipsum", stub_pb2.Response(body_text="{{ lipsum(n=20000) }}", template=TEMPLATE)),
    at("/regex", stub_pb2.Response(), body=[stub_pb2.BodyMatcher(regex="(a+)+$")]),
]
FOLDING = at("/fold", stub_pb2.Response(body_text="{{ 10**(10**6) }}", template=TEMPLATE))


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {statistics.median(ordered):7.2f}  p99 {p99:7.2f}  max {ordered[-1]:8.2f} ms"


def victim(url: str, requests: int) -> list[float]:
    out = []
    with httpx.Client(timeout=60) as http:
        for _ in range(requests):
            started = time.perf_counter()
            assert http.get(url).status_code == 200
            out.append((time.perf_counter() - started) * 1000)
    return out


def attack(base: str, control: pb_grpc.SimulatorServiceStub, parent: str, done: threading.Event, n: int) -> None:
    with httpx.Client(timeout=10) as http:
        while not done.is_set():
            for path, body in (("/loop", b""), ("/lipsum", b""), ("/regex", b"a" * 24 + b"b")):
                if done.is_set():
                    return
                with contextlib.suppress(httpx.HTTPError):
                    http.request("POST" if body else "GET", base + path, content=body)
            if n == 0:
                with contextlib.suppress(grpc.RpcError):
                    control.CreateStub(pb.CreateStubRequest(parent=parent, stub=FOLDING), timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", default=str(ROOT), help="source tree whose daemon to measure")
    parser.add_argument("--requests", type=int, default=VICTIM_REQUESTS, help="victim requests per run")
    args = parser.parse_args()
    tree = str(Path(args.tree).resolve())
    # The daemon imports simulatord from the tree: its working directory comes first on its sys.path.
    daemon = EmbeddedDaemon(env={"PYTHONPATH": tree})
    cwd = os.getcwd()
    os.chdir(tree)
    try:
        daemon.start()
    finally:
        os.chdir(cwd)
    try:
        with grpc.insecure_channel(daemon.grpc_address) as channel:
            control = pb_grpc.SimulatorServiceStub(channel)
            plain = at("/ping", stub_pb2.Response(body_text="pong"))
            victim_session = control.CreateSession(pb.CreateSessionRequest(parent="tenants/victim", stubs=[plain]))
            attacker = control.CreateSession(pb.CreateSessionRequest(parent="tenants/attacker", stubs=HOSTILE))
            url = victim_session.session.base_url + "/ping"
            victim(url, 50)  # warm-up
            alone = victim(url, args.requests)
            done = threading.Event()
            attackers = [
                threading.Thread(
                    target=attack, args=(attacker.session.base_url, control, attacker.session.name, done, n)
                )
                for n in range(2)
            ]
            for thread in attackers:
                thread.start()
            time.sleep(0.5)
            attacked = victim(url, args.requests)
            done.set()
            for thread in attackers:
                thread.join(60)
    finally:
        daemon.stop()
    print(f"daemon from {tree}")
    print(f"  victim alone:          {percentiles(alone)}")
    print(f"  victim under attack:   {percentiles(attacked)}")


if __name__ == "__main__":
    main()
