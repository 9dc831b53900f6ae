"""Stream and fault specs: SSE encoding, validation and defaults, and what a shaped response spec carries."""

from __future__ import annotations

import pytest

from simulatord.control.convert import responses
from simulatord.errors import SpecErrors
from simulatord.responding import delivery, faults, streaming
from simulatord.responding.reply import ResponseSpec
from simulatord.responding.timing import Delay, DelayKind, Dribble
from simulatord.v1 import stub_pb2


def encode(**fields: object) -> tuple[bytes, list[str]]:
    errors = SpecErrors()
    args = {"event": "", "data": "", "event_id": "", "retry_ms": None, "comment": "", **fields}
    return streaming.sse_event(where="e", errors=errors, **args), [v.field for v in errors.violations]  # type: ignore[arg-type]


def test_sse_encoding() -> None:
    assert encode(data="hi")[0] == b"data: hi\n\n"
    assert encode(data="a\nb", event="t", event_id="7", retry_ms=1500)[0] == (
        b"id: 7\nevent: t\nretry: 1500\ndata: a\ndata: b\n\n"
    )
    assert encode(comment="note\nmore")[0] == b": note\n: more\n\n"
    assert encode(event="ping")[0] == b"event: ping\ndata: \n\n", "a typed event without data still dispatches"
    assert encode()[0] == b":\n\n"


@pytest.mark.parametrize(("fields", "bad"), [({"event": "a\nb"}, "e.event"), ({"event_id": "1\r"}, "e.id")])
def test_sse_fields_reject_line_breaks(fields: dict[str, str], bad: str) -> None:
    assert encode(**fields)[1] == [bad]


def build_stream(**overrides: object) -> tuple[streaming.StreamSpec | None, list[str]]:
    errors = SpecErrors()
    args: dict[str, object] = {
        "kind": "sse",
        "pieces": [streaming.Piece(b"data: x\n\n")],
        "gap": None,
        "keep_alive": 0.0,
        "after_last": "end",
        "abort_after": 0,
        "abort": "reset",
        **overrides,
    }
    return streaming.stream(where="s", errors=errors, **args), [v.field for v in errors.violations]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"pieces": []}, "s.events"),
        ({"abort_after": -1}, "s.abort_after"),
        ({"abort_after": 2}, "s.abort_after"),
        ({"after_last": "repeat"}, "s.after_last"),
        ({"keep_alive": -1.0}, "s.keep_alive"),
        ({"pieces": [streaming.Piece(b"x", delay=-1)]}, "s.events[0].delay"),
        ({"kind": "chunked", "pieces": []}, "s.chunks"),
    ],
)
def test_stream_validation(overrides: dict[str, object], field: str) -> None:
    spec, problems = build_stream(**overrides)
    assert spec is None and problems == [field]


def test_repeat_may_abort_after_more_pieces_than_programmed() -> None:
    spec, problems = build_stream(after_last="repeat", abort_after=10, pieces=[streaming.Piece(b"x", 0.1)])
    assert not problems and spec is not None and spec.abort_after == 10


def test_fault_defaults() -> None:
    errors = SpecErrors()
    truncated = faults.fault("truncated_body", None, b"", 0.0, 10, "f", errors)
    malformed = faults.fault("malformed_chunk", None, b"", 0.0, 10, "f", errors)
    reset = faults.fault("reset", None, b"", 0.0, 10, "f", errors)
    assert not errors.violations
    assert truncated is not None and truncated.cut(10) == 5
    assert malformed is not None and malformed.cut(10) == 0
    assert reset is not None and reset.cut(10) is None, "a plain reset happens before any byte"


def shape(spec: ResponseSpec, **parts: object) -> tuple[ResponseSpec, list[str]]:
    errors = SpecErrors()
    args: dict[str, object] = {
        "header_delay": None,
        "body_delay": None,
        "dribble": None,
        "fault": None,
        "stream": None,
        **parts,
    }
    shaped = delivery.shape(spec, where="r", errors=errors, **args)  # type: ignore[arg-type]
    return shaped, [v.field for v in errors.violations]


def test_sse_defaults_are_added_once_when_programmed_and_a_header_wins() -> None:
    stream, _ = build_stream()
    spec, violations = shape(
        ResponseSpec(headers=(("Content-Type", "text/event-stream; charset=utf-8"),)), stream=stream
    )
    assert not violations
    assert spec.headers == (("Content-Type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache"))
    assert [b.name for b in spec.behaviours] == ["sse"]


def test_nothing_to_shape_keeps_the_spec_plain() -> None:
    plain = ResponseSpec(body=b"x")
    assert shape(plain) == (plain, [])


def test_a_stream_refuses_a_fault_a_dribble_and_a_body() -> None:
    stream, _ = build_stream()
    fault = faults.fault("reset", None, b"", 0.0, 1, "f", SpecErrors())
    _, violations = shape(ResponseSpec(body=b"abc"), stream=stream, fault=fault, dribble=Dribble(1, 1.0))
    assert violations == ["r.sse", "r.fault", "r.dribble"]


def test_one_delivering_behaviour_per_response_after_the_waits() -> None:
    delay = Delay(DelayKind.FIXED, 0.01)
    fault = faults.fault("truncated_body", None, b"", 0.0, 4, "f", SpecErrors())
    spec, violations = shape(ResponseSpec(body=b"abcd"), header_delay=delay, body_delay=delay, fault=fault)
    assert not violations
    assert [b.name for b in spec.behaviours] == ["header_delay", "fault"]
    paced, _ = shape(ResponseSpec(body=b"abcd"), body_delay=delay, dribble=Dribble(2, 0.01))
    assert [b.name for b in paced.behaviours] == ["paced_body"]


def test_a_plain_response_stays_on_the_plain_path() -> None:
    """No behaviour joins the chain unless its field is set, so the edge sends such replies directly."""
    errors = SpecErrors()
    plain = responses.response(stub_pb2.Response(status=201, body_text="x"), "r", errors)
    shaped = responses.response(stub_pb2.Response(fault=stub_pb2.Fault(kind=stub_pb2.FAULT_KIND_CLOSE)), "r", errors)
    assert not errors.violations
    assert plain.behaviours == ()
    assert [b.name for b in shaped.behaviours] == ["fault"]
