"""Connection faults and timing against a real daemon: what a real httpx client sees, and what the journal says."""

from __future__ import annotations

import random
import time

import grpc
import httpx
import pytest

from simulatord.v1 import exchange_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client import behaviours as b
from simulatord_client.embedded import EmbeddedDaemon
from tests.service.shaping_support import MAX_STREAM_SECONDS, Control, program, shaping_control, shaping_daemon, stub
from tests.service.test_bad_input import details

__all__ = ["shaping_control", "shaping_daemon"]  # fixtures used by name below

ABORTED = exchange_pb2.RESPONSE_END_ABORTED
COMPLETE = exchange_pb2.RESPONSE_END_COMPLETE
GONE = exchange_pb2.RESPONSE_END_CLIENT_DISCONNECTED
BODY = b"0123456789" * 10


def fresh() -> httpx.Client:
    """A client without pooled connections, so a fault never meets a connection another test left."""
    return httpx.Client(timeout=5)


# --- each fault, as a client sees it --------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "error", "message"),
    [
        (b.fault("reset"), httpx.ReadError, "reset"),
        (b.fault("close"), httpx.RemoteProtocolError, "without sending a response"),
        (b.fault("garbage"), httpx.RemoteProtocolError, "illegal status line"),
        (b.fault("garbage", garbage=b"\x16\x03\x01 tls?"), httpx.RemoteProtocolError, "illegal"),
    ],
    ids=["reset", "close", "garbage", "garbage-custom"],
)
def test_faults_before_any_response(
    shaping_control: Control, response: stub_pb2.Response, error: type[Exception], message: str
) -> None:
    sim = program(shaping_control, stub("/f", response))
    with fresh() as client, pytest.raises(error, match=message):
        client.get(sim.url("/f"))
    (exchange,) = sim.exchanges(path="/f")
    assert exchange.response.status == 0, "no status line was sent"
    assert not exchange.response.headers
    assert exchange.response.end == ABORTED


def test_truncated_body_sends_headers_then_fewer_bytes_than_content_length(
    shaping_control: Control,
) -> None:
    sim = program(shaping_control, stub("/t", b.fault("truncated_body", body=BODY, after_body_bytes=30)))
    with fresh() as client, client.stream("GET", sim.url("/t")) as response:
        assert response.status_code == 200
        assert response.headers["content-length"] == "100"
        with pytest.raises(httpx.RemoteProtocolError, match=r"received 30 bytes, expected 100"):
            response.read()
    (exchange,) = sim.exchanges(path="/t")
    assert (exchange.response.status, exchange.response.body_size, exchange.response.end) == (200, 30, ABORTED)


def test_truncated_body_defaults_to_half(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/t", b.fault("truncated_body", body=BODY)))
    with fresh() as client, pytest.raises(httpx.RemoteProtocolError, match=r"received 50 bytes, expected 100"):
        client.get(sim.url("/t"))


def test_reset_mid_body(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/r", b.fault("reset", body=BODY, after_body_bytes=40)))
    received = bytearray()
    with fresh() as client, client.stream("GET", sim.url("/r")) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.ReadError, match="reset"):
            for chunk in response.iter_raw():
                received.extend(chunk)
    assert bytes(received) == BODY[:40], "the bytes before the reset arrive intact"
    (exchange,) = sim.exchanges(path="/r")
    assert (exchange.response.body_size, exchange.response.end) == (40, ABORTED)


def test_malformed_chunk(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/c", b.fault("malformed_chunk", body=BODY, after_body_bytes=10)))
    with fresh() as client, client.stream("GET", sim.url("/c")) as response:
        assert response.headers["transfer-encoding"] == "chunked"
        with pytest.raises(httpx.RemoteProtocolError, match="illegal chunk header"):
            response.read()
    (exchange,) = sim.exchanges(path="/c")
    assert (exchange.response.body_size, exchange.response.end) == (10, ABORTED)


def test_malformed_chunk_as_the_first_chunk(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/c", b.fault("malformed_chunk", body=BODY)))
    with fresh() as client, pytest.raises(httpx.RemoteProtocolError, match="illegal chunk header"):
        client.get(sim.url("/c"))


def test_hang_until_the_client_gives_up(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/h", b.fault("hang")))
    with httpx.Client(timeout=0.5) as client, pytest.raises(httpx.ReadTimeout):
        client.get(sim.url("/h"))
    (exchange,) = sim.exchanges(path="/h")
    assert (exchange.response.status, exchange.response.end) == (0, GONE)


def test_hang_is_bounded_by_the_daemon(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/h", b.fault("hang", hang_for=60)))
    started = time.monotonic()
    with httpx.Client(timeout=30) as client, pytest.raises(httpx.RemoteProtocolError, match="without sending"):
        client.get(sim.url("/h"))
    assert MAX_STREAM_SECONDS - 0.2 < time.monotonic() - started < MAX_STREAM_SECONDS + 3
    (exchange,) = sim.exchanges(path="/h")
    assert exchange.response.end == ABORTED


def test_hang_for_a_programmed_time(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/h", b.fault("hang", hang_for=0.3)))
    started = time.monotonic()
    with fresh() as client, pytest.raises(httpx.RemoteProtocolError):
        client.get(sim.url("/h"))
    assert 0.3 <= time.monotonic() - started < MAX_STREAM_SECONDS


def test_the_connection_after_a_fault_is_not_reused_and_the_daemon_keeps_serving(
    shaping_control: Control,
) -> None:
    sim = program(shaping_control, stub("/f", b.fault("reset")), stub("/ok", b.text("fine")))
    with fresh() as client:
        assert client.get(sim.url("/ok")).text == "fine"
        with pytest.raises(httpx.ReadError):
            client.get(sim.url("/f"))
        assert client.get(sim.url("/ok")).text == "fine"


# --- timing ---------------------------------------------------------------------------------------


def test_read_timeout_via_delay(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/slow", b.timed(b.text("late"), header_delay=b.fixed(1.0))))
    with httpx.Client(timeout=httpx.Timeout(5, read=0.3)) as client, pytest.raises(httpx.ReadTimeout):
        client.get(sim.url("/slow"))
    (exchange,) = sim.exchanges(path="/slow")
    assert (exchange.response.status, exchange.response.end) == (0, GONE), "the client left before the status line"


def test_body_delay_sends_headers_first(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/b", b.timed(b.text("body"), body_delay=0.4)))
    with fresh() as client:
        started = time.monotonic()
        with client.stream("GET", sim.url("/b")) as response:
            headers_after = time.monotonic() - started
            assert response.status_code == 200
            assert response.read() == b"body"
            body_after = time.monotonic() - started
    # Lower bounds only: a loaded machine can make anything later, never earlier.
    assert body_after - headers_after >= 0.39, (headers_after, body_after)
    with httpx.Client(timeout=httpx.Timeout(5, read=0.1)) as client, client.stream("GET", sim.url("/b")) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.ReadTimeout):
            response.read()


def test_dribble_spreads_the_body_over_the_duration(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/d", b.timed(b.text("abcdefghij"), dribble=b.dribble(2, 0.5))))
    arrivals = []
    with fresh() as client:
        started = time.monotonic()
        with client.stream("GET", sim.url("/d")) as response:
            assert response.headers["content-length"] == "10"
            for chunk in response.iter_raw():
                arrivals.append((time.monotonic() - started, chunk))
    assert b"".join(c for _, c in arrivals) == b"abcdefghij"
    assert len(arrivals) >= 3, "the body arrives in pieces"
    assert 0.49 < arrivals[-1][0] < 5


def test_seeded_uniform_delays_repeat_across_sessions(shaping_control: Control) -> None:
    # The daemon draws with Python's generator seeded as programmed, so the draws are known in advance;
    # each exchange lasts at least its draw (a loaded machine only adds), in both runs.
    generator = random.Random(42)
    draws = [generator.uniform(0.0, 0.3) for _ in range(4)]
    for _ in range(2):
        response = b.timed(b.text("x"), header_delay=b.uniform(0.0, 0.3, seed=42))
        sim = program(shaping_control, stub("/u", response))
        with fresh() as client:
            for _ in range(4):
                client.get(sim.url("/u"))
        durations = [e.response.duration.ToNanoseconds() / 1e9 for e in sim.exchanges(4, path="/u")]
        assert all(draw - 0.002 <= took < draw + 1.0 for draw, took in zip(draws, durations, strict=True)), (
            draws,
            durations,
        )


# --- composition ----------------------------------------------------------------------------------


def test_a_sequence_whose_second_answer_is_a_fault(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/seq", b.text("first"), b.fault("reset"), b.text("third")))
    with fresh() as client:
        assert client.get(sim.url("/seq")).text == "first"
        with pytest.raises(httpx.ReadError):
            client.get(sim.url("/seq"))
        assert client.get(sim.url("/seq")).text == "third"
    ends = [e.response.end for e in sim.exchanges(3, path="/seq")]
    assert ends == [COMPLETE, ABORTED, COMPLETE]


def test_a_retry_loop_sees_503_503_200(shaping_control: Control) -> None:
    sim = program(
        shaping_control,
        stub("/flaky", b.status(503, {"retry-after": "0"}), b.status(503), b.json({"ok": True})),
    )
    seen = []
    with fresh() as client:
        for _ in range(5):
            response = client.get(sim.url("/flaky"))
            seen.append(response.status_code)
            if response.status_code == 200:
                break
    assert seen == [503, 503, 200]


def test_a_retry_loop_survives_a_reset_then_succeeds(shaping_control: Control) -> None:
    sim = program(shaping_control, stub("/r", b.fault("reset"), b.fault("close"), b.text("ok")))
    failures: list[type[Exception]] = []
    with fresh() as client:
        for _ in range(5):
            try:
                assert client.get(sim.url("/r")).text == "ok"
                break
            except httpx.TransportError as exc:
                failures.append(type(exc))
    assert failures == [httpx.ReadError, httpx.RemoteProtocolError]


# --- validation -----------------------------------------------------------------------------------


def _rejected(control: Control, response: stub_pb2.Response) -> list[str]:
    with pytest.raises(grpc.RpcError) as caught:
        program(control, stub("/x", b.text("fine"), response))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, fields = details(caught.value)
    assert reason.startswith("INVALID_"), reason
    return fields


@pytest.mark.parametrize(
    ("response", "field"),
    [
        (b.timed(b.text("x"), header_delay=b.uniform(0.5, 0.1)), "header_delay.uniform.max"),
        (b.timed(b.text("x"), header_delay=b.lognormal(0.0, 1.0)), "header_delay.lognormal.median"),
        (b.timed(b.text("x"), header_delay=b.lognormal(0.1, -1.0)), "header_delay.lognormal.sigma"),
        (b.timed(b.text("x"), header_delay=b.lognormal(0.1, 1.0, cap=-1)), "header_delay.cap"),
        (b.timed(b.text("x"), header_delay=stub_pb2.Delay()), "header_delay"),
        (b.timed(b.text("x"), body_delay=b.fixed(601)), "body_delay.fixed"),
        (b.timed(b.text("x"), dribble=b.dribble(0, 1)), "dribble.chunk_bytes"),
        (b.timed(b.text("x"), dribble=b.dribble(1, 0)), "dribble.duration"),
        (stub_pb2.Response(fault=stub_pb2.Fault()), "fault.kind"),
        (b.fault("reset", body=b"abc", after_body_bytes=-1), "fault.after_body_bytes"),
        (b.fault("reset", body=b"abc", after_body_bytes=4), "fault.after_body_bytes"),
        (b.fault("truncated_body", body=b"abc", after_body_bytes=3), "fault.after_body_bytes"),
        (b.fault("truncated_body"), "fault.kind"),
        (b.fault("close", after_body_bytes=0), "fault.after_body_bytes"),
        (b.fault("reset", garbage=b"x"), "fault.garbage"),
        (b.fault("reset", hang_for=1), "fault.hang_for"),
        (b.timed(b.fault("close"), dribble=b.dribble(1, 1)), "fault"),
        (b.timed(b.fault("hang"), body_delay=1), "fault"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_bad_timing_and_faults_are_rejected_with_field_paths(
    shaping_control: Control, response: stub_pb2.Response, field: str
) -> None:
    assert _rejected(shaping_control, response) == [f"stubs[0].responses[1].{field}"]


def test_every_problem_is_reported_at_once(shaping_control: Control) -> None:
    response = b.timed(b.fault("reset", after_body_bytes=-5), header_delay=b.uniform(1, 0), dribble=b.dribble(-1, 1))
    fields = _rejected(shaping_control, response)
    assert sorted(fields) == sorted(
        f"stubs[0].responses[1].{f}"
        for f in ("header_delay.uniform.max", "dribble.chunk_bytes", "fault.after_body_bytes")
    )


def test_a_shaped_stub_reads_back_as_programmed(shaping_control: Control) -> None:
    response = b.timed(b.text("x"), header_delay=b.lognormal(0.05, 0.5, seed=3, cap=1))
    sim = program(shaping_control, stub("/x", response))
    (listed,) = shaping_control.ListStubs(pb.ListStubsRequest(parent=sim.name)).stubs
    assert listed.responses[0].header_delay == response.header_delay


# --- the optional uvloop event loop ----------------------------------------------------------------


def test_faults_under_uvloop() -> None:
    """uvloop's transports close differently (a FIN could overtake the RST): the same faults, the same errors."""
    pytest.importorskip("uvloop")
    with EmbeddedDaemon(["--loop", "uvloop"]) as daemon, grpc.insecure_channel(daemon.grpc_address) as channel:
        sim = program(
            pb_grpc.SimulatorServiceStub(channel),
            stub("/reset", b.fault("reset")),
            stub("/mid", b.fault("reset", body=BODY, after_body_bytes=40)),
            stub("/sse", b.sse(["a", "b", "c", "d"], abort_after=3)),
            stub("/cut", b.fault("truncated_body", body=BODY)),
            stub("/close", b.fault("close")),
        )
        for path, error in [
            ("/reset", httpx.ReadError),
            ("/mid", httpx.ReadError),
            ("/sse", httpx.ReadError),
            ("/cut", httpx.RemoteProtocolError),
            ("/close", httpx.RemoteProtocolError),
        ]:
            with fresh() as client, pytest.raises(error):
                client.get(sim.url(path))
        assert [e.response.end for e in sim.exchanges(5)] == [ABORTED] * 5
