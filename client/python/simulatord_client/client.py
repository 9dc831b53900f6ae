"""The synchronous client: `Simulator` (a channel to a daemon) and `Session` (one isolated simulated API).

Both are thin: each method runs one operation of `simulatord_client.operations` with blocking calls.

Example::

    import httpx
    from simulatord_client import Simulator

    with Simulator("127.0.0.1:50051") as sim, sim.session(tenant="checkout") as s:
        s.stub("GET", "/users/{id}", json={"id": 7, "name": "Ada"})
        assert httpx.get(f"{s.url}/users/7").json()["name"] == "Ada"
        assert s.exchanges(path="/users/7")[0].method == "GET"
        s.verify()
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from types import TracebackType
from typing import Unpack

import grpc

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
            if not session.simulator._run(ops.heartbeat(session.name, session.heartbeat_interval)):
                self.remove(session)


class Simulator:
    """A connection to a simulatord daemon's gRPC address (`host:port`, the `grpc=` of its ready line).

    `token`: the bearer token for a daemon started with `--auth` (default: $SIMULATORD_TOKEN; "" sends none).
    Every call carries it, heartbeats and watch streams too; `metadata` holds it for calls made on `stub`.

    Example::

        with Simulator("127.0.0.1:50051") as sim:
            with sim.session(tenant="team-a", labels={"suite": "smoke"}) as s:
                ...
    """

    def __init__(
        self, address: str, *, timeout: float = 10.0, channel: grpc.Channel | None = None, token: str | None = None
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.metadata = auth_metadata(token)
        self._owns_channel = channel is None
        self.channel = channel if channel is not None else grpc.insecure_channel(address)
        self.stub = pb_grpc.SimulatorServiceStub(self.channel)
        self._heartbeats = _Heartbeats()

    def call(self, method: Method[Req, Resp], request: Req, timeout: float | None = None) -> Resp:
        """Makes one unary call, turning a gRPC failure into a `SimulatorError`; also reaches RPCs this client
        does not wrap: `sim.call(lambda stub: stub.SendWebSocketMessage, request)`."""
        try:
            return method(self.stub)(request, timeout=timeout or self.timeout, metadata=self.metadata)
        except grpc.RpcError as err:
            raise from_rpc_error(err, self.address) from None

    def _run(self, operation: Operation[T]) -> T:
        """Drives an operation to its end, making each call it asks for."""
        step = advance(operation)
        while isinstance(step, Rpc):
            try:
                reply = self.call(step.method, step.request, step.timeout)
            except BaseException as error:  # the operation decides: clean up, retry or let it propagate
                step = advance(operation, error=error)
            else:
                step = advance(operation, reply)
        return step.value

    def session(self, tenant: str = "default", **options: Unpack[SessionOptions]) -> Session:
        """A session to use with `with`: created on enter (with `stubs`, in one call), deleted on exit.

        `ttl` (seconds, default 30) bounds how long the session outlives a crashed test process; while the
        `with` block runs a background heartbeat refreshes it every ttl/3. `ttl=None` takes the daemon default
        and sends no heartbeats. The other keywords: `session_id`, `labels`, `template`, `unmatched_status`,
        `journal_limits`, `heartbeat`, `llm` (an OpenAI or Anthropic simulation, see `simulatord_client.llm`).
        """
        return Session(self, tenant, **options)

    def list_sessions(self, tenant: str = "-", label_selector: str = "") -> list[session_pb2.Session]:
        """Every session of a tenant (`-`: all tenants), oldest first."""
        return self._run(ops.list_sessions(tenant, label_selector))

    def delete_session(self, name: str, *, allow_missing: bool = False) -> None:
        """Deletes a session by name (sessions from `session()` delete themselves)."""
        self._run(ops.delete_session(name, allow_missing=allow_missing))

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


class Session(SessionCore):
    """One isolated simulated API with its own stubs and journal. Get one from `Simulator.session()`.

    Example::

        with sim.session(stubs=[stub("GET", "/ping", text="pong")]) as s:
            httpx.get(f"{s.url}/ping")
            s.wait_for(path="/ping")
    """

    def __init__(self, simulator: Simulator, tenant: str = "default", **options: Unpack[SessionOptions]) -> None:
        super().__init__(tenant, **options)
        self.simulator = simulator

    # --- lifecycle -------------------------------------------------------------------------------

    def open(self) -> Session:
        """Creates the session (one CreateSession call with the initial stubs) and starts the heartbeat."""
        self.info, self.initial_stubs = self.simulator._run(ops.open_session(self._create, self._deferred))
        if self._heartbeat:
            self.simulator._heartbeats.add(self)
        return self

    def close(self, *, quiet: bool = False) -> None:
        """Stops the heartbeat and deletes the session (a missing session is fine)."""
        if self.info.name:
            self.simulator._heartbeats.remove(self)
            self.simulator._run(ops.close_session(self.info.name, quiet=quiet))

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # While an exception propagates, a failing delete must not hide it.
        self.close(quiet=exc_type is not None)

    def refresh(self, ttl: float | None = None) -> session_pb2.Session:
        """Pushes the expiry to now + ttl (heartbeats do this already); returns the session."""
        self.info = self.simulator._run(ops.refresh_session(self.name, ttl))
        return self.info

    def get(self) -> session_pb2.Session:
        """The session as the daemon sees it now (counters, state, expiry)."""
        self.info = self.simulator._run(ops.get_session(self.name))
        return self.info

    def export(self, *, remove_proxies: bool = False) -> pb.CreateSessionRequest:
        """The session as a template: its settings and stubs as programmed, in creation order. Sent back with a
        `parent` (`sim.call(lambda s: s.CreateSession, request)`) it makes an equivalent session; written with
        `json_format.MessageToJson` it is a template file for `simulatord serve --templates`.

        `remove_proxies=True` leaves out the stubs that proxy (a response made by `proxy()`), keeping the stubs
        they recorded: the export of a recording session then replays without the upstream."""
        return self.simulator._run(ops.export_session(self.name, remove_proxies=remove_proxies))

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
        return self.simulator._run(ops.create_stubs(self.name, stubs))

    def replace_stub(self, ref: StubRefLike, new: StubLike) -> StubRef:
        """Replaces a stub's definition, keeping its name; its count restarts at zero."""
        return self.simulator._run(ops.replace_stub(self.name, ref, new))

    def delete_stub(self, ref: StubRefLike) -> None:
        """Deletes one stub."""
        self.simulator._run(ops.delete_stub(self.name, ref))

    def get_stub(self, ref: StubRefLike) -> stub_pb2.Stub:
        """The stub as stored, with its `match_count`."""
        return self.simulator._run(ops.get_stub(self.name, ref))

    def list_stubs(self) -> list[stub_pb2.Stub]:
        """Every stub, in the order they are tried."""
        return self.simulator._run(ops.list_stubs(self.name))

    def reset(self, *, stubs: bool = True, journal: bool = True, state: bool = True) -> None:
        """Clears stubs, journal and/or scenario state (all by default), keeping the name and URL."""
        self.info = self.simulator._run(ops.reset_session(self.name, stubs=stubs, journal=journal, state=state))

    def set_state(self, state: str) -> None:
        """Sets the scenario state (stubs with `required_state` match only in it); "" is the initial one."""
        self.info = self.simulator._run(ops.set_state(self.name, state))

    @property
    def state(self) -> str:
        """The current scenario state (asks the daemon)."""
        return self.get().state

    # --- webhooks --------------------------------------------------------------------------------

    def deliver_webhooks(
        self, *webhooks: webhook_pb2.Webhook, wait: bool = True, timeout: float = 30.0, order: str = "in_order"
    ) -> list[Delivery]:
        """Makes the daemon deliver webhooks (from `webhooks.webhook(...)`) to the code under test, signed and retried
        as each says; every attempt is recorded in the journal. First attempts go one after another, `order`
        `"in_order"` or `"reversed"`. With `wait`, returns once every delivery has ended or `timeout` seconds have
        passed (those still going are then `"pending"`); without, at once.

        Example: `[d] = s.deliver_webhooks(webhooks.webhook(url, json=event, signing=webhooks.stripe(secret)))`.
        """
        return self.simulator._run(ops.deliver_webhooks(self.name, webhooks, wait=wait, timeout=timeout, order=order))

    def deliver_webhook(
        self, webhook: webhook_pb2.Webhook, *, wait: bool = True, timeout: float = 30.0, order: str = "in_order"
    ) -> Delivery:
        """Delivers one webhook; see `deliver_webhooks()`.

        Example: `assert s.deliver_webhook(webhooks.webhook(url, json={"ok": True})).state == "delivered"`.
        """
        return self.deliver_webhooks(webhook, wait=wait, timeout=timeout, order=order)[0]

    # --- observing -------------------------------------------------------------------------------

    def exchanges(self, **filter: Unpack[FilterOptions]) -> list[Exchange]:
        """Recorded exchanges, oldest first, filtered by `method`, `path`, `path_prefix`, `matched`, `stub`.

        Example: `[e.json() for e in s.exchanges(method="POST", path="/orders")]`.
        """
        return self.simulator._run(ops.list_exchanges(self.name, filter))

    def count(self, **filter: Unpack[FilterOptions]) -> int:
        """How many recorded exchanges pass the filter: `s.count(method="GET", path="/health")`."""
        return self.simulator._run(ops.count_exchanges(self.name, filter))

    def wait_for(self, count: int = 1, timeout: float = 5.0, **filter: Unpack[FilterOptions]) -> list[Exchange]:
        """Blocks until `count` exchanges pass the filter; returns them. On timeout raises AssertionError
        saying what arrived instead.

        Example: `s.wait_for(2, timeout=3, method="POST", path="/webhooks")`.
        """
        return self.simulator._run(ops.wait_for(self.name, count, timeout, filter))

    def watch(self, start: int = 1, *, timeout: float | None = None, **filter: Unpack[FilterOptions]) -> ExchangeStream:
        """Live exchanges as they are recorded. `start=1` replays what the journal keeps first (so nothing sent
        before the stream was set up is missed), `start=0` only new ones, `start=n` resumes at sequence n.
        The stream ends when the session is deleted, when `timeout` seconds pass, or on `close()`.

        Example::

            with s.watch(method="POST") as stream:
                for exchange in stream:
                    if exchange.path == "/done":
                        break
        """
        request = ops.watch_request(self.name, start, filter)
        call = self.simulator.stub.WatchExchanges(request, timeout=timeout, metadata=self.simulator.metadata)
        return ExchangeStream(call, self.simulator.address)

    def verification(self) -> pb.VerifySessionResponse:
        """The raw verification report (never raises on failed expectations)."""
        return self.simulator._run(ops.verification(self.name))

    def verify(self) -> None:
        """Raises AssertionError listing unmet call counts, unused stubs and unmatched requests (with the
        nearest stubs and why they missed). Stubs with `expect=at_most(n)` or `expect=0` may go unused."""
        self.simulator._run(ops.verify(self.name))


class ExchangeStream(ops.WatchEvents, Iterator[Exchange]):
    """An iterator over live exchanges from `Session.watch()`; close it (or leave its `with`) to cancel.

    `evicted` counts exchanges lost to journal limits before they could be sent.
    """

    def __init__(self, call: grpc._CallIterator[pb.WatchExchangesResponse], address: str) -> None:
        super().__init__(address)
        self._call = call

    def __iter__(self) -> ExchangeStream:
        return self

    def __next__(self) -> Exchange:
        while True:
            try:
                event = next(self._call)
            except grpc.RpcError as err:
                self._raise_unless_ended(err)
                raise StopIteration from None
            if (exchange := self._exchange(event)) is not None:
                return exchange

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
