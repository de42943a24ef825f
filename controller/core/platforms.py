"""The registry of target platforms: one line per platform (core/platform.py says what one is)."""

from __future__ import annotations

import typing

from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import platform
from controller.core import platform_kubernetes
from controller.core import platform_railway
from controller.core import platform_scale

PLATFORMS: tuple[platform.Platform, ...] = (
    platform_kubernetes.PLATFORM,
    platform_railway.PLATFORM,
    platform_scale.PLATFORM,
)
BY_NAME: dict[str, platform.Platform] = {p.name: p for p in PLATFORMS}
# Conditions of the platforms' own whose transitions are worth an Event (core/status.ANNOUNCED).
ANNOUNCED: dict[str, frozenset[str] | None] = {k: v for p in PLATFORMS for k, v in p.announced.items()}
# Workloads the operator watches through the API server (the others are polled by their platform).
WATCHED_KINDS = platform_kubernetes.KINDS
workload_from = platform_kubernetes.workload_from


def of_service(target: monitoredservice.Target) -> platform.Ref:
    """A MonitoredService's target (the schema requires exactly one, so one platform owns it)."""
    for candidate in PLATFORMS:
        ref = candidate.of_service(target)
        if ref is not None:
            return ref
    raise ValueError("no platform owns this target")  # the schema makes this unreachable


def of_policy(ref: scalingpolicy.TargetRef) -> platform.Ref | None:
    """A ScalingPolicy's direct target; None when it names a MonitoredService instead."""
    for candidate in PLATFORMS:
        found = candidate.of_policy(ref)
        if found is not None:
            return found
    return None


def of_kind(kind: str) -> platform.Platform | None:
    """The platform whose workloads go by this world kind."""
    return next((candidate for candidate in PLATFORMS if candidate.owns(kind)), None)


def offers(kind: str) -> platform.Offers:
    found = of_kind(kind)
    return found.offers(kind) if found is not None else platform.Offers(scale=False)


def of(ref: platform.Ref) -> platform.Platform:
    return BY_NAME[ref.platform]


def references(raw_target: typing.Mapping[str, typing.Any]) -> tuple[str, str] | None:
    """(kind, name) of the watched workload a raw target names, if any platform's."""
    for candidate in PLATFORMS:
        found = candidate.references(raw_target)
        if found is not None:
            return found
    return None
