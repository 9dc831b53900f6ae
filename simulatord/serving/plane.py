"""The data plane's entry points for a front end: find the addressed session, serve HTTP and WebSocket traffic."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from simulatord.matching.request import HttpRequest
from simulatord.names import WILDCARD, SessionKey
from simulatord.responding import behaviour
from simulatord.responding.reply import Reply, error_reply
from simulatord.responding.websocket import GOING_AWAY
from simulatord.responding.wire import End, Shutdown, Wire, send_plain
from simulatord.serving import answers, chain, relaying, websocket
from simulatord.serving.metrics import Metrics
from simulatord.serving.outbound import Outbound, template_values
from simulatord.serving.proxying import Forwarder, Recorder
from simulatord.serving.recording import record
from simulatord.serving.websocket import Socket
from simulatord.sessions.journal import Exchange
from simulatord.sessions.session import Session
from simulatord.sessions.store import SessionStore
from simulatord.webhooks.targets import DEFAULT as DEFAULT_TARGETS
from simulatord.webhooks.targets import Targets

log = logging.getLogger(__name__)


async def _send_if_possible(reply: Reply, wire: Wire) -> End:
    """Sends an error reply unless a response already started (the server then refuses a second start)."""
    try:
        return await send_plain(reply, wire)
    except Exception:  # hypercorn and uvicorn each raise their own error for a second response start
        return End.ABORTED


class DataPlane:
    """Serves the traffic that addresses sessions; front ends freeze requests and adapt their server to it."""

    def __init__(
        self,
        store: SessionStore,
        clock: Callable[[], float] = time.time,
        outbound: Outbound | None = None,
        metrics: Metrics | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.metrics = metrics or Metrics()
        self.outbound = outbound or Outbound(Targets.parse(DEFAULT_TARGETS), clock=clock, metrics=self.metrics)
        self.forwarder = Forwarder(self.outbound, recorder)
        self.find: Callable[[SessionKey], Session | None] = store.find  # the hot path's first call, unwrapped
        self.shutdown = Shutdown()
        # Set when replicas share sessions: the HTTP address of another replica that owns a session, or None.
        self.locate: Callable[[SessionKey], Awaitable[str | None]] | None = None
        self.relayer = relaying.Relayer()

    async def owner(self, key: SessionKey) -> str | None:
        """The HTTP address of the replica that owns a session this one does not hold; None: nobody does."""
        return None if self.locate is None else await self.locate(key)

    async def relay(self, owner: str, scope: dict[str, Any], body: bytes, wire: Wire) -> None:
        """Serves a request through the replica that owns its session (which records it); a request relayed
        here already is not sent on again, but told to come back (its session's owner is changing)."""
        if relaying.relayed(scope):
            await send_plain(relaying.owner_unavailable(owner, "is changing; try again"), wire)
            return
        await self.relayer.relay(owner, scope, body, wire)

    async def relay_websocket(self, owner: str, scope: dict[str, Any], socket: Socket, session: str | None) -> None:
        """A WebSocket through the replica that owns its session; see `relay` for one relayed already."""
        if relaying.relayed(scope):
            await socket.refuse(relaying.owner_unavailable(owner, "is changing; try again"))
            return
        await relaying.relay_websocket(owner, scope, socket, session)

    def stop(self) -> None:
        """The daemon is stopping: waits and streams in progress end now, and every WebSocket is closed, so
        that the server's drain finds them done and every exchange is recorded."""
        self.shutdown.begin()
        for session in self.store.in_tenant(WILDCARD):
            session.connections.close_all(GOING_AWAY, "the daemon is stopping")

    async def http(self, session: Session, request: HttpRequest, wire: Wire) -> Exchange:
        """One HTTP request: select a stub, render its reply, run its behaviours, deliver, record. Whatever
        fails on the way, the request is recorded with what went wrong."""
        exchange = await self._http(session, request, wire)
        self.metrics.served(session.key.tenant, exchange)
        return exchange

    async def _http(self, session: Session, request: HttpRequest, wire: Wire) -> Exchange:
        stub_name = ""
        try:
            selection = session.select(request)
            stub, spec = selection.stub, selection.response
            if stub is None and session.llm is not None and (endpoint := session.llm.endpoint(request)) is not None:
                served = await session.llm.serve(endpoint, request, wire)
                stub_name = served.answered_by
                misses = served.near_misses
                now = self.clock()
                return record(
                    session,
                    request,
                    served.reply,
                    now,
                    stub_name=stub_name,
                    near_misses=misses,
                    end=served.end,
                    llm=served.record,
                )
            if stub is None or spec is None:
                reply = answers.unmatched(session.key, session.unmatched_status, request, selection.near_misses)
                end = await send_plain(reply, wire)
                return record(session, request, reply, self.clock(), near_misses=selection.near_misses, end=end)
            stub_name = stub.name
            reply = spec.render()
            if not spec.behaviours:  # the plain path: no chain, no context
                end = await send_plain(reply, wire)
                exchange = record(session, request, reply, self.clock(), stub_name=stub_name, end=end)
            else:
                send = functools.partial(send_plain, wire=wire)
                forward = functools.partial(self.forwarder.forward, session, stub)
                context = chain.context(session, request, selection, stub, wire, send, forward)
                end, reply = await behaviour.run(spec.behaviours, reply, context)
                exchange = record(
                    session,
                    request,
                    reply,
                    self.clock(),
                    stub_name=stub_name,
                    end=end,
                    behaviours=context.ran,
                    proxy=context.proxied,
                )
            if stub.callbacks:
                values = template_values(
                    request,
                    selection.captures,
                    stub.match_count,
                    exchange.sequence,
                    session.state_of(stub.scenario),
                    self.clock(),
                )
                self.outbound.callbacks(session, request, stub_name, stub.callbacks, values)
            return exchange
        except asyncio.CancelledError:  # the server gave up on the request (shutdown): still on the record
            reply = error_reply("DAEMON_STOPPING", "the daemon stopped before this response was complete").not_sent()
            record(session, request, reply, self.clock(), stub_name=stub_name, end=End.ABORTED)
            raise
        except Exception as exc:
            log.exception("serving %s %s in %s failed", request.method, request.path, session.key.name)
            reply = error_reply(
                "INTERNAL", f"the daemon failed while serving this request: {type(exc).__name__}: {exc}"
            )
            end = await _send_if_possible(reply, wire)
            if end is End.ABORTED:
                reply.not_sent()
            return record(session, request, reply, self.clock(), stub_name=stub_name, end=end)

    async def answer(
        self, session: Session, request: HttpRequest, reply: Reply, wire: Wire, body_size: int | None = None
    ) -> Exchange:
        """Sends a reply the front end decided on without selecting a stub (a body over the limit, one too slow,
        ambiguous framing), and records it like any other; `body_size` is what arrived of a body not kept."""
        end = await send_plain(reply, wire)
        exchange = record(session, request, reply, self.clock(), end=end, body_size=body_size)
        self.metrics.served(session.key.tenant, exchange)
        return exchange

    async def websocket(self, session: Session, request: HttpRequest, socket: Socket) -> None:
        """One WebSocket upgrade and, once accepted, its conversation."""
        self.metrics.websocket_upgrades[self.metrics.tenant_label(session.key.tenant)] += 1
        await websocket.serve(session, request, socket, self.clock)
