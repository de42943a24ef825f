"""Which metric source answers a metric of a service: a pure choice.

- `metrics.source` in the MonitoredService, when that source serves the metric;
- else the target's platform for what it measures itself, when it is preferred over
  Prometheus (Railway's own cpu/memory: they need no exporter);
- else Prometheus, when one is configured (the service's or --prometheus-url);
- else the Kubernetes metrics API for cpu and memory (what HPA reads);
- else none, with the reason.
"""

from __future__ import annotations

PROMETHEUS = "prometheus"
METRICS_API = "metrics-api"
RAILWAY = "railway"
RESOURCE_METRICS = frozenset({"cpu", "memory"})
SERVES: dict[str, frozenset[str] | None] = {  # None: every metric (queries are the user's)
    PROMETHEUS: None,
    METRICS_API: RESOURCE_METRICS,
    RAILWAY: RESOURCE_METRICS | {"latencyP95", "errorRate"},  # its metrics and HTTP metrics
}
# The platform's own measurements win over Prometheus for these (no exporter needed).
PLATFORM_FIRST = frozenset({RAILWAY})
NO_SOURCE = "no Prometheus configured (spec.metrics.prometheus or --prometheus-url)"


def serves(source: str, metric_kind: str) -> bool:
    kinds = SERVES.get(source, frozenset())
    return kinds is None or metric_kind in kinds


def choose(metric_kind: str, explicit: str | None, platform: str, prometheus_configured: bool) -> tuple[str | None, str]:
    """(source, "") or (None, why no source answers). `platform` is the source the target's
    platform offers (metrics-api for Kubernetes workloads, railway for Railway services)."""
    if explicit is not None:
        if serves(explicit, metric_kind) and (explicit != PROMETHEUS or prometheus_configured):
            return explicit, ""
        if explicit == PROMETHEUS:
            return None, NO_SOURCE
    if platform in PLATFORM_FIRST and serves(platform, metric_kind):
        return platform, ""
    if prometheus_configured:
        return PROMETHEUS, ""
    if serves(platform, metric_kind):
        return platform, ""
    if platform == METRICS_API:
        return None, f"{NO_SOURCE}; the metrics API serves cpu and memory only"
    return None, NO_SOURCE
