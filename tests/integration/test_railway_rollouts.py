"""Railway deploys guarded like Kubernetes rollouts, and Railway replicas scaled per region: the
operator as its ServiceAccount against the local Railway (every document schema-validated)."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
import yaml

from localcluster import railway as railway_sim
from tests import conftest

pytestmark = pytest.mark.integration
GROUP = "ops.capliquify.io/v1alpha1"
FAST = ("--allow-loopback-egress", "--railway-interval-seconds=2", "--metrics-interval-seconds=2")


def service(endpoint: str, service_id: str = "svc-1", **spec: object) -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "railway"}, "stringData": {"token": "t0ken"}},
        {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "api"},
         "spec": {"target": {"railway": {"projectId": "p-1", "environmentId": "env-1", "serviceId": service_id,
                                         "tokenSecretRef": {"name": "railway", "key": "token"},
                                         "endpoint": endpoint}}, **spec}},
    ]


def control(simulator: railway_sim.RailwaySimulator, service_id: str = "svc-1", **body: object) -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{simulator.port}/control", method="POST",
                                     data=json.dumps({"serviceId": service_id, **body}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=5) as answer:
        return json.load(answer)


def get(cluster, kind: str, namespace: str, name: str = "api") -> dict:  # noqa: ANN001
    return json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json"))


def rollout(cluster, namespace: str) -> dict:  # noqa: ANN001
    return get(cluster, "msvc", namespace).get("status", {}).get("rollout") or {}


def events(cluster, namespace: str, reason: str) -> list[dict]:  # noqa: ANN001
    return [e for e in json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
            if e["reason"] == reason]


def test_errors_after_a_deploy_roll_back_once_across_a_restart(cluster, namespace, operator_factory, railway) -> None:  # noqa: ANN001
    """The new deployment answers 50 % errors: analysis fails it and it is rolled back to the
    one before. The operator is killed right after Railway took the rollback and before it
    heard so; the next one finds the intent in status and does not roll back again."""
    guarded = {"rollout": {"autoRollback": True, "progressDeadlineSeconds": 300,
                           "analysis": {"windowSeconds": 120, "maxErrorRatePercent": 5}}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(service(railway.url, **guarded)))
    first = operator_factory(*FAST)
    good = railway.services["svc-1"].deployments[-1]["id"]
    cluster.wait_for(lambda: rollout(cluster, namespace).get("phase") == "Healthy", 60, "the first deployment healthy")
    assert rollout(cluster, namespace)["revision"] == good

    railway.rollback_answer_delay = 8  # Railway acts at once and answers 8 s later
    bad = control(railway, deploy={"status": "SUCCESS", "errorPercent": 50})["latestDeployment"]
    started = time.monotonic()
    cluster.wait_for(lambda: len(railway.rollbacks) == 1, 60, "Railway took a rollback")
    decided = time.monotonic() - started
    first.process.kill()  # before the answer: this process never learns it succeeded
    first.process.wait(10)
    assert rollout(cluster, namespace)["pendingRollback"] == bad, "the intent was in status before the call"
    assert railway.rollbacks[0][2] == good, "rolled back to the deployment before the bad one"

    operator_factory(*FAST)
    cluster.wait_for(lambda: len(rollout(cluster, namespace).get("rollbackRevisions") or []) == 1, 60,
                     "the rollback's own deployment recorded")
    time.sleep(8)  # several rounds of the new operator
    state = rollout(cluster, namespace)
    product = railway.services["svc-1"].deployments[-1]
    print(f"rolled back {decided:.0f}s after the bad deploy; deployments: "
          f"{[(d['status'], d['rollbackOf'] == good) for d in railway.services['svc-1'].deployments]}")
    assert len(railway.rollbacks) == 1, "exactly one rollback across the restart"
    assert state["rollbackRevisions"] == [product["id"]] and product["rollbackOf"] == good
    assert state["rolledBackRevisions"] == [bad] and state.get("pendingRollback") is None
    assert railway.services["svc-1"].error_percent == 0, "the good code answers again"
    assert any(h["revision"] == bad and h["phase"] == "RolledBack" and "error rate 50.0% > 5%" in h["reason"]
               for h in state["history"])
    assert len(events(cluster, namespace, "RolledBack")) == 1
    assert railway.invalid == []


def test_a_deploy_that_fails_outright_is_rolled_back_without_analysis(cluster, namespace, operator_factory,  # noqa: ANN001
                                                                       railway) -> None:
    guarded = {"rollout": {"autoRollback": True, "progressDeadlineSeconds": 600, "analysis": {"windowSeconds": 600}}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(service(railway.url, **guarded)))
    operator_factory(*FAST)
    cluster.wait_for(lambda: rollout(cluster, namespace).get("phase") == "Healthy", 60, "the first deployment healthy")
    good = railway.services["svc-1"].deployments[-1]["id"]
    started = time.monotonic()
    bad = control(railway, deploy={"status": "FAILED"})["latestDeployment"]
    cluster.wait_for(lambda: len(railway.rollbacks) == 1, 60, "rolled back")
    took = time.monotonic() - started
    print(f"a FAILED deployment rolled back after {took:.0f}s (analysis window 600 s, deadline 600 s)")
    assert took < 30 and railway.rollbacks[0][2] == good
    cluster.wait_for(lambda: rollout(cluster, namespace).get("rolledBackRevisions") == [bad], 30, "recorded")
    warning = events(cluster, namespace, "RolledBack")
    assert len(warning) == 1 and "deployment FAILED" in warning[0]["message"]
    assert railway.invalid == []


def test_two_regions_scale_in_proportion_up_to_railways_cap(cluster, namespace, operator_factory, railway) -> None:  # noqa: ANN001
    """A service in two regions (2 + 1) scaled up stays 2:1 (5 → 3 + 2); asked for more than
    Railway's cap of 50 it gets 50 (33 + 17) and the policy's status says the platform binds."""
    railway.add_service("svc-2", "web", regions={"us-west2": 2, "europe-west4": 1}, load_vcpu=3.0)  # 100 % of 3
    policy = {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "api"},
              "spec": {"targetRef": {"monitoredService": "api"}, "minReplicas": 1, "maxReplicas": 80,
                       "evaluationIntervalSeconds": 5, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                       "behavior": {"scaleUp": {"policies": [{"type": "Percent", "value": 1000, "periodSeconds": 5}]}}}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-",
                    input=yaml.safe_dump_all([*service(railway.url, "svc-2"), policy]))
    operator_factory(*FAST)
    cluster.wait_for(lambda: railway.services["svc-2"].replicas > 3, 60, "scaled up")
    regions = dict(railway.services["svc-2"].regions)
    assert set(regions) == {"us-west2", "europe-west4"}, regions
    total = sum(regions.values())
    assert abs(regions["us-west2"] - total * 2 / 3) < 1, f"2:1 as near as whole replicas go: {regions}"

    control(railway, "svc-2", loadVcpu=200.0)  # far past what 50 replicas serve
    cluster.wait_for(lambda: railway.services["svc-2"].replicas == 50, 90, "scaled to Railway's cap")
    assert railway.services["svc-2"].regions == {"us-west2": 33, "europe-west4": 17}

    def limited() -> dict:
        return next((c for c in get(cluster, "scp", namespace).get("status", {}).get("conditions", [])
                     if c["type"] == "ScalingLimited"), {})

    cluster.wait_for(lambda: limited().get("reason") == "TooManyReplicas", 30, "ScalingLimited")
    assert "Railway runs at most 50 replicas" in limited()["message"]
    time.sleep(6)
    assert railway.services["svc-2"].replicas == 50 and railway.invalid == []


def test_the_token_is_read_once_until_railway_refuses_it(cluster, namespace, operator_factory, railway) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(service(railway.url)))
    since = time.time()
    operator_factory(*FAST)
    cluster.wait_for(lambda: (get(cluster, "msvc", namespace).get("status", {}).get("metrics") or {}).get("cpu") == 40,
                     60, "polled")

    def reads() -> int:
        return sum(1 for e in cluster.audit_events() if e.get("verb") == "get"
                   and e.get("user", {}).get("username") == conftest.OPERATOR_USER
                   and e.get("objectRef", {}).get("resource") == "secrets"
                   and e.get("objectRef", {}).get("namespace") == namespace
                   and e.get("stageTimestamp", "") >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(since)))

    at_start = reads()  # the token, and its keys for the Ready condition
    time.sleep(10)  # five more polls
    assert at_start <= 2 and reads() == at_start, "no read of the token Secret per poll"
    # Railway revokes the token; the Secret is rotated a little later.
    railway.token = "rotated"
    cluster.wait_for(lambda: next((c for c in get(cluster, "msvc", namespace)["status"]["conditions"]
                                   if c["type"] == "Ready"), {}).get("reason") == "RailwayUnavailable", 30, "refused")
    cluster.kubectl("patch", "secret", "railway", "-n", namespace, "--type=merge", "-p",
                    json.dumps({"stringData": {"token": "rotated"}}))
    cluster.wait_for(lambda: next((c for c in get(cluster, "msvc", namespace)["status"]["conditions"]
                                   if c["type"] == "Ready"), {}).get("reason") == "TargetFound", 30,
                     "the rotated token read after the refusal")
    settled = reads()
    time.sleep(8)
    assert reads() == settled, "once working again, no read per poll"
