"""HTTP/2 against a real daemon: h2c with prior knowledge, h2 over TLS by ALPN, and streams and faults over both."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import httpx
import pytest

from simulatord.v1 import exchange_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client import behaviours as b
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import needs_http2
from tests.service.shaping_support import Control, program, shaping_control, shaping_daemon, stub

__all__ = ["shaping_control", "shaping_daemon"]  # fixtures used by name below

ABORTED = exchange_pb2.RESPONSE_END_ABORTED
COMPLETE = exchange_pb2.RESPONSE_END_COMPLETE
GONE = exchange_pb2.RESPONSE_END_CLIENT_DISCONNECTED


def h2c() -> httpx.Client:
    """HTTP/2 over cleartext with prior knowledge: httpx skips HTTP/1.1 when http1 is off."""
    return httpx.Client(http1=False, http2=True, timeout=5)


@needs_http2
def test_h2c_reaches_the_same_stubs_and_the_journal_says_2(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/hello", b.json({"hello": "h2"})))
    with h2c() as client:
        response = client.get(sim.url("/hello"))
    assert response.http_version == "HTTP/2"
    assert response.json() == {"hello": "h2"}
    with httpx.Client() as client:
        assert client.get(sim.url("/hello")).http_version == "HTTP/1.1"
    versions = [e.request.http_version for e in sim.exchanges(2, path="/hello")]
    assert versions == ["2", "1.1"]


@needs_http2
def test_sse_over_h2c_aborted_after_3_events(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/sse", b.sse(["a", "b", "c", "d"], abort_after=3)))
    lines: list[str] = []
    # httpcore's HTTP/2 connection acknowledges every DATA frame, so the reset may meet a write (WriteError)
    # and even overtake the response headers or the last event: the client sees a prefix of the stream.
    with (
        h2c() as client,
        pytest.raises(httpx.NetworkError, match="reset"),
        client.stream("GET", sim.url("/sse")) as response,
    ):
        assert response.http_version == "HTTP/2"
        lines.extend(response.iter_lines())
    assert [line for line in lines if line] == ["data: a", "data: b", "data: c"][: len([x for x in lines if x])]
    (exchange,) = sim.exchanges(path="/sse")
    assert (exchange.request.http_version, exchange.response.event_count, exchange.response.end) == ("2", 3, ABORTED)


def _until(conn: h2.connection.H2Connection, sock: socket.socket, done: Callable[[h2.events.Event], bool]) -> bytes:
    """Reads frames until `done` holds for an event; returns the DATA received on the way."""
    data = bytearray()
    while True:
        chunk = sock.recv(65536)
        assert chunk, "the daemon closed the connection"
        for event in conn.receive_data(chunk):
            if isinstance(event, h2.events.DataReceived):
                data.extend(event.data)
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if done(event):
                sock.sendall(conn.data_to_send())
                return bytes(data)
        sock.sendall(conn.data_to_send())


@needs_http2
def test_a_client_cancelling_its_h2_stream_is_a_disconnect(shaping_control: Control) -> None:
    """httpx never sends RST_STREAM (it just forgets a stream closed early), so this speaks h2 itself."""
    sim = program(
        shaping_control,
        stub("/hold", b.sse(["a"], after_last="hold_open")),
        stub("/ok", b.text("still here")),
    )
    url = httpx.URL(sim.url(""))
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    with socket.create_connection((url.host, url.port or 80), timeout=5) as sock:
        conn.initiate_connection()

        def get(stream_id: int, path: str) -> None:
            headers = [(":method", "GET"), (":scheme", "http"), (":authority", url.netloc.decode()), (":path", path)]
            conn.send_headers(stream_id, headers, end_stream=True)
            sock.sendall(conn.data_to_send())

        get(1, url.path + "/hold")
        first = _until(conn, sock, lambda e: isinstance(e, h2.events.DataReceived) and e.stream_id == 1)
        assert first == b"data: a\n\n"
        conn.reset_stream(1, h2.errors.ErrorCodes.CANCEL)
        sock.sendall(conn.data_to_send())
        (exchange,) = sim.exchanges(path="/hold")
        assert (exchange.response.event_count, exchange.response.end) == (1, GONE)
        # Only the stream was cancelled: the connection still serves.
        get(3, url.path + "/ok")
        assert _until(conn, sock, lambda e: isinstance(e, h2.events.StreamEnded) and e.stream_id == 3) == b"still here"


@needs_http2
@pytest.mark.parametrize(
    ("response", "error"),
    [
        (b.fault("reset"), httpx.NetworkError),  # ReadError, or WriteError if httpcore was acknowledging data
        (b.fault("close"), httpx.RemoteProtocolError),
        (b.fault("truncated_body", body=b"x" * 100), httpx.RemoteProtocolError),
        # HTTP/2 has no chunked coding: a malformed frame instead. httpcore reports it as a local error while
        # it waits for the headers, and lets h2's own ProtocolError escape unmapped while it reads a body.
        (b.fault("malformed_chunk", body=b"x" * 100), (httpx.LocalProtocolError, h2.exceptions.ProtocolError)),
    ],
    ids=["reset", "close", "truncated", "malformed-frame"],
)
def test_faults_over_h2c(
    shaping_control: Control, response: stub_pb2.Response, error: type[Exception] | tuple[type[Exception], ...]
) -> None:
    sim = program(shaping_control, stub("/f", response))
    with h2c() as client, pytest.raises(error):
        client.get(sim.url("/f"))
    (exchange,) = sim.exchanges(path="/f")
    assert (exchange.request.http_version, exchange.response.end) == ("2", ABORTED)


# --- TLS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDaemon]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder: Path = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    with EmbeddedDaemon(["--tls-cert", str(cert), "--tls-key", str(key)]) as running:
        yield running


@needs_http2
def test_tls_negotiates_h2_by_alpn_and_keeps_http_1_1(tls_daemon: EmbeddedDaemon) -> None:
    assert tls_daemon.http_url.startswith("https://")
    with grpc.insecure_channel(tls_daemon.grpc_address) as channel:
        sim = program(pb_grpc.SimulatorServiceStub(channel), stub("/secure", b.sse(["one", "two"])))
        assert sim.base_url.startswith("https://")
        with httpx.Client(http2=True, verify=False, timeout=5) as client:
            response = client.get(sim.url("/secure"))
        assert response.http_version == "HTTP/2"
        assert response.text == "data: one\n\ndata: two\n\n"
        with httpx.Client(verify=False, timeout=5) as client:
            assert client.get(sim.url("/secure")).http_version == "HTTP/1.1"
        versions = [e.request.http_version for e in sim.exchanges(2, path="/secure")]
        assert versions == ["2", "1.1"]


def test_a_reset_over_tls(tls_daemon: EmbeddedDaemon) -> None:
    with grpc.insecure_channel(tls_daemon.grpc_address) as channel:
        sim = program(pb_grpc.SimulatorServiceStub(channel), stub("/r", b.fault("reset")))
        # The daemon sends a RST, but Python's ssl module (SSL_read_ex) reports a reset under TLS as an
        # unexpected EOF, which httpx turns into "Server disconnected without sending a response".
        with (
            httpx.Client(verify=False, timeout=5) as client,
            pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)),
        ):
            client.get(sim.url("/r"))
        assert sim.exchanges(path="/r")[0].response.end == ABORTED
