"""The data plane's entry points for a front end: find the addressed session, serve HTTP and WebSocket traffic."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from simulatord.matching.request import HttpRequest
from simulatord.names import SessionKey
from simulatord.responding import behaviour
from simulatord.responding.reply import Reply
from simulatord.responding.wire import Wire, send_plain
from simulatord.serving import answers, chain, websocket
from simulatord.serving.recording import record
from simulatord.serving.websocket import Socket
from simulatord.sessions.journal import Exchange
from simulatord.sessions.session import Session
from simulatord.sessions.store import SessionStore


class DataPlane:
    """Serves the traffic that addresses sessions; front ends freeze requests and adapt their server to it."""

    def __init__(self, store: SessionStore, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.clock = clock
        self.find: Callable[[SessionKey], Session | None] = store.find  # the hot path's first call, unwrapped

    async def http(self, session: Session, request: HttpRequest, wire: Wire) -> Exchange:
        """One HTTP request: select a stub, render its reply, run its behaviours, deliver, record."""
        selection = session.select(request)
        stub, spec = selection.stub, selection.response
        if stub is None or spec is None:
            reply = answers.unmatched(session.key, session.unmatched_status, request, selection.near_misses)
            end = await send_plain(reply, wire)
            return record(session, request, reply, self.clock(), near_misses=selection.near_misses, end=end)
        reply = spec.render()
        if not spec.behaviours:  # the plain path: no chain, no context
            end = await send_plain(reply, wire)
            return record(session, request, reply, self.clock(), stub_name=stub.name, end=end)
        context = chain.context(session, request, selection, stub, wire, functools.partial(send_plain, wire=wire))
        end, reply = await behaviour.run(spec.behaviours, reply, context)
        return record(session, request, reply, self.clock(), stub_name=stub.name, end=end, behaviours=context.ran)

    async def answer(self, session: Session, request: HttpRequest, reply: Reply, wire: Wire) -> Exchange:
        """Sends a reply the front end decided on without selecting a stub (a body over the limit), and records
        it like any other."""
        end = await send_plain(reply, wire)
        return record(session, request, reply, self.clock(), end=end)

    async def websocket(self, session: Session, request: HttpRequest, socket: Socket) -> None:
        """One WebSocket upgrade and, once accepted, its conversation."""
        await websocket.serve(session, request, socket, self.clock)
