"""The GitOps recipes (examples/gitops/) against the real API server: after the operator has
scaled a Deployment to 5, the Deployment is applied again from Git the way each tool applies it
(server-side apply under the tool's field manager, conflicts forced). With the recipe's
settings the count stays 5; without them the tool puts back what Git says — the fight."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

from controller.adapters import kubernetes_api
from controller.adapters import kubernetes_scale
from localcluster import operator as operator_module
from tests import conftest

pytestmark = pytest.mark.integration

APPS = conftest.REPO / "examples" / "gitops" / "apps" / "web.yaml"
ARGO = conftest.REPO / "examples" / "gitops" / "argocd-application.yaml"
FLUX_MANAGER, ARGO_MANAGER = "kustomize-controller", "argocd-controller"


def git_deployment() -> dict:
    return next(doc for doc in yaml.safe_load_all(APPS.read_text()) if doc["kind"] == "Deployment")


def apply_as(cluster, namespace: str, manager: str, manifest: dict) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "--server-side", "--force-conflicts", f"--field-manager={manager}", "-n", namespace,
                    "-f", "-", input=yaml.safe_dump(manifest))


def live(cluster, namespace: str) -> dict:  # noqa: ANN001
    return json.loads(cluster.kubectl("get", "deployment", "web", "-n", namespace, "-o", "json", "--show-managed-fields"))


def operator_scales(cluster, namespace: str, replicas: int) -> None:  # noqa: ANN001
    """The operator's own scale write (its adapter, as its ServiceAccount)."""
    kubeconfig = cluster.service_account_kubeconfig(operator_module.OPERATOR_NAMESPACE, operator_module.OPERATOR_ACCOUNT)
    scale = kubernetes_scale.KubernetesScale(kubernetes_api.load_config(str(kubeconfig)), lambda verb: None)
    assert scale.set_replicas("Deployment", namespace, "web", replicas) == replicas


def replicas_owner(deployment: dict) -> set[str]:
    return {entry["manager"] for entry in deployment["metadata"].get("managedFields") or []
            if "f:replicas" in (entry.get("fieldsV1") or {}).get("f:spec", {})}


def test_flux_leaves_the_operators_count_when_git_does_not_list_replicas(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    operator_factory().stop()  # installs the operator's RBAC
    with_replicas = copy.deepcopy(git_deployment())
    with_replicas["spec"]["replicas"] = 2  # how most repositories start
    apply_as(cluster, namespace, FLUX_MANAGER, with_replicas)
    operator_scales(cluster, namespace, 5)
    assert replicas_owner(live(cluster, namespace)) == {kubernetes_scale.FIELD_MANAGER}, "the operator took the field"

    apply_as(cluster, namespace, FLUX_MANAGER, with_replicas)  # Git lists replicas: the fight
    assert live(cluster, namespace)["spec"]["replicas"] == 2

    operator_scales(cluster, namespace, 5)
    for _ in range(2):  # the recipe: replicas left out of Git, reconciled again and again
        apply_as(cluster, namespace, FLUX_MANAGER, git_deployment())
        assert live(cluster, namespace)["spec"]["replicas"] == 5
    operator_scales(cluster, namespace, 7)
    apply_as(cluster, namespace, FLUX_MANAGER, git_deployment())
    assert live(cluster, namespace)["spec"]["replicas"] == 7


def test_argo_respects_ignored_replicas_only_with_the_sync_option(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    operator_factory().stop()
    application = next(doc for doc in yaml.safe_load_all(ARGO.read_text()) if doc["metadata"]["name"] == "shop-services")
    ignored = [pointer for rule in application["spec"]["ignoreDifferences"] if rule["kind"] == "Deployment"
               for pointer in rule.get("jsonPointers", [])]
    assert ignored == ["/spec/replicas"] and "RespectIgnoreDifferences=true" in application["spec"]["syncPolicy"]["syncOptions"]
    in_git = copy.deepcopy(git_deployment())
    in_git["spec"]["replicas"] = 2  # Argo's recipe keeps replicas in Git
    apply_as(cluster, namespace, ARGO_MANAGER, in_git)
    operator_scales(cluster, namespace, 5)

    # RespectIgnoreDifferences=true: a sync applies the ignored fields at their live values.
    respected = copy.deepcopy(in_git)
    respected["spec"]["replicas"] = live(cluster, namespace)["spec"]["replicas"]
    apply_as(cluster, namespace, ARGO_MANAGER, respected)
    assert live(cluster, namespace)["spec"]["replicas"] == 5
    operator_scales(cluster, namespace, 6)  # the operator still scales after such a sync
    assert live(cluster, namespace)["spec"]["replicas"] == 6

    # ignoreDifferences alone hides the difference, but a sync still applies Git's count.
    apply_as(cluster, namespace, ARGO_MANAGER, in_git)
    assert live(cluster, namespace)["spec"]["replicas"] == 2
