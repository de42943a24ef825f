"""Any object with a `scale` subresource as a platform (what a HorizontalPodAutoscaler scales:
Argo Rollouts, KServe, a custom resource).

A target `{apiGroup, resource, name}` goes by the world kind "<resource>.<apiGroup>"; its
actuator (adapters/actuator_scale.py) finds the resource through the API server's discovery,
reads its `scale` subresource (spec.replicas, status.selector) and counts the selector's ready
pods, and patches the scale's spec.replicas. It offers scaling only: no rollback, no probes.
"""

from __future__ import annotations

import re
import typing

from controller import reasons
from controller.api import common
from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import conditions
from controller.core import platform
from controller.core import selectors
from controller.core import sources
from controller.core import world as world_module

NAME = "scale"


def kind_of(api_group: str, resource: str) -> str:
    """The world kind of a scale target: "<resource>.<apiGroup>", as kubectl names a resource."""
    return f"{resource}.{api_group}"


def split_kind(kind: str) -> tuple[str, str]:
    """(apiGroup, resource) of a world kind made by `kind_of`."""
    resource, _, group = kind.partition(".")
    return group, resource


class Scale:
    name = NAME
    source = sources.METRICS_API  # the scale's selector picks the pods, as for a Deployment

    @staticmethod
    def owns(kind: str) -> bool:
        return "." in kind

    @staticmethod
    def of_service(target: monitoredservice.Target) -> platform.Ref | None:
        return None  # named by a ScalingPolicy directly (admission checks its author on that object)

    @staticmethod
    def of_policy(ref: scalingpolicy.TargetRef) -> platform.Ref | None:
        scale = ref.scale
        if scale is None:
            return None
        kind = kind_of(scale.apiGroup, scale.resource)
        return platform.Ref(NAME, kind, scale.name, f"{kind}/{scale.name}")

    @staticmethod
    def secrets(target: monitoredservice.Target) -> list[tuple[common.SecretKeyRef, str]]:
        return []

    @staticmethod
    def judge(namespace: str, ref: platform.Ref, world: world_module.World
              ) -> tuple[world_module.Workload | None, conditions.ConditionChange]:
        key = (namespace, ref.kind, ref.name)
        error = world.platform_errors.get(key)
        if error is not None:
            return None, platform.ready(False, reasons.TARGET_NOT_FOUND, f"{ref.kind} {namespace}/{ref.name}: {error}")
        found = world.workload(namespace, ref.kind, ref.name)
        if found is None:
            return None, conditions.ConditionChange(reasons.READY, "Unknown", reasons.AWAITING_OBSERVATION,
                                                    f"reading the scale of {ref.kind} {ref.name}")
        return found, platform.ready(True, reasons.TARGET_FOUND, f"{ref.kind} {ref.name} found")

    @staticmethod
    def offers(kind: str) -> platform.Offers:
        return platform.Offers(scale=True, rollback=False, probes=False)

    @staticmethod
    def references(raw_target: typing.Mapping[str, typing.Any]) -> tuple[str, str] | None:
        return None  # polled: the poller marks the target's policies when its scale changes


PLATFORM = Scale()

_REQUIREMENT = re.compile(r"^\s*(!?)([A-Za-z0-9_./-]+)\s*(?:(==|=|!=)\s*([A-Za-z0-9_.-]*)|"
                          r"\s(in|notin)\s*\(([^)]*)\))?\s*$")


def parse_selector(text: str) -> selectors.Selector | None:
    """A scale's status.selector (the label selector's string form, as `kubectl get -l` takes
    it) as a Selector; None when it cannot be read (then no pods are its pods)."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    labels: list[tuple[str, str]] = []
    expressions: list[tuple[str, str, tuple[str, ...]]] = []
    for part in parts:
        if not part.strip():
            continue
        match = _REQUIREMENT.match(part)
        if match is None:
            return None
        negated, key, operator, value, set_operator, values = match.groups()
        if negated:
            if operator or set_operator:
                return None
            expressions.append((key, "DoesNotExist", ()))
        elif operator in ("=", "=="):
            labels.append((key, value or ""))
        elif operator == "!=":
            expressions.append((key, "NotIn", (value or "",)))
        elif set_operator:
            expressions.append((key, "In" if set_operator == "in" else "NotIn",
                                tuple(v.strip() for v in values.split(",") if v.strip())))
        else:
            expressions.append((key, "Exists", ()))
    return selectors.Selector(tuple(sorted(labels)), tuple(expressions))
