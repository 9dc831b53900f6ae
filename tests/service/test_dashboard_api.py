"""The dashboard's JSON API and live stream against a real daemon: listings, an exchange's detail, exchanges
pushed as they are recorded, near misses, copy-as-stub programmed back, the tenant boundary of --auth, and the
flag that turns it off."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import json_format

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord.v1 import stub_pb2
from simulatord_client import Simulator
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import SERVER, TOKENS, bearer, stub

API = "/_dashboard/api"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def _api(session: pb.CreateSessionResponse, tail: str = "") -> str:
    return f"{API}/{session.session.name}{tail}"


def _events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    """(event, parsed data) from an SSE body's lines."""
    kind = ""
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, json.loads(line[6:])


def test_root_is_the_dashboard_for_browsers_and_json_for_everything_else(
    daemon: EmbeddedDaemon, http: httpx.Client
) -> None:
    page = http.get(daemon.http_url + "/", headers={"accept": BROWSER_ACCEPT})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "/_dashboard/dashboard.js" in page.text
    assert http.get(daemon.http_url + "/").json()["service"] == "simulatord"  # httpx sends */*
    for asset, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        answer = http.get(f"{daemon.http_url}/_dashboard/{asset}")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith(kind)
    assert http.get(f"{daemon.http_url}/_dashboard/nothing.js").status_code == 404


def test_listing_and_an_exchange_in_detail(
    daemon: EmbeddedDaemon,
    http: httpx.Client,
    control: pb_grpc.SimulatorServiceStub,
    session: pb.CreateSessionResponse,
    tenant: str,
) -> None:
    control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=stub(path="/hello", text="hi")))
    base = session.session.base_url
    assert http.get(base + "/hello?lang=en", headers={"x-trace": "abc"}).status_code == 200

    listed = http.get(daemon.http_url + API + "/tenants").json()
    mine = next(t for t in listed["tenants"] if t["tenant"] == tenant)
    assert [s["name"] for s in mine["sessions"]] == [session.session.name]
    assert mine["sessions"][0]["exchanges"] == 1 and listed["auth"] is False

    info = http.get(daemon.http_url + _api(session)).json()
    assert info["base_url"] == base
    [counted] = info["stub_list"]
    assert counted["match_count"] == 1 and counted["summary"] == "GET /hello" and counted["next_response"] == 0

    summaries = http.get(daemon.http_url + _api(session, "/exchanges")).json()
    assert [(x["sequence"], x["outcome"], x["path"]) for x in summaries["exchanges"]] == [(1, "matched", "/hello")]

    detail = http.get(daemon.http_url + _api(session, "/exchanges/1")).json()
    assert detail["request"]["query"] == [["lang", "en"]]
    assert ["x-trace", "abc"] in detail["request"]["headers"]
    assert detail["response"]["status"] == 200 and detail["response"]["body_size"] == 2
    assert detail["stub"] == counted["name"] and detail["near_miss_list"] == []
    assert detail["curl"].startswith(f"curl -X GET '{base}/hello?lang=en'") and "-H 'x-trace: abc'" in detail["curl"]
    assert detail["stub_python"] == "s.stub('GET', '/hello', query={'lang': 'en'}, status=200)"

    missing = http.get(daemon.http_url + _api(session, "/exchanges/9"))
    assert missing.status_code == 404 and missing.json()["reason"] == "EXCHANGE_NOT_FOUND"
    gone = http.get(f"{daemon.http_url}{API}/tenants/{tenant}/sessions/nope")
    assert gone.status_code == 404 and gone.json()["reason"] == "SESSION_NOT_FOUND"


def test_the_live_stream_pushes_an_exchange_as_it_is_recorded(
    daemon: EmbeddedDaemon, http: httpx.Client, session: pb.CreateSessionResponse
) -> None:
    http.get(session.session.base_url + "/before")  # recorded before the stream opens: `from=0` skips it
    url = daemon.http_url + _api(session, "/events")
    with httpx.stream("GET", url, params={"from": "0"}, timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = _events(stream.iter_lines())
        kind, first = next(events)
        assert kind == "session" and first["journal"]["total"] == 1
        # Sent only once the stream is open: it can only arrive pushed by the journal's watch.
        sender = threading.Thread(target=lambda: httpx.post(session.session.base_url + "/live?n=1", json={"a": 1}))
        sender.start()
        kind, pushed = next(events)
        sender.join()
        assert kind == "exchange"
        assert (pushed["sequence"], pushed["method"], pushed["path"], pushed["outcome"]) == (
            2,
            "POST",
            "/live",
            "unmatched",
        )
        kind, after = next(events)  # the end of the burst: the session's counters as they now are
        assert kind == "session" and after["journal"]["total"] == 2

    # Resuming: EventSource resends the last id it saw, and the stream carries on after it.
    with httpx.stream("GET", url, headers={"last-event-id": "1"}, timeout=10) as stream:
        replayed = next(data for kind, data in _events(stream.iter_lines()) if kind == "exchange")
        assert replayed["sequence"] == 2


def test_an_unmatched_request_shows_its_near_misses_and_copy_as_stub_matches_it(
    daemon: EmbeddedDaemon,
    http: httpx.Client,
    control: pb_grpc.SimulatorServiceStub,
    session: pb.CreateSessionResponse,
) -> None:
    control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=stub("POST", "/v1/orders")))
    base = session.session.base_url
    assert http.post(base + "/v1/order?page=2", json={"sku": "A-1", "qty": 2}).status_code == 404

    detail = http.get(daemon.http_url + _api(session, "/exchanges/1")).json()
    assert detail["outcome"] == "unmatched"
    [miss] = detail["near_miss_list"]
    assert [m["field"] for m in miss["mismatches"]] == ["path"]
    assert miss["mismatches"][0]["actual"] == "/v1/order"

    # The stub JSON is what CreateStub takes (proto JSON), and the stub it makes matches the same request.
    as_json = json_format.Parse(detail["stub_json"], stub_pb2.Stub())
    assert json.loads(detail["stub_json"])["request"]["body"] == [{"json_equals": {"sku": "A-1", "qty": 2}}]
    created = control.CreateStub(pb.CreateStubRequest(parent=session.session.name, stub=as_json))
    assert http.post(base + "/v1/order?page=2", json={"sku": "A-1", "qty": 2}).status_code == 200
    again = http.get(daemon.http_url + _api(session, "/exchanges/2")).json()
    assert again["outcome"] == "matched" and again["stub"] == created.stub.name
    assert http.post(base + "/v1/order?page=3", json={"sku": "A-1", "qty": 2}).status_code == 404  # not too loose

    # The Python form, run as written with the client, matches it too.
    assert detail["stub_python"] == (
        "s.stub('POST', '/v1/order', query={'page': '2'}, json_body={'sku': 'A-1', 'qty': 2}, status=200)"
    )
    with Simulator(daemon.grpc_address) as sim, sim.session(tenant="dash-python") as s:
        exec(detail["stub_python"], {"s": s})
        assert http.post(s.url + "/v1/order?page=2", json={"qty": 2, "sku": "A-1"}).status_code == 200


def _sessions_of(answer: httpx.Response) -> set[str]:
    return {s["name"] for t in answer.json()["tenants"] for s in t["sessions"]}


def test_with_auth_a_token_is_required_and_sees_only_its_tenants(
    auth_daemon: EmbeddedDaemon, http: httpx.Client
) -> None:
    with grpc.insecure_channel(auth_daemon.grpc_address) as channel:
        control = pb_grpc.SimulatorServiceStub(channel)
        names = {}
        try:
            for team in ("team-a", "team-b"):
                created = control.CreateSession(
                    pb.CreateSessionRequest(parent=f"tenants/{team}"), metadata=bearer(TOKENS[team])
                )
                names[team] = created.session.name
                http.get(created.session.base_url + "/ping")
            tenants = auth_daemon.http_url + API + "/tenants"

            missing = http.get(tenants)
            assert missing.status_code == 401 and missing.json()["reason"] == "TOKEN_MISSING"
            wrong = http.get(tenants, params={"token": "not-a-token-of-this-daemon"})
            assert wrong.status_code == 401 and wrong.json()["reason"] == "TOKEN_INVALID"

            seen_a = _sessions_of(http.get(tenants, params={"token": TOKENS["team-a"]}))
            assert names["team-a"] in seen_a and names["team-b"] not in seen_a
            by_header = http.get(tenants, headers={"authorization": f"Bearer {TOKENS['team-b']}"})
            assert names["team-b"] in _sessions_of(by_header) and names["team-a"] not in _sessions_of(by_header)
            assert {names["team-a"], names["team-b"]} <= _sessions_of(
                http.get(tenants, params={"token": TOKENS["admin"]})
            )

            other = f"{auth_daemon.http_url}{API}/{names['team-b']}/exchanges/1"
            forbidden = http.get(other, params={"token": TOKENS["team-a"]})
            assert forbidden.status_code == 403 and forbidden.json()["reason"] == "TENANT_FORBIDDEN"
            assert http.get(other).status_code == 401
            assert http.get(other, params={"token": TOKENS["team-b"]}).json()["path"] == "/ping"
            stream = f"{auth_daemon.http_url}{API}/{names['team-b']}/events"
            assert http.get(stream, params={"token": TOKENS["team-a"]}).status_code == 403
            with httpx.stream("GET", stream, params={"token": TOKENS["team-b"]}, timeout=10) as live:
                assert live.status_code == 200
                assert next(k for k, _ in _events(live.iter_lines()) if k == "exchange") == "exchange"

            # The page itself holds no data: a browser gets it, then asks for a token.
            page = http.get(auth_daemon.http_url + "/", headers={"accept": BROWSER_ACCEPT})
            assert page.status_code == 200 and "token" in page.text
        finally:  # the auth daemon is shared: other tests list team-a's sessions and expect only their own
            for team, name in names.items():
                control.DeleteSession(pb.DeleteSessionRequest(name=name), metadata=bearer(TOKENS[team]))


@pytest.mark.parametrize("flag", ["--no-dashboard", "--dashboard=false"])
def test_the_dashboard_can_be_turned_off(flag: str, http: httpx.Client) -> None:
    with EmbeddedDaemon([flag], server=SERVER) as off:
        assert http.get(off.http_url + "/", headers={"accept": BROWSER_ACCEPT}).json()["service"] == "simulatord"
        assert http.get(off.http_url + API + "/tenants").status_code == 404
        assert http.get(off.http_url + "/_dashboard/dashboard.js").status_code == 404
