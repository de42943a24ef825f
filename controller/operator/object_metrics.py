"""Per-object metrics for dashboards (kube-state-metrics' way): read from the view's copy of each
object's status at scrape time, so nothing per object is kept in the process between scrapes.

Only the leader exports them (a standby's copy would double every series). What is exported is
what status already says, so the dashboards show what `kubectl get` shows:

- `capliquify_scaling_replicas{namespace, policy, target, state="current|desired"}`
- `capliquify_scaling_metric{namespace, policy, metric, series="value|scale_up|scale_down"}`:
  each metric against its band
- `capliquify_service_health{namespace, service, health}`: 1 for the service's current verdict
- `capliquify_rollout_info{namespace, service, revision, phase}`: 1 for the current revision
- `capliquify_alert_state{namespace, policy, rule, service, state}`: 1 per alert not Inactive
"""

from __future__ import annotations

import logging
import typing

import prometheus_client.core
import prometheus_client.registry

from controller.operator import view as view_module

logger = logging.getLogger(__name__)
GaugeFamily = prometheus_client.core.GaugeMetricFamily


def _snapshot(view: view_module.View, kind: str) -> list[dict[str, typing.Any]]:
    # Scrapes run on the metrics server's thread; list() of a dict's values is one C call under
    # the GIL, so the loop thread cannot resize the dict under it.
    return list(view.of_kind(kind).values())


def _where(obj: typing.Mapping[str, typing.Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def scaling_families(policies: typing.Iterable[typing.Mapping[str, typing.Any]]) -> list[GaugeFamily]:
    replicas = GaugeFamily("capliquify_scaling_replicas", "Replicas of a ScalingPolicy's target: current and desired.",
                           labels=["namespace", "policy", "target", "state"])
    metric = GaugeFamily("capliquify_scaling_metric", "A ScalingPolicy's metric: its value and its scale-up/scale-down "
                         "thresholds.", labels=["namespace", "policy", "metric", "series"])
    for policy in policies:
        namespace, name = _where(policy)
        status = policy.get("status") or {}
        target = str(status.get("target") or "")
        for state, field in (("current", "currentReplicas"), ("desired", "desiredReplicas")):
            if isinstance(status.get(field), int):
                replicas.add_metric([namespace, name, target, state], status[field])
        for observed in status.get("metrics") or []:
            label = str(observed.get("name") or observed.get("type") or "")
            for series, field in (("value", "value"), ("scale_up", "scaleUp"), ("scale_down", "scaleDown")):
                if isinstance(observed.get(field), (int, float)):
                    metric.add_metric([namespace, name, label, series], observed[field])
    return [replicas, metric]


def service_families(services: typing.Iterable[typing.Mapping[str, typing.Any]]) -> list[GaugeFamily]:
    health = GaugeFamily("capliquify_service_health", "1 for a MonitoredService's current health verdict.",
                         labels=["namespace", "service", "health"])
    rollout = GaugeFamily("capliquify_rollout_info", "1 for a MonitoredService's current revision and its phase.",
                          labels=["namespace", "service", "revision", "phase"])
    for service in services:
        namespace, name = _where(service)
        status = service.get("status") or {}
        if status.get("health"):
            health.add_metric([namespace, name, str(status["health"])], 1)
        current = status.get("rollout") or {}
        if current.get("revision") and current.get("phase"):
            rollout.add_metric([namespace, name, str(current["revision"]), str(current["phase"])], 1)
    return [health, rollout]


def alert_families(policies: typing.Iterable[typing.Mapping[str, typing.Any]]) -> list[GaugeFamily]:
    state = GaugeFamily("capliquify_alert_state", "1 per alert that is Pending, Firing or Resolved.",
                        labels=["namespace", "policy", "rule", "service", "state"])
    for policy in policies:
        namespace, name = _where(policy)
        for alert in (policy.get("status") or {}).get("alerts") or []:
            state.add_metric([namespace, name, str(alert.get("rule", "")), str(alert.get("service", "")),
                              str(alert.get("state", ""))], 1)
    return [state]


class ObjectMetrics(prometheus_client.registry.Collector):
    def __init__(self, view: view_module.View, leading: typing.Callable[[], bool]) -> None:
        self._view = view
        self._leading = leading

    def collect(self) -> typing.Iterator[GaugeFamily]:
        if not self._leading():
            return
        try:
            families = (scaling_families(_snapshot(self._view, "ScalingPolicy"))
                        + service_families(_snapshot(self._view, "MonitoredService"))
                        + alert_families(_snapshot(self._view, "AlertPolicy")))
        except Exception as error:  # a scrape never breaks the operator; the next one tries again
            logger.warning("object metrics not collected: %s", type(error).__name__)
            return
        yield from families
