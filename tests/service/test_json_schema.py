"""A JSON Schema body matcher on a real daemon: valid requests match, invalid ones fall to the unmatched answer
with the failing field in the near miss, and a bad schema is refused when programmed."""

from __future__ import annotations

import grpc
import httpx
import pytest

from simulatord.v1 import exchange_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client import json_schema, stub
from simulatord_client.errors import from_rpc_error

SCHEMA = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "minLength": 1}}}


def test_valid_bodies_match_and_invalid_ones_are_answered_400_naming_the_field(
    control: pb_grpc.SimulatorServiceStub, http: httpx.Client
) -> None:
    request = pb.CreateSessionRequest(
        parent="tenants/schema",
        stubs=[stub("POST", "/pets", json_schema=SCHEMA, status=201, json={"id": 1})],
    )
    request.session.unmatched_status = 400
    session = control.CreateSession(request).session
    assert http.post(session.base_url + "/pets", json={"name": "Rex"}).status_code == 201
    refused = http.post(session.base_url + "/pets", json={"name": 7})
    assert refused.status_code == 400
    assert "$.name: 7 is not of type 'string'" in refused.text
    listed = control.ListExchanges(
        pb.ListExchangesRequest(
            parent=session.name, filter=exchange_pb2.ExchangeFilter(match_state=exchange_pb2.MATCH_STATE_UNMATCHED)
        )
    ).exchanges
    [miss] = listed[0].near_misses
    assert [(m.field, m.actual) for m in miss.mismatches] == [("body[0]", "$.name: 7 is not of type 'string'")]


def test_a_bad_schema_is_refused_at_its_field(control: pb_grpc.SimulatorServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        control.CreateSession(
            pb.CreateSessionRequest(
                parent="tenants/schema", stubs=[stub("POST", "/x", body_matchers=[json_schema({"minimum": "one"})])]
            )
        )
    error = from_rpc_error(caught.value)
    assert error.reason == "INVALID_STUB"
    assert [v.field for v in error.field_violations] == ["stubs[0].request.body[0].json_schema.minimum"]
