"""Maps domain errors to canonical gRPC statuses with google.rpc ErrorInfo and BadRequest details."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import grpc

from simulatord.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    SimulatorError,
    Unauthenticated,
    Unavailable,
)

if TYPE_CHECKING:
    from google.protobuf import any_pb2

# The google.rpc messages and grpc_status are imported by the first error, not at start-up: a daemon that
# answers every call well never loads them. The codes are grpc's canonical ones, the same as google.rpc.Code.
DOMAIN = "simulatord"
# Status details travel in trailing metadata, which gRPC limits to 8 KiB by default: errors that echo what a
# client sent are cut to fit, or the client would get RESOURCE_EXHAUSTED instead of what was wrong.
MAX_MESSAGE_CHARS = 300
MAX_FIELD_CHARS = 120
MAX_DESCRIPTION_CHARS = 200
MAX_VIOLATIONS = 20
MAX_STATUS_BYTES = 4096  # base64 in the trailer makes it 5.5 KiB, beside the percent-encoded message
log = logging.getLogger(__name__)

_CODES: list[tuple[type[SimulatorError], grpc.StatusCode]] = [
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),
    (Unauthenticated, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDenied, grpc.StatusCode.PERMISSION_DENIED),
]


def _pack(message: object) -> any_pb2.Any:
    from google.protobuf import any_pb2

    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(error: SimulatorError) -> grpc.Status:
    from google.rpc import error_details_pb2, status_pb2
    from grpc_status import rpc_status

    code = next((c for cls, c in _CODES if isinstance(error, cls)), grpc.StatusCode.UNKNOWN).value[0]
    metadata = {_cut(k, MAX_FIELD_CHARS): _cut(v, MAX_FIELD_CHARS) for k, v in list(error.metadata.items())[:20]}
    info = _pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=metadata))
    violations = error.violations if isinstance(error, InvalidArgument) else []
    shown = min(len(violations), MAX_VIOLATIONS)
    while True:  # fewer violations until the status fits in the trailers (non-ASCII input takes more bytes)
        details = [info]
        if shown:
            listed = [
                error_details_pb2.BadRequest.FieldViolation(
                    field=_cut(v.field, MAX_FIELD_CHARS), description=_cut(v.description, MAX_DESCRIPTION_CHARS)
                )
                for v in violations[:shown]
            ]
            if len(violations) > shown:
                listed[-1].description += f" (and {len(violations) - shown} more not listed)"
            details.append(_pack(error_details_pb2.BadRequest(field_violations=listed)))
        status = status_pb2.Status(code=code, message=_cut(error.message, MAX_MESSAGE_CHARS), details=details)
        if shown <= 1 or status.ByteSize() <= MAX_STATUS_BYTES:
            break
        shown //= 2
    result: grpc.Status = rpc_status.to_status(status)
    return result


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def internal_status(exc: BaseException) -> grpc.Status:
    from google.rpc import error_details_pb2, status_pb2
    from grpc_status import rpc_status

    log.exception("internal error", exc_info=exc)
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=DOMAIN)
    status = status_pb2.Status(
        code=grpc.StatusCode.INTERNAL.value[0],
        message=f"internal error: {type(exc).__name__}: {exc}",
        details=[_pack(info)],
    )
    result: grpc.Status = rpc_status.to_status(status)
    return result
