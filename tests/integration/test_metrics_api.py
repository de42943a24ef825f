"""Scaling without Prometheus: cpu from the Kubernetes metrics API, served by the real
metrics-server through the API server's aggregation layer, from kwok's emulated pod usage."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from localcluster import metrics_server as metrics_server_module
from tests import conftest

pytestmark = pytest.mark.integration

GROUP = "ops.capliquify.io/v1alpha1"
REQUEST_MILLICORES = 200


def deployment(usage_millicores: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"},
                                               "annotations": {metrics_server_module.USAGE_CPU: f"{usage_millicores}m"}},
                                  "spec": {"containers": [{"name": "web", "image": "web:1", "resources": {
                                      "requests": {"cpu": f"{REQUEST_MILLICORES}m", "memory": "64Mi"}}}]}}}}


def policy() -> dict:
    return {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "web"},
            "spec": {"targetRef": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                     "minReplicas": 1, "maxReplicas": 4, "evaluationIntervalSeconds": 5,
                     "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                     "behavior": {"scaleUp": {"cooldownSeconds": 0, "stabilizationWindowSeconds": 0},
                                  "scaleDown": {"cooldownSeconds": 0, "stabilizationWindowSeconds": 0}},
                     "onMetricsUnavailable": {"action": "Hold", "staleAfterSeconds": 60}}}


def get(cluster, kind: str, namespace: str, name: str = "web") -> dict:  # noqa: ANN001
    return json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json"))


def set_usage(cluster, namespace: str, millicores: int) -> None:  # noqa: ANN001
    """A new pod template annotation: a rolling update puts every pod at the new usage."""
    patch = {"spec": {"template": {"metadata": {"annotations": {metrics_server_module.USAGE_CPU: f"{millicores}m"}}}}}
    cluster.kubectl("patch", "deployment", "web", "-n", namespace, "--type=merge", "-p", json.dumps(patch))


def test_cpu_scaling_through_the_metrics_api_with_no_prometheus(cluster, namespace, metrics_server, operator_factory) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([deployment(40), policy()]))
    operator_factory()  # no --prometheus-url: there is no Prometheus in this test at all

    def observed() -> dict:
        metrics = get(cluster, "scp", namespace).get("status", {}).get("metrics") or [{}]
        return metrics[0]

    cluster.wait_for(lambda: observed().get("value") is not None, 120, "a cpu value from the metrics API")
    first = observed()
    assert first["source"] == "metrics-api"
    assert first["value"] == pytest.approx(100 * 40 / REQUEST_MILLICORES, abs=3)  # kwok's 40m of a 200m request
    # The same figure the aggregated API gives to anyone (kubectl top reads it too).
    pods = metrics_server.pod_metrics(namespace)
    assert pods and all(p["containers"][0]["usage"]["cpu"] for p in pods)

    set_usage(cluster, namespace, 190)  # 95 % of the request
    started = time.monotonic()
    cluster.wait_for(lambda: get(cluster, "deployment", namespace)["spec"]["replicas"] >= 3, 180, "scale-up on cpu")
    print(f"scaled up {time.monotonic() - started:.0f}s after the usage rose")
    decision = get(cluster, "scp", namespace)["status"]["lastDecision"]
    assert decision["direction"] == "Up" and "cpu" in decision["reason"]
    # The same, as `kubectl capliquify` shows it (a policy with no MonitoredService has a row of its own).
    why = conftest.kubectl_capliquify(cluster, "why", "scp/web", "-n", namespace)
    assert f"ScalingPolicy {namespace}/web → Deployment/web" in why and "metrics-api" in why
    assert f"Up {decision['from']}→{decision['to']}" in why
    row = next(line for line in conftest.kubectl_capliquify(cluster, "status", "-n", namespace).splitlines()
               if line.startswith("scp/web"))
    assert "Deployment/web" in row and "Up" in row

    set_usage(cluster, namespace, 10)  # 5 %
    started = time.monotonic()
    # While the rolling update runs, old pods (95 %) and new ones (5 %) are averaged together,
    # as HPA averages them: a step up may come before the way down. Settled, it is at min.
    cluster.wait_for(lambda: get(cluster, "deployment", namespace)["spec"]["replicas"] == 1 and
                     get(cluster, "scp", namespace)["status"]["lastDecision"]["direction"] == "Down", 300,
                     "scale-down to min")
    print(f"scaled down {time.monotonic() - started:.0f}s after the usage fell")
    status = get(cluster, "scp", namespace)["status"]
    assert all(m.get("source") == "metrics-api" for m in status["metrics"])
    active = next(c for c in status["conditions"] if c["type"] == "ScalingActive")
    assert active["status"] == "True"
