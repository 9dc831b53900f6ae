"""WireMock mappings into Stub messages, without a daemon: each mapped feature's proto fields, each unmapped
feature's report, the order of priorities, and reading a WireMock root directory."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format

from simulatord.control.convert import wiremock
from simulatord.control.convert.stubs import stub as compile_stub
from simulatord.errors import SpecErrors
from simulatord.v1 import stub_pb2

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "wiremock"


def convert(*mappings: dict[str, Any], files: dict[str, bytes] | None = None) -> wiremock.Conversion:
    return wiremock.convert([(f"m{i}.json", m) for i, m in enumerate(mappings)], files or {})


def one(mapping: dict[str, Any], files: dict[str, bytes] | None = None) -> tuple[stub_pb2.Stub, set[str]]:
    """The stub of one mapping (which must convert) and the fields reported."""
    result = convert(mapping, files=files)
    (stub,) = result.stubs
    return stub, {g.field for g in result.unmapped}


def gaps(*mappings: dict[str, Any]) -> dict[str, str]:
    """field -> reason of everything reported."""
    return {g.field: g.reason for g in convert(*mappings).unmapped}


def req(**request: Any) -> dict[str, Any]:
    return {"request": {"method": "GET", "urlPath": "/x", **request}, "response": {"status": 200}}


def resp(**response: Any) -> dict[str, Any]:
    return {"request": {"urlPath": "/x"}, "response": response}


def as_dict(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message)


# --- method and URL ------------------------------------------------------------------------------------


def test_method_any_and_missing_match_every_method() -> None:
    assert one(req(method="ANY"))[0].request.method == ""
    assert one({"request": {"urlPath": "/x"}})[0].request.method == ""
    assert one(req(method="post"))[0].request.method == "POST"


def test_method_one_of_and_none_of() -> None:
    stub, _ = one(req(method={"oneOf": ["GET", "HEAD"]}))
    assert [m.method for m in stub.request.any_of] == ["GET", "HEAD"]
    stub, _ = one(req(method={"noneOf": ["DELETE"]}))
    assert [m.method for m in stub.request.none_of] == ["DELETE"]


def test_url_is_an_exact_path_and_exact_query_parameters() -> None:
    stub, reported = one({"request": {"url": "/a%20b/c?x=1&y=two&y=3"}})
    assert stub.request.path.exact == "/a b/c"
    assert [(q.name, q.value.equals) for q in stub.request.query] == [("x", "1"), ("y", "two"), ("y", "3")]
    assert not reported


def test_url_path_path_pattern_and_pattern() -> None:
    assert one({"request": {"urlPath": "/a/b"}})[0].request.path.exact == "/a/b"
    assert one({"request": {"urlPathPattern": "/a/[0-9]+"}})[0].request.path.regex == "/a/[0-9]+"
    stub, reported = one({"request": {"urlPattern": "/files/.*\\.txt"}})
    assert stub.request.path.regex == "/files/.*\\.txt"
    assert not reported


def test_url_pattern_with_a_query_part_keeps_the_path_part_and_reports_the_rest() -> None:
    result = convert({"request": {"urlPattern": "/items\\?page=[0-9]+"}})
    assert result.stubs[0].request.path.regex == "/items"
    (gap,) = result.unmapped
    assert gap.field == "request.urlPattern"
    assert "page=[0-9]+" in gap.reason


def test_url_pattern_whose_query_cannot_be_split_is_not_converted() -> None:
    result = convert({"request": {"urlPattern": "/a\\?x=1|/b"}})
    assert not result.stubs
    assert [g.field for g in result.unmapped] == ["request.urlPattern"]


def test_url_path_template_becomes_a_path_template() -> None:
    stub, reported = one({"request": {"urlPathTemplate": "/users/{id}/posts/{postId}"}})
    assert stub.request.path.template == "/users/{id}/posts/{postId}"
    assert not reported


def test_url_path_template_with_wildcards_or_path_parameters_becomes_a_regex() -> None:
    assert one({"request": {"urlPathTemplate": "/files/**"}})[0].request.path.regex == "/files/.*"
    stub, reported = one(
        {
            "request": {
                "urlPathTemplate": "/users/{id}/{kind}/{name}",
                "pathParameters": {
                    "id": {"matches": "[0-9]+"},
                    "kind": {"equalTo": "Posts", "caseInsensitive": True},
                    "name": {"contains": "x"},
                },
            }
        }
    )
    assert stub.request.path.regex == "/users/(?s:[0-9]+)/(?i:Posts)/[^/]*x[^/]*"
    assert not reported


def test_path_parameters_that_cannot_be_expressed_are_reported() -> None:
    reported = gaps(
        {
            "request": {
                "urlPathTemplate": "/users/{id}",
                "pathParameters": {"id": {"doesNotMatch": "0+"}, "other": {"equalTo": "x"}},
            }
        }
    )
    assert set(reported) == {"request.pathParameters.id", "request.pathParameters.other"}


def test_several_urls_use_the_first_as_wiremock_does() -> None:
    stub, reported = one({"request": {"url": "/a", "urlPath": "/b"}})
    assert stub.request.path.exact == "/a"
    assert reported == {"request.urlPath"}


# --- headers, query parameters, basic auth, cookies -------------------------------------------------------


def test_string_matchers_on_query_parameters() -> None:
    stub, reported = one(
        req(
            queryParameters={
                "a": {"equalTo": "x"},
                "b": {"equalTo": "Y", "caseInsensitive": True},
                "c": {"contains": "z"},
                "d": {"matches": "[0-9]+"},
                "e": {"absent": True},
                "f": {"anything": ""},
            }
        )
    )
    assert [as_dict(q) for q in stub.request.query] == [
        {"name": "a", "value": {"equals": "x"}},
        {"name": "b", "value": {"equals": "Y", "ignoreCase": True}},
        {"name": "c", "value": {"contains": "z"}},
        {"name": "d", "value": {"regex": "^(?s:[0-9]+)$"}},
        {"name": "e", "absent": True},
    ]
    assert not reported


def test_negations_become_none_of() -> None:
    stub, _ = one(
        req(
            headers={
                "X-A": {"doesNotMatch": "a.*"},
                "X-B": {"doesNotContain": "b"},
                "X-C": {"not": {"equalTo": "c"}},
            }
        )
    )
    assert [as_dict(m) for m in stub.request.none_of] == [
        {"headers": [{"name": "X-A", "value": {"regex": "^(?s:a.*)$"}}]},
        {"headers": [{"name": "X-B", "value": {"contains": "b"}}]},
        {"headers": [{"name": "X-C", "value": {"equals": "c"}}]},
    ]


def test_or_becomes_any_of_and_and_adds_every_part() -> None:
    stub, _ = one(
        req(
            headers={
                "X-Env": {"or": [{"equalTo": "prod"}, {"absent": True}]},
                "X-Id": {"and": [{"matches": "[a-z]+"}, {"doesNotContain": "zz"}]},
                "X-Two": {"or": [{"equalTo": "1"}, {"equalTo": "2"}]},
            }
        )
    )
    request = stub.request
    assert [as_dict(m) for m in request.any_of] == [
        {"headers": [{"name": "X-Env", "value": {"equals": "prod"}}]},
        {"headers": [{"name": "X-Env", "absent": True}]},
    ]
    assert [as_dict(h) for h in request.headers] == [{"name": "X-Id", "value": {"regex": "^(?s:[a-z]+)$"}}]
    assert [as_dict(m) for m in request.none_of] == [{"headers": [{"name": "X-Id", "value": {"contains": "zz"}}]}]
    # A second alternative must hold as well: it goes one level down.
    assert [len(m.any_of) for m in request.all_of] == [2]


def test_an_or_with_a_part_that_cannot_convert_is_left_out_as_a_whole() -> None:
    stub, reported = one(req(headers={"X": {"or": [{"equalTo": "a"}, {"equalToXml": "<a/>"}]}}))
    assert not stub.request.any_of
    assert reported == {"request.headers.X.or[1].equalToXml", "request.headers.X.or"}


def test_includes_and_has_exactly() -> None:
    stub, reported = one(req(queryParameters={"id": {"hasExactly": [{"equalTo": "1"}, {"equalTo": "2"}]}}))
    assert [as_dict(q) for q in stub.request.query] == [
        {"name": "id"},
        {"name": "id", "value": {"equals": "1"}},
        {"name": "id", "value": {"equals": "2"}},
    ]
    assert reported == {"request.queryParameters.id.hasExactly"}
    assert one(req(queryParameters={"id": {"includes": [{"equalTo": "1"}]}}))[1] == set()


def test_basic_auth_is_an_authorization_header_with_any_case_of_basic() -> None:
    stub, _ = one(req(basicAuthCredentials={"username": "ada", "password": "pw+/"}))
    (header,) = stub.request.headers
    token = base64.b64encode(b"ada:pw+/").decode()
    assert header.name == "Authorization"
    assert header.value.regex == "^(?i:Basic) " + token.replace("+", "\\+") + "$"


def test_cookies_are_approximated_on_the_cookie_header() -> None:
    result = convert(req(cookies={"session": {"equalTo": "a.b"}, "gone": {"absent": True}}))
    request = result.stubs[0].request
    assert [h.value.regex for h in request.headers] == [
        r"(?:^|;)\s*session=a\.b\s*(?:;|$)",
        r"(?:^|;)\s*session=",
    ]
    assert [m.headers[0].value.regex for m in request.none_of] == [r"(?:^|;)\s*gone="]
    assert {g.field for g in result.unmapped} == {"request.cookies.session", "request.cookies.gone"}


# --- bodies ----------------------------------------------------------------------------------------------


def body_of(*patterns: dict[str, Any]) -> tuple[list[dict[str, Any]], set[str]]:
    stub, reported = one(req(bodyPatterns=list(patterns)))
    return [as_dict(b) for b in stub.request.body], reported


def test_body_string_matchers() -> None:
    body, reported = body_of(
        {"equalTo": "héllo"},
        {"equalTo": "A.B", "caseInsensitive": True},
        {"contains": "x"},
        {"matches": ".*urgent.*"},
        {"binaryEqualTo": "AAEC"},
    )
    assert body == [
        {"equals": base64.b64encode("héllo".encode()).decode()},
        {"regex": "^(?i:A\\.B)$"},
        {"contains": "x"},
        {"regex": "^(?s:.*urgent.*)$"},
        {"equals": "AAEC"},
    ]
    assert not reported


def test_equal_to_json_is_json_equality_or_a_subset() -> None:
    assert body_of({"equalToJson": {"a": 1, "b": [1, 2]}})[0] == [{"jsonEquals": {"a": 1, "b": [1, 2]}}]
    assert body_of({"equalToJson": '{"a": {"b": null}}'})[0] == [{"jsonEquals": {"a": {"b": None}}}]
    body, reported = body_of({"equalToJson": {"a": {"b": 1}}, "ignoreExtraElements": True})
    assert (body, reported) == ([{"jsonSubset": {"a": {"b": 1}}}], set())
    # Without arrays, ignoring their order changes nothing.
    assert body_of({"equalToJson": {"a": 1}, "ignoreArrayOrder": True}) == ([{"jsonEquals": {"a": 1}}], set())


def test_equal_to_json_approximations_are_reported() -> None:
    for pattern in (
        {"equalToJson": {"a": [1, 2]}, "ignoreExtraElements": True},
        {"equalToJson": {"a": [1, 2]}, "ignoreArrayOrder": True},
        {"equalToJson": {"a": "${json-unit.any-string}", "b": 2}},
    ):
        body, reported = body_of(pattern)
        assert list(body[0]) == ["jsonSubset"]
        assert reported == {"request.bodyPatterns[0].equalToJson"}
    assert body_of({"equalToJson": {"a": "${json-unit.ignore}", "b": 2}})[0] == [{"jsonSubset": {"b": 2}}]


def test_matches_json_path() -> None:
    body, reported = body_of(
        {"matchesJsonPath": "$.items[?(@.qty > 10)]"},
        {"matchesJsonPath": "user.name"},
        {"matchesJsonPath": {"expression": "$.email", "contains": "@"}},
        {"matchesJsonPath": {"expression": "$.role", "equalTo": "admin", "caseInsensitive": True}},
        {"matchesJsonPath": {"expression": "$.n", "equalToJson": {"x": 1}}},
    )
    assert body == [
        {"jsonPath": {"expression": "$.items[?(@.qty > 10)]"}},
        {"jsonPath": {"expression": "$.user.name"}},
        {"jsonPath": {"expression": "$.email", "value": {"contains": "@"}}},
        {"jsonPath": {"expression": "$.role", "value": {"equals": "admin", "ignoreCase": True}}},
        {"jsonPath": {"expression": "$.n", "equals": {"x": 1}}},
    ]
    assert not reported
    stub, _ = one(req(bodyPatterns=[{"matchesJsonPath": {"expression": "$.debug", "absent": True}}]))
    assert [as_dict(m) for m in stub.request.none_of] == [{"body": [{"jsonPath": {"expression": "$.debug"}}]}]


def test_jayway_only_json_paths_and_other_body_matchers_are_reported() -> None:
    reported = gaps(
        req(
            bodyPatterns=[
                {"matchesJsonPath": "$.items.length()"},
                {"equalToXml": "<a/>"},
                {"matchesXPath": "//a"},
                {"matchesJsonSchema": "{}"},
            ]
        )
    )
    assert set(reported) == {
        "request.bodyPatterns[0].matchesJsonPath",
        "request.bodyPatterns[1].equalToXml",
        "request.bodyPatterns[2].matchesXPath",
        "request.bodyPatterns[3].matchesJsonSchema",
    }
    assert "Jayway" in reported["request.bodyPatterns[0].matchesJsonPath"]


def test_regexes_re2_cannot_run_are_left_out_and_reported() -> None:
    stub, reported = one(req(headers={"X": {"matches": "(?=a)a"}, "Y": {"equalTo": "y"}}))
    assert [h.name for h in stub.request.headers] == ["Y"]
    assert reported == {"request.headers.X.matches"}
    result = convert({"request": {"urlPathPattern": "/(?!admin).*"}})
    assert not result.stubs
    assert {g.field for g in result.unmapped} == {"request.urlPathPattern"}


# --- responses -------------------------------------------------------------------------------------------


def test_status_headers_and_bodies() -> None:
    stub, reported = one(resp(status=201, headers={"X-One": "1", "Set-Cookie": ["a=1", "b=2"]}, body="hé"))
    (response,) = stub.responses
    assert response.status == 201
    assert [(h.name, h.value) for h in response.headers] == [
        ("X-One", "1"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]
    assert response.body_bytes == "hé".encode()  # no content type WireMock would not send
    assert not reported
    text = one(resp(headers={"content-type": "text/plain"}, body="hé"))[0].responses[0]
    assert text.body_text == "hé"
    assert one(resp())[0].responses[0].status == 200
    assert one({"request": {"urlPath": "/x"}})[0].responses[0] == stub_pb2.Response(status=200)


def test_json_bodies_are_sent_as_jackson_writes_them() -> None:
    for value in ({"b": [1, 2.5, None, True], "a": "é"}, {"a": 1.0}, {"a": 2**60}):
        for headers in ({}, {"Content-Type": "application/json"}):
            response = one(resp(jsonBody=value, headers=headers))[0].responses[0]
            assert response.body_bytes == json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def test_base64_and_file_bodies() -> None:
    assert one(resp(base64Body="AAECAw=="))[0].responses[0].body_bytes == b"\x00\x01\x02\x03"
    files = {"data/a.json": b'{"x": 1}\n'}
    stub, reported = one(resp(bodyFileName="/data/a.json"), files=files)
    assert stub.responses[0].body_bytes == b'{"x": 1}\n'
    assert not reported
    result = convert(resp(bodyFileName="missing.json"))
    assert result.stubs[0].responses[0].WhichOneof("body") is None
    assert [g.field for g in result.unmapped] == ["response.bodyFileName"]


def test_body_precedence_is_wiremocks() -> None:
    stub, reported = one(resp(body="text", jsonBody={"a": 1}), files={})
    assert stub.responses[0].body_bytes == b"text"
    assert reported == {"response.jsonBody"}


def test_delays() -> None:
    response = one(resp(fixedDelayMilliseconds=250))[0].responses[0]
    assert response.delay.ToMilliseconds() == 250
    lognormal = one(resp(delayDistribution={"type": "lognormal", "median": 80, "sigma": 0.4}))[0].responses[0]
    assert as_dict(lognormal.header_delay) == {"lognormal": {"median": "0.080s", "sigma": 0.4}}
    uniform = one(resp(delayDistribution={"type": "uniform", "lower": 10, "upper": 30}))[0].responses[0]
    assert as_dict(uniform.header_delay) == {"uniform": {"min": "0.010s", "max": "0.030s"}}
    fixed = one(resp(delayDistribution={"type": "fixed", "milliseconds": 5}))[0].responses[0]
    assert as_dict(fixed.header_delay) == {"fixed": "0.005s"}
    stub, reported = one(resp(delayDistribution={"type": "lognormal", "median": 80, "sigma": 0.4, "maxValue": 500}))
    assert stub.responses[0].header_delay.cap.ToMilliseconds() == 500
    assert reported == {"response.delayDistribution.maxValue"}


def test_chunked_dribble_delay_is_a_dribble() -> None:
    response = one(resp(body="0123456789", chunkedDribbleDelay={"numberOfChunks": 3, "totalDuration": 300}))[0]
    assert as_dict(response.responses[0].dribble) == {"chunkBytes": 4, "duration": "0.300s"}


@pytest.mark.parametrize(
    ("fault", "kind", "reported"),
    [
        ("CONNECTION_RESET_BY_PEER", stub_pb2.FAULT_KIND_RESET, False),
        ("EMPTY_RESPONSE", stub_pb2.FAULT_KIND_CLOSE, False),
        ("RANDOM_DATA_THEN_CLOSE", stub_pb2.FAULT_KIND_GARBAGE, False),
        ("MALFORMED_RESPONSE_CHUNK", stub_pb2.FAULT_KIND_MALFORMED_CHUNK, True),
    ],
)
def test_faults(fault: str, kind: int, reported: bool) -> None:
    stub, fields = one(resp(status=503, fault=fault))
    assert stub.responses[0].fault.kind == kind
    assert fields == ({"response.fault"} if reported else set())
    if fault == "RANDOM_DATA_THEN_CLOSE":
        assert stub.responses[0].fault.garbage == wiremock.RANDOM_DATA


def test_framing_and_unsendable_headers_are_reported() -> None:
    stub, reported = one(
        resp(
            body="abc",
            headers={"Content-Length": "3", "Transfer-Encoding": "chunked", "Bad Name": "x", "X-Ok": " padded "},
        )
    )
    assert [(h.name, h.value) for h in stub.responses[0].headers] == [("X-Ok", "padded")]
    assert reported == {"response.headers.Transfer-Encoding", "response.headers.Bad Name"}


# --- priorities, scenarios, names --------------------------------------------------------------------------


def test_priorities_keep_wiremocks_order_under_higher_first() -> None:
    wiremock_priorities = [None, 1, 10, 3, 5, 2]
    result = convert(*({**req(), "priority": p} if p is not None else req() for p in wiremock_priorities))
    ours = [s.priority for s in result.stubs]
    assert ours == [0, 8, -10, 4, 0, 6]
    by_wiremock = sorted(range(6), key=lambda i: wiremock_priorities[i] or 5)
    by_ours = sorted(range(6), key=lambda i: -ours[i])
    assert [wiremock_priorities[i] or 5 for i in by_wiremock] == [wiremock_priorities[i] or 5 for i in by_ours]


def test_scenarios() -> None:
    started = {**req(), "name": "a", "scenarioName": "s", "requiredScenarioState": "Started", "newScenarioState": "B"}
    later = {**req(), "name": "b", "scenarioName": "s", "requiredScenarioState": "B", "newScenarioState": "Started"}
    result = convert(started, later)
    first, second = result.stubs
    assert (first.scenario, first.required_state, first.next_state, first.priority) == ("s", "", "B", 0)
    assert (second.scenario, second.required_state, second.next_state, second.priority) == ("s", "B", "Started", 1)
    assert [(g.mapping, g.field) for g in result.unmapped] == [("a", "requiredScenarioState")]


def test_a_scenario_that_never_leaves_started_is_exact() -> None:
    stub, reported = one({**req(), "scenarioName": "s", "requiredScenarioState": "Started"})
    assert (stub.scenario, stub.required_state) == ("s", "")
    assert not reported


def test_states_without_a_scenario_are_reported() -> None:
    stub, reported = one({**req(), "requiredScenarioState": "X", "newScenarioState": "Y"})
    assert (stub.required_state, stub.next_state) == ("", "")
    assert reported == {"requiredScenarioState", "newScenarioState"}


def test_names_and_ids_become_descriptions_and_labels() -> None:
    result = wiremock.convert(
        [
            ("a.json", {**req(), "name": "named", "id": "1"}),
            ("b.json", {**req(), "id": "the-id", "transformers": []}),
            ("c.json", {"mappings": [req(), {**req(), "bogus": 1}]}),
        ],
        {},
    )
    assert [s.description for s in result.stubs] == ["named", "the-id", "", ""]
    assert [(g.mapping, g.field) for g in result.unmapped] == [("the-id", "transformers"), ("c.json[1]", "bogus")]


# --- what is not converted ---------------------------------------------------------------------------------


def test_unmapped_features_are_reported_with_their_field() -> None:
    mapping = {
        "name": "everything",
        "persistent": True,
        "metadata": {"tag": "x"},
        "postServeActions": [{"name": "webhook"}],
        "serveEventListeners": [{"name": "webhook", "parameters": {}}],
        "request": {
            "urlPath": "/x",
            "formParameters": {"a": {"equalTo": "1"}},
            "multipartPatterns": [{"name": "file"}],
            "customMatcher": {"name": "mine"},
            "host": {"equalTo": "example.com"},
            "port": 8080,
            "scheme": "https",
            "clientIp": {"equalTo": "1.2.3.4"},
            "headers": {"X-Date": {"before": "now"}, "X-N": {"equalToNumber": 1}},
            "nonsense": True,
        },
        "response": {
            "status": 200,
            "statusMessage": "Fine",
            "body": "{{request.path}}",
            "transformers": ["response-template", "my-extension"],
            "transformerParameters": {"a": 1},
            "extra": 1,
        },
    }
    result = convert(mapping)
    assert result.stubs[0].responses[0].body_bytes == b"{{request.path}}"  # sent literally
    reported = {g.field for g in result.unmapped}
    assert reported == {
        "persistent",
        "metadata",
        "postServeActions",
        "serveEventListeners",
        "request.formParameters",
        "request.multipartPatterns",
        "request.customMatcher",
        "request.host",
        "request.port",
        "request.scheme",
        "request.clientIp",
        "request.headers.X-Date.before",
        "request.headers.X-N.equalToNumber",
        "request.nonsense",
        "response.statusMessage",
        "response.transformers",
        "response.transformerParameters",
        "response.extra",
    }
    assert all(g.mapping == "everything" and g.reason for g in result.unmapped)
    handlebars = [g.reason for g in result.unmapped if g.field == "response.transformers"]
    assert any("Handlebars" in r for r in handlebars) and any("my-extension" in r for r in handlebars)


# --- proxies ------------------------------------------------------------------------------------------------


def test_a_proxy_mapping_becomes_a_transparent_proxy_with_its_request_headers() -> None:
    stub, reported = one(
        {
            "priority": 10,
            "request": {"urlPattern": ".*"},
            "response": {
                "proxyBaseUrl": "http://127.0.0.1:8081/api",
                "additionalProxyRequestHeaders": {"X-Api-Key": "k-1", "X-Many": ["first", "second"]},
            },
        }
    )
    (response,) = stub.responses
    assert as_dict(response) == {
        "proxy": {
            "upstream": "http://127.0.0.1:8081/api",
            "mode": "PROXY_MODE_TRANSPARENT",
            "requestHeaders": [{"name": "X-Api-Key", "value": "k-1"}, {"name": "X-Many", "value": "first"}],
        }
    }
    assert stub.priority == -10  # a low-priority catch-all stays one
    assert not reported


def test_a_proxy_mapping_keeps_its_delays() -> None:
    stub, reported = one(
        resp(
            proxyBaseUrl="http://127.0.0.1:8081",
            fixedDelayMilliseconds=250,
            delayDistribution={"type": "uniform", "lower": 10, "upper": 20},
        )
    )
    (response,) = stub.responses
    assert response.HasField("proxy")
    assert response.delay.ToMilliseconds() == 250
    assert response.header_delay.uniform.max.ToMilliseconds() == 20
    assert not reported


def test_a_proxy_mapping_sets_no_status_headers_or_body_and_says_so() -> None:
    result = convert(
        {
            "name": "p",
            "request": {"urlPath": "/x"},
            "response": {
                "proxyBaseUrl": "https://127.0.0.1:8443",
                "status": 201,
                "statusMessage": "Made",
                "headers": {"X-Added": "1"},
                "jsonBody": {"a": 1},
                "fault": "CONNECTION_RESET_BY_PEER",
                "chunkedDribbleDelay": {"numberOfChunks": 2, "totalDuration": 100},
                "transformers": ["response-template"],
                "nonsense": 1,
            },
        }
    )
    (stub,) = result.stubs
    (response,) = stub.responses
    assert [field.name for field, _ in response.ListFields()] == ["proxy"]
    reasons = {g.field: g.reason for g in result.unmapped}
    assert set(reasons) == {
        "response.status",
        "response.statusMessage",
        "response.headers",
        "response.jsonBody",
        "response.fault",
        "response.chunkedDribbleDelay",
        "response.transformers",
        "response.nonsense",
    }
    assert "upstream's status" in reasons["response.status"]
    assert "adds these headers" in reasons["response.headers"]
    assert "proxyBaseUrl" in reasons["response.transformers"]


def test_proxy_options_simulatord_lacks_are_reported() -> None:
    stub, reported = one(
        resp(
            proxyBaseUrl="http://127.0.0.1:8081",
            proxyUrlPrefixToRemove="/other",
            removeProxyRequestHeaders=["x-trace"],
        )
    )
    assert stub.responses[0].proxy.upstream == "http://127.0.0.1:8081"
    assert reported == {"response.proxyUrlPrefixToRemove", "response.removeProxyRequestHeaders"}


def test_proxy_request_headers_the_daemon_refuses_are_left_out_not_the_mapping() -> None:
    headers = {"Host": "api.example.com", "Connection": "close", "X-Bad": "a\nb", "X-Num": 3, "X-Ok": " v "}
    stub, reported = one(resp(proxyBaseUrl="http://127.0.0.1:8081", additionalProxyRequestHeaders=headers))
    assert [(h.name, h.value) for h in stub.responses[0].proxy.request_headers] == [("X-Ok", "v")]
    prefix = "response.additionalProxyRequestHeaders"
    assert reported == {f"{prefix}.Host", f"{prefix}.Connection", f"{prefix}.X-Bad", f"{prefix}.X-Num"}


def test_proxy_upstreams_that_are_not_urls_are_not_converted() -> None:
    result = convert({"name": "empty", **resp(proxyBaseUrl="")}, {"name": "ftp", **resp(proxyBaseUrl="ftp://h")})
    assert not result.stubs
    fields = [(g.mapping, g.field) for g in result.unmapped]
    assert fields == [("empty", "response.proxyBaseUrl"), ("ftp", "(mapping)")]
    assert "upstream" in result.unmapped[1].reason


def test_proxy_options_without_a_proxy_are_reported() -> None:
    _, reported = one(resp(status=200, additionalProxyRequestHeaders={"a": "b"}, proxyUrlPrefixToRemove="/x"))
    assert reported == {"response.additionalProxyRequestHeaders", "response.proxyUrlPrefixToRemove"}


def test_converted_proxies_pass_the_daemons_validation() -> None:
    result = convert(
        resp(proxyBaseUrl="http://127.0.0.1:8081", additionalProxyRequestHeaders={"X-Key": "k"}),
        resp(proxyBaseUrl="https://10.0.0.1:8443/base/", fixedDelayMilliseconds=5),
    )
    assert len(result.stubs) == 2
    errors = SpecErrors()
    for i, stub in enumerate(result.stubs):
        compile_stub(stub, "tenants/t/sessions/s", "", f"stubs[{i}]", "stub_id", errors, 0.0)
    assert errors.violations == []


def test_a_stub_the_daemon_refuses_is_reported_not_returned() -> None:
    result = convert({"name": "rel", "request": {"url": "relative"}})
    assert not result.stubs
    ((mapping, field, reason),) = [(g.mapping, g.field, g.reason) for g in result.unmapped]
    assert (mapping, field) == ("rel", "(mapping)")
    assert "must start with '/'" in reason


def test_documents_that_are_not_mappings_are_reported() -> None:
    result = wiremock.convert(
        [("bad.json", wiremock.MalformedJson("Expecting value")), ("list.json", [1]), ("m.json", {"mappings": [3]})],
        {},
    )
    assert not result.stubs
    assert [(g.mapping, g.field) for g in result.unmapped] == [
        ("bad.json", "(file)"),
        ("list.json", "(file)"),
        ("m.json[0]", "(mapping)"),
    ]


def test_every_stub_of_the_fixture_passes_the_daemons_validation() -> None:
    result = wiremock.convert(*wiremock.load_directory(FIXTURE))
    assert len(result.stubs) == 27
    errors = SpecErrors()
    for i, stub in enumerate(result.stubs):
        compile_stub(stub, "tenants/t/sessions/s", "", f"stubs[{i}]", "stub_id", errors, 0.0)
    assert errors.violations == []


# --- load_directory ---------------------------------------------------------------------------------------


def write(path: Path, content: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode() if isinstance(content, str) else content)


def test_load_directory_reads_wiremocks_root_layout(tmp_path: Path) -> None:
    write(tmp_path / "mappings" / "b.json", json.dumps(resp(bodyFileName="nested/body.bin")))
    write(tmp_path / "mappings" / "sub" / "a.json", json.dumps({"mappings": [req(), req()]}))
    write(tmp_path / "mappings" / "broken.json", "{not json")
    write(tmp_path / "mappings" / "notes.txt", "ignored: not .json")
    write(tmp_path / "__files" / "nested" / "body.bin", b"\x00\xff")
    mappings, files = wiremock.load_directory(tmp_path)
    assert [label for label, _ in mappings] == ["b.json", "broken.json", "sub/a.json"]
    assert isinstance(mappings[1][1], wiremock.MalformedJson)
    assert files == {"nested/body.bin": b"\x00\xff"}
    result = wiremock.convert(mappings, files)
    assert len(result.stubs) == 3
    assert result.stubs[0].responses[0].body_bytes == b"\x00\xff"
    assert [(g.mapping, g.field) for g in result.unmapped] == [("broken.json", "(file)")]


def test_load_directory_takes_a_mappings_directory_or_one_file(tmp_path: Path) -> None:
    write(tmp_path / "mappings" / "a.json", "\ufeff" + json.dumps(resp(bodyFileName="x.txt")))
    write(tmp_path / "__files" / "x.txt", "x")
    mappings, files = wiremock.load_directory(tmp_path / "mappings")
    assert [label for label, _ in mappings] == ["a.json"]
    assert files == {"x.txt": b"x"}
    mappings, files = wiremock.load_directory(tmp_path / "mappings" / "a.json")
    assert ([label for label, _ in mappings], files) == (["a.json"], {"x.txt": b"x"})
    flat = tmp_path / "flat"
    write(flat / "one.json", json.dumps(req()))
    write(flat / "__files" / "body.txt", "b")
    mappings, files = wiremock.load_directory(flat)
    assert ([label for label, _ in mappings], files) == (["one.json"], {"body.txt": b"b"})
    with pytest.raises(FileNotFoundError):
        wiremock.load_directory(tmp_path / "nowhere")
