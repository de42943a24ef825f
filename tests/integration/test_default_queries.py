"""The default cpu and memory queries against the real exporters: kube-state-metrics for the
requests, kubelet-style (cAdvisor) series from kwok's emulated usage, scraped by a real
Prometheus. A Deployment and a StatefulSet, each read in the middle of a rolling update
(old and new pods at once), as the operator's MonitoredService snapshots report them."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request

import pytest
import yaml

from controller.core import queries
from localcluster import kube_state_metrics as ksm_module
from localcluster import metrics_server as metrics_server_module
from localcluster import prometheus as prometheus_module

pytestmark = pytest.mark.integration

GROUP = "ops.capliquify.io/v1alpha1"
WINDOW = "20s"
HOLD = 120  # minReadySeconds: a rolling update stays half-way (old and new pods) this long


def template(app: str, cpu_request: str, cpu_usage: str, memory_request: str, memory_usage: str) -> dict:
    return {"metadata": {"labels": {"app": app},
                         "annotations": {metrics_server_module.USAGE_CPU: cpu_usage,
                                         metrics_server_module.USAGE_MEMORY: memory_usage}},
            "spec": {"containers": [{"name": app, "image": f"{app}:1", "resources": {
                "requests": {"cpu": cpu_request, "memory": memory_request}}}]}}


def workloads() -> list[dict]:
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"replicas": 2, "minReadySeconds": HOLD, "selector": {"matchLabels": {"app": "web"}},
                  "strategy": {"rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
                  "template": template("web", "200m", "100m", "64Mi", "32Mi")}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
         "spec": {"replicas": 2, "minReadySeconds": HOLD, "serviceName": "db", "podManagementPolicy": "Parallel",
                  "selector": {"matchLabels": {"app": "db"}},
                  "template": template("db", "500m", "250m", "128Mi", "32Mi")}},
    ]


def msvc(name: str, kind: str, prometheus_url: str) -> dict:
    return {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": name},
            "spec": {"target": {"kubernetes": {"kind": kind, "name": name}},
                     "metrics": {"prometheus": {"url": prometheus_url}}}}


def metrics_of(cluster, namespace: str, name: str) -> dict:  # noqa: ANN001
    status = json.loads(cluster.kubectl("get", "msvc", name, "-n", namespace, "-o", "json")).get("status", {})
    return status.get("metrics") or {}


def near(value: float | None, expected: float, tolerance: float) -> bool:
    return value is not None and abs(value - expected) <= tolerance


def default_query(prometheus_url: str, metric: str) -> dict[str, float]:
    """The operator's own default query for `metric`, sent to Prometheus: value by workload."""
    query = queries.resolve((metric, None), {}, {}, WINDOW)
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        result = json.loads(answer.read())["data"]["result"]
    return {item["metric"].get("workload", ""): float(item["value"][1]) for item in result}


def expect(cluster, namespace: str, prometheus_url: str, expected: dict[tuple[str, str], float]) -> None:  # noqa: ANN001
    """The default queries give the expected percentages (within 2 points), and the operator's
    snapshots show them (within their 10 % materiality: status is not rewritten for less)."""
    def exact() -> bool:
        answers = {metric: default_query(prometheus_url, metric) for metric in {m for _, m in expected}}
        return all(near(answers[metric].get(workload), value, 2.0) for (workload, metric), value in expected.items())

    def shown() -> bool:
        return all(near(metrics_of(cluster, namespace, workload).get(metric), value, max(2.0, 0.1 * value))
                   for (workload, metric), value in expected.items())

    cluster.wait_for(exact, 90, f"default queries answer {expected}")
    cluster.wait_for(shown, 60, f"status.metrics shows {expected}")


def test_default_cpu_and_memory_queries_on_real_exporters(cluster, namespace, operator_factory, tmp_path) -> None:  # noqa: ANN001
    ksm = ksm_module.KubeStateMetrics(cluster, namespaces=(namespace,)).start()
    prometheus = prometheus_module.Prometheus(
        tmp_path / "prometheus", [], scrape_seconds=2,
        extra_jobs=[prometheus_module.kwok_job(cluster), prometheus_module.static_job("kube-state-metrics", ksm.target)])
    prometheus.start()
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(
            [*workloads(), msvc("web", "Deployment", prometheus.url), msvc("db", "StatefulSet", prometheus.url)]))
        operator_factory("--metrics-interval-seconds=5", f"--rate-window={WINDOW}", "--allow-loopback-egress")

        # Steady: usage / request per workload (cpu from the counter's rate, memory the working set).
        expect(cluster, namespace, prometheus.url, {("web", "cpu"): 50, ("web", "memory"): 50,
                                                    ("db", "cpu"): 50, ("db", "memory"): 25})
        assert metrics_of(cluster, namespace, "web").get("source") == "prometheus"

        # A rolling update held half-way: the Deployment has its two old pods (100m) and one new
        # (300m), the StatefulSet its old db-0 (250m) and a new db-1 (450m); the workload label
        # covers old and new pods alike, so the value is the sum of usage over the sum of requests.
        for kind, name, usage in (("deployment", "web", "300m"), ("statefulset", "db", "450m")):
            patch = {"spec": {"template": {"metadata": {"annotations": {metrics_server_module.USAGE_CPU: usage}}}}}
            cluster.kubectl("patch", kind, name, "-n", namespace, "--type=merge", "-p", json.dumps(patch))
        expect(cluster, namespace, prometheus.url, {("web", "cpu"): 100 * 500 / 600, ("db", "cpu"): 100 * 700 / 1000})
        pods = json.loads(cluster.kubectl("get", "pods", "-n", namespace, "-l", "app=web", "-o", "json"))["items"]
        hashes = {p["metadata"]["labels"].get("pod-template-hash") for p in pods if not p["metadata"].get("deletionTimestamp")}
        assert len(pods) == 3 and len(hashes) == 2, "read while old and new pods ran together"
    finally:
        prometheus.stop()
        ksm.stop()
