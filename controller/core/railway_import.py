"""What `capliquify railway import` writes: for each service of a Railway environment, a
MonitoredService, a ScalingPolicy and an AlertPolicy, ready for a GitOps repository.

Taken from Railway: the service (ids), its replica count (the policy's floor: what runs now is
what the team chose), its health-check path and timeout (a continuous check of its first domain,
every 30 s, 3 failures, a 60 s start period, as the platform runs them). The platform's own
thresholds fill the rest: scaling on the four metrics Railway serves (cpu, memory, p95 latency,
error rate) up to 20 replicas, and its system-critical and performance-warning alerts.
"""

from __future__ import annotations

import dataclasses
import re
import typing

GROUP_VERSION = "ops.capliquify.io/v1alpha1"
MANAGED_BY = "capliquify-railway-import"
CHECK_INTERVAL_SECONDS = 30
CHECK_TIMEOUT_SECONDS = 10
CHECK_START_PERIOD_SECONDS = 60
SCALING_THRESHOLDS = (("cpu", 70, 30), ("memory", 80, 50), ("latencyP95", 2000, 500), ("errorRate", 5, 1))
ALERT_RULES = (
    {"name": "Unhealthy", "metric": "health", "op": ">=", "threshold": 2, "forSeconds": 60, "severity": "critical",
     "summary": "{{service}} is unhealthy (every health check failing)"},
    {"name": "HighMemory", "metric": "memory", "op": ">", "threshold": 95, "forSeconds": 120, "severity": "critical",
     "summary": "{{service}} memory {{value}}% > {{threshold}}%"},
    {"name": "HighErrorRate", "metric": "errorRate", "op": ">", "threshold": 5, "forSeconds": 120, "severity": "warning",
     "summary": "{{service}} error rate {{value}}% > {{threshold}}%"},
    {"name": "SlowResponses", "metric": "latencyP95", "op": ">", "threshold": 2000, "forSeconds": 300,
     "severity": "warning", "summary": "{{service}} p95 latency {{value}} ms > {{threshold}} ms"},
    {"name": "HighCPU", "metric": "cpu", "op": ">", "threshold": 90, "forSeconds": 300, "severity": "warning",
     "summary": "{{service}} CPU {{value}}% > {{threshold}}%"},
)


class Service(typing.Protocol):
    """One service as read from Railway (adapters/railway.ServiceSummary)."""

    @property
    def service_id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def replicas(self) -> int | None: ...
    @property
    def healthcheck_path(self) -> str | None: ...
    @property
    def healthcheck_timeout(self) -> int | None: ...
    @property
    def domains(self) -> tuple[str, ...]: ...


@dataclasses.dataclass(frozen=True)
class Options:
    project_id: str
    environment_id: str
    token_secret: str = "railway-token"
    token_key: str = "token"
    endpoint: str | None = None  # None: Railway's own
    max_replicas: int = 20
    alert_secret: str = "alert-channels"


def object_name(service_name: str, taken: typing.Collection[str] = ()) -> str:
    """A DNS-1123 name for a Railway service name; a numeric suffix when two collide."""
    base = re.sub(r"[^a-z0-9]+", "-", service_name.lower()).strip("-")[:55].strip("-") or "service"
    name, index = base, 2
    while name in taken:
        name, index = f"{base}-{index}", index + 1
    return name


def _health_checks(service: Service) -> list[dict[str, typing.Any]]:
    if not service.healthcheck_path or not service.domains:
        return []
    timeout = min(service.healthcheck_timeout or CHECK_TIMEOUT_SECONDS, CHECK_TIMEOUT_SECONDS)
    return [{"name": "health", "http": {"url": f"https://{service.domains[0]}{service.healthcheck_path}",
                                        "timeoutSeconds": timeout},
             "intervalSeconds": CHECK_INTERVAL_SECONDS, "failureThreshold": 3,
             "startPeriodSeconds": CHECK_START_PERIOD_SECONDS}]


def manifests(services: typing.Sequence[Service], options: Options) -> list[dict[str, typing.Any]]:
    documents: list[dict[str, typing.Any]] = []
    taken: set[str] = set()
    for service in sorted(services, key=lambda s: (s.name, s.service_id)):
        name = object_name(service.name, taken)
        taken.add(name)
        labels = {"app.kubernetes.io/managed-by": MANAGED_BY, "ops.capliquify.io/railway-service": name}
        annotations = {"ops.capliquify.io/railway-service-name": service.name[:253]}
        target: dict[str, typing.Any] = {
            "projectId": options.project_id, "environmentId": options.environment_id, "serviceId": service.service_id,
            "tokenSecretRef": {"name": options.token_secret, "key": options.token_key}}
        if options.endpoint:
            target["endpoint"] = options.endpoint
        spec: dict[str, typing.Any] = {"target": {"railway": target}}
        checks = _health_checks(service)
        if checks:
            spec["healthChecks"] = checks
        floor = max(service.replicas or 1, 1)
        documents += [
            {"apiVersion": GROUP_VERSION, "kind": "MonitoredService",
             "metadata": {"name": name, "labels": labels, "annotations": annotations}, "spec": spec},
            {"apiVersion": GROUP_VERSION, "kind": "ScalingPolicy", "metadata": {"name": name, "labels": labels},
             "spec": {"targetRef": {"monitoredService": name}, "minReplicas": floor,
                      "maxReplicas": max(options.max_replicas, floor),
                      "metrics": [{"type": t, "scaleUp": up, "scaleDown": down} for t, up, down in SCALING_THRESHOLDS],
                      "onMetricsUnavailable": {"action": "Hold"}}},
            {"apiVersion": GROUP_VERSION, "kind": "AlertPolicy", "metadata": {"name": name, "labels": labels},
             "spec": {"serviceRef": name, "rules": [dict(rule) for rule in ALERT_RULES],
                      "channels": [{"name": "ops-slack",
                                    "slack": {"webhookSecretRef": {"name": options.alert_secret, "key": "slack-webhook"}}}],
                      "routes": [{"name": "system-critical", "severity": "critical", "channels": ["ops-slack"],
                                  "repeatIntervalSeconds": 300},
                                 {"name": "performance-warning", "severity": "warning", "channels": ["ops-slack"],
                                  "repeatIntervalSeconds": 900}],
                      "sendResolved": True}},
        ]
    return documents
