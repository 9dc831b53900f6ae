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
)

if TYPE_CHECKING:
    from google.protobuf import any_pb2

# The google.rpc messages and grpc_status are imported by the first error, not at start-up: a daemon that
# answers every call well never loads them. The codes are grpc's canonical ones, the same as google.rpc.Code.
DOMAIN = "simulatord"
log = logging.getLogger(__name__)

_CODES: list[tuple[type[SimulatorError], grpc.StatusCode]] = [
    (InvalidArgument, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (AlreadyExists, grpc.StatusCode.ALREADY_EXISTS),
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (FailedPrecondition, grpc.StatusCode.FAILED_PRECONDITION),
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
    details = [_pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata))]
    if isinstance(error, InvalidArgument) and error.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                        for v in error.violations
                    ]
                )
            )
        )
    status: grpc.Status = rpc_status.to_status(status_pb2.Status(code=code, message=error.message, details=details))
    return status


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
