"""A Railway service as a workload of the operator's world: its kind, its name, its readiness.

Railway services are workloads of kind "Railway" named "<environmentId>/<serviceId>"; the
Railway watcher (operator/railway.py) puts them in the world, and everything else (readiness,
scaling, the rollout guard) reads them like a Deployment through these names.
"""

from __future__ import annotations

from controller import reasons
from controller.api import monitoredservice
from controller.core import conditions
from controller.core import world as world_module

KIND = "Railway"


def name(railway: monitoredservice.RailwayTarget) -> str:
    """The workload name a Railway service goes by in the world: environment and service."""
    return f"{railway.environmentId}/{railway.serviceId}"


def judge(namespace: str, railway: monitoredservice.RailwayTarget, world: world_module.World
          ) -> tuple[world_module.Workload | None, conditions.ConditionChange]:
    """The service as last polled (None when not known) and its Ready condition."""
    workload_name = name(railway)
    error = world.railway_errors.get((namespace, workload_name))
    found = world.workload(namespace, KIND, workload_name)
    if error is not None:
        return None, _ready(False, reasons.RAILWAY_UNAVAILABLE, f"Railway service {railway.serviceId}: {error}")
    if found is None:
        return None, conditions.ConditionChange(reasons.READY, "Unknown", reasons.AWAITING_OBSERVATION,
                                                f"waiting for Railway to answer about service {railway.serviceId}")
    limited = world.railway_limited.get((namespace, workload_name))
    if limited is not None:
        return found, _ready(True, reasons.RAILWAY_RATE_LIMITED,
                             f"Railway service {railway.serviceId} found; last known state kept: {limited}")
    return found, _ready(True, reasons.TARGET_FOUND, f"Railway service {railway.serviceId} found")


def _ready(status: bool, reason: str, message: str) -> conditions.ConditionChange:
    return conditions.ConditionChange(reasons.READY, "True" if status else "False", reason, message)
