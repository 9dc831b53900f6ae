"""`/metrics`: the daemon's counters and its current state in the Prometheus text format, built per scrape."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from simulatord.names import WILDCARD
from simulatord.serving.metrics import LATENCY_BUCKETS

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from simulatord.serving import DataPlane


class DaemonCollector:
    """A prometheus_client collector over one daemon's numbers: counting happens on the hot path as plain
    additions, and this turns them into metric families only when someone scrapes."""

    def __init__(self, plane: DataPlane) -> None:
        self.plane = plane

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        metrics = self.plane.metrics
        requests = CounterMetricFamily(
            "simulatord_http_requests",
            "HTTP requests to sessions, by tenant and how they were answered",
            labels=["tenant", "outcome"],
        )
        for (tenant, outcome), count in sorted(metrics.requests.items()):
            requests.add_metric([tenant, outcome], count)
        yield requests

        latency = HistogramMetricFamily(
            "simulatord_http_request_duration_seconds",
            "From a request's arrival to the end of its response, by outcome",
            labels=["outcome"],
        )
        for outcome, histogram in sorted(metrics.latency.items()):
            cumulative, buckets = 0, []
            for bound, count in zip((*LATENCY_BUCKETS, float("inf")), histogram.counts, strict=True):
                cumulative += count
                buckets.append((str(bound) if bound != float("inf") else "+Inf", cumulative))
            latency.add_metric([outcome], buckets, histogram.total)
        yield latency

        upgrades = CounterMetricFamily(
            "simulatord_websocket_upgrades", "WebSocket upgrade requests to sessions, by tenant", labels=["tenant"]
        )
        for tenant, count in sorted(metrics.websocket_upgrades.items()):
            upgrades.add_metric([tenant], count)
        yield upgrades

        attempts = CounterMetricFamily(
            "simulatord_webhook_attempts", "Webhook delivery attempts, by how they went", labels=["outcome"]
        )
        for outcome, count in sorted(metrics.webhook_attempts.items()):
            attempts.add_metric([outcome], count)
        yield attempts

        rpcs = CounterMetricFamily(
            "simulatord_control_rpcs", "Control-plane calls, by method and status code", labels=["method", "code"]
        )
        for (method, code), count in sorted(metrics.rpcs.items()):
            rpcs.add_metric([method, code], count)
        yield rpcs

        yield GaugeMetricFamily("simulatord_watch_streams", "WatchExchanges streams open", value=metrics.watch_streams)

        sessions = self.plane.store.in_tenant(WILDCARD)
        yield GaugeMetricFamily("simulatord_sessions", "Sessions held", value=len(sessions))
        yield GaugeMetricFamily(
            "simulatord_tenants", "Tenants with at least one session", value=len({s.key.tenant for s in sessions})
        )
        retained = sum(s.journal.retained_bytes for s in sessions)
        yield GaugeMetricFamily("simulatord_journal_bytes", "Bytes every journal keeps, together", value=retained)
        evictions = CounterMetricFamily(
            "simulatord_journal_evictions",
            "Exchanges evicted from the journals of the sessions held (their own bounds and the daemon's budget)",
        )
        evictions.add_metric([], sum(s.journal.evicted_count for s in sessions))
        yield evictions


def exposition(plane: DataPlane) -> tuple[bytes, str]:
    """The scrape's body and content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

    registry = CollectorRegistry(auto_describe=False)
    registry.register(DaemonCollector(plane))
    return generate_latest(registry), CONTENT_TYPE_LATEST
