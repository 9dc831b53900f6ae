"""The response pipeline: select a stub, render its reply, apply behaviours; each stage is small and pure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from simulatord.matching.matchers import describe_mismatches
from simulatord.matching.request import HttpRequest
from simulatord.responding.reply import Reply, ResponseSpec
from simulatord.sessions.journal import NearMiss
from simulatord.sessions.session import Selection, Session

Behaviour = Callable[[Reply, HttpRequest], Awaitable[Reply]]


@dataclass(frozen=True)
class Plan:
    """The outcome of the pipeline for one request: the reply and the selection it came from."""

    reply: Reply
    selection: Selection


def render(spec: ResponseSpec) -> Reply:
    return Reply(spec.status, spec.headers, spec.body, delay=spec.delay, shaping=spec.shaping, spec=spec)


def render_miss(session: Session, request: HttpRequest, misses: tuple[NearMiss, ...]) -> Reply:
    """The answer to an unmatched request: which stubs came closest and why they did not match."""
    body = {
        "error": "no stub matched this request",
        "session": session.key.name,
        "request": {"method": request.method, "path": request.path, "query": request.query_string},
        "near_misses": [
            {
                "stub": miss.stub_name,
                "description": miss.description,
                "mismatches": [{"field": m.field, "expected": m.expected, "actual": m.actual} for m in miss.mismatches],
                "summary": describe_mismatches(miss.mismatches),
            }
            for miss in misses
        ],
    }
    payload = json.dumps(body, indent=2).encode()
    headers = [("content-type", "application/json"), ("x-simulatord-unmatched", "true")]
    return Reply(session.unmatched_status, headers, payload)


async def apply_delay(reply: Reply, request: HttpRequest) -> Reply:
    if reply.delay > 0:
        await asyncio.sleep(reply.delay)
    return reply


BEHAVIOURS: tuple[Behaviour, ...] = (apply_delay,)


async def run(session: Session, request: HttpRequest) -> Plan:
    """Runs the stages for one request against its session."""
    selection = session.select(request)
    if selection.stub is None or selection.response is None:
        reply = render_miss(session, request, selection.near_misses)
    else:
        spec = selection.response
        reply = render(spec)
        if spec.template is not None:  # only templated responses pay for rendering
            reply = spec.template.render_reply(
                reply,
                request,
                selection.captures,
                selection.stub.match_count,
                session.journal.next_sequence,
                session.state_of(selection.stub.scenario),
            )
        if selection.rate is not None:  # only rate-limited stubs report x-ratelimit-* headers
            reply = selection.rate.apply(reply)
    for behaviour in BEHAVIOURS:
        reply = await behaviour(reply, request)
    return Plan(reply, selection)
