"""The asyncio client: `AsyncSimulator` and `AsyncSession`, the same API as the sync one with `await`.

Example::

    import httpx
    from simulatord_client import AsyncSimulator

    async def main() -> None:
        async with AsyncSimulator("127.0.0.1:50051") as sim, sim.session(tenant="checkout") as s:
            await s.stub("GET", "/users/{id}", json={"id": 7})
            async with httpx.AsyncClient() as http:
                assert (await http.get(f"{s.url}/users/7")).json() == {"id": 7}
            async for request in s.watch():
                assert request.path == "/users/7"
                break
            await s.verify()
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import Any, Unpack

import grpc
import grpc.aio

from simulatord.v1 import session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client._base import DEFAULT_TTL, SessionBase, StubRef, StubRefLike, stub_name
from simulatord_client.builders import StubLike, StubOptions, stub
from simulatord_client.client import PAGE_SIZE, WAIT_GRACE
from simulatord_client.durations import duration
from simulatord_client.errors import NotFoundError, SimulatorError, from_rpc_error
from simulatord_client.records import FilterOptions, Request, exchange_filter, verify_failure, wait_failure


class AsyncSimulator:
    """An asyncio connection to a simulatord daemon; the channel is made on first use, in the running loop.

    Example: `async with AsyncSimulator(address) as sim: async with sim.session() as s: ...`
    """

    def __init__(self, address: str, *, timeout: float = 10.0) -> None:
        self.address = address
        self.timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._stub: pb_grpc.SimulatorServiceStub | None = None

    @property
    def stub(self) -> pb_grpc.SimulatorServiceStub:
        """The generated service stub (for calls this client does not wrap)."""
        if self._stub is None:
            # grpc.aio channels belong to the loop they are created in, so create it lazily.
            self._channel = grpc.aio.insecure_channel(self.address)
            self._stub = pb_grpc.SimulatorServiceStub(self._channel)
        return self._stub

    async def call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        """Calls one unary RPC by name, turning a gRPC failure into a `SimulatorError`."""
        __tracebackhide__ = True  # a failure points at the test's line, not at the client's plumbing
        try:
            return await getattr(self.stub, method)(request, timeout=timeout or self.timeout)
        except grpc.RpcError as err:
            raise from_rpc_error(err, self.address) from None

    def session(
        self,
        tenant: str = "default",
        *,
        session_id: str = "",
        labels: Mapping[str, str] | None = None,
        ttl: float | None = DEFAULT_TTL,
        stubs: Iterable[StubLike] = (),
        template: str = "",
        unmatched_status: int = 0,
        journal_limits: session_pb2.JournalLimits | None = None,
        heartbeat: bool = True,
    ) -> AsyncSession:
        """A session to use with `async with`; see `Simulator.session()`."""
        return AsyncSession(
            self,
            tenant=tenant,
            session_id=session_id,
            labels=labels,
            ttl=ttl,
            stubs=stubs,
            template=template,
            unmatched_status=unmatched_status,
            journal_limits=journal_limits,
            heartbeat=heartbeat,
        )

    async def list_sessions(self, tenant: str = "-", label_selector: str = "") -> list[session_pb2.Session]:
        """Every session of a tenant (`-`: all tenants), oldest first."""
        out: list[session_pb2.Session] = []
        token = ""
        while True:
            request = pb.ListSessionsRequest(
                parent=f"tenants/{tenant}", page_size=PAGE_SIZE, page_token=token, label_selector=label_selector
            )
            reply = await self.call("ListSessions", request)
            out.extend(reply.sessions)
            token = reply.next_page_token
            if not token:
                return out

    async def delete_session(self, name: str, *, allow_missing: bool = False) -> None:
        """Deletes a session by name."""
        await self.call("DeleteSession", pb.DeleteSessionRequest(name=name, allow_missing=allow_missing))

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


class AsyncSession(SessionBase):
    """One isolated simulated API, asyncio flavour; get one from `AsyncSimulator.session()`."""

    def __init__(self, simulator: AsyncSimulator, **settings: Any) -> None:
        super().__init__(**settings)
        self.simulator = simulator
        self._beater: asyncio.Task[None] | None = None

    async def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        __tracebackhide__ = True
        return await self.simulator.call(method, request, timeout)

    # --- lifecycle -------------------------------------------------------------------------------

    async def open(self) -> AsyncSession:
        """Creates the session (one CreateSession call with the initial stubs) and starts the heartbeat."""
        reply = await self._call("CreateSession", self._create)
        self.info = reply.session
        self.initial_stubs = [StubRef(s.name, s) for s in reply.stubs]
        try:
            if self._deferred:
                batch = await self._call("BatchCreateStubs", self._batch(self._deferred))
                self.initial_stubs = [StubRef(s.name, s) for s in batch.stubs]
        except BaseException:
            await self._call("DeleteSession", pb.DeleteSessionRequest(name=self.name, allow_missing=True))
            raise
        if self._heartbeat:
            self._beater = asyncio.create_task(self._beat(), name=f"simulatord-heartbeat {self.name}")
        return self

    async def _beat(self) -> None:
        interval = self.heartbeat_interval
        while True:
            await asyncio.sleep(interval)
            try:
                await self._call("RefreshSession", pb.RefreshSessionRequest(name=self.name), timeout=max(interval, 1.0))
            except NotFoundError:
                return  # deleted elsewhere (or expired): nothing left to keep alive
            except SimulatorError:
                continue  # transient: the next beat tries again

    async def close(self, *, quiet: bool = False) -> None:
        """Stops the heartbeat and deletes the session (a missing session is fine)."""
        if self._beater is not None:
            self._beater.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._beater
            self._beater = None
        if not self.info.name:
            return
        try:
            await self._call("DeleteSession", pb.DeleteSessionRequest(name=self.info.name, allow_missing=True))
        except SimulatorError:
            if not quiet:
                raise

    async def __aenter__(self) -> AsyncSession:
        return await self.open()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close(quiet=exc_type is not None)

    async def refresh(self, ttl: float | None = None) -> session_pb2.Session:
        """Pushes the expiry to now + ttl; returns the session."""
        request = pb.RefreshSessionRequest(name=self.name)
        if ttl:
            request.ttl.CopyFrom(duration(ttl))
        self.info = (await self._call("RefreshSession", request)).session
        return self.info

    async def get(self) -> session_pb2.Session:
        """The session as the daemon sees it now."""
        self.info = (await self._call("GetSession", pb.GetSessionRequest(name=self.name))).session
        return self.info

    # --- programming -----------------------------------------------------------------------------

    async def stub(
        self, method: str = "", path: str | stub_pb2.PathMatcher | None = None, **options: Unpack[StubOptions]
    ) -> StubRef:
        """Creates one stub; takes the keywords of `simulatord_client.stub()`."""
        return (await self.add(stub(method, path, **options)))[0]

    async def add(self, *stubs: StubLike) -> list[StubRef]:
        """Creates many stubs in one round trip (all or none)."""
        if not stubs:
            return []
        if len(stubs) == 1:
            single = await self._call("CreateStub", self._single(stubs[0]))
            return [StubRef(single.stub.name, single.stub)]
        reply = await self._call("BatchCreateStubs", self._batch(stubs))
        return [StubRef(s.name, s) for s in reply.stubs]

    async def replace_stub(self, ref: StubRefLike, new: StubLike) -> StubRef:
        """Replaces a stub's definition, keeping its name."""
        reply = await self._call("ReplaceStub", self._replace(ref, new))
        return StubRef(reply.stub.name, reply.stub)

    async def delete_stub(self, ref: StubRefLike) -> None:
        """Deletes one stub."""
        await self._call("DeleteStub", pb.DeleteStubRequest(name=stub_name(self.name, ref)))

    async def get_stub(self, ref: StubRefLike) -> stub_pb2.Stub:
        """The stub as stored, with its `match_count`."""
        reply = await self._call("GetStub", pb.GetStubRequest(name=stub_name(self.name, ref)))
        return reply.stub  # type: ignore[no-any-return]

    async def list_stubs(self) -> list[stub_pb2.Stub]:
        """Every stub, in the order they are tried."""
        out: list[stub_pb2.Stub] = []
        token = ""
        while True:
            request = pb.ListStubsRequest(parent=self.name, page_size=PAGE_SIZE, page_token=token)
            reply = await self._call("ListStubs", request)
            out.extend(reply.stubs)
            token = reply.next_page_token
            if not token:
                return out

    async def reset(self, *, stubs: bool = True, journal: bool = True, state: bool = True) -> None:
        """Clears stubs, journal and/or scenario state (all by default)."""
        self.info = (await self._call("ResetSession", self._reset(stubs, journal, state))).session

    async def set_state(self, state: str) -> None:
        """Sets the scenario state."""
        request = pb.SetSessionStateRequest(name=self.name, state=state)
        self.info = (await self._call("SetSessionState", request)).session

    # --- observing -------------------------------------------------------------------------------

    async def requests(self, **filter: Unpack[FilterOptions]) -> list[Request]:
        """Recorded requests, oldest first; see `Session.requests()`."""
        out: list[Request] = []
        token = ""
        flt = exchange_filter(filter)
        while True:
            request = pb.ListExchangesRequest(parent=self.name, filter=flt, page_size=PAGE_SIZE, page_token=token)
            reply = await self._call("ListExchanges", request)
            out.extend(Request.from_exchange(e) for e in reply.exchanges)
            token = reply.next_page_token
            if not token:
                return out

    async def count(self, **filter: Unpack[FilterOptions]) -> int:
        """How many recorded requests pass the filter."""
        request = pb.CountExchangesRequest(parent=self.name, filter=exchange_filter(filter))
        return int((await self._call("CountExchanges", request)).count)

    async def wait_for(self, count: int = 1, timeout: float = 5.0, **filter: Unpack[FilterOptions]) -> list[Request]:
        """Waits until `count` requests pass the filter; on timeout raises AssertionError with what arrived."""
        __tracebackhide__ = True
        request = pb.WaitForExchangesRequest(
            parent=self.name, filter=exchange_filter(filter), count=count, timeout=duration(timeout)
        )
        reply = await self._call("WaitForExchanges", request, timeout=timeout + WAIT_GRACE)
        if not reply.satisfied:
            raise AssertionError(wait_failure(self.name, filter, count, timeout, reply))
        return [Request.from_exchange(e) for e in reply.exchanges]

    def watch(
        self, start: int = 1, *, timeout: float | None = None, **filter: Unpack[FilterOptions]
    ) -> AsyncExchangeStream:
        """Live requests as an async iterator; see `Session.watch()`."""
        request = pb.WatchExchangesRequest(parent=self.name, filter=exchange_filter(filter), start_sequence=start)
        return AsyncExchangeStream(self.simulator.stub.WatchExchanges(request, timeout=timeout), self.simulator.address)

    async def verification(self) -> pb.VerifySessionResponse:
        """The raw verification report."""
        return await self._call("VerifySession", pb.VerifySessionRequest(name=self.name))  # type: ignore[no-any-return]

    async def verify(self) -> None:
        """Raises AssertionError when expectations are not met; see `Session.verify()`."""
        __tracebackhide__ = True  # pytest shows the caller's line, not this one
        report = await self.verification()
        if not report.ok:
            stubs = {s.name: s for s in await self.list_stubs()}  # to show what each stub matches
            raise AssertionError(verify_failure(self.name, report, stubs))


class AsyncExchangeStream(AsyncIterator[Request]):
    """An async iterator over live requests from `AsyncSession.watch()`; `close()` cancels it."""

    def __init__(self, call: Any, address: str) -> None:
        self._call = call
        self._address = address
        self._closed = False
        self.evicted = 0

    def __aiter__(self) -> AsyncExchangeStream:
        return self

    async def __anext__(self) -> Request:
        while True:
            try:
                event = await self._call.read()
            except grpc.RpcError as err:
                if self._closed or err.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise StopAsyncIteration from None
                raise from_rpc_error(err, self._address) from None
            except asyncio.CancelledError:
                if self._closed:
                    raise StopAsyncIteration from None
                raise
            if event is grpc.aio.EOF:
                raise StopAsyncIteration
            if event.HasField("exchange"):
                return Request.from_exchange(event.exchange)
            self.evicted += event.evicted_count

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
