"""A real upstream on loopback for the proxy tests: JSON, gzip, large and streamed bodies, slow and broken answers."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

SSE_GAP = 0.2  # seconds between the events of /sse
BIG = bytes(range(256)) * (3 * 4096)  # 3 MiB


@dataclass
class Upstream:
    url: str
    received: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None
    counter: int = 0
    connections: set[socket.socket] = field(default_factory=set)

    def stop(self) -> None:
        """Stops answering: the port refuses connections and the ones kept alive are closed, as a stopped
        upstream's are."""
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        for sock in list(self.connections):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@contextmanager
def serving_upstream() -> Iterator[Upstream]:
    state: list[Upstream] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            state[0].connections.add(self.connection)

        def finish(self) -> None:
            state[0].connections.discard(self.connection)
            super().finish()

        def _send(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _events(self, blocks: list[bytes], gap: float, abort: bool = False) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")  # the body ends when the connection does
            self.end_headers()
            self.wfile.flush()
            for block in blocks:
                time.sleep(gap)
                self.wfile.write(block)
                self.wfile.flush()
            if abort:
                _reset(self.connection)
            self.close_connection = True

        def _serve(self) -> None:
            me = state[0]
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            me.received.append((self.command, self.path, headers, body))
            parts = urlsplit(self.path)
            path = parts.path
            if path == "/json" or path.startswith("/items/"):
                me.counter += 1
                payload = {"n": me.counter, "path": path, "query": dict(parse_qsl(parts.query))}
                self._send(
                    200,
                    [("content-type", "application/json"), ("x-upstream", "yes"), ("set-cookie", "sid=s3cr3t; Path=/")],
                    json.dumps(payload).encode(),
                )
            elif path == "/echo":
                self._send(200, [("content-type", "application/json")], json.dumps(headers).encode())
            elif path == "/gzip":
                self._send(
                    200,
                    [("content-type", "text/plain"), ("content-encoding", "gzip")],
                    gzip.compress(b"compressed hello " * 50, mtime=0),
                )
            elif path == "/big":
                self._send(200, [("content-type", "application/octet-stream")], BIG)
            elif path == "/status":
                code = int(dict(parse_qsl(parts.query)).get("code", "200"))
                self._send(code, [("retry-after", "7"), ("content-type", "application/json")], b'{"error":"busy"}')
            elif path == "/sse":
                self._events([f'data: {{"i": {i}}}\n\n'.encode() for i in range(3)] + [b"data: [DONE]\n\n"], SSE_GAP)
            elif path == "/sse-crlf":
                self._events([b"data:one\r\n\r\n", b"event: two\r\ndata:2\r\n\r\n"], 0.05)
            elif path == "/sse-abort":
                self._events([b"data: a\n\n", b"data: b\n\n"], 0.05, abort=True)
            elif path == "/broken":
                self.send_response(200)
                self.send_header("content-length", "1000")
                self.end_headers()
                self.wfile.write(b"x" * 100)
                self.wfile.flush()
                time.sleep(0.05)
                _reset(self.connection)
                self.close_connection = True
            elif path == "/slow":
                time.sleep(2)
                self._send(200, [], b"late")
            else:
                self._send(404, [("content-type", "text/plain")], b"no such upstream path")

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _serve

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.handle_error = lambda request, address: None  # type: ignore[method-assign]  # clients that left early
    upstream = Upstream(f"http://127.0.0.1:{server.server_port}", server=server)
    state.append(upstream)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield upstream
    finally:
        if server.socket.fileno() != -1:
            upstream.stop()


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    with serving_upstream() as running:
        yield running
