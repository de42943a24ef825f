"""A Railway service instance's configuration as its MonitoredService says: what to send.

Pure: the Railway target's spec and the instance as Railway reports it give the changes to
send (only fields that differ, so a steady state sends nothing), the words of the Event that
announces them, and the RailwayConfigured condition. The watcher (operator/railway.py) reads,
sends and reports; the documents are in adapters/railway.py.
"""

from __future__ import annotations

import dataclasses
import math
import typing

from controller import reasons
from controller.api import monitoredservice
from controller.core import conditions

# Railway reports limits as floats it may have rounded: equal within this is the same limit.
RELATIVE_TOLERANCE = 1e-3


@dataclasses.dataclass(frozen=True)
class Observed:
    """The instance as Railway reports it. `limits_known` is False when Railway's answer held no
    readable limits (nothing is then sent for them: a write we cannot confirm would repeat)."""

    healthcheck_path: str | None = None
    healthcheck_timeout: int | None = None
    pre_deploy_command: tuple[str, ...] | None = None
    memory_gb: float | None = None
    vcpus: float | None = None
    limits_known: bool = False
    sleep_application: bool | None = None  # Railway's Serverless (scale to zero on Railway)


@dataclasses.dataclass(frozen=True)
class Changes:
    """What to send: ServiceInstanceUpdateInput fields, ServiceInstanceLimitsUpdateInput fields
    (without the ids), and one line per change for the Event."""

    instance: typing.Mapping[str, typing.Any] = dataclasses.field(default_factory=dict)
    limits: typing.Mapping[str, float] = dataclasses.field(default_factory=dict)
    summary: tuple[str, ...] = ()
    unreadable: str | None = None  # a wanted part Railway did not report (not sent)

    def __bool__(self) -> bool:
        return bool(self.instance or self.limits)

    def key(self) -> tuple[typing.Any, ...]:
        """The same changes compare equal (the watcher does not send the same twice in a row soon)."""
        return (tuple(sorted((k, repr(v)) for k, v in self.instance.items())), tuple(sorted(self.limits.items())))


def managed(target: monitoredservice.RailwayTarget) -> bool:
    """Whether the spec manages any of the instance's configuration."""
    return (target.resources is not None or target.deployHealthCheck is not None or target.preDeployCommand is not None
            or target.sleepApplication is not None)


def wants_limits(target: monitoredservice.RailwayTarget) -> bool:
    return target.resources is not None


def desired(target: monitoredservice.RailwayTarget) -> dict[str, typing.Any]:
    """The managed fields by Railway's names, for comparing two specs (several MonitoredServices
    may name the same Railway service: they must agree)."""
    wanted: dict[str, typing.Any] = {}
    if target.resources is not None:
        if target.resources.memoryGB is not None:
            wanted["memoryGB"] = target.resources.memoryGB
        if target.resources.vCPUs is not None:
            wanted["vCPUs"] = target.resources.vCPUs
    if target.deployHealthCheck is not None:
        wanted["healthcheckPath"] = target.deployHealthCheck.path
        if target.deployHealthCheck.timeoutSeconds is not None:
            wanted["healthcheckTimeout"] = target.deployHealthCheck.timeoutSeconds
    if target.preDeployCommand is not None:
        wanted["preDeployCommand"] = list(target.preDeployCommand)
    if target.sleepApplication is not None:
        wanted["sleepApplication"] = target.sleepApplication
    return wanted


def _same(a: float, b: float | None) -> bool:
    return b is not None and math.isclose(a, b, rel_tol=RELATIVE_TOLERANCE, abs_tol=1e-9)


def _show(value: typing.Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)[:120]


def changes(target: monitoredservice.RailwayTarget, observed: Observed) -> Changes:
    """The fields whose wanted value differs from what Railway reports."""
    wanted = desired(target)
    instance: dict[str, typing.Any] = {}
    limits: dict[str, float] = {}
    summary: list[str] = []
    unreadable = None
    current = {"healthcheckPath": observed.healthcheck_path, "healthcheckTimeout": observed.healthcheck_timeout,
               "preDeployCommand": list(observed.pre_deploy_command) if observed.pre_deploy_command is not None else None,
               "memoryGB": observed.memory_gb, "vCPUs": observed.vcpus, "sleepApplication": observed.sleep_application}
    for name, value in wanted.items():
        if name in ("memoryGB", "vCPUs"):
            if not observed.limits_known:
                unreadable = "Railway did not report the instance's limits (serviceInstanceLimits): they are not changed"
                continue
            if _same(value, observed.memory_gb if name == "memoryGB" else observed.vcpus):
                continue
            limits[name] = float(value)
        elif current[name] == value:
            continue
        else:
            instance[name] = value
        # Commands are not echoed (an Event and a log line are read more widely than the spec).
        summary.append(f"{name} changed" if name == "preDeployCommand" else
                       f"{name} {_show(current[name])} -> {_show(value)}")
    return Changes(instance, limits, tuple(summary), unreadable)


def in_sync(change: Changes) -> conditions.ConditionChange:
    if change.unreadable:
        return conditions.ConditionChange(reasons.RAILWAY_CONFIGURED, "False", reasons.RAILWAY_CONFIG_UNREADABLE,
                                          change.unreadable)
    return conditions.ConditionChange(reasons.RAILWAY_CONFIGURED, "True", reasons.RAILWAY_CONFIG_IN_SYNC,
                                      "the Railway instance's configuration is as the spec says")


def applied(change: Changes) -> str:
    """The Event's message for changes Railway accepted."""
    return ("Railway instance configured: " + "; ".join(change.summary) +
            " (applied with the service's next deploy)")[:1024]


def refused(change: Changes, why: str) -> conditions.ConditionChange:
    return conditions.ConditionChange(reasons.RAILWAY_CONFIGURED, "False", reasons.RAILWAY_CONFIG_REFUSED,
                                      f"Railway refused {', '.join(s.split(' ', 1)[0] for s in change.summary)}: {why}"[:1024])


def conflict(names: typing.Sequence[str]) -> conditions.ConditionChange:
    return conditions.ConditionChange(
        reasons.RAILWAY_CONFIGURED, "False", reasons.RAILWAY_CONFIG_CONFLICT,
        f"MonitoredServices {', '.join(sorted(names))} name this Railway service with different configurations: "
        "none is applied")


def not_managed() -> conditions.ConditionChange:
    return conditions.ConditionChange(reasons.RAILWAY_CONFIGURED, "True", reasons.NOT_MANAGED,
                                      "the spec manages none of the Railway instance's configuration")
