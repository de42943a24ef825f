"""The pre-deploy gate's writes on a Deployment (core/predeploy.py decides them).

Pause or unpause it, and restore its approved template, each as one JSON patch applied only to
the very object it was read as (`test` ops on uid and resourceVersion: kubernetes_rollback.
guarded), so an edit made between the read and the write is never overwritten and a template
changed since it was approved is never unpaused. Every write is fenced (`on_write`).
"""

from __future__ import annotations

import typing

import kubernetes

from controller.adapters import boundary
from controller.adapters import kubernetes_rollback as rollback
from controller.core import predeploy

TIMEOUT_SECONDS = (5, 20)
Run = typing.Callable[..., typing.Awaitable[typing.Any]]


class GateError(Exception):
    """The gate's read or patch failed, or the Deployment changed since it was read: the next
    tick decides again."""


def _typed(error: Exception) -> typing.NoReturn:
    raise GateError(boundary.describe(error)) from None


class BlockingGate:
    def __init__(self, api_client: kubernetes.client.ApiClient, on_write: typing.Callable[[str], None]) -> None:
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self._client = api_client
        self._on_write = on_write

    def _read(self, namespace: str, name: str, uid: str) -> dict[str, typing.Any]:
        deployment: dict[str, typing.Any] = self._client.sanitize_for_serialization(
            self._apps.read_namespaced_deployment(name, namespace, _request_timeout=TIMEOUT_SECONDS))
        if uid and deployment["metadata"].get("uid") != uid:
            raise GateError(f"Deployment {name} was recreated since it was judged")
        return deployment

    def _patch(self, namespace: str, name: str, deployment: typing.Mapping[str, typing.Any],
               patch: list[dict[str, typing.Any]]) -> None:
        self._on_write("patch")
        try:
            self._apps.patch_namespaced_deployment(name, namespace, rollback.guarded(deployment, patch),
                                                   _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException as error:
            # A failed `test` op is a bare 422, as an invalid patch is: read again to tell them apart.
            if error.status in (409, 422) and rollback.changed(deployment, self._client.sanitize_for_serialization(
                    self._apps.read_namespaced_deployment(name, namespace, _request_timeout=TIMEOUT_SECONDS))):
                raise GateError(f"Deployment {name} changed while its patch was prepared; not applied") from None
            raise GateError(f"{error.status} {error.reason}") from None

    @boundary.contained("a pre-deploy gate patch", _typed, (GateError,))
    def pause(self, namespace: str, name: str, uid: str, paused: bool, digest: str) -> bool:
        """Set spec.paused, only while the template is still the one decided on (`digest`):
        True when the Deployment is (now) so, False when its template changed meanwhile."""
        deployment = self._read(namespace, name, uid)
        if predeploy.template_digest(deployment["spec"].get("template")) != digest:
            return False
        if bool(deployment["spec"].get("paused")) == paused:
            return True
        self._patch(namespace, name, deployment, [{"op": "add", "path": "/spec/paused", "value": paused}])
        return True

    @boundary.contained("a pre-deploy restore", _typed, (GateError, rollback.RollbackError))
    def restore(self, namespace: str, name: str, uid: str, approved: str) -> str:
        """Put the Deployment back on the approved template ("" when it is on it already)."""
        deployment = self._read(namespace, name, uid)
        if predeploy.template_digest(deployment["spec"].get("template")) == approved:
            return ""
        selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"].get("matchLabels", {}).items())
        replica_sets = self._client.sanitize_for_serialization(self._apps.list_namespaced_replica_set(
            namespace, label_selector=selector, _request_timeout=TIMEOUT_SECONDS)).get("items", [])
        revision, patch = rollback.build_restore_patch(deployment, replica_sets, approved)
        self._patch(namespace, name, deployment, patch)
        return revision


class KubernetesGate:
    """The guard's DeploymentGate (operator/guard.py): the blocking calls in a pool."""

    errors: tuple[type[Exception], ...] = (GateError, rollback.RollbackError)

    def __init__(self, blocking: BlockingGate, run: Run) -> None:
        self.blocking, self.run = blocking, run

    @classmethod
    def of_client(cls, api_client: kubernetes.client.ApiClient, on_write: typing.Callable[[str], None],
                  run: Run) -> "KubernetesGate":
        return cls(BlockingGate(api_client, on_write), run)

    async def pause(self, namespace: str, name: str, uid: str, paused: bool, digest: str) -> bool:
        done: bool = await self.run(self.blocking.pause, namespace, name, uid, paused, digest)
        return done

    async def restore(self, namespace: str, name: str, uid: str, approved: str) -> str:
        revision: str = await self.run(self.blocking.restore, namespace, name, uid, approved)
        return revision
