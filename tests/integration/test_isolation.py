"""Safety in a shared cluster, on the real control plane (issue 9)."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import yaml

from controller.adapters import kubernetes_api
from controller.operator import loop
from controller.operator import scaler as scaler_module
from controller.operator import view as view_module
from localcluster import operator as operator_module

pytestmark = pytest.mark.integration
GROUP = "ops.capliquify.io/v1alpha1"


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
