"""The actuator of any object with a `scale` subresource (core/platform_scale.py).

The resource is found through the API server's discovery (its group's preferred version must
serve `<resource>/scale`); each poll reads the object's scale (spec.replicas, status.selector)
and counts the selector's ready pods; scaling patches the scale's spec.replicas, as HPA does.
RBAC is the cluster admin's opt-in per resource: `get` and `patch` on `<resource>/scale`
(docs/platforms.md; the chart's `scaleTargets` value); pods are already listed for the
metrics API.
"""

from __future__ import annotations

import time
import typing

import kubernetes

from controller.adapters import boundary
from controller.adapters import kubernetes_scale
from controller.core import platform_scale
from controller.core import selectors
from controller.core import world as world_module

TIMEOUT_SECONDS = (5, 20)
DISCOVERY_TTL_SECONDS = 300.0
MERGE_PATCH = "application/merge-patch+json"
Run = typing.Callable[..., typing.Awaitable[typing.Any]]
Key = tuple[str, str, str]  # namespace, world kind, name


class ScaleError(Exception):
    """The resource is not served, has no scale subresource, or its scale is unreadable."""


class ScaleActuator:
    errors: tuple[type[Exception], ...] = (kubernetes.client.ApiException, ScaleError)

    def __init__(self, api_client: kubernetes.client.ApiClient, on_write: typing.Callable[[str], None], run: Run,
                 monotonic: typing.Callable[[], float] = time.monotonic) -> None:
        self._client = api_client
        self._custom: typing.Any = kubernetes.client.CustomObjectsApi(api_client)
        self._apis: typing.Any = kubernetes.client.ApisApi(api_client)
        self._core: typing.Any = kubernetes.client.CoreV1Api(api_client)
        self._on_write, self._run, self._monotonic = on_write, run, monotonic
        self._versions: dict[tuple[str, str], tuple[str, float]] = {}  # (group, resource) -> (version, found at)

    # -- discovery --------------------------------------------------------------------------
    def version(self, group: str, resource: str) -> str:
        """The group's preferred version, once it is known to serve `<resource>/scale`."""
        known = self._versions.get((group, resource))
        if known is not None and self._monotonic() - known[1] < DISCOVERY_TTL_SECONDS:
            return known[0]
        groups = self._client.sanitize_for_serialization(self._apis.get_api_versions(_request_timeout=TIMEOUT_SECONDS))
        preferred = next((g.get("preferredVersion", {}).get("version") for g in groups.get("groups") or []
                          if g.get("name") == group), None)
        if not preferred:
            raise ScaleError(f"the API server serves no group {group}")
        listed = self._client.sanitize_for_serialization(
            self._custom.get_api_resources(group, preferred, _request_timeout=TIMEOUT_SECONDS))
        names = {r.get("name"): r for r in listed.get("resources") or []}
        if resource not in names:
            raise ScaleError(f"the API server serves no resource {resource} in {group}/{preferred}")
        if not names[resource].get("namespaced"):
            raise ScaleError(f"{resource}.{group} is not namespaced")
        if f"{resource}/scale" not in names:
            raise ScaleError(f"{resource}.{group} has no scale subresource")
        self._versions[(group, resource)] = (preferred, self._monotonic())
        return str(preferred)

    # -- observation (polled: operator/polled.py) ---------------------------------------------
    def read(self, namespace: str, kind: str, name: str) -> world_module.Workload:
        group, resource = platform_scale.split_kind(kind)
        version = self.version(group, resource)
        try:
            scale = self._client.sanitize_for_serialization(self._custom.get_namespaced_custom_object_scale(
                group, version, namespace, resource, name, _request_timeout=TIMEOUT_SECONDS))
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                self._versions.pop((group, resource), None)  # perhaps the CRD went: discover again
                raise ScaleError(f"not found ({error.status})") from None
            if error.status == 403:
                raise ScaleError(f"the operator may not get {resource}/scale in {group} (RBAC is opt-in per resource: "
                                 "docs/platforms.md)") from None
            raise
        spec, status = scale.get("spec") or {}, scale.get("status") or {}
        text = status.get("selector")
        selector = platform_scale.parse_selector(text) if isinstance(text, str) and text else None
        ready = self._ready_pods(namespace, str(text)) if selector is not None and not selector.empty else 0
        # A Scale's spec.replicas is omitted when 0 (omitempty): absent is zero, so a target scaled
        # to zero stays a target the activation metric can wake.
        replicas = spec.get("replicas", 0)
        return world_module.Workload(
            kind=kind, namespace=namespace, name=name,
            replicas=replicas if isinstance(replicas, int) and not isinstance(replicas, bool) else None,
            ready_replicas=ready, available_replicas=ready, updated_replicas=ready,
            uid=str((scale.get("metadata") or {}).get("uid") or ""),
            selector=selector if selector is not None else selectors.Selector())

    def _ready_pods(self, namespace: str, selector: str) -> int:
        pods = self._client.sanitize_for_serialization(self._core.list_namespaced_pod(
            namespace, label_selector=selector, _request_timeout=TIMEOUT_SECONDS))
        return sum(1 for pod in pods.get("items") or []
                   if not (pod.get("metadata") or {}).get("deletionTimestamp")
                   and any(c.get("type") == "Ready" and c.get("status") == "True"
                           for c in (pod.get("status") or {}).get("conditions") or []))

    async def observe(self, keys: typing.Sequence[Key]) -> dict[Key, world_module.Workload | str]:
        """Each target as last read, or why it cannot be read (that target's own error)."""
        found: dict[Key, world_module.Workload | str] = {}
        for key in keys:
            try:
                found[key] = await self._run(self.read, *key)
            except ScaleError as error:
                found[key] = str(error)
            except kubernetes.client.ApiException as error:
                found[key] = f"{error.status} {error.reason}"
            except Exception as failure:  # a timeout, a broken answer: this target's error alone
                found[key] = boundary.failed(failure, "a scale target's poll", key)
        return found

    # -- actuation ----------------------------------------------------------------------------
    def _patch(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        group, resource = platform_scale.split_kind(kind)
        version = self.version(group, resource)
        self._on_write("patch")
        scale = self._client.sanitize_for_serialization(self._custom.patch_namespaced_custom_object_scale(
            group, version, namespace, resource, name, {"spec": {"replicas": replicas}},
            field_manager=kubernetes_scale.FIELD_MANAGER, _content_type=MERGE_PATCH, _request_timeout=TIMEOUT_SECONDS))
        written = (scale.get("spec") or {}).get("replicas")
        return written if isinstance(written, int) else replicas

    async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        written: int = await self._run(self._patch, kind, namespace, name, replicas)
        return written

    async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str:
        raise ScaleError("a scale subresource has no revisions to roll back")

    async def apply_probes(self, kind: str, namespace: str, name: str, body: dict[str, typing.Any]) -> int:
        raise ScaleError("a scale subresource has no pod template to manage probes on")

    async def close(self) -> None:
        return None  # the API client is the runtime's
