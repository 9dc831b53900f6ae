"""Latency of requests on one kept-alive connection, per server profile: what pooled clients (httpx, requests) see.

    .venv/bin/python bench/keepalive.py [--requests 50]

Prints the median milliseconds of GETs to a plain stub over one connection, with httpx and with a raw socket
that sets TCP_NODELAY itself, for hypercorn, uvicorn on asyncio and uvicorn on uvloop. A figure near 44 ms is
Nagle's algorithm waiting for the client's delayed ACK: a server socket without TCP_NODELAY that writes a
response in two parts (it was uvicorn on asyncio before the daemon listened with IPPROTO_TCP). Loopback only,
bounded by --requests.
"""

from __future__ import annotations

import argparse
import socket
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import grpc
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "client" / "python"))

from simulatord.v1 import simulator_service_pb2 as pb  # noqa: E402
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc  # noqa: E402
from simulatord.v1 import stub_pb2  # noqa: E402
from simulatord_client.embedded import EmbeddedDaemon  # noqa: E402

PROFILES = {
    "hypercorn": ["--server", "hypercorn"],
    "uvicorn (asyncio)": ["--server", "uvicorn"],
    "uvicorn (uvloop)": ["--server", "uvicorn", "--loop", "uvloop"],
}


def raw_medians(url: str, count: int) -> float:
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
    with socket.create_connection((parts.hostname, parts.port or 80)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = f"GET {parts.path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()
        times = []
        for _ in range(count):
            started = time.perf_counter()
            sock.sendall(request)
            data = b""
            while not data.endswith(b"pong"):
                data += sock.recv(65536)
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    print("| server | httpx, kept alive (ms) | raw socket with TCP_NODELAY (ms) |")
    print("|---|---|---|")
    for name, flags in PROFILES.items():
        with EmbeddedDaemon(flags) as daemon, grpc.insecure_channel(daemon.grpc_address) as channel:
            ping = stub_pb2.Stub(
                request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact="/ping")),
                responses=[stub_pb2.Response(body_text="pong")],
            )
            control = pb_grpc.SimulatorServiceStub(channel)
            url = control.CreateSession(pb.CreateSessionRequest(parent="tenants/bench", stubs=[ping])).session.base_url
            with httpx.Client() as http:
                http.get(url + "/ping")  # connect first: only kept-alive requests are timed
                times = []
                for _ in range(args.requests):
                    started = time.perf_counter()
                    http.get(url + "/ping")
                    times.append((time.perf_counter() - started) * 1000)
            print(f"| {name} | {statistics.median(times):.2f} | {raw_medians(url + '/ping', args.requests):.2f} |")


if __name__ == "__main__":
    main()
