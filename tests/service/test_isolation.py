"""Many sessions in several tenants hammered at once: each sees exactly its own exchanges, nothing else."""

from __future__ import annotations

import asyncio

import grpc
import httpx

from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.embedded import EmbeddedDaemon
from tests.helpers import stub

TENANTS = 4
SESSIONS_PER_TENANT = 6
REQUESTS_PER_SESSION = 25


async def hammer(daemon: EmbeddedDaemon) -> None:
    async with grpc.aio.insecure_channel(daemon.grpc_address) as channel:
        control = pb_grpc.SimulatorServiceStub(channel)
        # The same session id in every tenant: tenants are namespaces, and must not collide.
        created = await asyncio.gather(
            *[
                control.CreateSession(
                    pb.CreateSessionRequest(
                        parent=f"tenants/iso-{t}",
                        session_id=f"s{s}",
                        stubs=[stub(method="POST", path="/echo", json={"tenant": t, "session": s})],
                    )
                )
                for t in range(TENANTS)
                for s in range(SESSIONS_PER_TENANT)
            ]
        )
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(limits=limits, timeout=20) as http:

            async def traffic(session: pb.CreateSessionResponse, index: int) -> None:
                for n in range(REQUESTS_PER_SESSION):
                    answer = await http.post(
                        session.session.base_url + "/echo", content=f"{index}:{n}", headers={"x-owner": str(index)}
                    )
                    assert answer.status_code == 200

            await asyncio.gather(*[traffic(s, i) for i, s in enumerate(created)])
        for index, session in enumerate(created):
            listed = await control.ListExchanges(pb.ListExchangesRequest(parent=session.session.name, page_size=1000))
            bodies = [e.request.body.decode() for e in listed.exchanges]
            assert sorted(bodies) == sorted(f"{index}:{n}" for n in range(REQUESTS_PER_SESSION)), session.session.name
            owners = {h.value for e in listed.exchanges for h in e.request.headers if h.name == "x-owner"}
            assert owners == {str(index)}
            assert [e.sequence for e in listed.exchanges] == list(range(1, REQUESTS_PER_SESSION + 1))
        for t in range(TENANTS):
            page = await control.ListSessions(pb.ListSessionsRequest(parent=f"tenants/iso-{t}"))
            assert sorted(s.name for s in page.sessions) == [
                f"tenants/iso-{t}/sessions/s{s}" for s in range(SESSIONS_PER_TENANT)
            ]


def test_concurrent_sessions_in_several_tenants_stay_isolated() -> None:
    with EmbeddedDaemon() as daemon:
        asyncio.run(hammer(daemon))
