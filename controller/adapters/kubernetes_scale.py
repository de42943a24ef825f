"""A Kubernetes workload as a scale target, through its `scale` subresource."""

from __future__ import annotations

import typing

import kubernetes

TIMEOUT_SECONDS = (5, 20)
# The field manager of every replica count the operator writes: a GitOps tool can tell the
# operator's spec.replicas apart by it (Argo CD's managedFieldsManagers; examples/gitops/).
FIELD_MANAGER = "capliquify-operator"


class BlockingScaleTarget(typing.Protocol):
    def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int: ...


class KubernetesScale:
    """Patches `spec.replicas` of the scale subresource (RBAC: deployments/scale, statefulsets/scale)."""

    def __init__(self, api_client: kubernetes.client.ApiClient, on_write: typing.Callable[[str], None]) -> None:
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self._on_write = on_write

    def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        method = {"Deployment": self._apps.patch_namespaced_deployment_scale,
                  "StatefulSet": self._apps.patch_namespaced_stateful_set_scale}[kind]
        self._on_write("patch")
        scale: typing.Any = method(name, namespace, {"spec": {"replicas": replicas}}, field_manager=FIELD_MANAGER,
                                   _request_timeout=TIMEOUT_SECONDS)
        return int(scale.spec.replicas or 0)  # omitted when 0 (omitempty): a scale to zero answers no count
