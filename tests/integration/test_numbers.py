"""Numbers from tenants on the real control plane (issue 21): an outage's +Inf latency pages and
its status is taken by the API server; another namespace's Prometheus answering a sample time
of 1e20 is that namespace's error alone."""

from __future__ import annotations

import json
import time
import typing

import pytest
import yaml

from localcluster import hostile
from localcluster import receivers

pytestmark = pytest.mark.integration
GROUP = "ops.capliquify.io/v1alpha1"


def vector(namespace: str, timestamp: float, value: str) -> bytes:
    """Every query answered for (namespace, web) with one sample."""
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"namespace": namespace, "workload": "web"}, "value": [timestamp, value]}]}}).encode()


def service_objects(prometheus_url: str, hook_url: str) -> list[dict[str, typing.Any]]:
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                  "template": {"metadata": {"labels": {"app": "web"}},
                               "spec": {"containers": [{"name": "web", "image": "demo/web:1"}]}}}},
        {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "web"},
         "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                  "metrics": {"prometheus": {"url": prometheus_url}}}},
        {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "slow"}, "spec": {
            "serviceRef": "web",
            "rules": [{"name": "SlowP95", "metric": "latencyP95", "op": ">", "threshold": 2000, "forSeconds": 0,
                       "severity": "critical", "summary": "{{service}} p95 {{value}} ms > {{threshold}} ms"}],
            "channels": [{"name": "hook", "webhook": {"url": hook_url}}],
            "routes": [{"channels": ["hook"]}]}},
    ]


def test_an_outage_at_inf_pages_and_a_sample_time_of_1e20_harms_nobody(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    """B's Prometheus answers p95 = +Inf (past the top bucket: an outage). Before issue 21 the
    alert's status carried `Infinity`, the API server refused the patch and the page was never
    sent; and A's Prometheus answering a sample time of 1e20 failed every Prometheus read of
    the round, B's included."""
    other = f"{namespace}-a"
    cluster.kubectl("create", "namespace", other)
    outage = hostile.HostileServer(hostile.http_reply(vector(namespace, time.time(), "+Inf")))
    broken = hostile.HostileServer(hostile.http_reply(vector(other, 1e20, "1")))
    hooks = receivers.HttpReceiver()
    try:
        cluster.kubectl("apply", "-n", other, "-f", "-",
                        input=yaml.safe_dump_all(service_objects(broken.url, f"{hooks.url}/hook-a")))
        cluster.kubectl("apply", "-n", namespace, "-f", "-",
                        input=yaml.safe_dump_all(service_objects(outage.url, f"{hooks.url}/hook-b")))
        operator = operator_factory("--metrics-interval-seconds=5", "--allow-loopback-egress")

        def status(kind: str, ns: str, name: str) -> dict[str, typing.Any]:
            return json.loads(cluster.kubectl("get", kind, name, "-n", ns, "-o", "json")).get("status") or {}

        cluster.wait_for(lambda: any(a.get("state") == "Firing" for a in status("alp", namespace, "slow").get("alerts") or []),
                         90, "B's latency alert written as Firing")
        alert = next(a for a in status("alp", namespace, "slow")["alerts"] if a["state"] == "Firing")
        assert "value" not in alert, "status carries no Infinity"
        cluster.wait_for(lambda: hooks.delivered("/hook-b"), 60, "B's page delivered")
        page = json.loads(hooks.delivered("/hook-b")[0].body)
        assert "+Inf" in json.dumps(page), page

        def condition(ns: str, type_: str) -> dict[str, typing.Any]:
            return next((c for c in status("msvc", ns, "web").get("conditions") or [] if c["type"] == type_), {})

        assert "latencyP95 +Inf" in condition(namespace, "MetricsAvailable").get("message", "")
        cluster.wait_for(lambda: condition(other, "MetricsAvailable").get("status") == "False", 60,
                         "A's service says its metrics are unavailable")
        assert not hooks.delivered("/hook-a")
        log = operator.log()
        assert "round failed" not in log and "Traceback" not in log, log[-3000:]
    finally:
        outage.close()
        broken.close()
        hooks.stop()
        cluster.kubectl("delete", "namespace", other, "--wait=false")
