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


def outcome(exchange: Exchange) -> str:
    """How a request was answered, in the words of the `outcome` label."""
    if exchange.status == 413 and not exchange.stub_name and exchange.error:
        return "body_too_large"
    if exchange.status == 408 and not exchange.stub_name and exchange.error:
        return "body_too_slow"
    if exchange.llm is not None:
        return "llm_refused" if exchange.llm.refusal_reason else "llm"
    if not exchange.stub_name:
        return "unmatched"
    return "fault" if "fault" in exchange.behaviours else "matched"


@dataclass
class Histogram:
    """Cumulative-bucket counts as Prometheus wants them, filled with one bisect per observation."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total += seconds


@dataclass
class Metrics:
    requests: Counter[tuple[str, str]] = field(default_factory=Counter)  # (tenant, outcome)
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
        """Counts one recorded HTTP request of `tenant`'s session."""
        kind = outcome(exchange)
        self.requests[(self.tenant_label(tenant), kind)] += 1
        histogram = self.latency.get(kind)
        if histogram is None:
            histogram = self.latency[kind] = Histogram()
        histogram.observe(exchange.duration)

    def delivered(self, exchange: Exchange) -> None:
        """Counts one webhook attempt by how it went."""
        if exchange.error:
            self.webhook_attempts["failed"] += 1
        elif 200 <= exchange.status < 300:
            self.webhook_attempts["delivered"] += 1
        else:
            self.webhook_attempts["http_error"] += 1
