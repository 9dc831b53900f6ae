"""Turns gRPC failures into Python exceptions with the daemon's ErrorInfo and BadRequest details decoded.

Example::

    try:
        session.stub("GET", path_regex="([")
    except InvalidArgumentError as err:
        err.reason                     # "INVALID_STUB"
        err.field_violations[0].field  # "stubs[0].request.path.regex"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"

# Stable reasons worth a short human prefix; any other reason still appears, lower-cased, at the start.
_REASON_TEXT = {
    "INVALID_STUB": "invalid stub",
    "INVALID_ARGUMENT": "invalid argument",
}


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, e.g. `stubs[0].request.path.regex`, and why it is bad."""

    field: str
    description: str


class SimulatorError(Exception):
    """A failed call to simulatord.

    Attributes: `code` (a `grpc.StatusCode`), `reason` (stable, e.g. `SESSION_NOT_FOUND`; switch on this),
    `domain`, `metadata` (names the resource), `field_violations` and `details` (the server's message).

    Example::

        try:
            sim.session(tenant="Bad Tenant").__enter__()
        except SimulatorError as err:
            print(err.code, err.reason, err)
    """

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        reason: str = "",
        domain: str = "",
        metadata: Mapping[str, str] | None = None,
        field_violations: Sequence[FieldViolation] = (),
        details: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.domain = domain
        self.metadata: dict[str, str] = dict(metadata or {})
        self.field_violations: list[FieldViolation] = list(field_violations)
        self.details = details

    def __str__(self) -> str:
        return self.message


class CancelledError(SimulatorError):
    """The call was cancelled."""


class UnknownError(SimulatorError):
    """The daemon failed without a more specific code."""


class InvalidArgumentError(SimulatorError):
    """The request was malformed; `field_violations` say which fields and why."""


class DeadlineExceededError(SimulatorError):
    """The call did not finish within its deadline."""


class NotFoundError(SimulatorError):
    """A named resource (session, stub, exchange, template) does not exist."""


class AlreadyExistsError(SimulatorError):
    """A resource with the requested name already exists."""


class PermissionDeniedError(SimulatorError):
    """The caller may not do this: with `--auth`, the token may not use the tenant (reason TENANT_FORBIDDEN)."""


class ResourceExhaustedError(SimulatorError):
    """A daemon-wide limit was reached, e.g. TOO_MANY_SESSIONS."""


class FailedPreconditionError(SimulatorError):
    """The resource is not in a state that allows the operation."""


class AbortedError(SimulatorError):
    """The operation was aborted."""


class OutOfRangeError(SimulatorError):
    """A value was out of range."""


class UnimplementedError(SimulatorError):
    """The daemon does not implement this call (an older daemon?)."""


class InternalError(SimulatorError):
    """The daemon hit a bug; its log has the traceback."""


class UnavailableError(SimulatorError):
    """The daemon could not be reached."""


class DataLossError(SimulatorError):
    """Unrecoverable data loss."""


class UnauthenticatedError(SimulatorError):
    """The daemon runs with `--auth` and the call had no token (TOKEN_MISSING) or one it refused (TOKEN_INVALID):
    set SIMULATORD_TOKEN, or pass `token=`."""


_CLASSES: dict[grpc.StatusCode, type[SimulatorError]] = {
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.UNKNOWN: UnknownError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: AbortedError,
    grpc.StatusCode.OUT_OF_RANGE: OutOfRangeError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DATA_LOSS: DataLossError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
}


def _status_details(metadata: Any) -> status_pb2.Status | None:
    # Read the trailer directly instead of grpc_status.from_call: it works the same for sync calls
    # and grpc.aio errors, and tolerates a code mismatch instead of raising ValueError.
    for key, value in metadata or ():
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            status.ParseFromString(value)
            return status
    return None


def from_rpc_error(error: grpc.RpcError, address: str = "") -> SimulatorError:
    """The `SimulatorError` subclass for a `grpc.RpcError` (sync or aio), with details decoded."""
    code: grpc.StatusCode = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details: str = (error.details() if hasattr(error, "details") else "") or ""
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    reason, domain, metadata, violations = "", "", {}, []
    status = _status_details(trailers)
    if status is not None:
        for packed in status.details:
            if packed.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                packed.Unpack(info)
                reason, domain, metadata = info.reason, info.domain, dict(info.metadata)
            elif packed.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                packed.Unpack(bad)
                violations = [FieldViolation(v.field, v.description) for v in bad.field_violations]
    message = _message(code, details, reason, violations, address)
    cls = _CLASSES.get(code, SimulatorError)
    return cls(
        message,
        code=code,
        reason=reason,
        domain=domain,
        metadata=metadata,
        field_violations=violations,
        details=details,
    )


def hide_client_frames(excinfo: object) -> bool:
    """pytest's `__tracebackhide__` for the client's modules: a failure the client reports on purpose (a
    SimulatorError, or the AssertionError of a wait or a verification) points at the test's line, not at the
    client's plumbing; anything else (a bug in the client, say) keeps its frames."""
    return isinstance(getattr(excinfo, "value", None), (SimulatorError, AssertionError))


def _message(code: grpc.StatusCode, details: str, reason: str, violations: list[FieldViolation], address: str) -> str:
    where = f" at {address}" if address else ""
    tag = f"{code.name}, {reason}" if reason and reason != code.name else code.name
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"cannot reach simulatord{where} (is it running? see `simulatord serve`): {details}"
    if code == grpc.StatusCode.UNAUTHENTICATED:
        # The daemon runs with --auth; what the test author needs to know is where the token comes from.
        if reason == "TOKEN_MISSING":
            return f"simulatord{where} requires a token: set SIMULATORD_TOKEN (or pass token=...) [{tag}]"
        return f"simulatord{where} refused the token ({details}): check SIMULATORD_TOKEN (or token=...) [{tag}]"
    if code == grpc.StatusCode.PERMISSION_DENIED and reason.endswith("_TARGET_FORBIDDEN"):
        # A webhook or proxy target outside the daemon's allow-list: the token is not the problem.
        return f"{details} [{tag}]"
    if code == grpc.StatusCode.PERMISSION_DENIED:
        return (
            f"{details}: use a tenant this token may use (session(tenant=...), --simulatord-tenant or "
            f"SIMULATORD_TENANT) or a token for this one [{tag}]"
        )
    if violations:
        prefix = _REASON_TEXT.get(reason, reason.lower().replace("_", " ") or "invalid argument")
        if len(violations) == 1:
            return f"{prefix}: {violations[0].field}: {violations[0].description}"
        lines = "\n".join(f"  - {v.field}: {v.description}" for v in violations)
        return f"{prefix} ({len(violations)} problems):\n{lines}"
    return f"{details or 'simulatord call failed'} [{tag}]"


__all__ = [
    "AbortedError",
    "AlreadyExistsError",
    "CancelledError",
    "DataLossError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "FieldViolation",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "OutOfRangeError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "SimulatorError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "UnknownError",
    "from_rpc_error",
    "hide_client_frames",
]
