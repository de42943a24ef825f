"""The seasonal forecast's range query against a real Prometheus scraping the real exporters
(kube-state-metrics for requests and readiness, kwok's cAdvisor-style usage): the operator's own
demand query (queries.demand_query) through its own range reader answers one series per
workload, the metric × the workload's ready pods."""

from __future__ import annotations

import asyncio
import json
import time
import typing

import pytest
import yaml

from controller.adapters import egress
from controller.adapters import source_history
from controller.core import queries
from controller.core import targets
from localcluster import kube_state_metrics as ksm_module
from localcluster import metrics_server as metrics_server_module
from localcluster import prometheus as prometheus_module

pytestmark = pytest.mark.integration

WINDOW = "20s"
GROUP = "ops.capliquify.io/v1alpha1"


def deployment(name: str, replicas: int, usage: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name},
                                               "annotations": {metrics_server_module.USAGE_CPU: usage,
                                                               metrics_server_module.USAGE_MEMORY: "32Mi"}},
                                  "spec": {"containers": [{"name": name, "image": f"{name}:1", "resources": {
                                      "requests": {"cpu": "200m", "memory": "64Mi"}}}]}}}}


async def _no_secret(namespace: str, name: str, key: str) -> str | None:
    return None


def read(prometheus_url: str, namespace: str, workloads: typing.Sequence[str]) -> dict[str, queries.RangeResult]:
    """Each workload's cpu demand over the last two minutes, at 5 s steps, as the operator asks."""
    async def scenario() -> dict[typing.Hashable, queries.RangeResult]:
        client = egress.GuardedClient(allow_loopback=True)
        try:
            end = time.time() // 5 * 5
            return await source_history.RangeHistory(client, _no_secret, WINDOW).read([
                source_history.HistoryRequest(name, ("cpu", None), targets.Target(
                    namespace, "Deployment", name, prometheus_url=prometheus_url), end - 120, end, 5)
                for name in workloads])
        finally:
            await client.close()
    return {str(k): v for k, v in asyncio.run(scenario()).items()}


def service(name: str, prometheus_url: str, custom: list[dict]) -> dict:
    return {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": name},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": name}},
                     "metrics": {"prometheus": {"url": prometheus_url}, "custom": custom}}}


def policy(name: str, metric: dict, seasonal: dict) -> dict:
    return {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": name},
            "spec": {"targetRef": {"monitoredService": name}, "minReplicas": 1, "maxReplicas": 5, "metrics": [metric],
                     "evaluationIntervalSeconds": 5, "predictive": {"seasonal": {"enabled": True, **seasonal}}}}


def test_the_demand_range_query_on_real_exporters(cluster, namespace, operator_factory, tmp_path) -> None:  # noqa: ANN001
    ksm = ksm_module.KubeStateMetrics(cluster, namespaces=(namespace,)).start()
    prometheus = prometheus_module.Prometheus(
        tmp_path / "prometheus", [], scrape_seconds=2,
        extra_jobs=[prometheus_module.kwok_job(cluster), prometheus_module.static_job("kube-state-metrics", ksm.target)])
    prometheus.start()
    try:
        # web: 3 pods at 100m of 200m (50 %): demand 150; api: 2 pods at 150m (75 %): demand 150 too,
        # but its own series: the answer for web must be web's alone.
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(
            [deployment("web", 3, "100m"), deployment("api", 2, "150m")]))
        answers: dict[str, queries.RangeResult] = {}

        def demand_seen() -> bool:
            answers.update(read(prometheus.url, namespace, ["web", "api", "absent"]))
            web, api = answers["web"], answers["api"]
            return (web.error is None and api.error is None and bool(web.points) and bool(api.points)
                    and abs(web.points[-1][1] - 150) <= 5 and abs(api.points[-1][1] - 150) <= 5)

        cluster.wait_for(demand_seen, 90, "the demand range query answers 150 for web and for api")
        web = answers["web"]
        assert all(b[0] - a[0] == 5 for a, b in zip(web.points, web.points[1:], strict=False)), "one point per step"
        assert answers["absent"].error is None and answers["absent"].points == (), "no series: no history"

        cluster.kubectl("scale", "deployment", "web", "-n", namespace, "--replicas=1")

        def scaled() -> bool:
            answers.update(read(prometheus.url, namespace, ["web"]))
            points = answers["web"].points
            return bool(points) and abs(points[-1][1] - 50) <= 5

        # One pod at 50 %: demand 50 (the metric × the ready pods, not the metric alone).
        cluster.wait_for(scaled, 60, "web's demand follows its ready pods down to 50")

        # The operator end to end: status.seasonalForecast of a policy whose history reads, and
        # of one whose range query Prometheus refuses (named in the message, the policy warming up
        # from its own evaluations meanwhile).
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
            service("web", prometheus.url, []), service("api", prometheus.url, [{"name": "broken", "query": "sum(("}]),
            policy("web", {"type": "cpu", "scaleUp": 95, "scaleDown": 5}, {"metric": "cpu"}),
            policy("api", {"type": "custom", "name": "broken", "scaleUp": 95, "scaleDown": 5},
                   {"metric": "custom", "name": "broken"})]))
        operator_factory(f"--rate-window={WINDOW}", "--allow-loopback-egress")
        seen: dict[str, dict] = {}

        def forecasts() -> bool:
            for name in ("web", "api"):
                document = json.loads(cluster.kubectl("get", "scalingpolicy", name, "-n", namespace, "-o", "json"))
                seen[name] = (document.get("status") or {}).get("seasonalForecast") or {}
            return (seen["web"].get("reason") == "WarmingUp" and "periods of history" in seen["web"].get("message", "")
                    and "history from Prometheus: HTTP 400" in seen["api"].get("message", ""))

        cluster.wait_for(forecasts, 60, "status.seasonalForecast of both policies")
        assert seen["web"]["trusted"] is False and "history from Prometheus" not in seen["web"]["message"], seen
        assert seen["api"]["trusted"] is False and seen["api"]["reason"] == "WarmingUp", seen
    finally:
        prometheus.stop()
        ksm.stop()
