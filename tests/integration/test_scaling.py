"""ScalingPolicy end to end: real Prometheus scraping the demo app, the operator as its
ServiceAccount, replicas changed through the scale subresource of a real Deployment."""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from tests import conftest

pytestmark = pytest.mark.integration

GROUP = "ops.capliquify.io/v1alpha1"
# cpu% per pod = 100 × rate × 25 ms / (pods × 250m) = 10 × rate / pods.
HEAVY_RATE = 40  # 200 % at 2 pods


def msvc(prometheus_url: str, **queries) -> dict:  # noqa: ANN003
    return {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "web"},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                     "metrics": {"prometheus": {"url": prometheus_url}, "queries": queries}}}


def policy(mode: str = "Active", **overrides) -> dict:  # noqa: ANN003
    spec = {
        "targetRef": {"monitoredService": "web"}, "minReplicas": 2, "maxReplicas": 6, "mode": mode,
        "evaluationIntervalSeconds": 5,
        "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}, {"type": "errorRate", "scaleUp": 5, "scaleDown": 1}],
        "behavior": {
            "scaleUp": {"cooldownSeconds": 5, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 10}]},
            "scaleDown": {"stabilizationWindowSeconds": 20, "cooldownSeconds": 5,
                          "policies": [{"type": "Percent", "value": 50, "periodSeconds": 10}]},
        },
        "onMetricsUnavailable": {"action": "Hold", "staleAfterSeconds": 15},
    }
    spec.update(overrides)
    return {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "web"}, "spec": spec}


def get(cluster, kind: str, namespace: str, name: str = "web") -> dict:  # noqa: ANN001
    return json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json"))


def replicas(cluster, namespace: str) -> int:  # noqa: ANN001
    return get(cluster, "deployment", namespace)["spec"]["replicas"]


def condition(cluster, namespace: str, type_: str) -> dict:  # noqa: ANN001
    conditions = get(cluster, "scp", namespace).get("status", {}).get("conditions", [])
    return next((c for c in conditions if c["type"] == type_), {})


def events(cluster, namespace: str, reason: str) -> list[dict]:  # noqa: ANN001
    items = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
    return [e for e in items if e["reason"] == reason and e["source"].get("component") == "capliquify-operator"]


def expect_warning(cluster, namespace: str, type_: str, reason: str) -> str:  # noqa: ANN001
    """Waits for the condition to take `reason`; checks its Warning Event; returns the message."""
    cluster.wait_for(lambda: condition(cluster, namespace, type_).get("reason") == reason, 60, f"{type_} {reason}")
    warnings = events(cluster, namespace, reason)
    assert warnings and all(w["type"] == "Warning" for w in warnings), warnings
    return condition(cluster, namespace, type_)["message"]


def start(cluster, demo_stack, operator_factory, namespace, *objects) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects))
    operator_factory("--rate-window=10s", "--allow-loopback-egress")  # Prometheus is on loopback here


def test_scales_up_with_steps_then_down_after_stabilization(cluster, namespace, demo_stack, operator_factory) -> None:  # noqa: ANN001
    start(cluster, demo_stack, operator_factory, namespace, msvc(demo_stack.prometheus.url), policy())
    cluster.wait_for(lambda: condition(cluster, namespace, "ScalingActive").get("reason") == "ValidMetricFound",
                     60, "metrics flowing")
    assert replicas(cluster, namespace) == 2

    timeline = []
    demo_stack.start_load(HEAVY_RATE)
    load_started = time.monotonic()

    def observe() -> int:
        count = replicas(cluster, namespace)
        if not timeline or timeline[-1][1] != count:
            timeline.append((round(time.monotonic() - load_started, 1), count))
        return count

    cluster.wait_for(lambda: observe() == 6, 120, "scale-up to maxReplicas")
    time.sleep(12)
    assert observe() == 6, "never above maxReplicas"
    demo_stack.stop_load()
    load_stopped = time.monotonic() - load_started
    cluster.wait_for(lambda: observe() == 2, 150, "scale-down to minReplicas")
    time.sleep(12)
    assert observe() == 2, "never below minReplicas"
    print("timeline (seconds since load start, replicas):", timeline)

    counts = [count for _, count in timeline]
    steps = list(zip(counts, counts[1:], strict=False))
    ups = [(a, b) for a, b in steps if b > a]
    assert ups and all(b - a <= 1 for a, b in ups), f"scale-up exceeded the Pods 1/10s policy: {timeline}"
    assert max(counts) == 6 and min(counts) == 2
    first_down = next(t for t, count in timeline if t > load_stopped and count < 6)
    # The rate window (10 s) drains, then the 20 s down-stabilization window must pass.
    assert first_down - load_stopped >= 20, timeline

    status = get(cluster, "scp", namespace)["status"]
    assert status["lastDecision"]["direction"] == "Down"
    decisions = status["recentDecisions"]
    assert any(d["direction"] == "Up" and d["reason"].startswith("cpu ") for d in decisions)
    assert all(d["actuated"] for d in decisions)
    scaled_up = events(cluster, namespace, "ScaledUp")
    messages = sorted(e["message"] for e in scaled_up)
    assert all(re.match(r"cpu \d+% > 70% \(scale-up threshold\)(; limited by .*)?: \d -> \d$", m) for m in messages), messages
    # At 3 pods the load asks for 5 or more: the step policy must have limited at least once.
    assert any("limited by step limit: scale-up policy Pods 1 per 10s" in m for m in messages), messages
    assert events(cluster, namespace, "ScaledDown")


def test_prometheus_stopped_holds(cluster, namespace, demo_stack, operator_factory) -> None:  # noqa: ANN001
    start(cluster, demo_stack, operator_factory, namespace, msvc(demo_stack.prometheus.url),
          policy(minReplicas=2, maxReplicas=6))
    cluster.kubectl("scale", "deployment", "web", "-n", namespace, "--replicas=5")
    cluster.wait_for(lambda: condition(cluster, namespace, "ScalingActive").get("reason") == "ValidMetricFound",
                     60, "metrics flowing")
    demo_stack.prometheus.stop()
    message = expect_warning(cluster, namespace, "ScalingActive", "MetricsUnavailable")
    assert "cannot connect to" in message
    # Idle load would scale 5 -> 2 with metrics; blind, it holds.
    time.sleep(30)
    assert replicas(cluster, namespace) == 5
    assert get(cluster, "scp", namespace)["status"].get("lastDecision") is None


def test_dry_run_records_but_does_not_scale(cluster, namespace, demo_stack, operator_factory) -> None:  # noqa: ANN001
    start(cluster, demo_stack, operator_factory, namespace, msvc(demo_stack.prometheus.url), policy(mode="DryRun"))
    demo_stack.start_load(HEAVY_RATE)
    cluster.wait_for(lambda: (get(cluster, "scp", namespace).get("status", {}).get("lastDecision") or {}).get("direction") == "Up",
                     90, "a recorded decision")
    decision = get(cluster, "scp", namespace)["status"]["lastDecision"]
    assert decision["actuated"] is False and decision["from"] == 2 and decision["to"] > 2
    time.sleep(10)
    assert replicas(cluster, namespace) == 2
    would = events(cluster, namespace, "WouldScaleUp")
    assert would and "(not applied: DryRun)" in would[0]["message"]
    assert not events(cluster, namespace, "ScaledUp")


def test_hpa_conflict_stands_back(cluster, namespace, demo_stack, operator_factory) -> None:  # noqa: ANN001
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web-hpa"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                    "minReplicas": 2, "maxReplicas": 3,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                                                                  "target": {"type": "Utilization", "averageUtilization": 80}}}]}}
    start(cluster, demo_stack, operator_factory, namespace, hpa, msvc(demo_stack.prometheus.url), policy())
    demo_stack.start_load(HEAVY_RATE)
    assert "HorizontalPodAutoscaler web-hpa" in expect_warning(cluster, namespace, "AbleToScale",
                                                              "ConflictingAutoscaler")
    assert "web-hpa" in events(cluster, namespace, "ConflictingAutoscaler")[0]["message"]
    time.sleep(15)
    assert replicas(cluster, namespace) == 2


def test_invalid_query_is_reported_and_nothing_scales(cluster, namespace, demo_stack, operator_factory) -> None:  # noqa: ANN001
    start(cluster, demo_stack, operator_factory, namespace,
          msvc(demo_stack.prometheus.url, cpu="sum(rate(container_cpu_usage_seconds_total[1m]"), policy())
    demo_stack.start_load(HEAVY_RATE)
    assert "parse error" in expect_warning(cluster, namespace, "ScalingActive", "InvalidMetricQuery")
    time.sleep(10)
    assert replicas(cluster, namespace) == 2


def test_the_default_five_metrics_scale_down_an_app_without_a_queue_gauge(cluster, namespace, operator_factory,
                                                                         tmp_path) -> None:  # noqa: ANN001
    """The platform's five default thresholds on an app that exports no http_requests_queued
    (most do not): the queue has no series, is reported as NoSeries, and the four others,
    all low, scale it down."""
    stack = conftest.DemoStack(cluster, namespace, tmp_path).start(replicas=4, queue_gauge=False)
    try:
        defaults = policy(minReplicas=1, maxReplicas=6)
        del defaults["spec"]["metrics"]  # the defaults: cpu, memory, latencyP95, requestQueue, errorRate
        defaults["spec"]["behavior"]["scaleDown"] = {"stabilizationWindowSeconds": 0, "cooldownSeconds": 0}
        start(cluster, stack, operator_factory, namespace, msvc(stack.prometheus.url), defaults)
        # (Before the first scrapes every metric lacks a series: ScalingActive False, nothing to decide on.)
        cluster.wait_for(lambda: (condition(cluster, namespace, "ScalingActive").get("reason"),
                                  condition(cluster, namespace, "ScalingActive").get("status")) == ("NoSeries", "True"),
                         120, "four metrics read, the queue reported as NoSeries")
        active = condition(cluster, namespace, "ScalingActive")
        assert active["status"] == "True" and "no series for requestQueue" in active["message"]
        cluster.wait_for(lambda: replicas(cluster, namespace) < 4, 150, "a scale-down with the queue absent")
        decision = get(cluster, "scp", namespace)["status"]["lastDecision"]
        assert decision["direction"] == "Down" and "all metrics below" in decision["reason"]
        observed = {m["type"]: m for m in get(cluster, "scp", namespace)["status"]["metrics"]}
        assert len(observed) == 5 and "value" not in observed["requestQueue"]
        assert all(observed[t].get("value") is not None for t in ("cpu", "memory", "latencyP95", "errorRate"))
    finally:
        stack.stop()
