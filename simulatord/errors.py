"""Domain errors, free of any transport: the control layer maps each to a canonical gRPC status."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldViolation:
    """One bad field of a request, named by its path (e.g. `stubs[1].request.path.regex`)."""

    field: str
    description: str


@dataclass
class SimulatorError(Exception):
    """Base of domain errors; `reason` is a stable UPPER_SNAKE identifier clients may switch on."""

    message: str
    reason: str
    metadata: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


@dataclass
class InvalidArgument(SimulatorError):
    """The request is malformed; `violations` say which fields and why."""

    violations: list[FieldViolation] = field(default_factory=list)


class NotFound(SimulatorError):
    """A named resource does not exist."""


class AlreadyExists(SimulatorError):
    """A resource with the requested name exists already."""


class ResourceExhausted(SimulatorError):
    """A daemon-wide limit was reached."""


class FailedPrecondition(SimulatorError):
    """The resource is not in a state that allows the operation."""


class Unavailable(SimulatorError):
    """The daemon cannot serve the call now (it is stopping); the client may retry elsewhere or later."""


class Unauthenticated(SimulatorError):
    """The call carries no token, or one the daemon does not accept (TOKEN_MISSING, TOKEN_INVALID)."""


class PermissionDenied(SimulatorError):
    """The caller's token is valid but may not use the tenant the call names (TENANT_FORBIDDEN)."""


def invalid(field_path: str, description: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    """An InvalidArgument for a single field."""
    return InvalidArgument(
        message=f"{field_path}: {description}",
        reason=reason,
        violations=[FieldViolation(field_path, description)],
    )


class SpecErrors:
    """Collects field violations while a program is validated, so one call reports them all."""

    def __init__(self) -> None:
        self.violations: list[FieldViolation] = []

    def add(self, field_path: str, description: str) -> None:
        self.violations.append(FieldViolation(field_path, description))

    def raise_if_any(self, reason: str = "INVALID_ARGUMENT") -> None:
        if self.violations:
            first = self.violations[0]
            more = f" (and {len(self.violations) - 1} more)" if len(self.violations) > 1 else ""
            raise InvalidArgument(
                message=f"{first.field}: {first.description}{more}",
                reason=reason,
                violations=list(self.violations),
            )
