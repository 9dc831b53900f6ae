"""What the sync and async sessions share: their settings, identity, and the request messages they send."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from simulatord.v1 import session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord_client.builders import StubLike, create_request
from simulatord_client.durations import duration

DEFAULT_TTL = 30.0
# Heartbeats run every ttl/3 so two may fail (a slow CI machine, a GC pause) before the session expires.
HEARTBEATS_PER_TTL = 3
MIN_HEARTBEAT_SECONDS = 0.1


@dataclass(frozen=True)
class StubRef:
    """A created stub: `name` (full resource name), `id`, and `stub` (the message as the daemon stored it).

    Pass it to `requests(stub=...)`, `count(stub=...)`, `delete_stub()` or `replace_stub()`.
    """

    name: str
    stub: stub_pb2.Stub = field(repr=False)

    @property
    def id(self) -> str:
        """The stub id, the last part of `name`."""
        return self.name.rsplit("/", 1)[-1]

    def __str__(self) -> str:
        return self.id


StubRefLike = StubRef | str


def stub_name(session: str, ref: StubRefLike) -> str:
    """The full stub name for a StubRef, a stub name or a bare stub id."""
    if isinstance(ref, StubRef):
        return ref.name
    return ref if "/" in ref else f"{session}/stubs/{ref}"


class SessionBase:
    """Settings and identity of a session; subclasses add the calls (sync or async)."""

    def __init__(
        self,
        *,
        tenant: str,
        session_id: str,
        labels: Mapping[str, str] | None,
        ttl: float | None,
        stubs: Iterable[StubLike],
        template: str,
        unmatched_status: int,
        journal_limits: session_pb2.JournalLimits | None,
        heartbeat: bool,
    ) -> None:
        settings = session_pb2.Session(labels=dict(labels or {}), unmatched_status=unmatched_status)
        if ttl:
            settings.ttl.CopyFrom(duration(ttl))
        if journal_limits is not None:
            settings.journal_limits.CopyFrom(journal_limits)
        self._create = pb.CreateSessionRequest(
            parent=f"tenants/{tenant}", session_id=session_id, session=settings, template=template
        )
        initial = [create_request(item) for item in stubs]
        # CreateSession has no stub ids; when one is chosen, every initial stub follows in one batch so
        # their order is kept (two round trips instead of one).
        self._deferred: list[tuple[stub_pb2.Stub, str]] = []
        if any(stub_id for _, stub_id in initial):
            self._deferred = initial
        else:
            self._create.stubs.extend(message for message, _ in initial)
        self._ttl = ttl
        self._heartbeat = heartbeat and bool(ttl)
        self.info = session_pb2.Session()
        self.initial_stubs: list[StubRef] = []

    # --- identity --------------------------------------------------------------------------------

    def _require(self) -> session_pb2.Session:
        if not self.info.name:
            raise RuntimeError("the session is not created yet: use `with sim.session(...) as s:` or call open()")
        return self.info

    @property
    def name(self) -> str:
        """Resource name, `tenants/{tenant}/sessions/{session}`."""
        return self._require().name

    @property
    def tenant(self) -> str:
        """The tenant id."""
        return self.name.split("/")[1]

    @property
    def id(self) -> str:
        """The session id."""
        return self.name.split("/")[3]

    @property
    def url(self) -> str:
        """The base URL serving this session: append API paths, e.g. `f"{s.url}/users/7"`."""
        return self._require().base_url

    @property
    def host(self) -> str:
        """A Host header value routing to this session, for clients that cannot take a path prefix."""
        return self._require().host

    @property
    def routing_header(self) -> str:
        """The value of the `x-simulatord-session` header routing to this session."""
        return self._require().routing_header

    @property
    def heartbeat_interval(self) -> float:
        """Seconds between RefreshSession calls (ttl/3)."""
        return max(MIN_HEARTBEAT_SECONDS, (self._ttl or DEFAULT_TTL) / HEARTBEATS_PER_TTL)

    def __repr__(self) -> str:
        shown = self.info.name or f"{self._create.parent} (not created)"
        return f"<{type(self).__name__} {shown} url={self.info.base_url or '-'}>"

    # --- request messages ------------------------------------------------------------------------

    def _batch(self, stubs: Iterable[StubLike | tuple[stub_pb2.Stub, str]]) -> pb.BatchCreateStubsRequest:
        out = pb.BatchCreateStubsRequest(parent=self.name)
        for item in stubs:
            message, stub_id = item if isinstance(item, tuple) else create_request(item)
            out.requests.append(pb.CreateStubRequest(stub=message, stub_id=stub_id))
        return out

    def _single(self, item: StubLike) -> pb.CreateStubRequest:
        message, stub_id = create_request(item)
        return pb.CreateStubRequest(parent=self.name, stub=message, stub_id=stub_id)

    def _replace(self, ref: StubRefLike, item: StubLike) -> pb.ReplaceStubRequest:
        message, _ = create_request(item)
        out = pb.ReplaceStubRequest(stub=message)
        out.stub.name = stub_name(self.name, ref)
        return out

    def _reset(self, stubs: bool, journal: bool, state: bool) -> pb.ResetSessionRequest:
        targets = [
            target
            for wanted, target in (
                (stubs, pb.RESET_TARGET_STUBS),
                (journal, pb.RESET_TARGET_JOURNAL),
                (state, pb.RESET_TARGET_STATE),
            )
            if wanted
        ]
        if not targets:
            raise ValueError("reset() needs at least one of stubs, journal, state")
        return pb.ResetSessionRequest(name=self.name, targets=targets)
