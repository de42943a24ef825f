"""cpu and memory of a workload from the metrics API, computed the way HPA does.

HPA's resource metric (`GetResourceUtilizationRatio`): the usage of the workload's pods summed,
divided by the sum of their containers' requests, in percent. Only pods that are Ready and
have a usage sample count (a starting pod has neither a settled usage nor traffic); a pod
whose containers lack a request for the resource makes the value undefined, and says so.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing

from controller.core import scaling
from controller.core import selectors

RESOURCES = ("cpu", "memory")


@dataclasses.dataclass(frozen=True)
class Pod:
    name: str
    labels: typing.Mapping[str, str]
    ready: bool
    requests: typing.Mapping[str, float | None]  # resource -> sum over containers; None if any lacks one


@dataclasses.dataclass(frozen=True)
class Usage:
    """One PodMetrics item: usage per resource (cores, bytes) and when it was sampled."""

    usage: typing.Mapping[str, float]
    sampled_at: datetime.datetime | None


def utilization(
    resource: str, selector: selectors.Selector, pods: typing.Iterable[Pod], usage: typing.Mapping[str, Usage],
) -> scaling.Sample:
    """Percent of requests used by the selected ready pods; "no data" when none has a sample."""
    used = requested = 0.0
    oldest: datetime.datetime | None = None
    counted = 0
    for pod in pods:
        if not pod.ready or not selectors.matches(selector, pod.labels):
            continue
        sample = usage.get(pod.name)
        if sample is None or resource not in sample.usage:
            continue
        request = pod.requests.get(resource)
        if not request:
            return scaling.Sample(None, None, f"missing request for {resource} on pod {pod.name}")
        used += sample.usage[resource]
        requested += request
        counted += 1
        if sample.sampled_at is not None and (oldest is None or sample.sampled_at < oldest):
            oldest = sample.sampled_at
    if counted == 0:
        return scaling.Sample(None, None)
    return scaling.Sample(100.0 * used / requested, oldest)
