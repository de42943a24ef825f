"""Railway's replicas per region: read from a deployment's meta, scaled in proportion, no region lost."""

from __future__ import annotations

import itertools
import random

from controller.core import railway_regions


def test_regions_from_the_manifest() -> None:
    meta = {"serviceManifest": {"deploy": {"multiRegionConfig": {
        "us-west2": {"numReplicas": 2}, "europe-west4-drams3a": {"numReplicas": 1}, "asia-southeast1": None}}}}
    assert railway_regions.from_meta(meta) == {"us-west2": 2, "europe-west4-drams3a": 1}


def test_an_old_deployment_has_one_region() -> None:
    meta = {"serviceManifest": {"deploy": {"region": "us-west1", "numReplicas": 3}}}
    assert railway_regions.from_meta(meta) == {"us-west1": 3}


def test_garbage_reads_as_nothing() -> None:
    for meta in (None, "x", {"serviceManifest": []}, {"serviceManifest": {"deploy": {"multiRegionConfig": {
            "a": {"numReplicas": -1}, "b": {"numReplicas": True}, "c": {"numReplicas": 10 ** 9}, "": {}}}}}):
        assert railway_regions.from_meta(meta) == {}


def test_scaling_up_keeps_the_proportion() -> None:
    assert railway_regions.distribute({"us": 2, "eu": 1}, 6) == {"us": 4, "eu": 2}
    assert railway_regions.distribute({"us": 2, "eu": 2}, 5) == {"eu": 3, "us": 2}


def test_scaling_down_keeps_every_region() -> None:
    assert railway_regions.distribute({"us": 9, "eu": 1}, 2) == {"us": 1, "eu": 1}
    assert railway_regions.distribute({"us": 9, "eu": 1}, 5) == {"us": 4, "eu": 1}


def test_limits_name_the_floor_and_the_cap() -> None:
    limits = railway_regions.limits({"us": 2, "eu": 1})
    assert (limits.floor, limits.cap) == (2, 50)
    single = railway_regions.limits({"us": 3})
    assert single.floor == 1 and "no zero replicas" in single.floor_why  # scale to zero stops at one on Railway
    assert railway_regions.limits({}).floor == 1


def test_distribution_adds_up_and_loses_no_region() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        current = {r: rng.randint(1, 20) for r in rng.sample("abcd", rng.randint(1, 4))}
        total = rng.randint(0, 50)
        counts = railway_regions.distribute(current, total)
        wanted = max(total, len(current))
        assert set(counts) == set(current) and all(n >= 1 for n in counts.values()), (current, total)
        assert sum(counts.values()) == wanted, (current, total, counts)
        for region, n in counts.items():  # in proportion: within one of its share, or its floor of one
            assert abs(n - wanted * current[region] / sum(current.values())) < 1 + 1e-9 or n == 1, (current, total)


def test_same_proportions_scale_together() -> None:
    for a, b in itertools.product(range(1, 6), range(1, 6)):
        counts = railway_regions.distribute({"us": a, "eu": b}, 2 * (a + b))
        assert counts == {"us": 2 * a, "eu": 2 * b}
