"""Every query of the shipped dashboards returns data from a Prometheus that scrapes the operator
(as `make demo`'s does), with a service scaled, health-checked and alerting."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

import pytest
import yaml

from controller import dashboards
from localcluster import prometheus as prometheus_module
from localcluster import receivers
from tests import conftest

pytestmark = pytest.mark.integration
GROUP = "ops.capliquify.io/v1alpha1"


def objects(prometheus_url: str, app_url: str, hook_url: str) -> list[dict]:
    return [
        {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "web", "labels": {"tier": "prod"}},
         "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                  "metrics": {"prometheus": {"url": prometheus_url}},
                  "healthChecks": [{"name": "app", "http": {"url": f"{app_url}/health", "timeoutSeconds": 2},
                                    "intervalSeconds": 2}]}},
        {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "web"},
         "spec": {"targetRef": {"monitoredService": "web"}, "minReplicas": 2, "maxReplicas": 4,
                  "evaluationIntervalSeconds": 5, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]}},
        {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "prod"}, "spec": {
            "selector": {"matchLabels": {"tier": "prod"}},
            "rules": [{"name": "AnyCpu", "metric": "cpu", "op": ">=", "threshold": 0, "forSeconds": 0,
                       "severity": "warning", "summary": "{{service}} cpu {{value}}"}],
            "channels": [{"name": "hook", "webhook": {"url": hook_url}}],
            "routes": [{"severity": "warning", "channelKinds": ["webhook"], "repeatIntervalSeconds": 3600}]}},
    ]


def instant(prometheus: prometheus_module.Prometheus, expr: str) -> list[dict]:
    url = f"{prometheus.url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def test_every_dashboard_query_returns_data(cluster, namespace, demo_stack, operator_factory, tmp_path) -> None:  # noqa: ANN001
    hooks = receivers.HttpReceiver()
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(
        objects(demo_stack.prometheus.url, demo_stack.app_url, f"{hooks.url}/hook")))
    operator = operator_factory("--rate-window=10s", "--metrics-interval-seconds=2", "--alert-interval-seconds=1",
                                "--allow-loopback-egress", "--object-metrics")  # the dashboards read them
    scraper = prometheus_module.Prometheus(
        tmp_path / "operator-prometheus", [], scrape_seconds=2,
        extra_jobs=[prometheus_module.static_job("capliquify-operator", f"127.0.0.1:{operator.metrics_port}")]).start()
    try:
        def status(kind: str, name: str) -> dict:
            return json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json")).get("status", {})

        cluster.wait_for(lambda: hooks.delivered("/hook"), 90, "the alert fired and was delivered")
        cluster.wait_for(lambda: (status("msvc", "web").get("rollout") or {}).get("phase") and
                         status("msvc", "web").get("health") not in (None, "Unknown"), 60, "health and rollout judged")
        variables = {"namespace": namespace, "policy": "web", "service": "web"}
        expressions = {f"{name}: {expr}": dashboards.concrete(expr, **variables) for name in dashboards.DASHBOARDS
                       for expr in dashboards.queries(json.loads(dashboards.render(name)))}
        deadline = time.monotonic() + 60  # rates need two scrapes in their window
        empty = list(expressions)
        while empty and time.monotonic() < deadline:
            empty = [label for label in empty if not instant(scraper, expressions[label])]
            time.sleep(2)
        assert not empty, "queries with no data:\n" + "\n".join(empty)
        # And the per-object series say what status says.
        desired = instant(scraper, f'capliquify_scaling_replicas{{namespace="{namespace}", state="desired"}}')
        assert float(desired[0]["value"][1]) == status("scp", "web")["desiredReplicas"]
        firing = instant(scraper, f'capliquify_alert_state{{namespace="{namespace}", rule="AnyCpu"}} == 1')
        assert firing[0]["metric"]["state"] == "Firing"
        table = conftest.kubectl_capliquify(cluster, "status", "-n", namespace)
        print(table)  # the README's sample
        assert "AnyCpu" in next(line for line in table.splitlines() if line.startswith("web "))
    finally:
        scraper.stop()
        hooks.stop()
