"""The answers the daemon writes itself: no stub matched, no such session, a request refused before any stub is
tried (a body too large or too slow, ambiguous framing)."""

from __future__ import annotations

import json

from simulatord.matching.near_misses import NearMiss, describe_mismatches
from simulatord.matching.request import HttpRequest
from simulatord.names import SessionKey
from simulatord.responding.reply import Reply, error_reply, json_reply

UNMATCHED_HEADER = ("x-simulatord-unmatched", "true")
MAX_QUOTED = 300  # characters of what a client sent, quoted back in an answer


def unmatched(key: SessionKey, status: int, request: HttpRequest, misses: tuple[NearMiss, ...]) -> Reply:
    """Which stubs came closest to matching and why they did not: what a test author reads first."""
    body = {
        "error": "no stub matched this request",
        "session": key.name,
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
    return Reply(status, [("content-type", "application/json"), UNMATCHED_HEADER], json.dumps(body, indent=2).encode())


def no_such_session(key: SessionKey) -> Reply:
    return json_reply(404, {"error": f"session {key.name} not found", "reason": "SESSION_NOT_FOUND"})


def malformed_session_header(problem: str) -> Reply:
    """For a request whose x-simulatord-session header names no session: what is wrong with its value, where
    the daemon's 404 page would only list the ways of addressing a session."""
    message = f"the x-simulatord-session header's value is malformed: {problem[:MAX_QUOTED]}"
    return error_reply("MALFORMED_SESSION_HEADER", message, status=400)


# Closing the connection after these answers, since what follows the request on it cannot be trusted.
_CLOSE = (("connection", "close"),)


def body_too_large(limit: int) -> Reply:
    message = f"request body exceeds the daemon's limit of {limit} bytes"
    return error_reply("BODY_TOO_LARGE", message, _CLOSE, status=413)


def body_too_slow(timeout: float) -> Reply:
    message = f"the request body did not arrive within {timeout:g} seconds"
    return error_reply("BODY_TOO_SLOW", message, _CLOSE, status=408)


def ambiguous_framing() -> Reply:
    message = (
        "a request with both Content-Length and Transfer-Encoding is refused and its connection closed (RFC 9112 6.3)"
    )
    return error_reply("AMBIGUOUS_FRAMING", message, _CLOSE, status=400)
