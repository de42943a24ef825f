"""/metrics names no tenant's object unless asked to (issue 21): the per-object series (every
namespace's services, revisions, alert rules) are served only with --object-metrics (the chart
passes it with its dashboards); the operator's own series always."""

from __future__ import annotations

import json

import pytest
import yaml

pytestmark = pytest.mark.integration

WEB = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
       "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web", "image": "demo/web:1"}]}}}}
MSVC = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService", "metadata": {"name": "web"},
        "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}}}}


def test_per_object_series_only_when_asked_for(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    def rollout() -> dict:
        obj = json.loads(cluster.kubectl("get", "msvc", "web", "-n", namespace, "-o", "json"))
        return (obj.get("status") or {}).get("rollout") or {}

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([WEB, MSVC]))
    quiet = operator_factory("--resync-seconds=10")
    cluster.wait_for(lambda: bool(rollout().get("phase") and rollout().get("revision")), 60, "rollout in status")
    default_text = quiet.metrics_text()
    quiet.stop()
    assert "capliquify_reconciles_total" in default_text, "the operator's own series are served"
    assert namespace not in default_text and "capliquify_rollout_info" not in default_text

    asked = operator_factory("--resync-seconds=10", "--object-metrics")
    cluster.wait_for(lambda: f'namespace="{namespace}"' in asked.metrics_text("capliquify_rollout_info"), 30,
                     "the per-object series with --object-metrics")
