"""Daemon settings from command-line flags, falling back to SIMULATORD_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    http_port: int = 8080
    grpc_port: int = 50051
    public_url: str = ""  # base of session URLs; default http://{host}:{http_port}
    host_suffix: str = "localhost"
    templates: Path | None = None
    default_ttl: float = 3600.0
    max_sessions: int = 10_000
    max_body_bytes: int = 16 * 1024 * 1024
    max_stream_seconds: float = 600.0  # streams and hangs that do not end by themselves end after this
    tls_cert: Path | None = None  # with tls_key: serve HTTPS, HTTP/2 negotiated by ALPN
    tls_key: Path | None = None
    journal_max_exchanges: int = 10_000
    journal_max_bytes: int = 64 * 1024 * 1024
    journal_max_body_bytes: int = 1024 * 1024
    journal_budget_bytes: int = 512 * 1024 * 1024  # every journal together; the largest evict first past it
    max_sessions_per_tenant: int = 1000
    request_read_timeout: float = 30.0  # seconds to receive a request body
    redact_headers: str = ""  # comma-separated request header names the journal records as [redacted]
    sweep_interval: float = 1.0
    log_level: str = "WARNING"
    server: str = "hypercorn"  # or "uvicorn" (the `fast` extra): HTTP/1.1 and WebSockets only
    auth: Path | None = None  # tokens and their tenants; None: the control plane is open (private networks only)


ENV_PREFIX = "SIMULATORD_"


def env_default(name: str, default: object) -> object:
    """The value of SIMULATORD_<NAME>, converted to the type of `default`."""
    raw = os.environ.get(ENV_PREFIX + name.upper())
    if raw is None:
        return default
    if isinstance(default, bool):
        return raw.lower() in ("1", "true", "yes")
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw
