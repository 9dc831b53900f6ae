"""The daemon's own counters: what traffic, deliveries and control calls it served, kept as plain numbers.

Counting costs a dictionary update per request, so simulated traffic keeps its edge; the Prometheus exposition is
built from these numbers only when `/metrics` is scraped. Label values are bounded: tenants beyond
MAX_TENANT_LABELS share the label `_other`, and no label names a session.
"""

from __future__ import annotations

import bisect
from collections import Counter
from dataclasses import dataclass, field

from simulatord.sessions.journal import Exchange

MAX_TENANT_LABELS = 200
OTHER_TENANTS = "_other"
# Seconds: from a plain stub's fraction of a millisecond to a stream that lasts.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass
class Histogram:
    """Cumulative-bucket counts as Prometheus wants them, filled with one bisect per observation."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0


@dataclass
class Metrics:
    requests: dict[tuple[str, str], int] = field(default_factory=dict)  # (tenant, outcome)
    latency: dict[str, Histogram] = field(default_factory=dict)  # by outcome
    websocket_upgrades: Counter[str] = field(default_factory=Counter)  # by tenant
    webhook_attempts: Counter[str] = field(default_factory=Counter)  # by outcome
    rpcs: Counter[tuple[str, str]] = field(default_factory=Counter)  # (method, status code)
    watch_streams: int = 0
    _tenants: set[str] = field(default_factory=set)

    def tenant_label(self, tenant: str) -> str:
        if tenant in self._tenants:
            return tenant
        if len(self._tenants) < MAX_TENANT_LABELS:
            self._tenants.add(tenant)
            return tenant
        return OTHER_TENANTS

    def served(self, tenant: str, exchange: Exchange) -> None:
        """Counts one recorded HTTP request of `tenant`'s session. One call with no calls inside (bar bisect):
        it runs for every request, where each Python call would cost as much as the counting."""
        if exchange.stub_name:
            kind = "matched" if not exchange.behaviours or "fault" not in exchange.behaviours else "fault"
            if exchange.llm is not None:
                kind = "llm"
        elif exchange.llm is not None:
            kind = "llm_refused"
        elif exchange.error and exchange.status == 413:
            kind = "body_too_large"
        elif exchange.error and exchange.status == 408:
            kind = "body_too_slow"
        else:
            kind = "unmatched"
        if tenant not in self._tenants:
            if len(self._tenants) < MAX_TENANT_LABELS:
                self._tenants.add(tenant)
            else:
                tenant = OTHER_TENANTS
        key = (tenant, kind)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        histogram = self.latency.get(kind)
        if histogram is None:
            histogram = self.latency[kind] = Histogram()
        seconds = exchange.duration
        histogram.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        histogram.total += seconds

    def delivered(self, exchange: Exchange) -> None:
        """Counts one webhook attempt by how it went."""
        if exchange.error:  # no answer: refused, timed out, forbidden
            self.webhook_attempts["failed"] += 1
        elif 200 <= exchange.status < 300:
            self.webhook_attempts["delivered"] += 1
        else:
            self.webhook_attempts["http_error"] += 1
