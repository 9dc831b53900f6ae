"""The sans-IO protocol of the client: an operation is a generator that yields typed `Rpc`s and is sent their replies.

An operation never touches a channel. It yields `Rpc(method, request)`, where `method` picks one attribute of
the generated `SimulatorServiceStub` (so mypy checks the request and the reply against the proto), and gets
the reply back from `yield`, or the call's `SimulatorError` raised there. `Simulator` drives operations with
blocking calls and `AsyncSimulator` awaits them; a test can drive one with a fake transport.

Example::

    def get_session(name: str) -> Operation[session_pb2.Session]:
        reply = yield from call(lambda stub: stub.GetSession, pb.GetSessionRequest(name=name))
        return reply.session
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import Any, Generic, TypeAlias, TypeVar

import grpc

from simulatord.v1 import simulator_service_pb2_grpc as pb_grpc
from simulatord_client.errors import hide_client_frames

# A SimulatorError or a failed wait or verification points at the test's line, not at these frames.
__tracebackhide__ = hide_client_frames

#: The environment variable both drivers (and the pytest plugin) read the bearer token from.
TOKEN_ENV = "SIMULATORD_TOKEN"

Req = TypeVar("Req")
Resp = TypeVar("Resp")
T = TypeVar("T")

#: Picks one method off the generated stub: `lambda stub: stub.CreateSession`. (A string: grpc's classes are
#: generic only in their type stubs.)
Method: TypeAlias = "Callable[[pb_grpc.SimulatorServiceStub], grpc.UnaryUnaryMultiCallable[Req, Resp]]"


@dataclass(frozen=True)
class Rpc(Generic[Req, Resp]):
    """One unary call an operation asks for: the method, its request, and a deadline (None: the default)."""

    method: Method[Req, Resp]
    request: Req
    timeout: float | None = None


#: An operation returning T. Each `yield` is sent the reply of the Rpc it yielded; the replies of one operation
#: have different types, so the generator's send type is Any and `call()` gives each reply its type back.
Operation = Generator[Rpc[Any, Any], Any, T]


def call(method: Method[Req, Resp], request: Req, timeout: float | None = None) -> Operation[Resp]:
    """Inside an operation, one call and its typed reply: `reply = yield from call(lambda s: s.GetStub, request)`."""
    reply: Resp = yield Rpc(method, request, timeout)
    return reply


def auth_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    """The metadata every call carries for a daemon started with `--auth`: `authorization: Bearer <token>`, the
    token being `token` or, when None, $SIMULATORD_TOKEN; None when there is none. A daemon without `--auth`
    ignores the token, so setting one does no harm."""
    if token is None:
        token = os.environ.get(TOKEN_ENV, "")
    token = token.strip()  # a token read from a file or a secret often ends in a newline, which metadata refuses
    return (("authorization", f"Bearer {token}"),) if token else None


@dataclass(frozen=True)
class Done(Generic[T]):
    """What a finished operation returned."""

    value: T


def advance(operation: Operation[T], reply: Any = None, error: BaseException | None = None) -> Rpc[Any, Any] | Done[T]:
    """Resumes `operation` with the reply of its last call (or the error it failed with; nothing to start it):
    the next call it asks for, or, once it has returned, its result."""
    try:
        return operation.send(reply) if error is None else operation.throw(error)
    except StopIteration as stop:
        return Done(stop.value)
