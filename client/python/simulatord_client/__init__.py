"""Python client for simulatord: sessions as context managers, stub builders, and a pytest plugin.

Everything a test needs is importable from here; `behaviours` (response shaping, templates, rate limits,
WebSockets), `llm` (simulated OpenAI and Anthropic APIs) and `webhooks` (signed webhooks the daemon delivers to
the code under test) are the submodules to import by name: `from simulatord_client import behaviours as b, llm`.

Example::

    import httpx
    from simulatord_client import Simulator, contains

    with Simulator("127.0.0.1:50051") as sim, sim.session(tenant="checkout") as s:
        s.stub("GET", "/users/{id}", headers={"accept": contains("json")}, json={"id": 7})
        httpx.get(f"{s.url}/users/7", headers={"accept": "application/json"})
        s.wait_for(path="/users/7")
        s.verify()
"""

# Names resolve on first use (PEP 562): the pytest plugin imports this package in every pytest run,
# and runs that never touch the client should not pay for grpc and the generated messages.
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from simulatord_client import behaviours, llm, webhooks
    from simulatord_client.aio import AsyncExchangeStream, AsyncSession, AsyncSimulator
    from simulatord_client.builders import (
        CallbackLike,
        ExpectLike,
        MatchOptions,
        ReplyOptions,
        ResponseLike,
        ResponseOptions,
        StubBuilder,
        StubLike,
        StubOptions,
        StubSettings,
        absent,
        all_of,
        any_of,
        at_least,
        at_most,
        between,
        body_contains,
        body_equals,
        body_regex,
        contains,
        equals,
        exactly,
        json_equals,
        json_path,
        json_schema,
        json_subset,
        json_value,
        match,
        never,
        none_of,
        prefix,
        present,
        proxy,
        regex,
        response,
        stub,
        when,
    )
    from simulatord_client.client import ExchangeStream, Session, Simulator
    from simulatord_client.durations import DurationLike, duration
    from simulatord_client.embedded import DaemonError, EmbeddedDaemon
    from simulatord_client.errors import (
        AbortedError,
        AlreadyExistsError,
        CancelledError,
        DataLossError,
        DeadlineExceededError,
        FailedPreconditionError,
        FieldViolation,
        InternalError,
        InvalidArgumentError,
        NotFoundError,
        OutOfRangeError,
        PermissionDeniedError,
        ResourceExhaustedError,
        SimulatorError,
        UnauthenticatedError,
        UnavailableError,
        UnimplementedError,
        UnknownError,
    )
    from simulatord_client.exchanges import (
        Exchange,
        FilterOptions,
        Headers,
        LlmCall,
        Mismatch,
        NearMiss,
        WebhookAttempt,
    )
    from simulatord_client.migration import MockHttpServer
    from simulatord_client.session_core import SessionOptions
    from simulatord_client.stub_refs import StubRef, StubRefLike
    from simulatord_client.webhooks import Delivery

_EXPORTS = {
    "AbortedError": "simulatord_client.errors",
    "AlreadyExistsError": "simulatord_client.errors",
    "AsyncExchangeStream": "simulatord_client.aio",
    "AsyncSession": "simulatord_client.aio",
    "AsyncSimulator": "simulatord_client.aio",
    "CallbackLike": "simulatord_client.builders",
    "CancelledError": "simulatord_client.errors",
    "DaemonError": "simulatord_client.embedded",
    "DataLossError": "simulatord_client.errors",
    "DeadlineExceededError": "simulatord_client.errors",
    "Delivery": "simulatord_client.webhooks",
    "DurationLike": "simulatord_client.durations",
    "EmbeddedDaemon": "simulatord_client.embedded",
    "Exchange": "simulatord_client.exchanges",
    "ExchangeStream": "simulatord_client.client",
    "ExpectLike": "simulatord_client.builders",
    "FailedPreconditionError": "simulatord_client.errors",
    "FieldViolation": "simulatord_client.errors",
    "FilterOptions": "simulatord_client.exchanges",
    "Headers": "simulatord_client.exchanges",
    "InternalError": "simulatord_client.errors",
    "InvalidArgumentError": "simulatord_client.errors",
    "LlmCall": "simulatord_client.exchanges",
    "MatchOptions": "simulatord_client.builders",
    "Mismatch": "simulatord_client.exchanges",
    "MockHttpServer": "simulatord_client.migration",
    "NearMiss": "simulatord_client.exchanges",
    "NotFoundError": "simulatord_client.errors",
    "OutOfRangeError": "simulatord_client.errors",
    "PermissionDeniedError": "simulatord_client.errors",
    "ReplyOptions": "simulatord_client.builders",
    "ResourceExhaustedError": "simulatord_client.errors",
    "ResponseLike": "simulatord_client.builders",
    "ResponseOptions": "simulatord_client.builders",
    "Session": "simulatord_client.client",
    "SessionOptions": "simulatord_client.session_core",
    "Simulator": "simulatord_client.client",
    "SimulatorError": "simulatord_client.errors",
    "StubBuilder": "simulatord_client.builders",
    "StubLike": "simulatord_client.builders",
    "StubOptions": "simulatord_client.builders",
    "StubRef": "simulatord_client.stub_refs",
    "StubRefLike": "simulatord_client.stub_refs",
    "StubSettings": "simulatord_client.builders",
    "UnauthenticatedError": "simulatord_client.errors",
    "UnavailableError": "simulatord_client.errors",
    "UnimplementedError": "simulatord_client.errors",
    "UnknownError": "simulatord_client.errors",
    "WebhookAttempt": "simulatord_client.exchanges",
    "absent": "simulatord_client.builders",
    "all_of": "simulatord_client.builders",
    "any_of": "simulatord_client.builders",
    "at_least": "simulatord_client.builders",
    "at_most": "simulatord_client.builders",
    "between": "simulatord_client.builders",
    "body_contains": "simulatord_client.builders",
    "body_equals": "simulatord_client.builders",
    "body_regex": "simulatord_client.builders",
    "contains": "simulatord_client.builders",
    "duration": "simulatord_client.durations",
    "equals": "simulatord_client.builders",
    "exactly": "simulatord_client.builders",
    "json_equals": "simulatord_client.builders",
    "json_path": "simulatord_client.builders",
    "json_schema": "simulatord_client.builders",
    "json_subset": "simulatord_client.builders",
    "json_value": "simulatord_client.builders",
    "match": "simulatord_client.builders",
    "never": "simulatord_client.builders",
    "none_of": "simulatord_client.builders",
    "prefix": "simulatord_client.builders",
    "present": "simulatord_client.builders",
    "proxy": "simulatord_client.builders",
    "regex": "simulatord_client.builders",
    "response": "simulatord_client.builders",
    "stub": "simulatord_client.builders",
    "when": "simulatord_client.builders",
}
# Submodules reachable as attributes, like any name above (`simulatord_client.behaviours.sse(...)`).
_SUBMODULES = {"behaviours", "llm", "webhooks"}


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS, *_SUBMODULES})


__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "AsyncExchangeStream",
    "AsyncSession",
    "AsyncSimulator",
    "CallbackLike",
    "CancelledError",
    "DaemonError",
    "DataLossError",
    "DeadlineExceededError",
    "Delivery",
    "DurationLike",
    "EmbeddedDaemon",
    "Exchange",
    "ExchangeStream",
    "ExpectLike",
    "FailedPreconditionError",
    "FieldViolation",
    "FilterOptions",
    "Headers",
    "InternalError",
    "InvalidArgumentError",
    "LlmCall",
    "MatchOptions",
    "Mismatch",
    "MockHttpServer",
    "NearMiss",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ReplyOptions",
    "ResourceExhaustedError",
    "ResponseLike",
    "ResponseOptions",
    "Session",
    "SessionOptions",
    "Simulator",
    "SimulatorError",
    "StubBuilder",
    "StubLike",
    "StubOptions",
    "StubRef",
    "StubRefLike",
    "StubSettings",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "WebhookAttempt",
    "absent",
    "all_of",
    "any_of",
    "at_least",
    "at_most",
    "behaviours",
    "between",
    "body_contains",
    "body_equals",
    "body_regex",
    "contains",
    "duration",
    "equals",
    "exactly",
    "json_equals",
    "json_path",
    "json_schema",
    "json_subset",
    "json_value",
    "llm",
    "match",
    "never",
    "none_of",
    "prefix",
    "present",
    "proxy",
    "regex",
    "response",
    "stub",
    "webhooks",
    "when",
]
