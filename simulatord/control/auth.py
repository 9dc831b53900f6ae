"""Tenant credentials of the control plane: the `--auth` file, and which tenants a call's bearer token may use.

The file maps tokens to tenants (JSON, or YAML for any other suffix)::

    tokens:
      - name: team-a-ci            # optional; shown in errors and logs instead of the token
        token: "k3J9...32 chars"   # at least 16 visible ASCII characters
        tenants: [team-a, team-a-nightly]
      - name: platform
        sha256: "9f86d081...64 hex" # the token's SHA-256, so the file need not hold the secret
        admin: true                 # every tenant, and `tenants/-` lists them all

Only SHA-256 digests are kept in memory, and a presented token is compared with every digest in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from simulatord.errors import PermissionDenied, Unauthenticated
from simulatord.names import ID_RULE, WILDCARD, valid_id

MIN_TOKEN_LENGTH = 16
# Visible ASCII only: what gRPC metadata and an HTTP header can carry without escaping, and no spaces, which
# would make "Bearer <token>" ambiguous.
_TOKEN = re.compile(r"[\x21-\x7e]+")
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_ENTRY_KEYS = ("name", "token", "sha256", "tenants", "admin")


class AuthFileError(Exception):
    """An `--auth` file that cannot be read or has a bad entry; the message names the file and the entry."""


@dataclass(frozen=True)
class Grant:
    """One entry of the auth file: a token, kept only as its SHA-256, and the tenants it may use."""

    name: str
    digest: bytes = field(repr=False)
    tenants: frozenset[str] = frozenset()
    admin: bool = False

    def may_use(self, tenant: str) -> bool:
        # Any valid token may list `tenants/-`: it sees only its own tenants' sessions (see `visible`).
        return self.admin or tenant == WILDCARD or tenant in self.tenants

    def check(self, tenant: str) -> None:
        """PermissionDenied unless this token may use `tenant`."""
        if not self.may_use(tenant):
            raise PermissionDenied(
                f"token {self.name!r} may not use tenant {tenant!r} (it may use: {', '.join(sorted(self.tenants))})",
                "TENANT_FORBIDDEN",
                {"tenant": tenant, "token": self.name},
            )

    @property
    def visible(self) -> frozenset[str] | None:
        """The tenants whose sessions a listing of `tenants/-` shows; None: all of them."""
        return None if self.admin else self.tenants


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class Credentials:
    """The tokens a daemon started with `--auth` accepts; `identify` finds a call's grant, which `check`s tenants."""

    def __init__(self, grants: Sequence[Grant]) -> None:
        self.grants = tuple(grants)

    def identify(self, metadata: Iterable[tuple[str, str | bytes]]) -> Grant:
        """The grant of the call's `authorization: Bearer <token>` metadata; Unauthenticated without one."""
        values = [value for key, value in metadata if key.lower() == "authorization"]
        if not values:
            raise Unauthenticated(
                "this daemon requires a token: send 'authorization: Bearer <token>' metadata "
                "(simulatord clients read SIMULATORD_TOKEN)",
                "TOKEN_MISSING",
            )
        if len(values) > 1:
            raise Unauthenticated("more than one 'authorization' metadata entry", "TOKEN_INVALID")
        raw = values[0]
        value = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        scheme, _, token = value.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("'authorization' metadata must be 'Bearer <token>'", "TOKEN_INVALID")
        presented = digest(token)
        found: Grant | None = None
        # Every grant is compared, and each comparison takes the same time, so how long this takes says
        # nothing about how close the token came to a valid one.
        for grant in self.grants:
            if hmac.compare_digest(grant.digest, presented):
                found = grant
        if found is None:
            raise Unauthenticated("the token is not one this daemon accepts", "TOKEN_INVALID")
        return found


def load_credentials(path: Path) -> Credentials:
    """Reads and checks an auth file (JSON for `.json`, else YAML); AuthFileError names what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AuthFileError(f"auth file {path}: cannot read it: {exc}") from exc
    if path.suffix == ".json":
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise AuthFileError(f"auth file {path}: not valid JSON: {exc}") from exc
    else:
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise AuthFileError(f"auth file {path}: not valid YAML: {exc}") from exc
    return parse_credentials(data, f"auth file {path}")


def parse_credentials(data: Any, source: str = "auth file") -> Credentials:
    """Checks the parsed file: `{"tokens": [entry, ...]}`; every error names its entry."""
    if not isinstance(data, dict) or set(data) != {"tokens"}:
        raise AuthFileError(f"{source}: must be a mapping with one key, 'tokens' (a list of entries)")
    entries = data["tokens"]
    if not isinstance(entries, list) or not entries:
        raise AuthFileError(f"{source}: 'tokens' must be a non-empty list (with none, every call would be refused)")
    grants: list[Grant] = []
    for i, entry in enumerate(entries):
        grant = _grant(entry, f"{source}: tokens[{i}]", i)
        for other in grants:
            if other.name == grant.name:
                raise AuthFileError(f"{source}: tokens[{i}]: name {grant.name!r} is used twice")
            if hmac.compare_digest(other.digest, grant.digest):
                raise AuthFileError(f"{source}: tokens[{i}] ({grant.name}) has the same token as {other.name}")
        grants.append(grant)
    return Credentials(grants)


def _grant(entry: Any, where: str, index: int) -> Grant:
    if not isinstance(entry, dict):
        raise AuthFileError(f"{where}: must be a mapping with 'token' or 'sha256', and 'tenants' or 'admin'")
    name = entry.get("name", f"tokens[{index}]")
    if not isinstance(name, str) or not name.strip():
        raise AuthFileError(f"{where}: name must be a non-empty string")
    if "name" in entry:
        where = f"{where} ({name})"
    unknown = sorted(str(key) for key in entry if key not in _ENTRY_KEYS)
    if unknown:
        raise AuthFileError(f"{where}: unknown key(s) {', '.join(unknown)} (known: {', '.join(_ENTRY_KEYS)})")
    return Grant(name, _digest(entry, where), *_tenants(entry, where))


def _digest(entry: dict[str, Any], where: str) -> bytes:
    if ("token" in entry) == ("sha256" in entry):
        raise AuthFileError(f"{where}: needs exactly one of 'token' and 'sha256'")
    if "sha256" in entry:
        value = entry["sha256"]
        if not isinstance(value, str) or not _SHA256.fullmatch(value):
            raise AuthFileError(f"{where}: sha256 must be 64 hexadecimal digits (e.g. from `sha256sum`)")
        return bytes.fromhex(value)
    token = entry["token"]
    # The token itself is never quoted in a message: the error may end up in a CI log.
    if not isinstance(token, str):
        raise AuthFileError(f"{where}: token must be a string (quote it)")
    if not _TOKEN.fullmatch(token):
        raise AuthFileError(f"{where}: token must be visible ASCII characters, without spaces")
    if len(token) < MIN_TOKEN_LENGTH:
        raise AuthFileError(f"{where}: token must be at least {MIN_TOKEN_LENGTH} characters (it is {len(token)})")
    return digest(token)


def _tenants(entry: dict[str, Any], where: str) -> tuple[frozenset[str], bool]:
    admin = entry.get("admin", False)
    if not isinstance(admin, bool):
        raise AuthFileError(f"{where}: admin must be true or false")
    tenants = entry.get("tenants")
    if admin:
        if tenants is not None:
            raise AuthFileError(f"{where}: an admin token may use every tenant; drop 'tenants' or 'admin'")
        return frozenset(), True
    if not isinstance(tenants, list) or not tenants:
        raise AuthFileError(f"{where}: tenants must be a non-empty list of tenant ids (or set admin: true)")
    for j, tenant in enumerate(tenants):
        if not isinstance(tenant, str) or not valid_id(tenant):
            raise AuthFileError(f"{where}: tenants[{j}]: {tenant!r} {ID_RULE}")
    return frozenset(tenants), False
