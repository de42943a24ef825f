"""Scale to zero end to end (issue 22): a ScalingPolicy with `minReplicas: 0` scales a kwok
Deployment to zero once its activation metric has been idle for `idleSeconds`, and back to one
when the metric rises, with its Events and conditions.

The activation metric is the demo app's front door (`demo_frontend_requests_total`: every
request that arrives, served or not, as a gateway counts them), so it has a value with no pod
running; cpu (from the pods) has none at zero and does not decide there."""

from __future__ import annotations

import json
import re
import time

import pytest
import yaml

from tests import conftest
from tests.integration.test_scaling import condition
from tests.integration.test_scaling import events
from tests.integration.test_scaling import get
from tests.integration.test_scaling import replicas

pytestmark = pytest.mark.integration

GROUP = "ops.capliquify.io/v1alpha1"
IDLE_SECONDS = 10
FRONTDOOR = 'sum(rate(demo_frontend_requests_total{namespace="$namespace"}[$window])) or vector(0)'


def objects(prometheus_url: str) -> list[dict]:
    msvc = {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "web"},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                     "metrics": {"prometheus": {"url": prometheus_url},
                                 "custom": [{"name": "frontdoor", "query": FRONTDOOR, "unit": "req/s"}]}}}
    policy = {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "web"},
              "spec": {"targetRef": {"monitoredService": "web"}, "minReplicas": 0, "maxReplicas": 3,
                       "evaluationIntervalSeconds": 5,
                       "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                       "activation": {"type": "custom", "name": "frontdoor", "above": 0, "idleSeconds": IDLE_SECONDS},
                       "onMetricsUnavailable": {"action": "Hold", "staleAfterSeconds": 15}}}
    return [msvc, policy]


def test_scales_to_zero_when_idle_and_back_to_one_when_the_activation_metric_rises(
        cluster, namespace, operator_factory, tmp_path) -> None:  # noqa: ANN001
    stack = conftest.DemoStack(cluster, namespace, tmp_path).start(replicas=1)
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects(stack.prometheus.url)))
        operator = operator_factory("--rate-window=10s", "--allow-loopback-egress")  # Prometheus is on loopback here
        started = time.monotonic()

        def explained(predicate, seconds: float, what: str) -> None:  # noqa: ANN001
            try:
                cluster.wait_for(predicate, seconds, what)
            except TimeoutError as error:
                status = get(cluster, "scp", namespace).get("status", {})
                raise AssertionError(f"{error}\nstatus: {json.dumps(status)[:3000]}\nlog: {operator.log()[-2000:]}") from None

        # No request at the front door: idle at one replica for IDLE_SECONDS, then zero.
        explained(lambda: replicas(cluster, namespace) == 0, 90, "scaled to zero when idle")
        slept = time.monotonic() - started
        assert slept >= IDLE_SECONDS, f"to zero after {slept:.1f}s, before the idle period"
        explained(lambda: events(cluster, namespace, "ScaledToZero"), 15, "the ScaledToZero Event")  # posted after the scale
        to_zero = events(cluster, namespace, "ScaledToZero")
        assert len(to_zero) == 1 and to_zero[0]["type"] == "Normal", to_zero
        assert re.fullmatch(rf"frontdoor 0(req/s)? <= 0(req/s)? \(activation threshold\) at 1 replica for "
                            rf"{IDLE_SECONDS}s \(idle since \S+Z\): 1 -> 0", to_zero[0]["message"]), to_zero[0]["message"]
        cluster.wait_for(lambda: condition(cluster, namespace, "ScalingActive").get("reason") == "IdleAtZero",
                         30, "ScalingActive says idle at zero")
        active = condition(cluster, namespace, "ScalingActive")
        assert active["status"] == "True" and "it alone wakes the workload" in active["message"], active
        decision = get(cluster, "scp", namespace)["status"]["lastDecision"]
        assert (decision["direction"], decision["from"], decision["to"], decision["actuated"]) == ("Down", 1, 0, True)

        # At zero cpu has no pod to read: nothing wakes it but the front door.
        assert replicas(cluster, namespace) == 0 and not events(cluster, namespace, "Activated")
        stack.start_load(4)  # 4 req/s: about 40 % cpu on one pod, within the hold band
        load_started = time.monotonic()
        explained(lambda: replicas(cluster, namespace) == 1, 60, "woken by the activation metric")
        woke = time.monotonic() - load_started
        explained(lambda: events(cluster, namespace, "Activated"), 15, "the Activated Event")
        activated = events(cluster, namespace, "Activated")
        assert len(activated) == 1 and activated[0]["type"] == "Normal", activated
        assert re.fullmatch(r"frontdoor [\d.]+(req/s)? > 0(req/s)? \(activation threshold\): 0 -> 1",
                            activated[0]["message"]), activated[0]["message"]
        decision = get(cluster, "scp", namespace)["status"]["lastDecision"]
        assert (decision["direction"], decision["from"], decision["to"]) == ("Up", 0, 1)
        # The front door keeps it awake: not asleep again while requests arrive.
        cluster.wait_for(lambda: stack.ready_pods() == 1, 30, "the woken pod is ready")
        time.sleep(IDLE_SECONDS + 5)
        assert replicas(cluster, namespace) == 1
        assert len(events(cluster, namespace, "ScaledToZero")) == 1
        # Awake, the policy's own metric decides again (the woken pod's cpu is read).
        assert condition(cluster, namespace, "ScalingActive")["reason"] == "ValidMetricFound"
        print(f"scaled to zero {slept:.1f}s after start (idle {IDLE_SECONDS}s, interval 5s); "
              f"woken {woke:.1f}s after the first request")
    finally:
        stack.stop()


def test_a_railway_service_sleeps_by_railways_serverless_and_stops_at_one_replica(
        cluster, namespace, operator_factory, railway) -> None:  # noqa: ANN001
    """Railway documents no zero replicas; it offers Serverless (the instance's sleepApplication),
    which sleeps an idle service and wakes it on a request. The MonitoredService turns it on; the
    policy, idle, holds one replica, never sends numReplicas 0, and ScalingLimited says why."""
    objects_ = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "railway"}, "stringData": {"token": "t0ken"}},
        {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "api"},
         "spec": {"target": {"railway": {"projectId": "p-1", "environmentId": "env-1", "serviceId": "svc-1",
                                         "tokenSecretRef": {"name": "railway", "key": "token"},
                                         "endpoint": railway.url, "sleepApplication": True}}}},
        {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "api"},
         "spec": {"targetRef": {"monitoredService": "api"}, "minReplicas": 0, "maxReplicas": 3,
                  "evaluationIntervalSeconds": 5, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                  # Railway's own HTTP metrics: 0 % errors with no failing request (idle).
                  "activation": {"type": "errorRate", "above": 0, "idleSeconds": 6}}},
    ]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects_))
    operator_factory("--allow-loopback-egress", "--railway-interval-seconds=2", "--metrics-interval-seconds=2")
    deployments = len(railway.services["svc-1"].deployments)

    def limited() -> dict:
        return next((c for c in get(cluster, "scp", namespace, "api").get("status", {}).get("conditions", [])
                     if c["type"] == "ScalingLimited"), {})

    cluster.wait_for(lambda: limited().get("reason") == "TooFewReplicas", 60, "ScalingLimited once idle")
    assert limited()["status"] == "True" and "Railway runs at least one replica" in limited()["message"]
    assert "sleepApplication" in limited()["message"]
    assert railway.services["svc-1"].replicas == 1 and railway.services["svc-1"].pending_replicas is None
    cluster.wait_for(lambda: railway.services["svc-1"].sleep_application, 30, "Serverless on at Railway")
    assert len(railway.services["svc-1"].deployments) == deployments, "no deploy: no replica change"
    assert not any("input: {numReplicas" in document for document in railway.documents)
    assert railway.invalid == [] and not events(cluster, namespace, "ScaledToZero")
