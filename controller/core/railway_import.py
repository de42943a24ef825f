"""What `capliquify railway import` writes: for each service of a Railway environment, a
MonitoredService, a ScalingPolicy and an AlertPolicy, ready for a GitOps repository.

Taken from Railway: the service (ids), its replica count (the policy's floor: what runs now is
what the team chose, unless a replica range is given per service), the instance's configuration
the operator then keeps (resources per replica, Railway's deploy health check path and timeout,
the pre-deploy command), and a continuous check of the health path on its first domain (every
30 s, 3 failures, a 60 s start period, as the platform runs them). The platform's own
thresholds fill the rest: scaling on the four metrics Railway serves (cpu, memory, p95 latency,
error rate) up to 20 replicas, and its system-critical and performance-warning alerts. `render`
writes them as YAML with comments that say where each part comes from.
"""

from __future__ import annotations

import dataclasses
import re
import typing

import yaml

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
    @property
    def memory_gb(self) -> float | None: ...
    @property
    def vcpus(self) -> float | None: ...
    @property
    def pre_deploy_command(self) -> tuple[str, ...] | None: ...


@dataclasses.dataclass(frozen=True)
class Options:
    project_id: str
    environment_id: str
    token_secret: str = "railway-token"
    token_key: str = "token"
    endpoint: str | None = None  # None: Railway's own
    max_replicas: int = 20
    alert_secret: str = "alert-channels"
    # Replica ranges by service (its Railway name or the object name): (minReplicas, maxReplicas).
    # Railway has no range of its own; without one the floor is what runs now, the ceiling max_replicas.
    replicas: typing.Mapping[str, tuple[int, int]] = dataclasses.field(default_factory=dict)


REPLICA_RANGE = re.compile(r"^([^=]+)=([0-9]{1,4})-([0-9]{1,4})$")


def replica_range(text: str) -> tuple[str, tuple[int, int]]:
    """`web=2-10` as ("web", (2, 10)); a ValueError that says what is wrong otherwise."""
    found = REPLICA_RANGE.match(text.strip())
    if found is None:
        raise ValueError(f"--replicas {text!r}: expected SERVICE=MIN-MAX, e.g. web=2-10")
    low, high = int(found.group(2)), int(found.group(3))
    if not 1 <= low <= high <= 1000:
        raise ValueError(f"--replicas {text!r}: needs 1 <= MIN <= MAX <= 1000")
    return found.group(1).strip(), (low, high)


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


def _number(value: float) -> float | int:
    """4.0 GB is written 4 (as the platform's table says it); 0.5 stays 0.5."""
    return int(value) if float(value).is_integer() else value


def _configuration(service: Service) -> dict[str, typing.Any]:
    """The instance's configuration the operator keeps (MonitoredService spec.target.railway)."""
    config: dict[str, typing.Any] = {}
    if service.memory_gb is not None and service.vcpus is not None:
        config["resources"] = {"memoryGB": _number(service.memory_gb), "vCPUs": _number(service.vcpus)}
    if service.healthcheck_path:
        check: dict[str, typing.Any] = {"path": service.healthcheck_path}
        if service.healthcheck_timeout is not None:
            check["timeoutSeconds"] = min(service.healthcheck_timeout, 3600)
        config["deployHealthCheck"] = check
    if service.pre_deploy_command:
        config["preDeployCommand"] = list(service.pre_deploy_command)
    return config


def unknown_ranges(services: typing.Sequence[Service], options: Options) -> list[str]:
    """Replica ranges given for services the environment does not have (a typo is an error)."""
    names = {service.name for service in services} | {object_name(service.name) for service in services}
    return sorted(name for name in options.replicas if name not in names)


def manifests(services: typing.Sequence[Service], options: Options) -> list[dict[str, typing.Any]]:
    documents: list[dict[str, typing.Any]] = []
    taken: set[str] = set()
    for service in sorted(services, key=lambda s: (s.name, s.service_id)):
        name = object_name(service.name, taken)
        taken.add(name)
        floor = max(service.replicas or 1, 1)
        low, high = options.replicas.get(service.name) or options.replicas.get(name) or (
            floor, max(options.max_replicas, floor))
        labels = {"app.kubernetes.io/managed-by": MANAGED_BY, "ops.capliquify.io/railway-service": name}
        annotations = {"ops.capliquify.io/railway-service-name": service.name[:253]}
        target: dict[str, typing.Any] = {
            "projectId": options.project_id, "environmentId": options.environment_id, "serviceId": service.service_id,
            "tokenSecretRef": {"name": options.token_secret, "key": options.token_key}}
        if options.endpoint:
            target["endpoint"] = options.endpoint
        target.update(_configuration(service))
        spec: dict[str, typing.Any] = {"target": {"railway": target}}
        checks = _health_checks(service)
        if checks:
            spec["healthChecks"] = checks
        documents += [
            {"apiVersion": GROUP_VERSION, "kind": "MonitoredService",
             "metadata": {"name": name, "labels": labels, "annotations": annotations}, "spec": spec},
            {"apiVersion": GROUP_VERSION, "kind": "ScalingPolicy", "metadata": {"name": name, "labels": labels},
             "spec": {"targetRef": {"monitoredService": name}, "minReplicas": low, "maxReplicas": high,
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


# What `render` says above a part of each kind, by the key it comes before (the first line
# that starts with it): where the value comes from and what the operator does with it.
_COMMENTS: dict[str, tuple[tuple[str, str], ...]] = {
    "MonitoredService": (
        ("resources:", "Each replica's memory (GB) and vCPUs, as Railway has them (serviceInstanceLimits); "
                       "the operator keeps them so (serviceInstanceLimitsUpdate, only when they differ)."),
        ("deployHealthCheck:", "Railway's own check of every new deployment (healthcheckPath, healthcheckTimeout: "
                               "railway.production.toml's path and timeout): a deployment whose path does not "
                               "answer 200 within the timeout fails, and the running one stays."),
        ("preDeployCommand:", "Run by Railway before each deployment starts (the database migration): one that "
                              "fails fails the deployment."),
        ("healthChecks:", "The operator's continuous check of the same path on the public domain "
                          "(railway.production.toml: every 30 s, timeout 10 s, 3 retries, 60 s start period): "
                          "Railway checks only at deploy time. A service without a public domain has none."),
    ),
    "ScalingPolicy": (
        ("minReplicas:", "The replica range; the count Railway runs now is where scaling starts."),
        ("metrics:", "Up when any metric is above scaleUp, down when all are below scaleDown (cpu and memory in "
                     "percent of the limits above, p95 latency in ms, error rate in percent: Railway's metrics)."),
    ),
    "AlertPolicy": (
        ("rules:", "The platform's alerts: critical when unhealthy or near the memory limit, warnings on errors, "
                   "latency and cpu."),
        ("routes:", "Critical alerts repeat every 5 minutes, warnings every 15."),
    ),
}


def _wrapped(text: str, indent: str) -> list[str]:
    lines, line = [], ""
    for word in text.split():
        if line and len(indent) + 2 + len(line) + 1 + len(word) > 100:
            lines.append(f"{indent}# {line}")
            line = word
        else:
            line = f"{line} {word}" if line else word
    return [*lines, f"{indent}# {line}"] if line else lines


def _summary(service: Service, document: dict[str, typing.Any], low: int, high: int) -> str:
    target = document["spec"]["target"]["railway"]
    parts = [f"Railway service {service.name} ({service.service_id}): {service.replicas or 0} replica(s) now"]
    if "resources" in target:
        parts.append(f"{target['resources']['memoryGB']} GB / {target['resources']['vCPUs']} vCPU each")
    if "deployHealthCheck" in target:
        parts.append(f"health path {target['deployHealthCheck']['path']}" + (
            "" if "healthChecks" in document["spec"] else " (no public domain: checked by Railway at each deploy only)"))
    parts.append(f"scaled within {low}-{high}")
    return ", ".join(parts) + "."


def render(services: typing.Sequence[Service], options: Options, header: str) -> str:
    """The policy set as YAML documents, each part preceded by a comment saying where it
    comes from (YAML comments: what `kubectl apply` reads is `manifests` exactly)."""
    documents = manifests(services, options)
    ordered = sorted(services, key=lambda s: (s.name, s.service_id))  # as manifests writes them, 3 each
    out = [*_wrapped(header, "")]
    for index, document in enumerate(documents):
        lines = yaml.safe_dump(document, sort_keys=False).splitlines()
        kind = document["kind"]
        if kind == "MonitoredService":
            policy = documents[index + 1]["spec"]
            out += ["---", *_wrapped(_summary(ordered[index // 3], document, policy["minReplicas"],
                                              policy["maxReplicas"]), "")]
        else:
            out.append("---")
        for key, comment in _COMMENTS.get(kind, ()):
            at = next((i for i, line in enumerate(lines) if line.lstrip().startswith(key)), None)
            if at is not None:
                indent = lines[at][:len(lines[at]) - len(lines[at].lstrip())]
                lines[at:at] = _wrapped(comment, indent)
        out += lines
    return "\n".join(out) + "\n"
