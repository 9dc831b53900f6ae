"""The context a selected stub's behaviour chain runs in, the same for HTTP requests and WebSocket upgrades."""

from __future__ import annotations

from simulatord.matching.request import HttpRequest
from simulatord.responding.behaviour import Context, Proceed
from simulatord.responding.proxy import Forward
from simulatord.responding.wire import Wire
from simulatord.sessions.session import Selection, Session
from simulatord.sessions.stubs import Stub


def context(
    session: Session,
    request: HttpRequest,
    selection: Selection,
    stub: Stub,
    wire: Wire | None,
    terminal: Proceed,
    forward: Forward | None = None,
) -> Context:
    """What the chain of `stub`'s selected response may read: the request, its captures and counters."""
    return Context(
        request=request,
        captures=selection.captures,
        match=stub.match_count,
        sequence=session.journal.next_sequence,
        state=session.state_of(stub.scenario),
        rate=selection.rate,
        wire=wire,
        terminal=terminal,
        forward=forward,
    )
