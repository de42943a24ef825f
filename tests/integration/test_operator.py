"""The operator, as its own ServiceAccount, judges objects and then stays quiet."""

from __future__ import annotations

import json
import time

import pytest
import yaml

from tests import conftest

pytestmark = pytest.mark.integration

WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection"}


def _condition(cluster, kind: str, name: str, namespace: str, type_: str = "Ready") -> dict:  # noqa: ANN001
    obj = json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json"))
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), {})


def _wait_condition(cluster, kind, name, namespace, status, reason, seconds=30) -> dict:  # noqa: ANN001
    cluster.wait_for(lambda: (_condition(cluster, kind, name, namespace).get("status"),
                              _condition(cluster, kind, name, namespace).get("reason")) == (status, reason),
                     seconds, f"{kind}/{name} Ready={status} {reason}")
    return _condition(cluster, kind, name, namespace)


def _events(cluster, namespace: str, name: str) -> list[dict]:  # noqa: ANN001
    items = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
    return [e for e in items if e["involvedObject"]["name"] == name and e["source"].get("component") == "capliquify-operator"]


def _operator_writes(cluster) -> list[dict]:  # noqa: ANN001
    return [e for e in cluster.audit_events()
            if e.get("user", {}).get("username") == conftest.OPERATOR_USER and e.get("verb") in WRITE_VERBS]


WEB = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
       "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web", "image": "demo/web:1"}]}}}}
MSVC = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService", "metadata": {"name": "web"},
        "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}}}}


def test_ready_follows_the_target_deployment(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    operator_factory("--resync-seconds=10")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(MSVC))
    missing = _wait_condition(cluster, "msvc", "web", namespace, "False", "TargetNotFound")
    assert missing["message"] == f"Deployment {namespace}/web not found"
    warning = [e for e in _events(cluster, namespace, "web") if e["reason"] == "TargetNotFound"]
    assert [e["type"] for e in warning] == ["Warning"]

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(WEB))
    found = _wait_condition(cluster, "msvc", "web", namespace, "True", "TargetFound")
    assert found["lastTransitionTime"] >= missing["lastTransitionTime"]
    normal = [e for e in _events(cluster, namespace, "web") if e["reason"] == "TargetFound"]
    assert [e["type"] for e in normal] == ["Normal"]
    # kwok makes the pods Ready; the replica counts reach status through the Deployment's events.
    cluster.wait_for(lambda: json.loads(cluster.kubectl("get", "msvc", "web", "-n", namespace, "-o", "json"))
                     ["status"].get("replicas", {}).get("ready") == 2, 60, "ready replicas in status")


@pytest.fixture
def examples(cluster):  # noqa: ANN001, ANN201
    cluster.kubectl("apply", "-k", str(conftest.REPO / "manifests" / "examples"))
    # Tests send traffic to loopback only: the example's Prometheus and health check (in-cluster
    # names) are pointed at a closed local port before the operator starts; the health check is
    # then refused by the egress guard (loopback not allowed here), so nothing is sent at all.
    cluster.kubectl("patch", "msvc", "web", "-n", "shop", "--type=merge", "-p", json.dumps(
        {"spec": {"metrics": {"prometheus": {"url": "http://127.0.0.1:9"}},
                  "healthChecks": [{"name": "api", "http": {"url": "http://127.0.0.1:9/health"}}]}}))
    cluster.kubectl("patch", "secret", "alert-channels", "-n", "shop", "--type=merge", "-p", json.dumps(
        {"stringData": {"slack-webhook": "http://127.0.0.1:9/slack", "smtp": "host: 127.0.0.1\nport: 9\nfrom: x@example.com\n",
                        "sms": "url: http://127.0.0.1:9/sms\n"}}))
    cluster.kubectl("patch", "alp", "prod-web", "-n", "shop", "--type=json", "-p", json.dumps(
        [{"op": "replace", "path": "/spec/channels/2/alertmanager/url", "value": "http://127.0.0.1:9"}]))
    yield
    cluster.kubectl("delete", "namespace", "shop", "--wait=false")


def test_examples_ready_then_zero_writes_in_steady_state(cluster, examples, operator_factory) -> None:  # noqa: ANN001
    operator = operator_factory("--resync-seconds=10")
    for kind, name in (("msvc", "web"), ("scp", "web")):
        _wait_condition(cluster, kind, name, "shop", "True", "TargetFound")
    _wait_condition(cluster, "alp", "prod-web", "shop", "True", "ServicesSelected")
    # A first verdict that is no problem is said by status alone: no Event (issue 10).
    assert [e["reason"] for e in _events(cluster, "shop", "prod-web") if e["reason"] == "ServicesSelected"] == []
    cluster.wait_for(lambda: "Deployment/web   2     20    2" in cluster.kubectl("get", "scp", "-n", "shop"),
                     60, "scaling policy columns")
    cluster.wait_for(lambda: json.loads(cluster.kubectl("get", "msvc", "web", "-n", "shop", "-o", "json"))
                     ["status"].get("replicas", {}).get("ready") == 2, 60, "web ready")

    table = cluster.kubectl("get", "capliquify", "-A")
    print(table)
    lines = table.splitlines()
    assert any(row.split()[:3] == ["NAMESPACE", "NAME", "TARGET"] and "HEALTH" in row and "READY REPLICAS" in row for row in lines)
    assert any(row.split()[:5] == ["NAMESPACE", "NAME", "TARGET", "MIN", "MAX"] and "LAST SCALE" in row for row in lines)
    assert any(row.split()[:5] == ["NAMESPACE", "NAME", "RULES", "FIRING", "LAST"] for row in lines)
    assert any(row.split()[1:6] == ["monitoredservice.ops.capliquify.io/web", "Deployment/web", "Unknown", "2", "True"]
               for row in lines)
    assert any(row.split()[1:5] == ["alertpolicy.ops.capliquify.io/prod-web", "14", "0", "True"] for row in lines)

    # Settled once every part has said its first word (health refused by the egress guard, metrics
    # unavailable); then let a few resync rounds pass and measure a 60 s window.
    for type_, reason in (("Healthy", "EgressRefused"), ("MetricsAvailable", "MetricsUnavailable")):
        cluster.wait_for(lambda type_=type_, reason=reason: _condition(cluster, "msvc", "web", "shop", type_)
                         .get("reason") == reason, 30, f"{type_} {reason}")
    time.sleep(12)
    before = len(_operator_writes(cluster))
    metric_before = operator.metrics_text()
    time.sleep(60)
    writes = _operator_writes(cluster)[before:]
    assert writes == [], [(w["verb"], w["requestURI"]) for w in writes]
    rounds = [row for row in operator.metrics_text().splitlines() if row.startswith("capliquify_evaluation_round_duration_seconds_count")]
    rounds_before = [row for row in metric_before.splitlines() if row.startswith("capliquify_evaluation_round_duration_seconds_count")]
    assert float(rounds[0].split()[-1]) >= float(rounds_before[0].split()[-1]) + 5, "resync rounds did run"


def test_no_finalizers_and_clean_deletion_without_operator(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    operator = operator_factory()
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([WEB, MSVC]))
    _wait_condition(cluster, "msvc", "web", namespace, "True", "TargetFound")
    obj = json.loads(cluster.kubectl("get", "msvc", "web", "-n", namespace, "-o", "json"))
    assert not obj["metadata"].get("finalizers")
    assert not [k for k in obj["metadata"].get("annotations", {}) if "kopf" in k or "capliquify" in k]
    operator.stop()
    cluster.kubectl("delete", "msvc", "web", "-n", namespace, "--timeout=20s")
    assert cluster.kubectl("get", "msvc", "-n", namespace, "-o", "name").strip() == ""


def test_restart_posts_no_duplicate_events(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    first = operator_factory()
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([WEB, MSVC]))
    _wait_condition(cluster, "msvc", "web", namespace, "True", "TargetFound")
    # Every part says its first word (the metrics snapshot runs just after Ready) before the stop.
    cluster.wait_for(lambda: _condition(cluster, "msvc", "web", namespace, "MetricsAvailable").get("reason"), 30,
                     "MetricsAvailable judged")
    time.sleep(2)
    first.stop()
    before = len(_events(cluster, namespace, "web"))
    assert before >= 1, _events(cluster, namespace, "web")  # MetricsUnavailable (no Prometheus here)
    operator_factory()
    time.sleep(5)
    assert len(_events(cluster, namespace, "web")) == before
