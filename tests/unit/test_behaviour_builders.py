"""The Python client's behaviour builders produce the protos the daemon expects."""

from __future__ import annotations

import pytest

from simulatord.v1 import stub_pb2
from simulatord_client import behaviours as b


def test_sse_builder() -> None:
    response = b.sse(["a", {"data": "b", "event": "t"}, b.event(comment="c")], abort_after=2, abort="close",
                     event_delay=b.uniform(0.1, 0.2, seed=4), keep_alive=15)  # fmt: skip
    stream = response.sse
    assert [e.data for e in stream.events] == ["a", "b", ""]
    assert stream.events[1].event == "t" and stream.events[2].comment == "c"
    assert (stream.abort_after, stream.abort) == (2, stub_pb2.STREAM_ABORT_CLOSE)
    assert stream.event_delay.seed == 4 and stream.event_delay.uniform.max.nanos == 200_000_000
    assert stream.keep_alive.seconds == 15
    assert response.WhichOneof("body") is None


def test_fault_builder() -> None:
    response = b.fault("reset", body="0123456789", after_body_bytes=4)
    assert response.fault.kind == stub_pb2.FAULT_KIND_RESET
    assert response.fault.HasField("after_body_bytes") and response.fault.after_body_bytes == 4
    assert response.body_bytes == b"0123456789"
    assert not b.fault("close").fault.HasField("after_body_bytes")
    assert b.fault("hang", hang_for=1.5).fault.hang_for.nanos == 500_000_000


def test_timed_copies() -> None:
    plain = b.text("x")
    timed = b.timed(plain, delay=0.1, header_delay=b.lognormal(0.05, 0.5), body_delay=0.2, dribble=b.dribble(1, 1))
    assert not plain.HasField("header_delay"), "the original is left alone"
    assert timed.body_delay.fixed.nanos == 200_000_000
    assert timed.header_delay.lognormal.sigma == 0.5


def test_chunked_builder() -> None:
    response = b.chunked([b"a", ("b", 0.5)], chunk_delay=0.1)
    assert [c.data for c in response.chunked.chunks] == [b"a", b"b"]
    assert response.chunked.chunks[1].delay.nanos == 500_000_000
    assert response.chunked.chunk_delay.fixed.nanos == 100_000_000


@pytest.mark.parametrize("call", [lambda: b.fault("explode"), lambda: b.sse(["a"], after_last="forever")])
def test_unknown_names_are_refused(call: object) -> None:
    with pytest.raises(ValueError, match="unknown"):
        call()  # type: ignore[operator]
