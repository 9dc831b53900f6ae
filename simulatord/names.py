"""Resource names (`tenants/{tenant}/sessions/{session}/...`): parsing, formatting and id syntax."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass

from simulatord.errors import invalid

# AIP-122 style ids that are also valid DNS labels, so Host routing can carry them.
ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
ID_RULE = "must be 1-63 characters of a-z, 0-9 and '-', not starting or ending with '-'"


def valid_id(value: str) -> bool:
    return ID_PATTERN.fullmatch(value) is not None


def new_id(prefix: str) -> str:
    """A short id unique within its session (stubs): 48 random bits keep names readable in reports."""
    return f"{prefix}-{secrets.token_hex(6)}"


def random_part() -> str:
    """128 random bits in 26 characters of a-z and 2-7 (base32), for ids nobody can guess."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


def new_session_id() -> str:
    """A session id for CreateSession without one. The data plane is open to the code under test, so a session's
    URL is its capability: the id must be unguessable, not merely unique."""
    return f"s-{random_part()}"


@dataclass(frozen=True, slots=True)
class SessionKey:
    """The identity of a session: its tenant and session ids."""

    tenant: str
    session: str

    @property
    def name(self) -> str:
        return f"tenants/{self.tenant}/sessions/{self.session}"

    def stub_name(self, stub_id: str) -> str:
        return f"{self.name}/stubs/{stub_id}"

    def exchange_name(self, sequence: int) -> str:
        return f"{self.name}/exchanges/{sequence}"


WILDCARD = "-"  # `tenants/-`: every tenant, for listings


def tenant_of(name: str, field: str = "name", allow_wildcard: bool = False) -> str:
    """The tenant of any resource name: `tenants/{tenant}` or a resource below it."""
    parts = name.split("/", 2)
    if len(parts) < 2 or parts[0] != "tenants":
        raise invalid(field, f"must start with 'tenants/{{tenant}}', got {name!r}")
    if not (valid_id(parts[1]) or (allow_wildcard and parts[1] == WILDCARD)):
        raise invalid(field, f"tenant id {parts[1]!r} {ID_RULE}")
    return parts[1]


def parse_tenant(parent: str, field: str = "parent", allow_wildcard: bool = False) -> str:
    if parent.count("/") != 1:
        raise invalid(field, f"must be 'tenants/{{tenant}}', got {parent!r}")
    return tenant_of(parent, field, allow_wildcard)


def parse_session(name: str, field: str = "name") -> SessionKey:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "tenants" or parts[2] != "sessions":
        raise invalid(field, f"must be 'tenants/{{tenant}}/sessions/{{session}}', got {name!r}")
    if not (valid_id(parts[1]) and valid_id(parts[3])):
        raise invalid(field, f"ids in {name!r} {ID_RULE}")
    return SessionKey(parts[1], parts[3])


def parse_child(name: str, collection: str, field: str = "name") -> tuple[SessionKey, str]:
    """Splits `tenants/t/sessions/s/{collection}/{id}` into the session key and the child id."""
    parts = name.split("/")
    if len(parts) != 6 or parts[4] != collection:
        raise invalid(field, f"must be 'tenants/{{tenant}}/sessions/{{session}}/{collection}/{{id}}', got {name!r}")
    key = parse_session("/".join(parts[:4]), field)
    return key, parts[5]


def parse_exchange(name: str, field: str = "name") -> tuple[SessionKey, int]:
    """Splits `tenants/t/sessions/s/exchanges/{sequence}` into the session key and the sequence number."""
    key, raw = parse_child(name, "exchanges", field)
    # ASCII digits only: str.isdigit() also accepts superscripts and other scripts that int() refuses.
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise invalid(field, f"exchange id must be a sequence number >= 1, got {raw!r}")
    return key, int(raw)
