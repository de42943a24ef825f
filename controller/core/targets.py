"""Where a policy's or service's metrics and replicas live: one resolution for every caller.

A ScalingPolicy names a MonitoredService (whose target, Prometheus and queries it uses) or a
workload directly; a MonitoredService names a workload of any platform (core/platforms.py).
Both come down to a `Target`.
"""

from __future__ import annotations

import dataclasses
import typing
import urllib.parse

from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import platforms
from controller.core import sources


# The rule for a tenant's own PromQL (docs/monitoredservice.md): it is written by whoever may write
# a MonitoredService, and the operator's Prometheus holds every namespace's series. Sent there, a
# custom query `{namespace="tenant-b"}` put tenant B's values in tenant A's status.
TENANT_QUERIES_RULE = (
    "custom queries and query overrides are sent only to a Prometheus the service names itself "
    "(spec.metrics.prometheus.url), never to the operator's shared one (unless the operator runs with "
    "--allow-tenant-queries-on-default-prometheus)")


@dataclasses.dataclass(frozen=True)
class Target:
    namespace: str
    kind: str  # the world kind its platform gives it (core/platforms.py)
    name: str
    prometheus_url: str | None = None
    auth: tuple[str, str] | None = None  # Secret name, key
    overrides: typing.Mapping[str, str | None] = dataclasses.field(default_factory=dict)
    custom: typing.Mapping[str, str] = dataclasses.field(default_factory=dict)
    source: str | None = None  # metrics.source when set
    platform: str = sources.METRICS_API  # the source the target's own platform offers
    # prometheus_url is the operator's default (shared) Prometheus, not one the service named:
    # only the default queries, scoped by the operator to (namespace, workload), are sent there.
    shared_prometheus: bool = False

    def tenant_written(self, metric: tuple[str, str | None]) -> bool:
        """Is this metric's query text the tenant's own (a custom metric or a query override)?"""
        kind, _ = metric
        return kind == "custom" or bool(self.overrides.get(kind))

    def refused(self, metric: tuple[str, str | None], tenant_queries_on_default: bool = False) -> str | None:
        """Why this metric's query is not sent (TENANT_QUERIES_RULE), or None."""
        if self.shared_prometheus and not tenant_queries_on_default and self.tenant_written(metric):
            return TENANT_QUERIES_RULE
        return None

    @property
    def workload_key(self) -> tuple[str, str, str]:
        return (self.namespace, self.kind, self.name)

    def choose(self, metric_kind: str) -> tuple[str | None, str]:
        return sources.choose(metric_kind, self.source, self.platform, bool(self.prometheus_url))


def workload_of(spec: monitoredservice.MonitoredServiceSpec) -> tuple[str, str, str]:
    """(kind, name, the platform's metric source) of a MonitoredService's target: the cheap part
    of `of_service`, for loops that only need to find the workload."""
    ref = platforms.of_service(spec.target)
    return ref.kind, ref.name, platforms.of(ref).source


def of_service(namespace: str, spec: monitoredservice.MonitoredServiceSpec, default_prometheus: str | None) -> Target:
    kind, name, platform = workload_of(spec)
    prometheus = spec.metrics.prometheus
    url = prometheus.url if prometheus else default_prometheus
    return Target(
        namespace=namespace, kind=kind, name=name,
        prometheus_url=url,
        # The default's own address written into the service is still the shared Prometheus.
        shared_prometheus=url is not None and default_prometheus is not None and same_server(url, default_prometheus),
        auth=(prometheus.authSecretRef.name, prometheus.authSecretRef.key) if prometheus and prometheus.authSecretRef
        else None,
        overrides=spec.metrics.queries.model_dump(),
        custom={c.name: c.query for c in spec.metrics.custom},
        source=spec.metrics.source,
        platform=platform,
    )


def same_server(url: str, other: str) -> bool:
    """Do two URLs name the same server (host and port, whatever the scheme, path or case)?"""
    def origin(text: str) -> tuple[str, int | None] | None:
        try:
            parts = urllib.parse.urlsplit(text.strip())
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
        except ValueError:
            return None
        return (parts.hostname or "").rstrip(".").lower(), port
    mine = origin(url)
    return mine is None or mine == origin(other)


def of_policy(
    namespace: str, spec: scalingpolicy.ScalingPolicySpec,
    service: typing.Callable[[str], monitoredservice.MonitoredServiceSpec | str],
    default_prometheus: str | None,
) -> Target | str:
    """The policy's target, or why there is none. `service(name)` gives the named
    MonitoredService's spec, or a reason it cannot (not found, invalid)."""
    ref = spec.targetRef
    if ref.monitoredService is not None:
        found = service(ref.monitoredService)
        return found if isinstance(found, str) else of_service(namespace, found, default_prometheus)
    direct = platforms.of_policy(ref)
    if direct is None:
        return "targetRef names no target"  # the schema makes this unreachable
    return Target(namespace=namespace, kind=direct.kind, name=direct.name, prometheus_url=default_prometheus,
                  platform=platforms.of(direct).source, shared_prometheus=default_prometheus is not None)
