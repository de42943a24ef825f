"""What a target platform is to the core: how a target resolves, is judged, what it offers.

A platform (Kubernetes workloads, Railway services, any object with a `/scale` subresource)
is one file in the core implementing `Platform`, one line in `core/platforms.py`, and an
actuator in adapters (`adapters/actuator.py`). Everything else — readiness, targets, the
scaler, the rollout guard, probe management, the view's index — asks the registry and never
names a platform.
"""

from __future__ import annotations

import dataclasses
import typing

from controller import reasons
from controller.api import common
from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import conditions
from controller.core import world as world_module


@dataclasses.dataclass(frozen=True)
class Ref:
    """A resolved target: the platform that owns it and the workload it goes by in the world."""

    platform: str
    kind: str
    name: str
    display: str  # what status.target says: "Deployment/web", "Railway/<serviceId>"


@dataclasses.dataclass(frozen=True)
class Offers:
    """What a platform can do to a workload of one kind."""

    scale: bool = True
    rollback: bool = False
    probes: bool = False
    gate: bool = False  # a rollout held until pre-deploy hooks pass (pause, resume, restore a template)


class Platform(typing.Protocol):
    name: str
    source: str  # the metric source its targets offer (core/sources.py)
    announced: typing.Mapping[str, frozenset[str] | None]  # its own conditions worth an Event (core/status)

    def owns(self, kind: str) -> bool:
        """Whether a workload of this world kind is this platform's."""
        ...

    def of_service(self, target: monitoredservice.Target) -> Ref | None:
        """A MonitoredService's target, when it is this platform's."""
        ...

    def of_policy(self, ref: scalingpolicy.TargetRef) -> Ref | None:
        """A ScalingPolicy's direct target, when it is this platform's."""
        ...

    def secrets(self, target: monitoredservice.Target) -> list[tuple[common.SecretKeyRef, str]]:
        """Secrets a MonitoredService's target needs, with their purpose (said when missing)."""
        ...

    def judge(self, namespace: str, ref: Ref, world: world_module.World
              ) -> tuple[world_module.Workload | None, conditions.ConditionChange]:
        """The workload as last observed (None when not known) and its Ready condition."""
        ...

    def offers(self, kind: str) -> Offers: ...

    def references(self, raw_target: typing.Mapping[str, typing.Any]) -> tuple[str, str] | None:
        """(kind, name) of the watched workload a raw (unparsed) target names, for the view's
        index of who depends on what; None when the platform marks its dependents itself."""
        ...


def ready(status: bool, reason: str, message: str) -> conditions.ConditionChange:
    return conditions.ConditionChange(reasons.READY, "True" if status else "False", reason, message)


def judge_watched(namespace: str, ref: Ref, world: world_module.World
                  ) -> tuple[world_module.Workload | None, conditions.ConditionChange]:
    """The judgement of a workload the operator watches: found, or not found."""
    found = world.workload(namespace, ref.kind, ref.name)
    if found is None:
        return None, ready(False, reasons.TARGET_NOT_FOUND, f"{ref.kind} {namespace}/{ref.name} not found")
    return found, ready(True, reasons.TARGET_FOUND, f"{ref.kind} {ref.name} found")
