"""Safety in a shared cluster, on the real control plane (issue 9)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time

import pytest
import yaml

from controller.adapters import kubernetes_api
from controller.operator import loop
from controller.operator import scaler as scaler_module
from controller.operator import view as view_module
from localcluster import hostile
from localcluster import operator as operator_module
from tests.integration.test_scaling import HEAVY_RATE
from tests.integration.test_scaling import replicas

pytestmark = pytest.mark.integration
GROUP = "ops.capliquify.io/v1alpha1"


def msvc(prometheus_url: str, name: str = "web") -> dict:
    return {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": name},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                     "metrics": {"prometheus": {"url": prometheus_url}}}}


def policy(name: str = "web", target: str = "web") -> dict:
    return {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": name},
            "spec": {"targetRef": {"monitoredService": target}, "minReplicas": 2, "maxReplicas": 6,
                     "evaluationIntervalSeconds": 5,
                     "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                     "onMetricsUnavailable": {"action": "Hold", "staleAfterSeconds": 15}}}


def test_a_policy_deleted_behind_the_watch_never_scales(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    """The view still holds a ScalingPolicy the API server has deleted (a watch gap): the
    scaler asks before it acts, as the operator's own ServiceAccount, and forgets it."""
    operator_factory().stop()  # installs the operator's RBAC; no operator runs during this test
    policy = {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "web", "namespace": namespace},
              "spec": {"targetRef": {"kubernetes": {"name": "web"}}}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(policy))
    stale = json.loads(cluster.kubectl("get", "scp", "web", "-n", namespace, "-o", "json"))
    cluster.kubectl("delete", "scp", "web", "-n", namespace)

    kubeconfig = cluster.service_account_kubeconfig(operator_module.OPERATOR_NAMESPACE, operator_module.OPERATOR_ACCOUNT)
    api = kubernetes_api.KubeApi(kubernetes_api.load_config(str(kubeconfig)), lambda verb: None)
    view = view_module.View()
    key, _ = view.upsert(stale)
    scaler = scaler_module.Scaler(view, loop.Evaluator(view, api, 60.0, 4), api, scale=None, default_prometheus=None)  # type: ignore[arg-type]
    assert asyncio.run(scaler._still_exists(key, stale)) is False
    assert key not in view.objects

    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(policy))  # recreated under the same name
    deadline = time.monotonic() + 10
    while json.loads(cluster.kubectl("get", "scp", "web", "-n", namespace, "-o", "json"))["metadata"]["uid"] == \
            stale["metadata"]["uid"] and time.monotonic() < deadline:
        time.sleep(0.2)
    view.upsert(stale)
    assert asyncio.run(scaler._still_exists(key, stale)) is False, "a new object of the same name is not the old one"
    fresh = json.loads(cluster.kubectl("get", "scp", "web", "-n", namespace, "-o", "json"))
    assert asyncio.run(scaler._still_exists(key, fresh)) is True


def test_one_tenants_broken_endpoints_do_not_stall_another(cluster, namespace, demo_stack, operator_factory) -> None:  # noqa: ANN001
    """Namespace B's Prometheus answers `{}` and its Railway endpoint drips its answer a byte at
    a time; namespace A's policy still scales on time and A's metrics keep being sampled; B's
    objects say why on their conditions."""
    garbage = hostile.HostileServer(hostile.http_reply(b"{}"))
    drip = hostile.HostileServer(hostile.http_reply(b'{"data": {"serviceInstance": null}}' + b" " * 4000), 0.5)
    other = f"{namespace}-b"
    cluster.kubectl("create", "namespace", other)
    try:
        b_objects: list[dict] = [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"labels": {"app": "web"}},
                                   "spec": {"containers": [{"name": "web", "image": "demo/web:1"}]}}}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "railway"}, "stringData": {"token": "b-token"}},
        ]
        for index in range(4):
            b_objects += [
                msvc(f"{garbage.url}/", name=f"web-{index}"),
                policy(name=f"web-{index}", target=f"web-{index}"),
                {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": f"rail-{index}"},
                 "spec": {"target": {"railway": {
                     "projectId": "p", "environmentId": "e", "serviceId": f"s{index}",
                     "tokenSecretRef": {"name": "railway", "key": "token"}, "endpoint": f"{drip.url}/graphql"}}}},
            ]
        cluster.kubectl("apply", "-n", other, "-f", "-", input=yaml.safe_dump_all(b_objects))
        cluster.kubectl("apply", "-n", namespace, "-f", "-",
                        input=yaml.safe_dump_all([msvc(demo_stack.prometheus.url), policy()]))
        operator_factory("--rate-window=10s", "--metrics-interval-seconds=5", "--railway-interval-seconds=2",
                         "--allow-loopback-egress")

        def sampled_at() -> str | None:
            status = json.loads(cluster.kubectl("get", "msvc", "web", "-n", namespace, "-o", "json")).get("status", {})
            return (status.get("metrics") or {}).get("sampledAt")

        cluster.wait_for(lambda: sampled_at() is not None, 60, "A's first metrics snapshot")
        demo_stack.start_load(HEAVY_RATE)
        started = time.monotonic()
        stamps = {sampled_at()}
        while time.monotonic() - started < 90 and replicas(cluster, namespace) < 4:
            stamps.add(sampled_at())
            time.sleep(2)
        assert replicas(cluster, namespace) >= 4, "A scaled up while B's endpoints misbehaved"
        assert time.monotonic() - started < 90
        stamps.add(sampled_at())
        assert len(stamps) >= 2, "A's metrics kept being sampled"

        def b_condition(kind: str, name: str, type_: str) -> dict:
            conditions = json.loads(cluster.kubectl("get", kind, name, "-n", other, "-o", "json")).get(
                "status", {}).get("conditions", [])
            return next((c for c in conditions if c["type"] == type_), {})

        cluster.wait_for(lambda: b_condition("scp", "web-0", "ScalingActive").get("reason") == "MetricsUnavailable",
                         60, "B's policy says its metrics are unavailable")
        assert "HTTP 200: no error text" in b_condition("scp", "web-0", "ScalingActive")["message"]
        cluster.wait_for(lambda: "did not finish answering" in b_condition("msvc", "rail-0", "Ready").get("message", ""),
                         90, "B's Railway service says its endpoint is too slow")
    finally:
        garbage.close()
        drip.close()
        cluster.kubectl("delete", "namespace", other, "--wait=false")


def test_authors_cannot_reach_beyond_their_own_rights(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    """The ValidatingAdmissionPolicy in manifests/: a user who may write our resources but not
    scale a workload or read a Secret cannot make the operator do it for them."""
    operator_factory().stop()  # installs manifests/ (CRDs, RBAC, the admission policy)
    user = f"alice-{namespace[-5:]}"
    editor = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "capliquify-editor"},
         "rules": [{"apiGroups": ["ops.capliquify.io"], "resources": ["*"], "verbs": ["*"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "capliquify-editor"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "capliquify-editor"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "someone-elses"}, "stringData": {"token": "s3cret"}},
    ]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(editor))
    scaling = {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "web"},
               "spec": {"targetRef": {"kubernetes": {"name": "web"}}}}
    railway = {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "api"},
               "spec": {"target": {"railway": {"projectId": "p", "environmentId": "e", "serviceId": "s",
                                               "tokenSecretRef": {"name": "someone-elses", "key": "token"}}}}}
    slack = {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "leak"},
             "spec": {"serviceRef": "api", "rules": [{"name": "R", "metric": "cpu", "threshold": 1}],
                      "channels": [{"name": "s", "slack": {"webhookSecretRef": {"name": "someone-elses", "key": "token"}}}]}}

    def refused_as_user(doc: dict) -> str:
        deadline = time.monotonic() + 30  # the policy compiles shortly after it is created
        while True:
            try:
                cluster.kubectl("apply", "--as", user, "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
            except subprocess.CalledProcessError as refused:
                return refused.stderr
            cluster.kubectl("delete", doc["kind"].lower(), doc["metadata"]["name"], "-n", namespace)
            assert time.monotonic() < deadline, f"{user} was admitted: {doc}"
            time.sleep(1)

    assert "may not update the scale of web" in refused_as_user(scaling)
    assert "may not read Secret someone-elses" in refused_as_user(railway)
    assert "spec.channels[0]: " + user + " may not read Secret someone-elses" in refused_as_user(slack)

    # With the right to scale, the same user is admitted; the cluster's admin always is.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "scaler"},
         "rules": [{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["update", "patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "scaler"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "scaler"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}]))
    cluster.wait_for(lambda: _admitted(cluster, user, namespace, scaling), 30, "admitted with the right to scale")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(railway))


def _admitted(cluster, user: str, namespace: str, doc: dict) -> bool:  # noqa: ANN001
    try:
        cluster.kubectl("apply", "--as", user, "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
    except subprocess.CalledProcessError:
        return False
    return True
