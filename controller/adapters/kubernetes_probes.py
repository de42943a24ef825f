"""Container probes of a workload, applied server-side under the operator's own field manager."""

from __future__ import annotations

import typing

import kubernetes

from controller import reasons

TIMEOUT_SECONDS = (5, 20)
APPLY = "application/apply-patch+yaml"  # JSON is YAML: the body is sent as the client serializes it


class ProbeTarget(typing.Protocol):
    def apply(self, kind: str, namespace: str, name: str, body: dict[str, typing.Any]) -> int: ...


class KubernetesProbes:
    """Server-side apply of only the probe fields (RBAC: patch deployments, statefulsets).

    `force` takes over these fields from whoever set them before (e.g. kubectl create); the
    operator then owns nothing else of the workload, and stops when someone takes them back.
    """

    def __init__(self, api_client: kubernetes.client.ApiClient, on_write: typing.Callable[[str], None]) -> None:
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self._on_write = on_write

    def apply(self, kind: str, namespace: str, name: str, body: dict[str, typing.Any]) -> int:
        """Returns the workload's generation after the apply."""
        method = {"Deployment": self._apps.patch_namespaced_deployment,
                  "StatefulSet": self._apps.patch_namespaced_stateful_set}[kind]
        self._on_write("apply")
        applied: typing.Any = method(name, namespace, body, field_manager=reasons.PROBES_FIELD_MANAGER, force=True,
                         _content_type=APPLY, _request_timeout=TIMEOUT_SECONDS)
        return int(applied.metadata.generation)
