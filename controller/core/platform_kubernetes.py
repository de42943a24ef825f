"""Kubernetes workloads (Deployment, StatefulSet) as a platform: watched, scaled through their
`scale` subresource, a Deployment rolled back as `kubectl rollout undo` does, probes applied."""

from __future__ import annotations

import typing

from controller.api import common
from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import conditions
from controller.core import platform
from controller.core import predeploy
from controller.core import selectors
from controller.core import sources
from controller.core import world as world_module

NAME = "kubernetes"
KINDS = ("Deployment", "StatefulSet")
_OFFERS = {"Deployment": platform.Offers(scale=True, rollback=True, probes=True, gate=True),
           "StatefulSet": platform.Offers(scale=True, rollback=False, probes=True)}


class Kubernetes:
    name = NAME
    source = sources.METRICS_API
    announced: typing.Mapping[str, frozenset[str] | None] = {}  # conditions of its own worth an Event

    @staticmethod
    def owns(kind: str) -> bool:
        return kind in KINDS

    @staticmethod
    def _ref(kind: str, name: str) -> platform.Ref:
        return platform.Ref(NAME, kind, name, f"{kind}/{name}")

    def of_service(self, target: monitoredservice.Target) -> platform.Ref | None:
        ref = target.kubernetes
        return self._ref(ref.kind, ref.name) if ref is not None else None

    def of_policy(self, ref: scalingpolicy.TargetRef) -> platform.Ref | None:
        workload = ref.kubernetes
        return self._ref(workload.kind, workload.name) if workload is not None else None

    @staticmethod
    def secrets(target: monitoredservice.Target) -> list[tuple[common.SecretKeyRef, str]]:
        return []

    @staticmethod
    def judge(namespace: str, ref: platform.Ref, world: world_module.World
              ) -> tuple[world_module.Workload | None, conditions.ConditionChange]:
        return platform.judge_watched(namespace, ref, world)

    @staticmethod
    def offers(kind: str) -> platform.Offers:
        return _OFFERS.get(kind, platform.Offers(scale=False))

    @staticmethod
    def references(raw_target: typing.Mapping[str, typing.Any]) -> tuple[str, str] | None:
        workload = raw_target.get("kubernetes") or {}
        if not isinstance(workload, dict) or not workload.get("name"):
            return None
        return str(workload.get("kind", "Deployment")), str(workload["name"])


def workload_from(obj: typing.Mapping[str, typing.Any]) -> world_module.Workload:
    """A watched Deployment or StatefulSet as the core sees it."""
    meta, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status") or {}
    progressing: typing.Mapping[str, typing.Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "Progressing"), {})
    return world_module.Workload(
        kind=obj.get("kind", ""),
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        replicas=spec.get("replicas"),
        ready_replicas=status.get("readyReplicas") or 0,
        generation=meta.get("generation") or 0,
        observed_generation=status.get("observedGeneration") or 0,
        revision=(meta.get("annotations") or {}).get("deployment.kubernetes.io/revision"),
        updated_replicas=status.get("updatedReplicas") or 0,
        available_replicas=status.get("availableReplicas") or 0,
        paused=bool(spec.get("paused")),
        deadline_exceeded=progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded",
        uid=meta.get("uid", ""),
        containers=tuple(
            world_module.Container(c.get("name", ""), c.get("readinessProbe"), c.get("livenessProbe"))
            for c in (spec.get("template") or {}).get("spec", {}).get("containers") or []),
        selector=selectors.parse(spec.get("selector")),
        template_digest=predeploy.template_digest(spec.get("template")) if spec.get("template") else None,
    )


PLATFORM = Kubernetes()
