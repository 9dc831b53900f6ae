"""Templated responses, scenario state and rate limits, proven with a real daemon, gRPC client and httpx."""

from __future__ import annotations

import time
import uuid

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from simulatord.v1 import exchange_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client import behaviours as b

Session = pb.CreateSessionResponse


def matcher(method: str = "", exact: str = "", template: str = "") -> stub_pb2.RequestMatcher:
    path = stub_pb2.PathMatcher(template=template) if template else stub_pb2.PathMatcher(exact=exact)
    return stub_pb2.RequestMatcher(method=method, path=path)


def create(control: pb_grpc.SimulatorServiceStub, session: Session, stub: stub_pb2.Stub) -> stub_pb2.Stub:
    return control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=stub)).stub


def violations(error: grpc.RpcError) -> list[tuple[str, str]]:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            return [(v.field, v.description) for v in bad.field_violations]
    return []


# --- templating ----------------------------------------------------------------------------------------


def test_templated_response_renders_from_the_request(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    create(
        control,
        session,
        stub_pb2.Stub(
            request=matcher("POST", template="/users/{id}"),
            responses=[
                b.templated(
                    b.json(
                        {
                            "id": "{{ path.id | int }}",
                            "name": "{{ request.json.name | upper }}",
                            "page": "{{ request.query.page }}",
                            "sequence": "{{ sequence }}",
                            "at": "{{ now.iso }}",
                            "trace": "{{ random.uuid() }}",
                        },
                        201,
                        headers={
                            "location": "/users/{{ path.id }}",
                            "x-request-key": "{{ request.headers['x-api-key'] }}",
                        },
                    )
                )
            ],
        ),
    )
    answer = http.post(
        session.session.base_url + "/users/42?page=3", json={"name": "ada"}, headers={"x-api-key": "k-1"}
    )
    assert answer.status_code == 201
    assert answer.headers["location"] == "/users/42"
    assert answer.headers["x-request-key"] == "k-1"
    body = answer.json()
    assert body["id"] == 42 and body["name"] == "ADA" and body["page"] == "3" and body["sequence"] == 1
    assert body["at"].endswith("Z") and uuid.UUID(body["trace"]).version == 4


def test_template_syntax_error_is_invalid_argument_with_the_field(
    control: pb_grpc.SimulatorServiceStub, session: Session
) -> None:
    bad = stub_pb2.Stub(
        request=matcher(exact="/x"),
        responses=[b.templated(b.text("ok")), b.templated(b.json({"a": ["{{ request.path "]}))],
    )
    with pytest.raises(grpc.RpcError) as caught:
        create(control, session, bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = violations(caught.value)
    assert field == "stub.responses[1].body_json.a[0]"
    assert "template syntax error" in description


def test_templated_body_in_a_sequence(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    """Composition: a sequence mixing a plain and a templated response; `match` counts the stub's matches."""
    create(
        control,
        session,
        stub_pb2.Stub(
            request=matcher("GET", template="/jobs/{job}"),
            responses=[
                stub_pb2.Response(status=202, body_text="queued"),
                b.templated(b.text("job {{ path.job }} done after {{ match }} polls"), seed=1),
            ],
        ),
    )
    url = session.session.base_url
    assert (http.get(url + "/jobs/j7").status_code, http.get(url + "/jobs/j7").text) == (
        202,
        "job j7 done after 2 polls",
    )
    assert http.get(url + "/jobs/j8").text == "job j8 done after 3 polls"


def test_plain_stub_is_not_templated(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    create(
        control,
        session,
        stub_pb2.Stub(request=matcher(exact="/raw"), responses=[stub_pb2.Response(body_text="{{ not a template }}")]),
    )
    assert http.get(session.session.base_url + "/raw").text == "{{ not a template }}"


# --- scenario state ------------------------------------------------------------------------------------


def test_scenario_resource_created_then_found_then_deleted(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    name = session.session.name
    create(
        control,
        session,
        stub_pb2.Stub(
            request=matcher("GET", exact="/orders/1"),
            responses=[stub_pb2.Response(status=404)],
        ),
    )
    create(
        control,
        session,
        stub_pb2.Stub(
            request=matcher("POST", exact="/orders"),
            responses=[stub_pb2.Response(status=201)],
            next_state="created",
        ),
    )
    found = create(
        control,
        session,
        stub_pb2.Stub(
            request=matcher("GET", exact="/orders/1"),
            responses=[b.templated(b.json({"id": 1, "state": "{{ state }}"}))],
            required_state="created",
        ),
    )
    create(
        control,
        session,
        stub_pb2.Stub(
            request=matcher("DELETE", exact="/orders/1"),
            responses=[stub_pb2.Response(status=204)],
            required_state="created",
            next_state="deleted",
        ),
    )
    url = session.session.base_url
    assert http.get(url + "/orders/1").status_code == 404
    assert control.GetSession(pb.GetSessionRequest(name=name)).session.state == ""
    assert http.post(url + "/orders").status_code == 201
    assert control.GetSession(pb.GetSessionRequest(name=name)).session.state == "created"
    assert http.get(url + "/orders/1").json() == {"id": 1, "state": "created"}
    assert http.get(url + "/orders/1").status_code == 200
    assert http.delete(url + "/orders/1").status_code == 204
    assert http.get(url + "/orders/1").status_code == 404
    assert control.GetSession(pb.GetSessionRequest(name=name)).session.state == "deleted"
    assert control.GetStub(pb.GetStubRequest(name=found.name)).stub.match_count == 2
    # The control plane can jump to a state, and a reset returns to the initial one.
    control.SetSessionState(pb.SetSessionStateRequest(name=name, state="created"))
    assert http.get(url + "/orders/1").status_code == 200
    control.ResetSession(pb.ResetSessionRequest(name=name, targets=[pb.RESET_TARGET_STATE]))
    assert http.get(url + "/orders/1").status_code == 404


def test_stub_waiting_for_a_state_appears_in_near_misses(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    create(
        control,
        session,
        stub_pb2.Stub(
            request=matcher("GET", exact="/later"),
            responses=[stub_pb2.Response()],
            required_state="ready",
        ),
    )
    answer = http.get(session.session.base_url + "/later")
    assert answer.status_code == 404
    [miss] = answer.json()["near_misses"]
    assert miss["mismatches"] == [{"field": "state", "expected": "'ready'", "actual": "''"}]


def test_named_scenarios_are_independent_state_machines(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    """A cart and a login flow advance separately; GetSession shows each, SetSessionState sets one."""
    name, url = session.session.name, session.session.base_url
    for scenario, path, state, next_state, text in [
        ("cart", "/cart", "", "filled", "empty cart"),
        ("cart", "/cart", "filled", "", "one item"),
        ("login", "/me", "", "", "anonymous"),
        ("login", "/login", "", "in", "welcome"),
        ("login", "/me", "in", "", "{{ state }}: ada"),
    ]:
        response = b.templated(b.text(text)) if "{{" in text else stub_pb2.Response(body_text=text)
        create(
            control,
            session,
            stub_pb2.Stub(
                request=matcher(exact=path),
                responses=[response],
                scenario=scenario,
                required_state=state,
                next_state=next_state,
            ),
        )
    assert http.get(url + "/cart").text == "empty cart"
    assert http.get(url + "/cart").text == "one item"
    assert http.get(url + "/me").text == "anonymous"  # the cart moving did not move the login flow
    got = control.GetSession(pb.GetSessionRequest(name=name)).session
    assert (got.state, dict(got.scenarios)) == ("", {"cart": "filled"})
    control.SetSessionState(pb.SetSessionStateRequest(name=name, scenario="login", state="in"))
    assert http.get(url + "/me").text == "in: ada"
    control.SetSessionState(pb.SetSessionStateRequest(name=name, scenario="cart", state=""))
    assert http.get(url + "/cart").text == "empty cart"
    reset = control.ResetSession(pb.ResetSessionRequest(name=name, targets=[pb.RESET_TARGET_STATE])).session
    assert dict(reset.scenarios) == {}
    missing = create(
        control,
        session,
        stub_pb2.Stub(
            request=matcher(exact="/paid"),
            responses=[stub_pb2.Response()],
            scenario="cart",
            required_state="paid",
        ),
    )
    misses = http.get(url + "/paid").json()["near_misses"]
    miss = next(m for m in misses if m["stub"] == missing.name)
    assert miss["mismatches"] == [{"field": "scenarios.cart", "expected": "'paid'", "actual": "''"}]


# --- rate limits ---------------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_headers_and_refills(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    limited = create(
        control,
        session,
        stub_pb2.Stub(
            request=matcher("GET", exact="/quota"),
            responses=[stub_pb2.Response(body_text="one"), stub_pb2.Response(body_text="two")],
            rate_limit=b.rate_limit(2, 1.0),
        ),
    )
    url = session.session.base_url + "/quota"
    first, second, third = (http.get(url) for _ in range(3))
    assert (first.text, first.headers["x-ratelimit-remaining"], first.headers["x-ratelimit-limit"]) == ("one", "1", "2")
    assert (second.text, second.headers["x-ratelimit-remaining"]) == ("two", "0")
    assert third.status_code == 429
    assert third.headers["retry-after"] == "1"
    assert third.headers["x-ratelimit-remaining"] == "0"
    assert third.json()["reason"] == "RATE_LIMITED"
    time.sleep(0.6)  # half the period refills one token
    assert http.get(url).status_code == 200

    stub = control.GetStub(pb.GetStubRequest(name=limited.name)).stub
    assert (stub.match_count, stub.rate_limited_count) == (3, 1)
    exchanges = control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name)).exchanges
    assert [e.response.status for e in exchanges] == [200, 200, 429, 200]
    assert all(e.stub == limited.name and e.kind == exchange_pb2.EXCHANGE_KIND_HTTP for e in exchanges)


def test_rate_limit_per_api_key_shared_across_stubs(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client, session: Session
) -> None:
    """A named bucket keyed by a header: one quota per API key across endpoints, with a custom 429."""
    custom = stub_pb2.Response(
        status=429,
        body_json=None,
        body_text="slow down {{ request.headers['x-api-key'] }}",
        template=stub_pb2.ResponseTemplate(),
    )
    for path in ("/a", "/b"):
        create(
            control,
            session,
            stub_pb2.Stub(
                request=matcher(exact=path),
                responses=[stub_pb2.Response(body_text=path)],
                rate_limit=b.rate_limit(2, 60.0, key_header="x-api-key", bucket="api", response=custom),
            ),
        )
    url = session.session.base_url
    alice, bob = {"x-api-key": "alice"}, {"x-api-key": "bob"}
    assert http.get(url + "/a", headers=alice).status_code == 200
    assert http.get(url + "/b", headers=alice).status_code == 200
    refused = http.get(url + "/a", headers=alice)
    assert (refused.status_code, refused.text) == (429, "slow down alice")
    assert int(refused.headers["retry-after"]) >= 29
    assert http.get(url + "/b", headers=bob).status_code == 200


def test_bad_rate_limit_is_rejected(control: pb_grpc.SimulatorServiceStub, session: Session) -> None:
    bad = stub_pb2.Stub(
        request=matcher(exact="/q"), responses=[stub_pb2.Response()], rate_limit=stub_pb2.RateLimit(limit=0)
    )
    with pytest.raises(grpc.RpcError) as caught:
        create(control, session, bad)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {f for f, _ in violations(caught.value)} == {"stub.rate_limit.limit", "stub.rate_limit.period"}


def test_bad_scenario_name_is_rejected(control: pb_grpc.SimulatorServiceStub, session: Session) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        control.SetSessionState(pb.SetSessionStateRequest(name=session.session.name, scenario="a\nb", state="x"))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value)[0][0] == "scenario"
