"""Where a policy's or service's metrics and replicas live: one resolution for every caller.

A ScalingPolicy names a MonitoredService (whose target, Prometheus and queries it uses) or a
workload directly; a MonitoredService names a workload of any platform (core/platforms.py).
Both come down to a `Target`.
"""

from __future__ import annotations

import dataclasses
import typing

from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import platforms
from controller.core import sources


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
    return Target(
        namespace=namespace, kind=kind, name=name,
        prometheus_url=prometheus.url if prometheus else default_prometheus,
        auth=(prometheus.authSecretRef.name, prometheus.authSecretRef.key) if prometheus and prometheus.authSecretRef
        else None,
        overrides=spec.metrics.queries.model_dump(),
        custom={c.name: c.query for c in spec.metrics.custom},
        source=spec.metrics.source,
        platform=platform,
    )


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
                  platform=platforms.of(direct).source)
