"""The synchronous client: `Simulator` (a channel to a daemon) and `Session` (one isolated simulated API).

Example::

    import httpx
    from simulatord_client import Simulator

    with Simulator("127.0.0.1:50051") as sim, sim.session(tenant="checkout") as s:
        s.stub("GET", "/users/{id}", json={"id": 7, "name": "Ada"})
        assert httpx.get(f"{s.url}/users/7").json()["name"] == "Ada"
        assert s.requests(path="/users/7")[0].method == "GET"
        s.verify()
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Unpack

import grpc

from simulatord.v1 import session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client._base import DEFAULT_TTL, SessionBase, StubRef, StubRefLike, stub_name
from simulatord_client.builders import StubLike, StubOptions, stub
from simulatord_client.durations import duration
from simulatord_client.errors import NotFoundError, SimulatorError, from_rpc_error
from simulatord_client.records import FilterOptions, Request, exchange_filter, verify_failure, wait_failure

PAGE_SIZE = 1000
# Extra seconds granted to a WaitForExchanges call beyond its own timeout, so the daemon answers
# "not satisfied" (with what arrived instead) before the client's deadline cuts the call.
WAIT_GRACE = 5.0


class _Heartbeats:
    """One thread per Simulator that keeps its open sessions alive: opening or closing a session (once per
    test) then costs a dict update rather than starting and joining a thread of its own."""

    def __init__(self) -> None:
        self._due: dict[str, tuple[float, Session]] = {}  # session name -> (next refresh, session)
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def add(self, session: Session) -> None:
        with self._changed:
            self._due[session.name] = (time.monotonic() + session.heartbeat_interval, session)
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="simulatord-heartbeats", daemon=True)
                self._thread.start()
            self._changed.notify()

    def remove(self, session: Session) -> None:
        with self._changed:
            self._due.pop(session.name, None)

    def close(self) -> None:
        with self._changed:
            self._closed = True
            self._due.clear()
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _next(self) -> Session | None:
        """Waits for the next session due a refresh; None once closed."""
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                soonest = min(self._due.items(), key=lambda item: item[1][0], default=None)
                if soonest is not None and soonest[1][0] <= now:
                    name, (_, session) = soonest
                    self._due[name] = (now + session.heartbeat_interval, session)
                    return session
                self._changed.wait(None if soonest is None else soonest[1][0] - now)
            return None

    def _run(self) -> None:
        while (session := self._next()) is not None:
            interval = session.heartbeat_interval
            try:
                session._call("RefreshSession", pb.RefreshSessionRequest(name=session.name), max(interval, 1.0))
            except NotFoundError:
                self.remove(session)  # deleted elsewhere (or expired): nothing left to keep alive
            except SimulatorError:
                pass  # transient (daemon busy or restarting): the next beat tries again


class Simulator:
    """A connection to a simulatord daemon's gRPC address (`host:port`, the `grpc=` of its ready line).

    Example::

        with Simulator("127.0.0.1:50051") as sim:
            with sim.session(tenant="team-a", labels={"suite": "smoke"}) as s:
                ...
    """

    def __init__(self, address: str, *, timeout: float = 10.0, channel: grpc.Channel | None = None) -> None:
        self.address = address
        self.timeout = timeout
        self._owns_channel = channel is None
        self.channel = channel if channel is not None else grpc.insecure_channel(address)
        self.stub = pb_grpc.SimulatorServiceStub(self.channel)
        self._heartbeats = _Heartbeats()

    def call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        """Calls one unary RPC by name, turning a gRPC failure into a `SimulatorError`."""
        __tracebackhide__ = True  # a failure points at the test's line, not at the client's plumbing
        try:
            return getattr(self.stub, method)(request, timeout=timeout or self.timeout)
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
    ) -> Session:
        """A session to use with `with`: created on enter (with `stubs`, in one call), deleted on exit.

        `ttl` (seconds) bounds how long the session outlives a crashed test process; while the `with`
        block runs a background heartbeat refreshes it every ttl/3. `ttl=None` takes the daemon default
        and sends no heartbeats.
        """
        return Session(
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

    def list_sessions(self, tenant: str = "-", label_selector: str = "") -> list[session_pb2.Session]:
        """Every session of a tenant (`-`: all tenants), oldest first."""
        out: list[session_pb2.Session] = []
        token = ""
        while True:
            reply = self.call(
                "ListSessions",
                pb.ListSessionsRequest(
                    parent=f"tenants/{tenant}", page_size=PAGE_SIZE, page_token=token, label_selector=label_selector
                ),
            )
            out.extend(reply.sessions)
            token = reply.next_page_token
            if not token:
                return out

    def delete_session(self, name: str, *, allow_missing: bool = False) -> None:
        """Deletes a session by name (sessions from `session()` delete themselves)."""
        self.call("DeleteSession", pb.DeleteSessionRequest(name=name, allow_missing=allow_missing))

    def close(self) -> None:
        """Stops the heartbeats and closes the channel (if this object created it)."""
        self._heartbeats.close()
        if self._owns_channel:
            self.channel.close()

    def __enter__(self) -> Simulator:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Simulator {self.address}>"


class Session(SessionBase):
    """One isolated simulated API with its own stubs and journal. Get one from `Simulator.session()`.

    Example::

        with sim.session(stubs=[stub("GET", "/ping", text="pong")]) as s:
            httpx.get(f"{s.url}/ping")
            s.wait_for(path="/ping")
    """

    def __init__(self, simulator: Simulator, **settings: Any) -> None:
        super().__init__(**settings)
        self.simulator = simulator

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        __tracebackhide__ = True
        return self.simulator.call(method, request, timeout)

    # --- lifecycle -------------------------------------------------------------------------------

    def open(self) -> Session:
        """Creates the session (one CreateSession call with the initial stubs) and starts the heartbeat."""
        reply = self._call("CreateSession", self._create)
        self.info = reply.session
        self.initial_stubs = [StubRef(s.name, s) for s in reply.stubs]
        try:
            if self._deferred:
                reply = self._call("BatchCreateStubs", self._batch(self._deferred))
                self.initial_stubs = [StubRef(s.name, s) for s in reply.stubs]
        except BaseException:
            self.simulator.call("DeleteSession", pb.DeleteSessionRequest(name=self.name, allow_missing=True))
            raise
        if self._heartbeat:
            self.simulator._heartbeats.add(self)
        return self

    def close(self, *, quiet: bool = False) -> None:
        """Stops the heartbeat and deletes the session (a missing session is fine)."""
        if not self.info.name:
            return
        self.simulator._heartbeats.remove(self)
        try:
            self._call("DeleteSession", pb.DeleteSessionRequest(name=self.info.name, allow_missing=True))
        except SimulatorError:
            if not quiet:
                raise

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # While an exception propagates, a failing delete must not hide it.
        self.close(quiet=exc_type is not None)

    def refresh(self, ttl: float | None = None) -> session_pb2.Session:
        """Pushes the expiry to now + ttl (heartbeats do this already); returns the session."""
        request = pb.RefreshSessionRequest(name=self.name)
        if ttl:
            request.ttl.CopyFrom(duration(ttl))
        self.info = self._call("RefreshSession", request).session
        return self.info

    def get(self) -> session_pb2.Session:
        """The session as the daemon sees it now (counters, state, expiry)."""
        self.info = self._call("GetSession", pb.GetSessionRequest(name=self.name)).session
        return self.info

    # --- programming -----------------------------------------------------------------------------

    def stub(
        self, method: str = "", path: str | stub_pb2.PathMatcher | None = None, **options: Unpack[StubOptions]
    ) -> StubRef:
        """Creates one stub; takes the keywords of `simulatord_client.stub()`.

        Example: `s.stub("GET", "/users/{id}", query={"expand": "true"}, json={"id": 7}, times=1)`.
        """
        return self.add(stub(method, path, **options))[0]

    def add(self, *stubs: StubLike) -> list[StubRef]:
        """Creates many stubs in one round trip (atomically: all or none).

        Example: `s.add(stub("GET", "/a", text="a"), when("GET", "/b").respond(404))`.
        """
        if not stubs:
            return []
        if len(stubs) == 1:
            # CreateStub names bad fields `stub.request...`, clearer than a batch's `requests[0].stub.request...`.
            reply = self._call("CreateStub", self._single(stubs[0]))
            return [StubRef(reply.stub.name, reply.stub)]
        reply = self._call("BatchCreateStubs", self._batch(stubs))
        return [StubRef(s.name, s) for s in reply.stubs]

    def replace_stub(self, ref: StubRefLike, new: StubLike) -> StubRef:
        """Replaces a stub's definition, keeping its name; its count restarts at zero."""
        reply = self._call("ReplaceStub", self._replace(ref, new))
        return StubRef(reply.stub.name, reply.stub)

    def delete_stub(self, ref: StubRefLike) -> None:
        """Deletes one stub."""
        self._call("DeleteStub", pb.DeleteStubRequest(name=stub_name(self.name, ref)))

    def get_stub(self, ref: StubRefLike) -> stub_pb2.Stub:
        """The stub as stored, with its `match_count`."""
        return self._call("GetStub", pb.GetStubRequest(name=stub_name(self.name, ref))).stub  # type: ignore[no-any-return]

    def list_stubs(self) -> list[stub_pb2.Stub]:
        """Every stub, in the order they are tried."""
        out: list[stub_pb2.Stub] = []
        token = ""
        while True:
            reply = self._call(
                "ListStubs", pb.ListStubsRequest(parent=self.name, page_size=PAGE_SIZE, page_token=token)
            )
            out.extend(reply.stubs)
            token = reply.next_page_token
            if not token:
                return out

    def reset(self, *, stubs: bool = True, journal: bool = True, state: bool = True) -> None:
        """Clears stubs, journal and/or scenario state (all by default), keeping the name and URL."""
        self.info = self._call("ResetSession", self._reset(stubs, journal, state)).session

    def set_state(self, state: str) -> None:
        """Sets the scenario state (stubs with `required_state` match only in it); "" is the initial one."""
        self.info = self._call("SetSessionState", pb.SetSessionStateRequest(name=self.name, state=state)).session

    @property
    def state(self) -> str:
        """The current scenario state (asks the daemon)."""
        return self.get().state

    # --- observing -------------------------------------------------------------------------------

    def requests(self, **filter: Unpack[FilterOptions]) -> list[Request]:
        """Recorded requests, oldest first, filtered by `method`, `path`, `path_prefix`, `matched`, `stub`.

        Example: `[r.json() for r in s.requests(method="POST", path="/orders")]`.
        """
        out: list[Request] = []
        token = ""
        flt = exchange_filter(filter)
        while True:
            reply = self._call(
                "ListExchanges",
                pb.ListExchangesRequest(parent=self.name, filter=flt, page_size=PAGE_SIZE, page_token=token),
            )
            out.extend(Request.from_exchange(e) for e in reply.exchanges)
            token = reply.next_page_token
            if not token:
                return out

    def count(self, **filter: Unpack[FilterOptions]) -> int:
        """How many recorded requests pass the filter: `s.count(method="GET", path="/health")`."""
        reply = self._call("CountExchanges", pb.CountExchangesRequest(parent=self.name, filter=exchange_filter(filter)))
        return int(reply.count)

    def wait_for(self, count: int = 1, timeout: float = 5.0, **filter: Unpack[FilterOptions]) -> list[Request]:
        """Blocks until `count` requests pass the filter; returns them. On timeout raises AssertionError
        saying what arrived instead.

        Example: `s.wait_for(2, timeout=3, method="POST", path="/webhooks")`.
        """
        __tracebackhide__ = True
        request = pb.WaitForExchangesRequest(
            parent=self.name, filter=exchange_filter(filter), count=count, timeout=duration(timeout)
        )
        reply = self._call("WaitForExchanges", request, timeout=timeout + WAIT_GRACE)
        if not reply.satisfied:
            raise AssertionError(wait_failure(self.name, filter, count, timeout, reply))
        return [Request.from_exchange(e) for e in reply.exchanges]

    def watch(self, start: int = 1, *, timeout: float | None = None, **filter: Unpack[FilterOptions]) -> ExchangeStream:
        """Live requests as they arrive. `start=1` replays what the journal keeps first (so nothing sent
        before the stream was set up is missed), `start=0` only new ones, `start=n` resumes at sequence n.
        The stream ends when the session is deleted, when `timeout` seconds pass, or on `close()`.

        Example::

            with s.watch(method="POST") as stream:
                for request in stream:
                    if request.path == "/done":
                        break
        """
        request = pb.WatchExchangesRequest(parent=self.name, filter=exchange_filter(filter), start_sequence=start)
        return ExchangeStream(self.simulator.stub.WatchExchanges(request, timeout=timeout), self.simulator.address)

    def verification(self) -> pb.VerifySessionResponse:
        """The raw verification report (never raises on failed expectations)."""
        return self._call("VerifySession", pb.VerifySessionRequest(name=self.name))  # type: ignore[no-any-return]

    def verify(self) -> None:
        """Raises AssertionError listing unmet call counts, unused stubs and unmatched requests (with the
        nearest stubs and why they missed). Stubs with `expect=at_most(n)` or `expect=0` may go unused."""
        __tracebackhide__ = True  # pytest shows the caller's line, not this one
        report = self.verification()
        if not report.ok:
            stubs = {s.name: s for s in self.list_stubs()}  # to show what each stub matches
            raise AssertionError(verify_failure(self.name, report, stubs))


class ExchangeStream(Iterator[Request]):
    """An iterator over live requests from `Session.watch()`; close it (or leave its `with`) to cancel.

    `evicted` counts exchanges lost to journal limits before they could be sent.
    """

    def __init__(self, call: Any, address: str) -> None:
        self._call = call
        self._address = address
        self._closed = False
        self.evicted = 0

    def __iter__(self) -> ExchangeStream:
        return self

    def __next__(self) -> Request:
        while True:
            try:
                event = next(self._call)
            except grpc.RpcError as err:
                # CANCELLED after close() and DEADLINE_EXCEEDED after `timeout` are the normal ends.
                if self._closed or err.code() in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise StopIteration from None
                raise from_rpc_error(err, self._address) from None
            if event.HasField("exchange"):
                return Request.from_exchange(event.exchange)
            self.evicted += event.evicted_count

    def close(self) -> None:
        """Cancels the stream."""
        self._closed = True
        self._call.cancel()

    def __enter__(self) -> ExchangeStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._call.cancel()
