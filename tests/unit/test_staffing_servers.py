"""Square-root staffing counted in servers (spec.staffing.serverRate): busy servers are the
request rate ÷ serverRate, so the spare follows the traffic, not how it is cut into pods."""

from __future__ import annotations

import datetime
import math
import pathlib

import pydantic
import pytest
import yaml

from controller.api import scalingpolicy as api
from controller.core import scaling

NOW = datetime.datetime(2026, 11, 1, 13, 0, tzinfo=datetime.timezone.utc)
STAFFING = {"enabled": True, "scaleUpSpare": 0.42, "targetSpare": 0.62, "scaleDownSpare": 1.3}
CPU, RATE = ("cpu", None), ("requestRate", None)
ROOT = pathlib.Path(__file__).resolve().parents[2]


def spec(**staffing: object) -> api.ScalingPolicySpec:
    return api.ScalingPolicySpec.model_validate({
        "targetRef": {"monitoredService": "web"}, "minReplicas": 1, "maxReplicas": 50,
        "metrics": [{"type": "cpu", "scaleUp": 78, "target": 76, "scaleDown": 66}],
        "staffing": {**STAFFING, **staffing},
        "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0, "cooldownSeconds": 0, "policies": []},
                     "scaleDown": {"stabilizationWindowSeconds": 0, "cooldownSeconds": 0, "policies": []}},
    })


def decide(policy: api.ScalingPolicySpec, replicas: int, cpu: float, rate: scaling.Sample | None) -> scaling.Outcome:
    samples = {CPU: scaling.Sample(cpu, NOW)}
    if rate is not None:
        samples[RATE] = rate
    state = scaling.State(observing_since=NOW - datetime.timedelta(hours=1))
    return scaling.decide(policy, replicas, samples, state, NOW)


def test_a_replica_serving_more_requests_keeps_fewer_spare_replicas() -> None:
    """4 replicas at 55 %: counted as 4 servers, busy 2.2 + 1.3·√2.2 = 4.13 keeps all four. The
    same pods serving 80 req/s each at 100 % are 1.6 servers of 50 req/s: the spares shrink by
    √1.6 and one replica goes (2.2 busy at 75 % needs 3)."""
    served = 4 * 0.55 * 80  # 176 req/s
    held = decide(spec(), 4, 55, scaling.Sample(served, NOW))
    assert (held.direction, held.desired) == ("Hold", 4), held.reason  # serverRate unset: replicas
    down = decide(spec(serverRate=50), 4, 55, scaling.Sample(served, NOW))
    assert (down.direction, down.desired) == ("Down", 3), down.reason
    # Pods of exactly 50 req/s are one server each: as without serverRate.
    same = decide(spec(serverRate=50), 4, 55, scaling.Sample(4 * 0.55 * 50, NOW))
    assert (same.direction, same.desired) == ("Hold", 4), same.reason


def test_a_replica_is_never_less_than_one_server() -> None:
    """Pods slower than serverRate (40 req/s each) would be 0.8 servers: more spare than
    counting replicas. It is never taken below one server per replica."""
    slow = decide(spec(serverRate=50), 4, 55, scaling.Sample(4 * 0.55 * 40, NOW))
    assert (slow.direction, slow.desired) == ("Hold", 4), slow.reason
    assert scaling.servers_per_replica(spec(serverRate=50), slow.metrics, {RATE: scaling.Sample(88, NOW)}, 4, NOW) == 1.0


@pytest.mark.parametrize("rate", [
    None,  # not read
    scaling.Sample(None, None),  # no series
    scaling.Sample(176, NOW - datetime.timedelta(hours=1)),  # stale
    scaling.Sample(float("nan"), NOW), scaling.Sample(math.inf, NOW), scaling.Sample(-math.inf, NOW),
    scaling.Sample(0, NOW), scaling.Sample(-5, NOW),
    scaling.Sample(None, None, error="Prometheus unreachable"),
])
def test_without_a_usable_request_rate_a_replica_is_one_server(rate: scaling.Sample | None) -> None:
    outcome = decide(spec(serverRate=50), 4, 55, rate)
    assert (outcome.direction, outcome.desired) == ("Hold", 4), outcome.reason


def test_servers_are_bounded_whatever_the_numbers() -> None:
    policy = spec(serverRate=1e-3)
    views = scaling._views(policy, {CPU: scaling.Sample(1e-3, NOW)}, NOW)
    assert scaling.servers_per_replica(policy, views, {RATE: scaling.Sample(1e12, NOW)}, 4, NOW) == scaling.MAX_SERVERS
    # A ratio past float's range cannot be read: one server per replica, the most spare.
    tiny = scaling._views(policy, {CPU: scaling.Sample(1e-300, NOW)}, NOW)
    assert scaling.servers_per_replica(policy, tiny, {RATE: scaling.Sample(1.7e308, NOW)}, 4, NOW) == 1.0
    idle = scaling._views(policy, {CPU: scaling.Sample(0, NOW)}, NOW)
    assert scaling.servers_per_replica(policy, idle, {RATE: scaling.Sample(10, NOW)}, 4, NOW) == 1.0
    huge = scaling._views(spec(serverRate=1e9), {CPU: scaling.Sample(1.7e308, NOW)}, NOW)
    assert scaling.servers_per_replica(spec(serverRate=1e9), huge, {RATE: scaling.Sample(1, NOW)}, 10**6, NOW) == 1.0
    # A decision on those numbers is a decision, not an exception.
    assert decide(spec(serverRate=1e-9), 4, 55, scaling.Sample(1.7e308, NOW)).direction in ("Hold", "Down")


def test_request_rate_is_read_only_when_staffing_counts_servers() -> None:
    assert RATE not in scaling.read_keys(spec())
    assert scaling.read_keys(spec(serverRate=50)) == [CPU, RATE]
    off = spec(serverRate=50).model_copy(update={"staffing": api.Staffing(enabled=False, serverRate=50)})
    assert RATE not in scaling.read_keys(off)
    both = api.ScalingPolicySpec.model_validate({
        **spec(serverRate=50).model_dump(by_alias=True, exclude_none=True),
        "metrics": [{"type": "cpu", "scaleUp": 78, "scaleDown": 66}, {"type": "requestRate", "scaleUp": 900, "scaleDown": 1}]})
    assert scaling.read_keys(both).count(RATE) == 1


@pytest.mark.parametrize("value", [0, -1, 2e9])
def test_server_rate_bounds(value: float) -> None:
    with pytest.raises(pydantic.ValidationError, match="serverRate"):
        spec(serverRate=value)


def test_the_recommended_profile_counts_servers() -> None:
    document = yaml.safe_load((ROOT / "examples" / "profiles" / "trend-headroom.yaml").read_text())
    profile = api.ScalingPolicySpec.model_validate(document["spec"])
    assert profile.staffing.serverRate == 50 and RATE in scaling.read_keys(profile)
