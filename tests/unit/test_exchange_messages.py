"""Recorded exchanges survive the trip to their message and back, as a journal kept outside the process needs."""

from __future__ import annotations

import dataclasses
import random
import subprocess
import sys
from enum import Enum
from typing import Any

import pytest

from simulatord.control.convert.exchanges import exchange_from_proto, exchange_to_proto
from simulatord.control.convert.scalars import epoch, timestamp
from simulatord.llm.simulation import LlmRecord
from simulatord.matching.matchers import Mismatch
from simulatord.matching.near_misses import NearMiss
from simulatord.matching.request import HttpRequest, Routing
from simulatord.names import SessionKey
from simulatord.responding.proxy import ProxyRecord
from simulatord.responding.wire import End
from simulatord.sessions.journal import Direction, Exchange, ExchangeKind, Frame
from simulatord.v1 import exchange_pb2
from simulatord.webhooks.spec import WebhookRecord

KEY = SessionKey("t", "s")
STUB = f"{KEY.name}/stubs/a"


def exchange(sequence: int, request: HttpRequest | None = None, **fields: Any) -> Exchange:
    base: dict[str, Any] = {
        "sequence": sequence,
        "request": request or HttpRequest("GET", "/", receive_time=1_700_000_000.25),
        "body_size": 0,
        "body_truncated": False,
        "stub_name": STUB,
        "near_misses": (),
        "status": 200,
        "response_headers": (),
        "response_body_size": 0,
        "duration": 0.001,
    }
    base.update(fields)
    return Exchange(**base)


def samples() -> list[Exchange]:
    """One of each kind of record, between them setting every field of every record to something not its default."""
    return [
        exchange(  # matched plain HTTP, over HTTP/2, addressed by host, with repeated headers and a binary body
            1,
            HttpRequest(
                "POST",
                "/items/1",
                "a=1&a=2&b=",
                (("content-type", "application/octet-stream"), ("x-k", "1"), ("x-k", "2")),
                b"\x00\xff\xfe binary \x80",
                1_700_000_000.123456,
                "2",
                Routing.HOST,
            ),
            body_size=4096,
            body_truncated=True,
            status=201,
            response_headers=(("set-cookie", "a=1"), ("set-cookie", "b=2"), ("content-type", "text/plain")),
            response_body_size=5,
            duration=0.123456789,
            end=End.COMPLETE,
            event_count=3,
            behaviours=("template", "delay", "fault"),
            error="",
        ),
        exchange(  # unmatched, with near misses that list what differed
            2,
            HttpRequest("GET", "/missing", headers=(("accept", "*/*"),), routing=Routing.HEADER),
            stub_name="",
            status=404,
            near_misses=(
                NearMiss(
                    f"{KEY.name}/stubs/b",
                    "GET /missing?x",
                    (Mismatch("query.x", "present", "absent"), Mismatch("header.accept", "json", "*/*")),
                ),
                NearMiss(f"{KEY.name}/stubs/c", "POST /missing", (Mismatch("method", "POST", "GET"),)),
                NearMiss(f"{KEY.name}/stubs/d", "", ()),
            ),
        ),
        exchange(
            3, HttpRequest("GET", "/ws", headers=(("upgrade", "websocket"),)), kind=ExchangeKind.WEBSOCKET_UPGRADE
        ),
        *(
            exchange(sequence, HttpRequest("GET", "/ws"), kind=ExchangeKind.WEBSOCKET_FRAME, frame=frame)
            for sequence, frame in enumerate(
                [
                    Frame(3, Direction.INBOUND, text="hello", size=5),
                    Frame(3, Direction.INBOUND, text="", size=0),
                    Frame(3, Direction.OUTBOUND, binary=b"\x00\x01", size=2, origin="rules[1]"),
                    Frame(3, Direction.OUTBOUND, binary=b"", origin="on_connect"),
                    Frame(3, Direction.OUTBOUND, close_code=4000, close_reason="bye", origin="control"),
                    Frame(3, Direction.INBOUND, close_code=1006),
                ],
                start=4,
            )
        ),
        exchange(  # a webhook the daemon sent, with what the receiver answered
            10,
            HttpRequest("POST", "https://hooks.example/in", headers=(("x-hub-signature-256", "sha256=ab"),)),
            stub_name="",
            kind=ExchangeKind.WEBHOOK,
            status=500,
            error="HTTP 500",
            webhook=WebhookRecord("d-1", 2, "https://hooks.example/in", b"\x00oops", "HTTP 500", STUB),
        ),
        exchange(  # an LLM simulation's answer, streamed
            11,
            HttpRequest("POST", "/v1/chat/completions", body=b'{"model":"gpt-4o"}'),
            stub_name=f"{KEY.name}/llm/rules/r1",
            event_count=12,
            llm=LlmRecord(
                endpoint="chat.completions",
                model="gpt-4o",
                message_count=4,
                tools=("search", "lookup"),
                rule="r1",
                stream=True,
                turn=2,
                input_tokens=120,
                output_tokens=33,
                refusal_reason="",
            ),
        ),
        exchange(  # an LLM request the simulation refused
            12,
            HttpRequest("POST", "/v1/messages"),
            stub_name="",
            status=400,
            llm=LlmRecord(endpoint="messages", refusal_reason="max_tokens missing"),
        ),
        exchange(  # forwarded to an upstream and recorded as a stub
            13,
            HttpRequest("GET", "/upstream"),
            behaviours=("proxy",),
            proxy=ProxyRecord("https://api.example/upstream", 0.25, f"{KEY.name}/stubs/rec-1", ""),
        ),
        exchange(  # forwarded, not recorded
            14,
            HttpRequest("GET", "/upstream"),
            end=End.CLIENT_DISCONNECTED,
            proxy=ProxyRecord("https://api.example/upstream", 1.5, "", "status 500 is not recorded"),
        ),
        exchange(15, end=End.ABORTED, error="connection reset on purpose", behaviours=("fault",)),
    ]


SAMPLES = samples()
RECORDS = (Exchange, HttpRequest, NearMiss, Mismatch, Frame, LlmRecord, WebhookRecord, ProxyRecord)


def set_fields(value: object, seen: dict[tuple[type, str], set[object]]) -> None:
    """Every (record type, field) that `value` or a record inside it sets to something not its default."""
    if isinstance(value, tuple):
        for item in value:
            set_fields(item, seen)
    if not dataclasses.is_dataclass(value) or isinstance(value, type):
        return
    for f in dataclasses.fields(value):
        item = getattr(value, f.name)
        if isinstance(item, Enum):
            seen.setdefault((type(value), f.name), set()).add(item)
        elif item != f.default if f.default is not dataclasses.MISSING else bool(item):
            seen.setdefault((type(value), f.name), set()).add(True)
        set_fields(item, seen)


def test_the_samples_set_every_field_and_every_enum_value() -> None:
    """So that the round trip below fails if the way back drops any field (all but `size`, which the journal sets)."""
    seen: dict[tuple[type, str], set[object]] = {}
    for sample in SAMPLES:
        set_fields(sample, seen)
    for record in RECORDS:
        for f in dataclasses.fields(record):
            if (record, f.name) != (Exchange, "size"):
                assert (record, f.name) in seen, f"no sample sets {record.__name__}.{f.name}"
    enums: dict[tuple[type, str], type[Enum]] = {
        (HttpRequest, "routing"): Routing,
        (Exchange, "end"): End,
        (Exchange, "kind"): ExchangeKind,
        (Frame, "direction"): Direction,
    }
    for where, enum in enums.items():
        assert seen[where] == set(enum), f"samples miss some {enum.__name__}"


@pytest.mark.parametrize("original", SAMPLES, ids=lambda e: f"{e.sequence}-{e.kind}")
def test_an_exchange_comes_back_from_its_message_field_by_field(original: Exchange) -> None:
    message = exchange_to_proto(original, KEY)
    stored = exchange_pb2.Exchange.FromString(message.SerializeToString())  # as a store outside the process keeps it
    back = exchange_from_proto(stored)
    for f in dataclasses.fields(Exchange):
        if f.name != "size":
            assert getattr(back, f.name) == getattr(original, f.name), f.name
    assert back.size == 0  # the journal estimates it when it takes the exchange
    for f in dataclasses.fields(HttpRequest):
        assert getattr(back.request, f.name) == getattr(original.request, f.name), f"request.{f.name}"
    assert back.request.query == original.request.query
    if original.frame is not None:
        assert back.frame is not None
        assert (back.frame.text is None, back.frame.binary is None, back.frame.close_code is None) == (
            original.frame.text is None,
            original.frame.binary is None,
            original.frame.close_code is None,
        )
    assert back == original


@pytest.mark.parametrize("original", SAMPLES, ids=lambda e: f"{e.sequence}-{e.kind}")
def test_a_message_comes_back_from_its_exchange_unchanged(original: Exchange) -> None:
    message = exchange_to_proto(original, KEY)
    assert exchange_to_proto(exchange_from_proto(message), KEY) == message


def test_a_message_without_enums_reads_as_the_defaults() -> None:
    back = exchange_from_proto(exchange_pb2.Exchange(sequence=1, frame=exchange_pb2.WebSocketFrame(connection=1)))
    assert (back.kind, back.end, back.request.routing) == (ExchangeKind.HTTP, End.COMPLETE, Routing.PATH_PREFIX)
    assert back.frame == Frame(1, Direction.INBOUND)
    assert (back.llm, back.webhook, back.proxy) == (None, None, None)


def test_epoch_is_the_inverse_of_timestamp() -> None:
    rng = random.Random(7)
    values = [0.0, 1.5, -1.25, 1_700_000_000.123456, 1_754_000_000.9999999, 4_102_444_800.000001]
    # A Timestamp keeps nanoseconds; a double of a time since 2004 (2**30 s) holds less than that, so it comes back
    # exactly (a small number of seconds with digits below the nanosecond would not).
    values += [rng.uniform(2**30, 2**33) for _ in range(2000)]
    for value in values:
        assert epoch(timestamp(value)) == value, value


# The LLM and webhook layers load on first use, not at daemon start: reading back a journal without such exchanges
# must not load them either.
LAZY = """
import sys
from simulatord.control.convert.exchanges import exchange_from_proto
from simulatord.v1 import exchange_pb2
exchange_from_proto(exchange_pb2.Exchange(sequence=1, proxy=exchange_pb2.ProxyExchange(url="http://u")))
print(sorted(m for m in sys.modules if m.startswith(("simulatord.llm", "simulatord.webhooks"))))
"""


def test_reading_back_loads_the_llm_and_webhook_layers_only_for_their_exchanges() -> None:
    out = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr[-3000:]
