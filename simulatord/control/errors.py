"""Maps domain errors to canonical gRPC statuses with google.rpc ErrorInfo and BadRequest details."""

from __future__ import annotations

import logging

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from simulatord.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    SimulatorError,
)

DOMAIN = "simulatord"
log = logging.getLogger(__name__)

_CODES: list[tuple[type[SimulatorError], int]] = [
    (InvalidArgument, code_pb2.INVALID_ARGUMENT),
    (NotFound, code_pb2.NOT_FOUND),
    (AlreadyExists, code_pb2.ALREADY_EXISTS),
    (ResourceExhausted, code_pb2.RESOURCE_EXHAUSTED),
    (FailedPrecondition, code_pb2.FAILED_PRECONDITION),
]


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)  # type: ignore[arg-type]
    return packed


def to_status(error: SimulatorError) -> grpc.Status:
    code = next((c for cls, c in _CODES if isinstance(error, cls)), code_pb2.UNKNOWN)
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
    log.exception("internal error", exc_info=exc)
    info = error_details_pb2.ErrorInfo(reason="INTERNAL", domain=DOMAIN)
    status = status_pb2.Status(
        code=code_pb2.INTERNAL, message=f"internal error: {type(exc).__name__}: {exc}", details=[_pack(info)]
    )
    result: grpc.Status = rpc_status.to_status(status)
    return result
