"""Every control operation of the client, written once as a sans-IO generator (see `rpc`) for both drivers.

`Session` runs these with blocking calls and `AsyncSession` awaits them, so request building, paging, error
handling and follow-up calls (a failed verification lists the stubs to describe them) exist only here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar

import grpc

from simulatord.v1 import session_pb2, stub_pb2, webhook_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord_client.builders import StubLike, create_request
from simulatord_client.durations import duration
from simulatord_client.errors import NotFoundError, SimulatorError, from_rpc_error, hide_client_frames
from simulatord_client.exchanges import Exchange, FilterOptions, exchange_filter, exchange_records
from simulatord_client.reports import verify_failure, wait_failure
from simulatord_client.rpc import Method, Operation, Req, call
from simulatord_client.stub_refs import StubRef, StubRefLike, stub_name, stub_refs
from simulatord_client.webhooks import Delivery, delivery_order

# A SimulatorError or a failed wait or verification points at the test's line, not at these frames.
__tracebackhide__ = hide_client_frames

PAGE_SIZE = 1000
# Extra seconds granted to a WaitForExchanges call beyond its own timeout, so the daemon answers
# "not satisfied" (with what arrived instead) before the client's deadline cuts the call.
WAIT_GRACE = 5.0


class _Page(Protocol):
    @property
    def next_page_token(self) -> str: ...


_PageResp = TypeVar("_PageResp", bound=_Page)
_Item = TypeVar("_Item")


def _all_pages(
    method: Method[Req, _PageResp], page: Callable[[str], Req], items: Callable[[_PageResp], Iterable[_Item]]
) -> Operation[list[_Item]]:
    """Every item of a listing: `page(token)` is the request for one page ("" for the first)."""
    out: list[_Item] = []
    token = ""
    while True:
        reply = yield from call(method, page(token))
        out.extend(items(reply))
        token = reply.next_page_token
        if not token:
            return out


# --- sessions ------------------------------------------------------------------------------------


def list_sessions(tenant: str, label_selector: str) -> Operation[list[session_pb2.Session]]:
    """Every session of a tenant (`-`: all tenants), oldest first."""
    return (
        yield from _all_pages(
            lambda s: s.ListSessions,
            lambda token: pb.ListSessionsRequest(
                parent=f"tenants/{tenant}", page_size=PAGE_SIZE, page_token=token, label_selector=label_selector
            ),
            lambda reply: reply.sessions,
        )
    )


def delete_session(name: str, *, allow_missing: bool) -> Operation[None]:
    """Deletes a session by name."""
    yield from call(lambda s: s.DeleteSession, pb.DeleteSessionRequest(name=name, allow_missing=allow_missing))


def open_session(
    create: pb.CreateSessionRequest, deferred: Sequence[tuple[stub_pb2.Stub, str]]
) -> Operation[tuple[session_pb2.Session, list[StubRef]]]:
    """Creates a session and its initial stubs (`deferred`, with chosen ids, follow in one batch); returns the
    session and its stubs. A session whose stubs are refused is deleted again."""
    created = yield from call(lambda s: s.CreateSession, create)
    if not deferred:
        return created.session, stub_refs(created.stubs)
    try:
        batch = yield from call(lambda s: s.BatchCreateStubs, _batch(created.session.name, deferred))
    except BaseException:
        yield from delete_session(created.session.name, allow_missing=True)
        raise
    return created.session, stub_refs(batch.stubs)


def close_session(name: str, *, quiet: bool) -> Operation[None]:
    """Deletes a session that may be gone already; with `quiet`, a failing delete raises nothing."""
    try:
        yield from delete_session(name, allow_missing=True)
    except SimulatorError:
        if not quiet:
            raise


def heartbeat(name: str, interval: float) -> Operation[bool]:
    """One beat of a session's heartbeat; False once nothing is left to keep alive."""
    try:
        yield from call(lambda s: s.RefreshSession, pb.RefreshSessionRequest(name=name), max(interval, 1.0))
    except NotFoundError:
        return False  # deleted elsewhere (or expired)
    except SimulatorError:
        pass  # transient (daemon busy or restarting): the next beat tries again
    return True


def refresh_session(name: str, ttl: float | None) -> Operation[session_pb2.Session]:
    """Pushes the expiry to now + ttl (None: the session's own ttl); returns the session."""
    request = pb.RefreshSessionRequest(name=name)
    if ttl:
        request.ttl.CopyFrom(duration(ttl))
    reply = yield from call(lambda s: s.RefreshSession, request)
    return reply.session


def get_session(name: str) -> Operation[session_pb2.Session]:
    """The session as the daemon sees it now (counters, state, expiry)."""
    reply = yield from call(lambda s: s.GetSession, pb.GetSessionRequest(name=name))
    return reply.session


def export_session(name: str, *, remove_proxies: bool = False) -> Operation[pb.CreateSessionRequest]:
    """The session as a template: its settings and stubs as programmed, ready for CreateSession; with
    `remove_proxies`, without the stubs that proxy, so that a recorded session replays without its upstream."""
    request = pb.ExportSessionRequest(name=name, remove_proxies=remove_proxies)
    reply = yield from call(lambda s: s.ExportSession, request)
    return reply.session


def reset_session(name: str, *, stubs: bool, journal: bool, state: bool) -> Operation[session_pb2.Session]:
    """Clears stubs, journal and/or scenario state; returns the session."""
    wanted = {pb.RESET_TARGET_STUBS: stubs, pb.RESET_TARGET_JOURNAL: journal, pb.RESET_TARGET_STATE: state}
    targets = [target for target, chosen in wanted.items() if chosen]
    if not targets:
        raise ValueError("reset() needs at least one of stubs, journal, state")
    reply = yield from call(lambda s: s.ResetSession, pb.ResetSessionRequest(name=name, targets=targets))
    return reply.session


def set_state(name: str, state: str) -> Operation[session_pb2.Session]:
    """Sets the scenario state; returns the session."""
    reply = yield from call(lambda s: s.SetSessionState, pb.SetSessionStateRequest(name=name, state=state))
    return reply.session


# --- stubs ---------------------------------------------------------------------------------------


def _batch(session: str, stubs: Iterable[tuple[stub_pb2.Stub, str]]) -> pb.BatchCreateStubsRequest:
    requests = [pb.CreateStubRequest(stub=message, stub_id=stub_id) for message, stub_id in stubs]
    return pb.BatchCreateStubsRequest(parent=session, requests=requests)


def create_stubs(session: str, stubs: Sequence[StubLike]) -> Operation[list[StubRef]]:
    """Creates stubs in one round trip, all or none."""
    if not stubs:
        return []
    if len(stubs) == 1:
        # CreateStub names bad fields `stub.request...`, clearer than a batch's `requests[0].stub.request...`.
        message, stub_id = create_request(stubs[0])
        request = pb.CreateStubRequest(parent=session, stub=message, stub_id=stub_id)
        single = yield from call(lambda s: s.CreateStub, request)
        return stub_refs([single.stub])
    reply = yield from call(lambda s: s.BatchCreateStubs, _batch(session, map(create_request, stubs)))
    return stub_refs(reply.stubs)


def replace_stub(session: str, ref: StubRefLike, new: StubLike) -> Operation[StubRef]:
    """Replaces a stub's definition, keeping its name."""
    message, _ = create_request(new)
    request = pb.ReplaceStubRequest(stub=message)
    request.stub.name = stub_name(session, ref)
    reply = yield from call(lambda s: s.ReplaceStub, request)
    return StubRef(reply.stub.name, reply.stub)


def delete_stub(session: str, ref: StubRefLike) -> Operation[None]:
    """Deletes one stub."""
    yield from call(lambda s: s.DeleteStub, pb.DeleteStubRequest(name=stub_name(session, ref)))


def get_stub(session: str, ref: StubRefLike) -> Operation[stub_pb2.Stub]:
    """The stub as stored, with its `match_count`."""
    reply = yield from call(lambda s: s.GetStub, pb.GetStubRequest(name=stub_name(session, ref)))
    return reply.stub


def list_stubs(session: str) -> Operation[list[stub_pb2.Stub]]:
    """Every stub, in the order they are tried."""
    return (
        yield from _all_pages(
            lambda s: s.ListStubs,
            lambda token: pb.ListStubsRequest(parent=session, page_size=PAGE_SIZE, page_token=token),
            lambda reply: reply.stubs,
        )
    )


# --- exchanges -----------------------------------------------------------------------------------


def list_exchanges(session: str, options: FilterOptions) -> Operation[list[Exchange]]:
    """Recorded exchanges passing the filter, oldest first."""
    selected = exchange_filter(options)
    return (
        yield from _all_pages(
            lambda s: s.ListExchanges,
            lambda token: pb.ListExchangesRequest(
                parent=session, filter=selected, page_size=PAGE_SIZE, page_token=token
            ),
            lambda reply: exchange_records(reply.exchanges),
        )
    )


def count_exchanges(session: str, options: FilterOptions) -> Operation[int]:
    """How many recorded exchanges pass the filter."""
    request = pb.CountExchangesRequest(parent=session, filter=exchange_filter(options))
    reply = yield from call(lambda s: s.CountExchanges, request)
    return reply.count


def wait_for(session: str, count: int, timeout: float, options: FilterOptions) -> Operation[list[Exchange]]:
    """Waits in the daemon until `count` exchanges pass the filter; on timeout raises AssertionError saying
    what arrived instead."""
    request = pb.WaitForExchangesRequest(
        parent=session, filter=exchange_filter(options), count=count, timeout=duration(timeout)
    )
    reply = yield from call(lambda s: s.WaitForExchanges, request, timeout + WAIT_GRACE)
    if not reply.satisfied:
        raise AssertionError(wait_failure(session, options, count, timeout, reply))
    return exchange_records(reply.exchanges)


def watch_request(session: str, start: int, options: FilterOptions) -> pb.WatchExchangesRequest:
    """The WatchExchanges request of `Session.watch()` / `AsyncSession.watch()`."""
    return pb.WatchExchangesRequest(parent=session, filter=exchange_filter(options), start_sequence=start)


class WatchEvents:
    """What the sync and async exchange streams share: events to Exchanges, gaps counted, and normal ends.

    `evicted` counts exchanges lost to journal limits before they could be sent.
    """

    def __init__(self, address: str) -> None:
        self._address = address
        self._closed = False
        self.evicted = 0

    def _exchange(self, event: pb.WatchExchangesResponse) -> Exchange | None:
        """The event's exchange, or None for a gap event (added to `evicted`)."""
        if event.HasField("exchange"):
            return Exchange.from_message(event.exchange)
        self.evicted += event.evicted_count
        return None

    def _raise_unless_ended(self, error: grpc.RpcError) -> None:
        """Raises `error` as a SimulatorError unless it is how a stream normally ends."""
        # CANCELLED after close() and DEADLINE_EXCEEDED after `timeout` are the normal ends.
        if not self._closed and error.code() not in (grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED):
            raise from_rpc_error(error, self._address) from None


# --- webhooks ------------------------------------------------------------------------------------


def deliver_webhooks(
    session: str, webhooks: Sequence[webhook_pb2.Webhook], *, wait: bool, timeout: float, order: str
) -> Operation[list[Delivery]]:
    """Makes the daemon deliver `webhooks` (first attempts one after another, in `order`); with `wait`, answers once
    every delivery has ended or `timeout` seconds have passed (those still going are then pending)."""
    for item in webhooks:
        if not isinstance(item, webhook_pb2.Webhook):
            hint = " (pass them as arguments: deliver_webhooks(*hooks))" if isinstance(item, (list, tuple)) else ""
            raise TypeError(f"webhooks come from webhooks.webhook(...), not {type(item).__name__}{hint}")
    if not webhooks:
        raise ValueError("deliver_webhooks() needs at least one webhook")
    if not timeout > 0:
        raise ValueError(f"timeout bounds the wait, in seconds: more than 0, got {timeout}")
    request = pb.DeliverWebhooksRequest(
        parent=session, webhooks=webhooks, order=delivery_order(order), wait=wait, timeout=duration(timeout)
    )
    # Like WaitForExchanges: the daemon answers when its own wait ends, before the client's deadline cuts the call.
    reply = yield from call(lambda s: s.DeliverWebhooks, request, timeout + WAIT_GRACE if wait else None)
    return [Delivery.from_message(item) for item in reply.deliveries]


# --- verification --------------------------------------------------------------------------------


def verification(name: str) -> Operation[pb.VerifySessionResponse]:
    """The raw verification report (never raises on failed expectations)."""
    return (yield from call(lambda s: s.VerifySession, pb.VerifySessionRequest(name=name)))


def verify(name: str) -> Operation[None]:
    """Raises AssertionError listing what the session's expectations missed, describing each stub involved."""
    report = yield from verification(name)
    if not report.ok:
        stubs = yield from list_stubs(name)
        raise AssertionError(verify_failure(name, report, {s.name: s for s in stubs}))
