"""The Kubernetes actuator: the `scale` subresource, `kubectl rollout undo`, probes by apply.

Each call is a blocking client call run in the caller's actuation pool (`run`), so a slow
patch never holds the threads status writes need.
"""

from __future__ import annotations

import typing

import kubernetes

from controller.adapters import kubernetes_probes
from controller.adapters import kubernetes_rollback
from controller.adapters import kubernetes_scale

Run = typing.Callable[..., typing.Awaitable[typing.Any]]


class KubernetesActuator:
    errors: tuple[type[Exception], ...] = (kubernetes.client.ApiException, kubernetes_rollback.RollbackError)

    def __init__(self, scale: kubernetes_scale.BlockingScaleTarget, rollback: kubernetes_rollback.KubernetesRollback,
                 probes: kubernetes_probes.ProbeTarget, run: Run) -> None:
        self.scale, self.rollbacks, self.probes, self.run = scale, rollback, probes, run

    @classmethod
    def of_client(cls, api_client: kubernetes.client.ApiClient, on_write: typing.Callable[[str], None],
                  run: Run) -> "KubernetesActuator":
        return cls(kubernetes_scale.KubernetesScale(api_client, on_write),
                   kubernetes_rollback.KubernetesRollback(api_client, on_write),
                   kubernetes_probes.KubernetesProbes(api_client, on_write), run)

    async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        replicas_now: int = await self.run(self.scale.set_replicas, kind, namespace, name, replicas)
        return replicas_now

    async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str:
        revision: str = await self.run(self.rollbacks.rollback, namespace, name, failed_revision)
        return revision

    async def apply_probes(self, kind: str, namespace: str, name: str, body: dict[str, typing.Any]) -> int:
        generation: int = await self.run(self.probes.apply, kind, namespace, name, body)
        return generation

    async def close(self) -> None:
        return None  # the API client is the runtime's, closed with it
