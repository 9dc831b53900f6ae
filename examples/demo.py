"""A two-minute tour: start a daemon, program a session over gRPC, call it over HTTP, read the journal back."""

from __future__ import annotations

import grpc
import httpx
from google.protobuf import json_format, struct_pb2

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord.v1 import stub_pb2
from simulatord_client.embedded import EmbeddedDaemon


def json_value(obj: object) -> struct_pb2.Value:
    return json_format.ParseDict(obj, struct_pb2.Value())


def main() -> None:
    with EmbeddedDaemon() as daemon, grpc.insecure_channel(daemon.grpc_address) as channel:
        print(f"daemon: http={daemon.http_url} grpc={daemon.grpc_address}")
        control = pb_grpc.SimulatorServiceStub(channel)
        flaky_then_ok = stub_pb2.Stub(
            description="weather API: fails twice, then answers",
            request=stub_pb2.RequestMatcher(method="GET", path=stub_pb2.PathMatcher(template="/v1/weather/{city}")),
            responses=[
                stub_pb2.Response(status=503, headers=[stub_pb2.Header(name="retry-after", value="0")]),
                stub_pb2.Response(status=503),
                stub_pb2.Response(status=200, body_json=json_value({"forecast": "sunny"})),
            ],
        )
        created = control.CreateSession(pb.CreateSessionRequest(parent="tenants/demo", stubs=[flaky_then_ok]))
        base = created.session.base_url
        print(f"session {created.session.name}\n  base URL {base}")
        with httpx.Client() as http:
            for attempt in range(1, 4):
                answer = http.get(f"{base}/v1/weather/oslo")
                print(f"  attempt {attempt}: {answer.status_code} {answer.text}")
            miss = http.post(f"{base}/v1/weather/oslo")
            print(f"  unmatched POST: {miss.status_code} (the body lists the nearest misses)")
        journal = control.ListExchanges(pb.ListExchangesRequest(parent=created.session.name)).exchanges
        print("journal:")
        for exchange in journal:
            request, status = exchange.request, exchange.response.status
            print(f"  #{exchange.sequence} {request.method} {request.path} -> {status}")
        report = control.VerifySession(pb.VerifySessionRequest(name=created.session.name))
        print("verify:\n" + "\n".join("  " + line for line in report.summary.splitlines()))
        control.DeleteSession(pb.DeleteSessionRequest(name=created.session.name))


if __name__ == "__main__":
    main()
