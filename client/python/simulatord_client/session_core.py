"""What `Session` and `AsyncSession` share without any I/O: the session's settings, its identity and heartbeat rate."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypedDict, Unpack

from simulatord.v1 import llm_pb2, session_pb2, stub_pb2
from simulatord.v1 import simulator_service_pb2 as pb
from simulatord_client.builders import StubLike, check_keywords, create_request
from simulatord_client.durations import duration
from simulatord_client.stub_refs import StubRef

DEFAULT_TTL = 30.0
# Heartbeats run every ttl/3 so two may fail (a slow CI machine, a GC pause) before the session expires.
HEARTBEATS_PER_TTL = 3
MIN_HEARTBEAT_SECONDS = 0.1


class SessionOptions(TypedDict, total=False):
    """The keywords of `Simulator.session()` and `AsyncSimulator.session()` after the tenant.

    - `session_id`: a chosen id ("" lets the daemon choose); `labels`: for listing and label selectors.
    - `ttl`: seconds the session outlives a crashed test process (default 30; None: the daemon's default,
      and no heartbeats); `heartbeat`: refresh it every ttl/3 while it is open (default True).
    - `stubs`: initial stubs, created with the session; `template`: the name of a daemon session template.
    - `unmatched_status`: the status of unmatched requests (0: 404); `journal_limits`: bounds of the journal.
    - `llm`: a built-in OpenAI or Anthropic simulation from `llm.openai(...)` / `llm.anthropic(...)`; point the
      SDK at `openai_url` / `anthropic_url`.
    """

    session_id: str
    labels: Mapping[str, str] | None
    ttl: float | None
    stubs: Iterable[StubLike]
    template: str
    unmatched_status: int
    journal_limits: session_pb2.JournalLimits | None
    heartbeat: bool
    llm: llm_pb2.LlmSimulation | None


class SessionCore:
    """Settings and identity of a session; `Session` and `AsyncSession` add the calls, sync or async."""

    def __init__(self, tenant: str = "default", **options: Unpack[SessionOptions]) -> None:
        check_keywords("session()", options, SessionOptions)
        ttl = options.get("ttl", DEFAULT_TTL)
        settings = session_pb2.Session(
            labels=dict(options.get("labels") or {}), unmatched_status=options.get("unmatched_status", 0)
        )
        if ttl:
            settings.ttl.CopyFrom(duration(ttl))
        journal_limits = options.get("journal_limits")
        if journal_limits is not None:
            settings.journal_limits.CopyFrom(journal_limits)
        simulation = options.get("llm")
        if simulation is not None:
            if not isinstance(simulation, llm_pb2.LlmSimulation):
                raise TypeError(f"llm= takes llm.openai(...) or llm.anthropic(...), not {type(simulation).__name__}")
            settings.llm.CopyFrom(simulation)
        self._create = pb.CreateSessionRequest(
            parent=f"tenants/{tenant}",
            session_id=options.get("session_id", ""),
            session=settings,
            template=options.get("template", ""),
        )
        initial = [create_request(item) for item in options.get("stubs", ())]
        # CreateSession has no stub ids; when one is chosen, every initial stub follows in one batch so
        # their order is kept (two round trips instead of one).
        self._deferred: list[tuple[stub_pb2.Stub, str]] = []
        if any(stub_id for _, stub_id in initial):
            self._deferred = initial
        else:
            self._create.stubs.extend(message for message, _ in initial)
        self._ttl = ttl
        self._heartbeat = options.get("heartbeat", True) and bool(ttl)
        self.info = session_pb2.Session()
        self.initial_stubs: list[StubRef] = []

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
    def openai_url(self) -> str:
        """The OpenAI SDK's `base_url` for this session's simulation: `OpenAI(base_url=s.openai_url, api_key=...)`."""
        # The OpenAI SDK appends `/chat/completions` &c. to a base URL that already ends in `/v1`.
        return f"{self.url}/v1"

    @property
    def anthropic_url(self) -> str:
        """The Anthropic SDK's `base_url` for this session's simulation: `Anthropic(base_url=s.anthropic_url)`."""
        # The Anthropic SDK appends `/v1/messages` itself, so its base URL is the session's own.
        return self.url

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
