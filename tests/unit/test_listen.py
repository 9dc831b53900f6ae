"""The daemon's listening socket: connections accepted on it get TCP_NODELAY from asyncio, whichever server runs.

Without it, uvicorn on the plain asyncio loop held each response's body until the client's delayed ACK of its
headers arrived: 44 ms for every request on a kept-alive connection (httpx, requests, any pooled client)."""

from __future__ import annotations

import asyncio
import socket

from simulatord.server import _listen


def test_connections_accepted_by_an_asyncio_server_on_it_have_nodelay() -> None:
    async def scenario() -> int:
        sock = _listen("127.0.0.1", 0, "HTTP", "--http-port")
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                conn = transport.get_extra_info("socket")
                accepted.set_result(conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        _reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
        try:
            return await asyncio.wait_for(accepted, 5)
        finally:
            writer.close()
            server.close()
            await server.wait_closed()

    assert asyncio.run(scenario()) != 0
