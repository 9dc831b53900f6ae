"""The asyncio client: `AsyncSimulator` and `AsyncSession`, the same API as the sync one with `await`.

Both are thin: each method awaits one operation of `simulatord_client.operations`, the same ones the sync
client runs.

Example::

    import httpx
    from simulatord_client import AsyncSimulator

    async def main() -> None:
        async with AsyncSimulator("127.0.0.1:50051") as sim, sim.session(tenant="checkout") as s:
            await s.stub("GET", "/users/{id}", json={"id": 7})
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{s.url}/users/7")).json() == {"id": 7}
            async for exchange in s.watch():
                assert exchange.path == "/users/7"
                break
            await s.verify()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from types import TracebackType
from typing import TYPE_CHECKING, Unpack, cast

import grpc
import grpc.aio

from simulatord.v1 import session_pb2, stub_pb2, webhook_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client import operations as ops
from simulatord_client.builders import StubLike, StubOptions, stub
from simulatord_client.errors import from_rpc_error, hide_client_frames
from simulatord_client.exchanges import Exchange, FilterOptions
from simulatord_client.rpc import Method, Operation, Req, Resp, Rpc, T, advance, auth_metadata
from simulatord_client.session_core import SessionCore, SessionOptions
from simulatord_client.stub_refs import StubRef, StubRefLike
from simulatord_client.webhooks import Delivery

# A SimulatorError or a failed wait or verification points at the test's line, not at these frames.
__tracebackhide__ = hide_client_frames

if TYPE_CHECKING:
    from simulatord.v1.simulator_service_pb2_grpc import SimulatorServiceAsyncStub  # only the .pyi has it


class AsyncSimulator:
    """An asyncio connection to a simulatord daemon; the channel is made on first use, in the running loop.

    `token`: as for `Simulator` (default: $SIMULATORD_TOKEN; "" sends none), on every call and watch stream.

    Example: `async with AsyncSimulator(address) as sim: async with sim.session() as s: ...`
    """

    def __init__(self, address: str, *, timeout: float = 10.0, token: str | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self.metadata = auth_metadata(token)
        self._channel: grpc.aio.Channel | None = None
        self._stub: SimulatorServiceAsyncStub | None = None

    @property
    def stub(self) -> SimulatorServiceAsyncStub:
        """The generated service stub (for calls this client does not wrap)."""
        if self._stub is None:
            # grpc.aio channels belong to the loop they are created in, so create it lazily.
            self._channel = grpc.aio.insecure_channel(self.address)
            self._stub = pb_grpc.SimulatorServiceStub(self._channel)
        return self._stub

    async def call(self, method: Method[Req, Resp], request: Req, timeout: float | None = None) -> Resp:
        """Makes one unary call, turning a gRPC failure into a `SimulatorError`; also reaches RPCs this client
        does not wrap: `await sim.call(lambda stub: stub.SendWebSocketMessage, request)`."""
        # `method` is typed on the sync stub; on the async stub the same attribute is the grpc.aio flavour of
        # the method, with the same request and response types.
        multicallable = cast("grpc.aio.UnaryUnaryMultiCallable[Req, Resp]", method(self.stub))
        try:
            return await multicallable(request, timeout=timeout or self.timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err, self.address) from None

    async def _run(self, operation: Operation[T]) -> T:
        """Drives an operation to its end, awaiting each call it asks for."""
        step = advance(operation)
        while isinstance(step, Rpc):
            try:
                reply = await self.call(step.method, step.request, step.timeout)
            except BaseException as error:  # cancellation too: the operation may clean up first
                step = advance(operation, error=error)
            else:
                step = advance(operation, reply)
        return step.value

    def session(self, tenant: str = "default", **options: Unpack[SessionOptions]) -> AsyncSession:
        """A session to use with `async with`; see `Simulator.session()`."""
        return AsyncSession(self, tenant, **options)

    async def list_sessions(self, tenant: str = "-", label_selector: str = "") -> list[session_pb2.Session]:
        """Every session of a tenant (`-`: all tenants), oldest first."""
        return await self._run(ops.list_sessions(tenant, label_selector))

    async def delete_session(self, name: str, *, allow_missing: bool = False) -> None:
        """Deletes a session by name."""
        await self._run(ops.delete_session(name, allow_missing=allow_missing))

    async def close(self) -> None:
        """Closes the channel."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = self._stub = None

    async def __aenter__(self) -> AsyncSimulator:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


class AsyncSession(SessionCore):
    """One isolated simulated API, asyncio flavour; get one from `AsyncSimulator.session()`."""

    def __init__(self, simulator: AsyncSimulator, tenant: str = "default", **options: Unpack[SessionOptions]) -> None:
        super().__init__(tenant, **options)
        self.simulator = simulator
        self._beater: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> AsyncSession:
        """Creates the session (one CreateSession call with the initial stubs) and starts the heartbeat."""
        self.info, self.initial_stubs = await self.simulator._run(ops.open_session(self._create, self._deferred))
        if self._heartbeat:
            self._beater = asyncio.create_task(self._beat(), name=f"simulatord-heartbeat {self.name}")
        return self

    async def _beat(self) -> None:
        interval = self.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            if not await self.simulator._run(ops.heartbeat(self.name, interval)):
                return

    async def close(self, *, quiet: bool = False) -> None:
        """Stops the heartbeat and deletes the session (a missing session is fine)."""
        if self._beater is not None:
            self._beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beater
            self._beater = None
        if self.info.name:
            await self.simulator._run(ops.close_session(self.info.name, quiet=quiet))

    async def __aenter__(self) -> AsyncSession:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close(quiet=exc_type is not None)

    async def refresh(self, ttl: float | None = None) -> session_pb2.Session:
        """Pushes the expiry to now + ttl; returns the session."""
        self.info = await self.simulator._run(ops.refresh_session(self.name, ttl))
        return self.info

    async def get(self) -> session_pb2.Session:
        """The session as the daemon sees it now."""
        self.info = await self.simulator._run(ops.get_session(self.name))
        return self.info

    async def export(self, *, remove_proxies: bool = False) -> pb.CreateSessionRequest:
        """The session as a template: its settings and stubs as programmed, in creation order; with
        `remove_proxies=True`, without the stubs that proxy (see `Session.export`)."""
        return await self.simulator._run(ops.export_session(self.name, remove_proxies=remove_proxies))

    # --- programming -----------------------------------------------------------------------------

    async def stub(
        self, method: str = "", path: str | stub_pb2.PathMatcher | None = None, **options: Unpack[StubOptions]
    ) -> StubRef:
        """Creates one stub; takes the keywords of `simulatord_client.stub()`."""
        return (await self.add(stub(method, path, **options)))[0]

    async def add(self, *stubs: StubLike) -> list[StubRef]:
        """Creates many stubs in one round trip (all or none)."""
        return await self.simulator._run(ops.create_stubs(self.name, stubs))

    async def replace_stub(self, ref: StubRefLike, new: StubLike) -> StubRef:
        """Replaces a stub's definition, keeping its name."""
        return await self.simulator._run(ops.replace_stub(self.name, ref, new))

    async def delete_stub(self, ref: StubRefLike) -> None:
        """Deletes one stub."""
        await self.simulator._run(ops.delete_stub(self.name, ref))

    async def get_stub(self, ref: StubRefLike) -> stub_pb2.Stub:
        """The stub as stored, with its `match_count`."""
        return await self.simulator._run(ops.get_stub(self.name, ref))

    async def list_stubs(self) -> list[stub_pb2.Stub]:
        """Every stub, in the order they are tried."""
        return await self.simulator._run(ops.list_stubs(self.name))

    async def reset(self, *, stubs: bool = True, journal: bool = True, state: bool = True) -> None:
        """Clears stubs, journal and/or scenario state (all by default)."""
        self.info = await self.simulator._run(ops.reset_session(self.name, stubs=stubs, journal=journal, state=state))

    async def set_state(self, state: str) -> None:
        """Sets the scenario state."""
        self.info = await self.simulator._run(ops.set_state(self.name, state))

    # --- webhooks --------------------------------------------------------------------------------

    async def deliver_webhooks(
        self, *webhooks: webhook_pb2.Webhook, wait: bool = True, timeout: float = 30.0, order: str = "in_order"
    ) -> list[Delivery]:
        """Makes the daemon deliver webhooks to the code under test; see `Session.deliver_webhooks()`."""
        return await self.simulator._run(
            ops.deliver_webhooks(self.name, webhooks, wait=wait, timeout=timeout, order=order)
        )

    async def deliver_webhook(
        self, webhook: webhook_pb2.Webhook, *, wait: bool = True, timeout: float = 30.0, order: str = "in_order"
    ) -> Delivery:
        """Delivers one webhook; see `Session.deliver_webhooks()`."""
        return (await self.deliver_webhooks(webhook, wait=wait, timeout=timeout, order=order))[0]

    # --- observing -------------------------------------------------------------------------------

    async def exchanges(self, **filter: Unpack[FilterOptions]) -> list[Exchange]:
        """Recorded exchanges, oldest first; see `Session.exchanges()`."""
        return await self.simulator._run(ops.list_exchanges(self.name, filter))

    async def count(self, **filter: Unpack[FilterOptions]) -> int:
        """How many recorded exchanges pass the filter."""
        return await self.simulator._run(ops.count_exchanges(self.name, filter))

    async def wait_for(self, count: int = 1, timeout: float = 5.0, **filter: Unpack[FilterOptions]) -> list[Exchange]:
        """Waits until `count` exchanges pass the filter; on timeout raises AssertionError with what arrived."""
        return await self.simulator._run(ops.wait_for(self.name, count, timeout, filter))

    def watch(
        self, start: int = 1, *, timeout: float | None = None, **filter: Unpack[FilterOptions]
    ) -> AsyncExchangeStream:
        """Live exchanges as an async iterator; see `Session.watch()`."""
        request = ops.watch_request(self.name, start, filter)
        call = self.simulator.stub.WatchExchanges(request, timeout=timeout, metadata=self.simulator.metadata)
        return AsyncExchangeStream(call, self.simulator.address)

    async def verification(self) -> pb.VerifySessionResponse:
        """The raw verification report."""
        return await self.simulator._run(ops.verification(self.name))

    async def verify(self) -> None:
        """Raises AssertionError when expectations are not met; see `Session.verify()`."""
        await self.simulator._run(ops.verify(self.name))


class AsyncExchangeStream(ops.WatchEvents, AsyncIterator[Exchange]):
    """An async iterator over live exchanges from `AsyncSession.watch()`; `close()` cancels it."""

    def __init__(
        self, call: grpc.aio.UnaryStreamCall[pb.WatchExchangesRequest, pb.WatchExchangesResponse], address: str
    ) -> None:
        super().__init__(address)
        self._call = call

    def __aiter__(self) -> AsyncExchangeStream:
        return self

    async def __anext__(self) -> Exchange:
        while True:
            try:
                event = await self._call.read()
            except grpc.RpcError as err:
                self._raise_unless_ended(err)
                raise StopAsyncIteration from None
            except asyncio.CancelledError:
                if self._closed:
                    raise StopAsyncIteration from None
                raise
            if not isinstance(event, pb.WatchExchangesResponse):  # grpc.aio.EOF: the daemon ended the stream
                raise StopAsyncIteration
            if (exchange := self._exchange(event)) is not None:
                return exchange

    def close(self) -> None:
        """Cancels the stream."""
        self._closed = True
        self._call.cancel()

    async def aclose(self) -> None:
        """Cancels the stream (for `contextlib.aclosing`)."""
        self.close()

    async def __aenter__(self) -> AsyncExchangeStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
