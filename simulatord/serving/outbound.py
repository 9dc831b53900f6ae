"""Sending webhooks: one daemon-wide HTTP client delivers each webhook with its retries and records every attempt."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from simulatord.errors import PermissionDenied
from simulatord.matching.request import HttpRequest
from simulatord.responding.templating import variables
from simulatord.serving.metrics import Metrics
from simulatord.sessions.session import Session
from simulatord.sessions.stubs import Stub
from simulatord.webhooks.targets import TargetForbidden, Targets

if TYPE_CHECKING:
    import httpx

    from simulatord.webhooks.delivery import Delivery
    from simulatord.webhooks.spec import CallbackSpec, WebhookSpec


class Outbound:
    """Delivers webhooks for every session: bounded attempts in flight, a target policy, per-session bookkeeping
    so that deleting a session cancels what it still has pending."""

    def __init__(
        self,
        targets: Targets,
        concurrency: int = 32,
        max_pending: int = 1000,
        clock: Callable[[], float] = time.time,
        metrics: Metrics | None = None,
    ) -> None:
        self.targets = targets
        self.metrics = metrics or Metrics()
        self.max_pending = max_pending
        self.clock = clock
        self._concurrency = concurrency
        self._slots: asyncio.Semaphore | None = None
        self._client: httpx.AsyncClient | None = None

    def http(self) -> httpx.AsyncClient:
        """The daemon's one HTTP client, for webhooks and proxies alike."""
        if self._client is None:  # made on first use: most sessions never send a webhook or proxy
            # trust_env=False: a proxy from the daemon's environment must not carry requests off the host.
            import httpx  # here, not at the top: it takes ~150 ms to import, and most daemons never send a webhook

            self._client = httpx.AsyncClient(follow_redirects=False, trust_env=False, timeout=None)
            self._slots = asyncio.Semaphore(self._concurrency)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def check(self, spec: WebhookSpec) -> None:
        """Raises PermissionDenied when the webhook's target is outside the allowed ones."""
        parts = urlsplit(spec.url)
        try:
            await self.targets.check(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        except TargetForbidden as exc:
            raise PermissionDenied(str(exc), "WEBHOOK_TARGET_FORBIDDEN", {"url": spec.url}) from None

    async def check_upstreams(self, stubs: Sequence[Stub]) -> None:
        """Raises PermissionDenied when a proxy's upstream is an address outside the allowed targets. A host name
        is checked per request only: a compose service's name resolves once its container runs."""
        for stub in stubs:
            for proxy in stub.proxies:
                try:
                    ipaddress.ip_address(proxy.host)
                    await self.targets.check(proxy.host, proxy.port)
                except ValueError:
                    continue
                except TargetForbidden as exc:
                    raise PermissionDenied(str(exc), "PROXY_TARGET_FORBIDDEN", {"upstream": proxy.upstream}) from None

    def start(
        self, session: Session, specs: Sequence[WebhookSpec], reverse: bool = False, callback_of: str = ""
    ) -> list[Delivery]:
        """Starts delivering; first attempts go one after another, in order (or reversed)."""
        from simulatord.serving import deliveries  # the first delivery loads the code that runs them

        return deliveries.start(self, session, specs, reverse, callback_of)

    def callbacks(
        self, session: Session, request: HttpRequest, stub_name: str, callbacks: Sequence[CallbackSpec], values: Any
    ) -> None:
        """Schedules a stub's callbacks, rendered from the request that triggered them."""
        from simulatord.serving import deliveries

        deliveries.callbacks(self, session, request, stub_name, callbacks, values)


def template_values(request: HttpRequest, captures: Any, match: int, sequence: int, state: str, now: float) -> Any:
    """The variables a callback's templates render with: those of a templated response."""
    return variables(request, captures, match, sequence, state, None, now)
