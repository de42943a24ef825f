"""Railway services as a platform: a workload of the operator's world, its readiness, its offers.

Railway services are workloads of kind "Railway" named "<environmentId>/<serviceId>"; the
Railway watcher (operator/railway.py) polls them into the world, and everything else (readiness,
scaling, the rollout guard) reads them like a Deployment through this platform.
"""

from __future__ import annotations

import typing

from controller import reasons
from controller.api import common
from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import conditions
from controller.core import platform
from controller.core import sources
from controller.core import world as world_module

NAME = "railway"
KIND = "Railway"


def name(railway: monitoredservice.RailwayTarget) -> str:
    """The workload name a Railway service goes by in the world: environment and service."""
    return f"{railway.environmentId}/{railway.serviceId}"


def _service_id(ref: platform.Ref) -> str:
    return ref.name.split("/", 1)[-1]


class Railway:
    name = NAME
    source = sources.RAILWAY
    # Its own condition worth an Event on every transition (core/status.ANNOUNCED).
    announced: typing.Mapping[str, frozenset[str] | None] = {reasons.RAILWAY_CONFIGURED: None}

    @staticmethod
    def owns(kind: str) -> bool:
        return kind == KIND

    @staticmethod
    def of_service(target: monitoredservice.Target) -> platform.Ref | None:
        railway = target.railway
        if railway is None:
            return None
        return platform.Ref(NAME, KIND, name(railway), f"Railway/{railway.serviceId}")

    @staticmethod
    def of_policy(ref: scalingpolicy.TargetRef) -> platform.Ref | None:
        return None  # a Railway service is scaled through its MonitoredService

    @staticmethod
    def secrets(target: monitoredservice.Target) -> list[tuple[common.SecretKeyRef, str]]:
        return [(target.railway.tokenSecretRef, "Railway token")] if target.railway is not None else []

    @staticmethod
    def judge(namespace: str, ref: platform.Ref, world: world_module.World
              ) -> tuple[world_module.Workload | None, conditions.ConditionChange]:
        """The service as last polled (None when not known) and its Ready condition."""
        service = _service_id(ref)
        key = (namespace, KIND, ref.name)
        error = world.platform_errors.get(key)
        found = world.workload(namespace, KIND, ref.name)
        if error is not None:
            return None, platform.ready(False, reasons.RAILWAY_UNAVAILABLE, f"Railway service {service}: {error}")
        if found is None:
            return None, conditions.ConditionChange(reasons.READY, "Unknown", reasons.AWAITING_OBSERVATION,
                                                    f"waiting for Railway to answer about service {service}")
        limited = world.platform_stale.get(key)
        if limited is not None:
            return found, platform.ready(True, reasons.RAILWAY_RATE_LIMITED,
                                         f"Railway service {service} found; last known state kept: {limited}")
        return found, platform.ready(True, reasons.TARGET_FOUND, f"Railway service {service} found")

    @staticmethod
    def offers(kind: str) -> platform.Offers:
        return platform.Offers(scale=True, rollback=True, probes=False)

    @staticmethod
    def references(raw_target: typing.Mapping[str, typing.Any]) -> tuple[str, str] | None:
        return None  # the watcher marks a service's objects when its poll changes anything


PLATFORM = Railway()
