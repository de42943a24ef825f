"""A Railway service's replicas per region: read them, and change the total without losing a region.

`numReplicas` on a service instance is Railway's legacy single-region field. A service that
runs in several regions keeps its counts in its deployment's manifest
(`meta.serviceManifest.deploy.multiRegionConfig`: `{"<region>": {"numReplicas": n}}`; a very
old deployment has only `region` and `numReplicas` there), as Railway's CLI reads them.

A scale keeps the regions' proportions (largest remainder) and never drops a region: each
keeps one replica at least, so the platform's floor is the number of regions; and Railway
runs at most `CAP` replicas of a service across all its regions.
"""

from __future__ import annotations

import math
import typing

from controller.core import world

CAP = 50  # Railway: "a maximum of 50 total replicas is supported across all regions"
MAX_REGIONS = 32  # more in an answer is malformed, not a plan
CAP_WHY = f"Railway runs at most {CAP} replicas of a service across all regions"


def from_meta(meta: typing.Any) -> dict[str, int]:
    """Replicas per region from a deployment's meta; {} when it says nothing usable. A region
    mapped to null (the dashboard's way of removing one) or to 0 runs nothing and is left out."""
    deploy = _dig(meta, "serviceManifest", "deploy")
    if not isinstance(deploy, dict):
        return {}
    config = deploy.get("multiRegionConfig")
    if isinstance(config, dict):
        regions: dict[str, int] = {}
        for region, entry in list(config.items())[:MAX_REGIONS]:
            count = entry.get("numReplicas", 1) if isinstance(entry, dict) else None
            if isinstance(region, str) and region and _count(count):
                regions[region] = typing.cast(int, count)
        return regions
    region, count = deploy.get("region"), deploy.get("numReplicas", 1)
    return {region: typing.cast(int, count)} if isinstance(region, str) and region and _count(count) else {}


# Railway documents no zero replicas: what it offers instead is Serverless (the instance's
# sleepApplication), which sleeps a service after 10 minutes without outbound traffic and wakes
# it on the next request. A ScalingPolicy's scale to zero therefore stops at one replica here.
NO_ZERO_WHY = ("Railway runs at least one replica (it has no zero replicas; its Serverless setting, the "
               "MonitoredService's target.railway.sleepApplication, sleeps an idle service itself and wakes it on "
               "a request)")


def limits(regions: typing.Mapping[str, int]) -> world.ReplicaLimits:
    """What Railway allows this service: one replica per region at least (one at least in all),
    CAP in all."""
    if len(regions) > 1:
        return world.ReplicaLimits(floor=len(regions), cap=CAP,
                                   floor_why=f"one replica per region ({len(regions)} regions)", cap_why=CAP_WHY)
    return world.ReplicaLimits(floor=1, cap=CAP, floor_why=NO_ZERO_WHY, cap_why=CAP_WHY)


def distribute(current: typing.Mapping[str, int], total: int) -> dict[str, int]:
    """`total` replicas over the regions of `current`, in proportion to their counts now
    (largest remainder; ties to the region first by name), one per region at least. The
    caller has applied `limits` (total ≥ regions, ≤ CAP)."""
    regions = sorted(r for r, n in current.items() if n > 0)
    if not regions:
        return {}
    total = max(total, len(regions))
    now = sum(current[r] for r in regions)
    exact = {r: total * current[r] / now for r in regions}
    counts = {r: max(1, math.floor(exact[r])) for r in regions}
    short = sorted(regions, key=lambda r: (counts[r] - exact[r], r))  # furthest below its share first
    for region in short[:max(0, total - sum(counts.values()))]:
        counts[region] += 1
    while sum(counts.values()) > total:  # a region raised to its one replica: the largest gives way
        largest = max((r for r in regions if counts[r] > 1), key=lambda r: (counts[r] - exact[r], counts[r], r))
        counts[largest] -= 1
    return counts


def _dig(value: typing.Any, *path: str) -> typing.Any:
    for step in path:
        if not isinstance(value, dict):
            return None
        value = value.get(step)
    return value


def _count(value: typing.Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= CAP
