"""Programming stubs through the client, each feature checked with real HTTP calls to a real daemon."""

from __future__ import annotations

import datetime
import time

import httpx
import pytest

from simulatord.v1 import stub_pb2
from simulatord_client import (
    Session,
    absent,
    all_of,
    any_of,
    at_most,
    body_contains,
    contains,
    equals,
    json_path,
    json_subset,
    match,
    none_of,
    prefix,
    present,
    proxy,
    regex,
    response,
    stub,
    when,
)


def test_stub_reads_like_the_intent(sim_session: Session, http: httpx.Client) -> None:
    ref = sim_session.stub(
        method="GET",
        path="/users/{id}",
        query={"expand": "profile"},
        headers={"accept": contains("json")},
        status=200,
        json={"id": 7, "name": "Ada"},
        headers_out={"x-served-by": "simulatord"},
    )
    assert ref.stub.request.path.template == "/users/{id}"
    reply = http.get(f"{sim_session.url}/users/7?expand=profile", headers={"accept": "application/json"})
    assert reply.status_code == 200
    assert reply.json() == {"id": 7, "name": "Ada"}
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.headers["x-served-by"] == "simulatord"
    assert http.get(f"{sim_session.url}/users/7", headers={"accept": "application/json"}).status_code == 404


@pytest.mark.parametrize(
    ("options", "hits", "misses"),
    [
        ({"path": "/exact"}, ["/exact"], ["/exact/more", "/other"]),
        ({"path": "/files/{rest=**}"}, ["/files/a/b/c"], ["/file"]),
        ({"path_prefix": "/static/"}, ["/static/app.js", "/static/"], ["/stat"]),
        ({"path_glob": "/img/*.png"}, ["/img/a.png"], ["/img/a/b.png", "/img/a.jpg"]),
        ({"path_regex": r"/v[12]/ping"}, ["/v1/ping", "/v2/ping"], ["/v3/ping", "/v1/ping/x"]),
        ({"path_template": "/orders/{id}"}, ["/orders/9"], ["/orders/9/items"]),
        ({"path": stub_pb2.PathMatcher(prefix="/raw")}, ["/raw/x"], ["/ra"]),
    ],
)
def test_path_kinds(
    sim_session: Session, http: httpx.Client, options: dict[str, object], hits: list[str], misses: list[str]
) -> None:
    sim_session.stub("GET", text="hit", **options)  # type: ignore[arg-type]
    for path in hits:
        assert http.get(f"{sim_session.url}{path}").text == "hit", path
    for path in misses:
        assert http.get(f"{sim_session.url}{path}").status_code == 404, path


def test_header_and_query_matchers(sim_session: Session, http: httpx.Client) -> None:
    sim_session.stub(
        "GET",
        "/search",
        query={"q": regex(r"^\w+$"), "page": present(), "debug": absent()},
        headers={
            "authorization": prefix("Bearer "),
            "x-tenant": equals("ACME", ignore_case=True),
            "x-trace": [contains("a"), contains("b")],  # several conditions on one header: all must hold
        },
        text="found",
    )
    good = {"authorization": "Bearer t0k", "x-tenant": "acme", "x-trace": "ab"}
    url = f"{sim_session.url}/search"
    assert http.get(url, params={"q": "cats", "page": "1"}, headers=good).text == "found"
    assert http.get(url, params={"q": "cats", "page": "1", "debug": "1"}, headers=good).status_code == 404
    assert http.get(url, params={"q": "two words", "page": "1"}, headers=good).status_code == 404
    assert http.get(url, params={"q": "cats"}, headers=good).status_code == 404
    assert http.get(url, params={"q": "cats", "page": "1"}, headers={**good, "x-trace": "a"}).status_code == 404
    assert (
        http.get(url, params={"q": "c", "page": "1"}, headers={**good, "authorization": "Basic x"}).status_code == 404
    )


def test_body_matchers(sim_session: Session, http: httpx.Client) -> None:
    sim_session.add(
        stub("POST", "/exact", json_body={"a": 1, "b": [1, 2]}, text="json-equals"),
        stub("POST", "/subset", json_subset={"user": {"role": "admin"}}, text="json-subset"),
        stub("POST", "/path", json_path={"$.items[0].sku": "A-1", "$.email": contains("@"), "$.id": ...}, text="jp"),
        stub("POST", "/text", body_contains="hello", body_regex=r"wor?ld", text="text"),
        stub("POST", "/bytes", body_equals=b"\x00\x01", text="bytes"),
        stub("POST", "/raw", body_matchers=[json_path("$.n", 3)], text="raw"),
    )
    url = sim_session.url
    assert http.post(f"{url}/exact", json={"b": [1, 2], "a": 1}).text == "json-equals"
    assert http.post(f"{url}/exact", json={"a": 1}).status_code == 404
    assert http.post(f"{url}/subset", json={"user": {"role": "admin", "id": 3}, "x": 1}).text == "json-subset"
    assert http.post(f"{url}/subset", json={"user": {"role": "guest"}}).status_code == 404
    doc = {"items": [{"sku": "A-1"}], "email": "a@b.c", "id": 0}
    assert http.post(f"{url}/path", json=doc).text == "jp"
    assert http.post(f"{url}/path", json={**doc, "email": "nope"}).status_code == 404
    assert http.post(f"{url}/path", json={k: v for k, v in doc.items() if k != "id"}).status_code == 404
    assert http.post(f"{url}/text", content=b"hello world").text == "text"
    assert http.post(f"{url}/text", content=b"hello").status_code == 404
    assert http.post(f"{url}/bytes", content=b"\x00\x01").text == "bytes"
    assert http.post(f"{url}/raw", json={"n": 3}).text == "raw"


def test_all_any_none(sim_session: Session, http: httpx.Client) -> None:
    sim_session.stub(
        path="/multi",
        any_of=[match("GET"), match("HEAD")],
        none_of=[match(headers={"x-block": present()})],
        all_of=[match(query={"v": "1"})],
        text="ok",
    )
    sim_session.stub(match=any_of(match("PUT", "/either"), match("PATCH", "/either")), status=204)
    sim_session.stub(match=all_of(match("DELETE"), match(path="/both")), status=202)
    sim_session.stub("POST", "/not", match=none_of(match(json_body=None)), status=201)
    url = sim_session.url
    assert http.get(f"{url}/multi?v=1").text == "ok"
    assert http.head(f"{url}/multi?v=1").status_code == 200
    assert http.post(f"{url}/multi?v=1").status_code == 404
    assert http.get(f"{url}/multi?v=2").status_code == 404
    assert http.get(f"{url}/multi?v=1", headers={"x-block": "1"}).status_code == 404
    assert http.put(f"{url}/either").status_code == 204
    assert http.patch(f"{url}/either").status_code == 204
    assert http.delete(f"{url}/both").status_code == 202
    assert http.post(f"{url}/not", json={"x": 1}).status_code == 201
    assert http.post(f"{url}/not", content=b"null").status_code == 404


def test_responses_text_bytes_delay_and_raw(sim_session: Session, http: httpx.Client) -> None:
    sim_session.add(
        stub("GET", "/text", text="héllo"),
        stub("GET", "/bytes", body=b"\x89PNG", headers_out=[("content-type", "image/png"), ("x-a", "1")]),
        stub("GET", "/slow", status=201, delay=0.2),
        stub("GET", "/slow-td", delay=datetime.timedelta(milliseconds=150)),
        stub("GET", "/raw", response=stub_pb2.Response(status=418, body_text="teapot")),
        stub("GET", "/raw-json", response=response(202), json={"ok": True}),
    )
    url = sim_session.url
    text = http.get(f"{url}/text")
    assert text.text == "héllo" and text.headers["content-type"].startswith("text/plain")
    raw = http.get(f"{url}/bytes")
    assert raw.content == b"\x89PNG" and raw.headers["content-type"] == "image/png" and raw.headers["x-a"] == "1"
    start = time.perf_counter()
    assert http.get(f"{url}/slow").status_code == 201
    assert time.perf_counter() - start >= 0.2
    start = time.perf_counter()
    http.get(f"{url}/slow-td")
    assert time.perf_counter() - start >= 0.15
    teapot = http.get(f"{url}/raw")
    assert (teapot.status_code, teapot.text) == (418, "teapot")
    both = http.get(f"{url}/raw-json")
    assert (both.status_code, both.json()) == (202, {"ok": True})


def test_sequences_cycle_stop_and_times(sim_session: Session, http: httpx.Client) -> None:
    sim_session.add(
        stub("GET", "/repeat", responses=[{"status": 503}, {"json": {"n": 2}}]),
        stub(
            "GET", "/cycle", responses=[response(200, text="a"), 201, {"status": 202, "text": "c"}], after_last="cycle"
        ),
        stub("GET", "/stop", responses=[{"text": "once"}], after_last="stop"),
        stub("GET", "/stop", status=410, priority=-1),  # what /stop falls through to
        stub("GET", "/twice", text="yes", times=2),
    )
    url = sim_session.url
    assert [http.get(f"{url}/repeat").status_code for _ in range(3)] == [503, 200, 200]
    assert http.get(f"{url}/repeat").json() == {"n": 2}
    assert [http.get(f"{url}/cycle").status_code for _ in range(4)] == [200, 201, 202, 200]
    assert [http.get(f"{url}/stop").status_code for _ in range(2)] == [200, 410]
    assert [http.get(f"{url}/twice").status_code for _ in range(3)] == [200, 200, 404]


def test_priority_and_newest_wins(sim_session: Session, http: httpx.Client) -> None:
    sim_session.stub("GET", "/p", text="high", priority=5)
    sim_session.stub("GET", "/p", text="newer but lower")
    sim_session.stub("GET", "/n", text="old")
    sim_session.stub("GET", "/n", text="new")
    assert http.get(f"{sim_session.url}/p").text == "high"
    assert http.get(f"{sim_session.url}/n").text == "new"


def test_when_builder_and_one_round_trip_batch(sim_session: Session, http: httpx.Client) -> None:
    refs = sim_session.add(
        when("GET", "/health").respond(503).then(200, text="ok").describe("health flaps once"),
        when("POST", "/jobs", headers={"x-key": absent()}).respond(401).named("no-key").times(1),
        when("GET", "/state").respond(text="initial").in_state("", next_state="second"),
        when("GET", "/state").respond(text="then").in_state("second").priority(1),
        when("GET", "/limit").respond(204).expect(at_most(1)),
        when("GET", "/e").respond(200).extend(stub_pb2.Stub(description="extended")).after_last("cycle"),
        stub_pb2.Stub(
            request=stub_pb2.RequestMatcher(method="GET", path=stub_pb2.PathMatcher(exact="/proto")),
            responses=[stub_pb2.Response(status=299)],
        ),
    )
    assert [r.id for r in refs][1] == "no-key"
    assert refs[0].stub.description == "health flaps once"
    assert refs[5].stub.description == "extended"
    url = sim_session.url
    assert [http.get(f"{url}/health").status_code for _ in range(3)] == [503, 200, 200]
    assert http.post(f"{url}/jobs").status_code == 401
    assert http.post(f"{url}/jobs").status_code == 404  # times(1) used up
    assert [http.get(f"{url}/state").text for _ in range(2)] == ["initial", "then"]
    assert http.get(f"{url}/proto").status_code == 299


def test_raw_stub_without_response_is_rejected_with_the_field(sim_session: Session) -> None:
    from simulatord_client import InvalidArgumentError

    with pytest.raises(InvalidArgumentError) as err:
        sim_session.add(stub_pb2.Stub())
    assert err.value.field_violations[0].field == "stub.responses"


def test_scenario_state_reset_replace_delete(sim_session: Session, http: httpx.Client) -> None:
    sim_session.stub("GET", "/mode", text="maintenance", required_state="down", priority=1)
    ref = sim_session.stub("GET", "/mode", text="normal", stub_id="normal")
    url = sim_session.url
    assert http.get(f"{url}/mode").text == "normal"
    sim_session.set_state("down")
    assert sim_session.state == "down"
    assert http.get(f"{url}/mode").text == "maintenance"
    sim_session.reset(stubs=False, journal=False)  # back to the initial state only
    assert sim_session.state == ""
    replaced = sim_session.replace_stub(ref, stub("GET", "/mode", text="replaced"))
    assert replaced.name == ref.name
    assert http.get(f"{url}/mode").text == "replaced"
    assert sim_session.get_stub("normal").match_count == 1
    sim_session.delete_stub(ref)
    assert http.get(f"{url}/mode").status_code == 404
    assert len(sim_session.list_stubs()) == 1
    sim_session.reset()
    assert sim_session.list_stubs() == [] and sim_session.exchanges() == []


def test_builder_misuse_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="one path condition"):
        stub("GET", "/a", path_prefix="/b")
    with pytest.raises(TypeError, match="at most one response body"):
        stub(json={}, text="x")
    with pytest.raises(TypeError, match="either responses"):
        stub(status=200, responses=[{"status": 500}])
    with pytest.raises(TypeError, match="unexpected keyword"):
        stub(jsn={})  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="after_last"):
        stub(after_last="sometimes")


def test_builder_output_is_plain_proto() -> None:
    built = stub("post", "/a/{id}", headers={"x": body_contains_guard()}, json_subset={"k": 1}, expect=(1, None))
    assert built.request.method == "POST"
    assert built.request.path.template == "/a/{id}"
    assert built.request.headers[0].name == "x" and built.request.headers[0].absent
    assert built.request.body[0] == json_subset({"k": 1})
    assert built.expect.at_least == 1 and not built.expect.HasField("at_most")
    assert built.responses[0].status == 200
    assert body_contains("x").contains == "x"


def body_contains_guard() -> stub_pb2.FieldMatcher:
    return absent()


def test_proxy_builds_a_proxy_response() -> None:
    built = proxy(
        "https://api.example.com/v1",
        mode="record_once",
        request_headers={"x-api-key": "real"},
        timeout=2.5,
        match_headers=["x-tenant"],
        match_json_paths=["$.model"],
        match_body=True,
        ignore_query=True,
        redact_headers=["x-secret"],
        timing_scale=0,
    )
    assert [field.name for field, _ in built.ListFields()] == ["proxy"]  # no status: the upstream's is sent
    assert built.proxy.upstream == "https://api.example.com/v1"
    assert built.proxy.mode == stub_pb2.PROXY_MODE_RECORD_ONCE
    assert [(h.name, h.value) for h in built.proxy.request_headers] == [("x-api-key", "real")]
    assert built.proxy.timeout.ToMilliseconds() == 2500
    record = built.proxy.record
    assert (list(record.match_headers), list(record.match_json_paths)) == (["x-tenant"], ["$.model"])
    assert record.match_body and record.ignore_query and not record.keep_secrets
    assert list(record.redact_headers) == ["x-secret"]
    assert record.HasField("timing_scale") and record.timing_scale == 0  # 0 (no waits) is not "unset"


def test_proxy_defaults_leave_everything_to_the_daemon() -> None:
    built = proxy("http://127.0.0.1:8080")
    assert built == stub_pb2.Response(
        proxy=stub_pb2.Proxy(upstream="http://127.0.0.1:8080", mode=stub_pb2.PROXY_MODE_TRANSPARENT)
    )
    assert not built.proxy.HasField("record") and not built.proxy.HasField("timeout")
    assert proxy("http://h", mode="record_always").proxy.mode == stub_pb2.PROXY_MODE_RECORD_ALWAYS
    secrets_kept = proxy("http://h", keep_secrets=True, request_headers=[("a", "1"), ("a", "2")]).proxy
    assert secrets_kept.record.keep_secrets and [h.value for h in secrets_kept.request_headers] == ["1", "2"]


def test_a_proxy_is_accepted_wherever_a_response_is() -> None:
    upstream = proxy("http://127.0.0.1:8080", mode="record_once")
    catch_all = stub(response=upstream, priority=-100)
    assert catch_all.request == stub_pb2.RequestMatcher()  # an empty matcher matches every request
    assert catch_all.priority == -100
    assert list(catch_all.responses) == [upstream]  # stub() gives a proxy no status of its own
    assert stub("GET", path_glob="/v1/**", response=upstream).responses[0] == upstream
    assert stub("GET", "/a", responses=[upstream, {"status": 503}]).responses[0] == upstream
    built = when("GET", path_glob="/v1/**").respond(upstream).build()
    assert built.request.path.glob == "/v1/**" and list(built.responses) == [upstream]
    assert response(upstream, delay=0.1).delay.nanos == 100_000_000  # a delay waits before forwarding


def test_proxy_misuse_is_refused() -> None:
    with pytest.raises(ValueError, match="transparent, record_once, record_always"):
        proxy("http://h", mode="record")
    with pytest.raises(ValueError, match="http:// or https://"):
        proxy("127.0.0.1:8080")
    with pytest.raises(ValueError, match="not both"):
        proxy("http://h", keep_secrets=True, redact_headers=["x-secret"])
    with pytest.raises(TypeError, match=r"match_headers=\['x-tenant'\]"):
        proxy("http://h", match_headers="x-tenant")
