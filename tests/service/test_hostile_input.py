"""Hostile and careless input over a real daemon: every one is INVALID_ARGUMENT naming its field, answered fast,
and every request that reaches a session is recorded, even when its stub cannot be served."""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from simulatord.v1 import exchange_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from tests.service.test_bad_input import details

Session = pb.CreateSessionResponse
FAST = 1.0  # seconds: an answer to bad input never waits on the work the input asked for


def response(**fields: Any) -> stub_pb2.Response:
    return stub_pb2.Response(**fields)


def at(path: str, *responses: stub_pb2.Response, **request: Any) -> stub_pb2.Stub:
    return stub_pb2.Stub(
        request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(exact=path), **request),
        responses=list(responses) or [response()],
    )


def header(name: str, value: str) -> stub_pb2.Response:
    return response(headers=[stub_pb2.Header(name=name, value=value)])


def number(value: float) -> struct_pb2.Value:
    nested = struct_pb2.Value()
    nested.struct_value.update({"items": [1, {"x": value}]})
    return nested


REGEX = "a{4294967296}"
REFUSED: list[tuple[str, stub_pb2.Stub, str]] = [
    ("header name outside latin-1", at("/x", header("€", "v")), "stub.responses[0].headers[0]"),
    ("header value outside latin-1", at("/x", header("x-a", "€")), "stub.responses[0].headers[0]"),
    ("header name not a token", at("/x", header("(", "v")), "stub.responses[0].headers[0]"),
    ("header name with umlaut", at("/x", header("ä", "v")), "stub.responses[0].headers[0]"),
    ("header value with NUL", at("/x", header("x-a", "a\0b")), "stub.responses[0].headers[0]"),
    ("content-length is the daemon's", at("/x", header("content-length", "abc")), "stub.responses[0].headers[0]"),
    ("content-length that lies", at("/x", header("Content-Length", "999")), "stub.responses[0].headers[0]"),
    ("transfer-encoding", at("/x", header("transfer-encoding", "chunked")), "stub.responses[0].headers[0]"),
    ("NaN in body_json", at("/x", response(body_json=number(float("nan")))), "stub.responses[0].body_json"),
    ("Infinity in body_json", at("/x", response(body_json=number(float("inf")))), "stub.responses[0].body_json"),
    (
        "NaN in json_equals",
        at("/x", body=[stub_pb2.BodyMatcher(json_equals=number(float("nan")))]),
        "stub.request.body[0].json_equals",
    ),
    (
        "huge repetition in a path regex",
        stub_pb2.Stub(request=stub_pb2.RequestMatcher(path=stub_pb2.PathMatcher(regex=REGEX)), responses=[response()]),
        "stub.request.path.regex",
    ),
    (
        "huge repetition in a header regex",
        at("/x", headers=[stub_pb2.FieldMatcher(name="x-a", value=stub_pb2.StringMatcher(regex=REGEX))]),
        "stub.request.headers[0].value.regex",
    ),
    (
        "huge repetition in a body regex",
        at("/x", body=[stub_pb2.BodyMatcher(regex=REGEX)]),
        "stub.request.body[0].regex",
    ),
    ("a backreference", at("/x", body=[stub_pb2.BodyMatcher(regex=r"(a)\1")]), "stub.request.body[0].regex"),
    (
        "a template with 500 nested parentheses",
        at("/x", response(body_text="{{ " + "(" * 500 + "1" + ")" * 500 + " }}", template=stub_pb2.ResponseTemplate())),
        "stub.responses[0].body_text",
    ),
    (
        "a template past the source limit",
        at("/x", response(body_text="{{ 1 }}" + "x" * 70_000, template=stub_pb2.ResponseTemplate())),
        "stub.responses[0].body_text",
    ),
]


@pytest.mark.parametrize(("what", "bad", "field"), REFUSED, ids=[case[0] for case in REFUSED])
def test_bad_stubs_are_invalid_argument_naming_the_field(
    control: pb_grpc.SimulatorServiceStub, session: Session, what: str, bad: stub_pb2.Stub, field: str
) -> None:
    started = time.perf_counter()
    with pytest.raises(grpc.RpcError) as refused:
        control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=bad), timeout=10)
    assert time.perf_counter() - started < FAST
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.value.details()
    assert details(refused.value) == ("INVALID_STUB", [field])


def test_a_deeply_nested_regex_is_linear_time_or_refused(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    """1,000 nested groups compile in RE2 and match in linear time; 5,000 pass its nesting limit: refused."""
    deep = "(" * 1000 + "a" + ")" * 1000
    control.CreateStub(
        pb.CreateStubRequest(parent=session.session.name, stub=at("/deep", body=[stub_pb2.BodyMatcher(regex=deep)]))
    )
    assert http.post(f"{session.session.base_url}/deep", content=b"xa").status_code == 200
    deeper = at("/deeper", body=[stub_pb2.BodyMatcher(regex="(" * 5000 + "a" + ")" * 5000)])
    with pytest.raises(grpc.RpcError) as refused:
        control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=deeper))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("method", ["ListSessions", "ListExchanges"])
def test_a_page_token_of_deeply_nested_json_is_invalid_argument(
    control: pb_grpc.SimulatorServiceStub, session: Session, method: str
) -> None:
    import base64

    token = base64.urlsafe_b64encode(b"[" * 100_000 + b"]" * 100_000).decode()
    request: Any = (
        pb.ListSessionsRequest(parent=f"tenants/{session.session.name.split('/')[1]}", page_token=token)
        if method == "ListSessions"
        else pb.ListExchangesRequest(parent=session.session.name, page_token=token)
    )
    with pytest.raises(grpc.RpcError) as refused:
        getattr(control, method)(request)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(refused.value)[1] == ["page_token"]


@pytest.mark.parametrize("sequence", ["²", "٣", "1e3", "-1", "0"])
def test_an_exchange_id_that_is_not_an_ascii_sequence_number_is_invalid_argument(
    control: pb_grpc.SimulatorServiceStub, session: Session, sequence: str
) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        control.GetExchange(pb.GetExchangeRequest(name=f"{session.session.name}/exchanges/{sequence}"))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(refused.value)[1] == ["name"]


def test_an_echoed_input_of_9000_characters_still_fits_in_the_error(control: pb_grpc.SimulatorServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        control.GetSession(pb.GetSessionRequest(name="€" * 9000))
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details(refused.value)[1] == ["name"]
    bad = [at("/x", header("€" * 100, "v")) for _ in range(500)]
    many = pb.CreateSessionRequest(parent="tenants/x", stubs=bad)
    with pytest.raises(grpc.RpcError) as refused:
        control.CreateSession(many)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    reason, fields = details(refused.value)
    assert reason == "INVALID_STUB" and fields[0] == "stubs[0].responses[0].headers[0]"


def test_a_huge_constant_in_a_template_costs_nothing_when_programmed_and_is_explained_when_rendered(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    started = time.perf_counter()
    power = at("/power", response(body_text="{{ 10**(10**7) }}", template=stub_pb2.ResponseTemplate()))
    control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=power))
    assert time.perf_counter() - started < FAST
    answer = http.get(f"{session.session.base_url}/power")
    assert answer.status_code == 500 and answer.json()["reason"] == "TEMPLATE_ERROR"
    (exchange,) = control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges
    assert "4096 bits" in exchange.response.error
    assert exchange.response.status == 500 and list(exchange.response.behaviours) == ["template"]


def test_a_request_whose_stub_cannot_be_served_is_still_recorded_with_what_went_wrong(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    """A header that only a request can break: rendered from it, outside latin-1."""
    echo = response(
        headers=[stub_pb2.Header(name="x-echo", value="{{ request.json.name }}")], template=stub_pb2.ResponseTemplate()
    )
    control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=at("/echo", echo)))
    answer = http.post(f"{session.session.base_url}/echo", json={"name": "€uro"})
    assert answer.status_code == 500 and answer.headers["x-simulatord-template-error"] == "headers"
    deep = b"[" * 100_000 + b"]" * 100_000  # past the JSON parser's nesting: a body that is not JSON here
    json_stub = at("/json", body=[stub_pb2.BodyMatcher(json_subset=number(1))])
    control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=json_stub))
    assert http.post(f"{session.session.base_url}/json", content=deep).status_code == 404
    first, second = control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges
    assert first.response.status == 500 and "not an HTTP field value" in first.response.error
    assert second.request.body_size == len(deep) and not second.stub
    assert second.near_misses[0].mismatches[0].field == "body[0]"


def test_a_catastrophic_regex_answers_in_linear_time(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    evil = at("/evil", body=[stub_pb2.BodyMatcher(regex="(a+)+$")], method="POST")
    control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=evil))
    started = time.perf_counter()
    answer = http.request("GET", f"{session.session.base_url}/evil", content=b"a" * 28 + b"b")  # the method misses
    assert answer.status_code == 404
    (miss,) = json.loads(answer.content)["near_misses"]
    assert [m["field"] for m in miss["mismatches"]] == ["method", "body[0]"]  # the regex ran, in linear time
    assert time.perf_counter() - started < FAST
    listed = control.ListExchanges(
        pb.ListExchangesRequest(parent=session.session.name, filter=exchange_pb2.ExchangeFilter(path="/evil"))
    )
    assert len(listed.exchanges) == 1
