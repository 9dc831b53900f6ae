"""Daemon settings from command-line flags, falling back to SIMULATORD_* environment variables."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any


def _flag(default: Any, help: str, choices: tuple[str, ...] = ()) -> Any:
    """A setting that `simulatord serve` takes as `--name` (falling back to SIMULATORD_NAME)."""
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass(frozen=True)
class Settings:
    """Everything the daemon is configured with; the fields with help text are `simulatord serve`'s flags."""

    host: str = _flag("127.0.0.1", "address to listen on")
    http_port: int = _flag(8080, "HTTP port, 0 picks a free one")
    grpc_port: int = _flag(50051, "gRPC port, 0 picks a free one")
    public_url: str = _flag("", "base of session URLs as clients reach them, e.g. http://simulatord:8080")
    host_suffix: str = _flag("localhost", "domain for Host routing: {session}.{tenant}.SUFFIX")
    templates: Path | None = _flag(None, "directory of session templates (*.json, *.yaml)")
    store: str = _flag(
        "memory",
        "where sessions live: memory (this process), or a Redis URL (redis://host:6379/0, rediss://, "
        "unix:///path.sock) to keep them, with their journals, across restarts; pip install 'simulatord[redis]'",
    )
    advertise_host: str = _flag(
        "",
        "with --store redis://: the host other replicas reach this one at; default --host, or this machine's "
        "name when --host is 0.0.0.0 or ::",
    )
    default_ttl: float = _flag(3600.0, "seconds a session lives without RefreshSession")
    max_sessions: int = _flag(10_000, "sessions the daemon holds at most")
    max_sessions_per_tenant: int = _flag(1000, "so that one tenant cannot take every slot of --max-sessions")
    max_body_bytes: int = _flag(16 * 1024 * 1024, "largest request body accepted; larger ones get 413")
    request_read_timeout: float = _flag(30.0, "seconds to receive a request's body; slower ones get 408")
    max_stream_seconds: float = _flag(600.0, "streams and hangs that do not end by themselves end after this")
    tls_cert: Path | None = _flag(None, "PEM certificate: serve HTTPS (HTTP/2 by ALPN) instead of HTTP")
    tls_key: Path | None = _flag(None, "PEM private key for --tls-cert")
    journal_max_exchanges: int = _flag(10_000, "default journal bound per session")
    journal_max_bytes: int = _flag(64 * 1024 * 1024, "default journal bound per session")
    journal_max_body_bytes: int = 1024 * 1024
    journal_budget_bytes: int = _flag(512 * 1024 * 1024, "what all journals keep together; past it the largest evict")
    redact_headers: str = _flag(
        "",
        "request headers whose values every journal records as [redacted], comma-separated, e.g. "
        "authorization,x-api-key,cookie (sessions may add their own)",
    )
    auth: Path | None = _flag(
        None,
        "JSON or YAML file of bearer tokens and the tenants each may use; without it any client may use every tenant",
    )
    server: str = _flag(
        "auto",
        "ASGI server: uvicorn with httptools (HTTP/1.1, the fastest; pip install 'simulatord[fast]'), hypercorn "
        "(HTTP/1.1, h2c, HTTP/2 over TLS), or auto: uvicorn when installed and no --tls-cert, else hypercorn",
        ("auto", "hypercorn", "uvicorn"),
    )
    webhook_targets: str = _flag(
        "loopback,private",
        "hosts webhooks may be delivered to, comma-separated: loopback, private (10/8, 172.16/12, 192.168/16, "
        "fc00::/7: a compose network's services), any, CIDR blocks, host names, *.domain",
    )
    webhook_concurrency: int = _flag(32, "webhook attempts in flight at once, across the daemon")
    max_pending_deliveries: int = _flag(1000, "webhook deliveries a session may have pending at once")
    dashboard: bool = _flag(
        True, "serve the live dashboard at the HTTP port's root (read-only; with --auth it needs a token)"
    )
    log_level: str = _flag("WARNING", "DEBUG, INFO, WARNING or ERROR")
    sweep_interval: float = 1.0


STORE_SCHEMES = ("redis", "rediss", "unix")


def store_problem(store: str) -> str | None:
    """Why `--store` cannot be used, or None."""
    if store == "memory":
        return None
    scheme = store.partition("://")[0]
    if "://" not in store or scheme not in STORE_SCHEMES:
        return f"--store must be memory or a URL of {', '.join(s + '://' for s in STORE_SCHEMES)}, got {store!r}"
    if not _installed("redis"):
        return "--store redis:// needs the Redis client library: pip install 'simulatord[redis]'"
    return None


def _installed(*modules: str) -> bool:
    return all(importlib.util.find_spec(module) is not None for module in modules)


def resolve_server(server: str, tls: bool) -> str:
    """The ASGI server `auto` stands for: uvicorn (with httptools) when installed, for it serves plain HTTP/1.1
    about four times as fast; hypercorn over TLS, where clients expect HTTP/2 by ALPN, and when uvicorn is not
    installed. An explicit choice stands."""
    if server != "auto":
        return server
    return "uvicorn" if not tls and _installed("uvicorn", "httptools", "websockets") else "hypercorn"


def resolve_loop(loop: str, server: str) -> str:
    """The event loop `auto` stands for: uvloop under uvicorn when installed (the combination CI tests as the fast
    profile), else asyncio."""
    if loop != "auto":
        return loop
    return "uvloop" if server == "uvicorn" and _installed("uvloop") else "asyncio"


def flags() -> list[Field[Any]]:
    """The settings `simulatord serve` takes as flags, in the order of its help."""
    return [f for f in fields(Settings) if "help" in f.metadata]


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
    return raw or default
