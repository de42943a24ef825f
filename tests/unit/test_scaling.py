"""Table-driven tests of the pure scaling decision: every branch of the documented order."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from controller.api import scalingpolicy as api
from controller.core import scaling
from controller.core import world

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
NOW = T0 + datetime.timedelta(hours=1)
LONG_AGO = T0  # observing for an hour: every window fully observed


def spec(**overrides) -> api.ScalingPolicySpec:  # noqa: ANN003
    base = {
        "targetRef": {"monitoredService": "web"},
        "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30},
                    {"type": "latencyP95", "scaleUp": 2000, "scaleDown": 500}],
        "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0, "cooldownSeconds": 0, "policies": []},
                     "scaleDown": {"stabilizationWindowSeconds": 0, "cooldownSeconds": 0, "policies": []}},
    }
    for key, value in overrides.items():
        if key in ("up", "down"):
            base["behavior"]["scaleUp" if key == "up" else "scaleDown"].update(value)
        else:
            base[key] = value
    return api.ScalingPolicySpec.model_validate(base)


def samples(cpu=None, latency=None, at=NOW, cpu_error=None) -> dict:  # noqa: ANN001
    out = {}
    if cpu is not None or cpu_error is not None:
        out[("cpu", None)] = scaling.Sample(cpu, at, cpu_error)
    if latency is not None:
        out[("latencyP95", None)] = scaling.Sample(latency, at)
    return out


def state(**kwargs) -> scaling.State:  # noqa: ANN003
    return scaling.State(observing_since=kwargs.pop("since", LONG_AGO), **kwargs)


def ago(seconds: float) -> datetime.datetime:
    return NOW - datetime.timedelta(seconds=seconds)


CASES = [
    # id, spec, current, samples, state, (direction, desired), words in reason / limited_by
    ("up proportional to the worst metric", spec(), 4, samples(cpu=86, latency=900), state(),
     ("Up", 5), "cpu 86% > 70% (scale-up threshold)"),
    ("up on latency alone", spec(), 4, samples(cpu=50, latency=5000), state(), ("Up", 10), "latencyP95 5000ms > 2000ms"),
    ("any metric above wins over others below", spec(), 4, samples(cpu=10, latency=2500), state(), ("Up", 5), "latencyP95"),
    ("hold band", spec(), 4, samples(cpu=50, latency=900), state(), ("Hold", 4), "hold band"),
    # 8 × 20 % lands cpu at 58 % (70 % of the way up its band, DOWN_LANDING): ceil(2.76) = 3.
    ("down only when all below", spec(), 8, samples(cpu=20, latency=400), state(), ("Down", 3),
     "all metrics below scale-down thresholds"),
    ("one metric in band blocks down", spec(), 8, samples(cpu=20, latency=600), state(), ("Hold", 4 * 2), "hold band"),
    ("down never below min", spec(), 3, samples(cpu=1, latency=10), state(), ("Down", 2), "minReplicas 2"),
    ("up never above max", spec(maxReplicas=6), 5, samples(cpu=200, latency=10), state(), ("Up", 6), "maxReplicas 6"),
    ("below min is raised", spec(), 1, samples(cpu=50, latency=900), state(), ("Up", 2), "minReplicas 2"),
    ("missing metric holds", spec(), 8, samples(cpu=5), state(), ("Hold", 8), "latencyP95 (no data); holding"),
    ("stale metric holds", spec(), 8, samples(cpu=5, latency=100, at=ago(600)), state(), ("Hold", 8), "(stale)"),
    ("missing but another above still scales up", spec(), 4, samples(cpu=140), state(), ("Up", 8), "cpu 140%"),
    ("fallback raises when higher", spec(onMetricsUnavailable={"action": "Fallback", "replicas": 6}), 4, {}, state(),
     ("Up", 6), "fallback to 6"),
    ("fallback never lowers", spec(onMetricsUnavailable={"action": "Fallback", "replicas": 3}), 5, {}, state(),
     ("Hold", 5), "never scale down blind"),
    ("query error holds", spec(), 8, samples(latency=100, cpu_error="invalid query: 400"),
     state(), ("Hold", 8), "invalid query"),
    ("up cooldown", spec(up={"cooldownSeconds": 300}), 4, samples(cpu=90, latency=1), state(last_scale_up=ago(100)),
     ("Hold", 4), "scale-up cooldown (200s left)"),
    ("down cooldown counts from an up", spec(down={"cooldownSeconds": 300}), 8, samples(cpu=5, latency=1),
     state(last_scale_up=ago(60)), ("Hold", 8), "scale-down cooldown (240s left)"),
    ("up is not held by a recent down", spec(up={"cooldownSeconds": 300}), 4, samples(cpu=90, latency=1),
     state(last_scale_down=ago(10)), ("Up", 6), "cpu 90%"),
    ("percent step policy", spec(up={"policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}), 4,
     samples(cpu=350, latency=1), state(), ("Up", 6), "scale-up policy Percent 50% per 60s"),
    ("max of policies", spec(up={"policies": [{"type": "Percent", "value": 50, "periodSeconds": 60},
                                              {"type": "Pods", "value": 4, "periodSeconds": 60}]}), 4,
     samples(cpu=350, latency=1), state(), ("Up", 8), "Pods 4 per 60s"),
    ("min of policies", spec(up={"selectPolicy": "Min", "policies": [
        {"type": "Percent", "value": 50, "periodSeconds": 60}, {"type": "Pods", "value": 4, "periodSeconds": 60}]}), 4,
     samples(cpu=350, latency=1), state(), ("Up", 6), "Percent 50%"),
    ("changes already made in the period count", spec(up={"policies": [{"type": "Pods", "value": 4, "periodSeconds": 60}]}),
     6, samples(cpu=350, latency=1), state(events=(scaling.ScaleEvent(ago(30), 4, 6),)), ("Up", 8), "Pods 4 per 60s"),
    ("disabled direction", spec(down={"selectPolicy": "Disabled"}), 8, samples(cpu=5, latency=1), state(),
     ("Hold", 8), "disabled"),
    ("down percent policy", spec(down={"policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}), 10,
     samples(cpu=5, latency=1), state(), ("Down", 5), "scale-down policy Percent 50%"),
    ("down stabilization takes the window maximum", spec(down={"stabilizationWindowSeconds": 300}), 8,
     samples(cpu=20, latency=400), state(recommendations=((ago(200), 7), (ago(100), 5))), ("Down", 7),
     "stabilization: scale-down window 300s (highest recommendation 7)"),
    ("down window not observed since start", spec(down={"stabilizationWindowSeconds": 300}), 8,
     samples(cpu=20, latency=400), state(since=ago(100)), ("Hold", 8), "not yet observed since start"),
    ("up stabilization takes the window minimum", spec(up={"stabilizationWindowSeconds": 120}), 4,
     samples(cpu=140, latency=1), state(recommendations=((ago(60), 5),)), ("Up", 5), "stabilization: scale-up window 120s"),
]


@pytest.mark.parametrize("policy,current,observed,previous,expected,words", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_decide(policy, current, observed, previous, expected, words) -> None:  # noqa: ANN001
    outcome = scaling.decide(policy, current, observed, previous, NOW)
    assert (outcome.direction, outcome.desired) == expected, outcome.reason
    assert words in f"{outcome.reason} | {outcome.limited_by}", outcome.reason


def test_hpa_conditions() -> None:
    at_max = scaling.decide(spec(maxReplicas=6), 6, samples(cpu=200, latency=1), state(), NOW)
    assert at_max.scaling_limited[:2] == ("True", "TooManyReplicas")
    assert at_max.recommendation == "at maxReplicas 6 while cpu > 70%: raise maxReplicas or add capacity per replica"
    assert at_max.scaling_active[:2] == ("True", "ValidMetricFound")
    missing = scaling.decide(spec(), 4, samples(cpu=50), state(), NOW)
    assert missing.scaling_active[:2] == ("False", "MetricsUnavailable")
    invalid = scaling.decide(spec(), 4, {("cpu", None): scaling.Sample(None, None, "invalid query: bad_data"),
                                        ("latencyP95", None): scaling.Sample(1, NOW)}, state(), NOW)
    assert invalid.scaling_active[:2] == ("False", "InvalidMetricQuery")
    cooling = scaling.decide(spec(up={"cooldownSeconds": 300}), 4, samples(cpu=90, latency=1),
                             state(last_scale_up=ago(1)), NOW)
    assert cooling.able_to_scale[:2] == ("False", "BackoffUpscale")


def demand(points: list[tuple[float, float, int]]) -> dict:  # noqa: D103
    """History as the core keeps it: (seconds ago, cpu, ready replicas) -> demand."""
    return {("cpu", None): tuple((ago(seconds), cpu * ready) for seconds, cpu, ready in points)}


# -- Defect 2 (issue 8): pods not yet ready are not multiplied by a metric of ready pods. --

def test_starting_pods_hold_a_scale_up_until_ready() -> None:
    """HPA: unready pods count as 0 % on a scale-up; 2 ready at 100 % need 3 of 70 %, and 4 exist."""
    outcome = scaling.decide(spec(), 4, samples(cpu=100, latency=1), state(), NOW, ready=2)
    assert (outcome.direction, outcome.desired) == ("Hold", 4), outcome.reason
    assert "2 starting pod(s) cover it" in outcome.reason


def test_scale_up_is_sized_on_ready_pods() -> None:
    # 4 ready at 100 % need ceil(4 × 100 / 70) = 6; the 2 starting pods are part of them.
    outcome = scaling.decide(spec(), 6, samples(cpu=100, latency=1), state(), NOW, ready=4)
    assert (outcome.direction, outcome.desired) == ("Hold", 6)
    outcome = scaling.decide(spec(), 5, samples(cpu=100, latency=1), state(), NOW, ready=4)
    assert (outcome.direction, outcome.desired) == ("Up", 6)


def test_starting_pods_are_not_removed_as_idle() -> None:
    # 4 ready at 10 % carry 0.8 of a pod at the band's middle (50 %) -> 1; 2 starting pods stay.
    outcome = scaling.decide(spec(minReplicas=1), 6, samples(cpu=10, latency=1), state(), NOW, ready=4)
    assert (outcome.direction, outcome.desired) == ("Down", 3)


# -- Defect 3: predictive works on demand, needs history and points, fits over a window. --

PREDICTIVE = {"enabled": True, "horizonSeconds": 300}


def test_predictive_ignores_our_own_scale_down() -> None:
    """8 -> 4 replicas 60 s ago: 25 % for 4 min, then 50 %; demand is flat (200), no forecast."""
    history = demand([(300 - 15 * i, 25, 8) for i in range(17)] + [(45 - 15 * i, 50, 4) for i in range(3)])
    outcome = scaling.decide(spec(predictive=PREDICTIVE), 4, samples(cpu=50, latency=1),
                             state(history=history), NOW, ready=4)
    assert outcome.direction == "Hold", outcome.reason


def test_predictive_never_forecasts_from_three_points() -> None:
    history = demand([(30, 66, 6), (15, 68, 6)])
    outcome = scaling.decide(spec(predictive=PREDICTIVE), 6, samples(cpu=70, latency=1),
                             state(history=history), NOW, ready=6)
    assert outcome.direction == "Hold", outcome.reason


def test_predictive_scales_up_ahead_of_a_sustained_rise_but_never_down() -> None:
    rising = demand([(300 - 15 * i, 40 + 1.0 * i, 4) for i in range(20)])  # +4 %/min on 4 pods
    outcome = scaling.decide(spec(predictive=PREDICTIVE), 4, samples(cpu=60, latency=1), state(history=rising), NOW)
    assert outcome.direction == "Up" and "predictive" in outcome.reason, outcome.reason
    assert scaling.decide(spec(), 4, samples(cpu=60, latency=1), state(history=rising), NOW).direction == "Hold"
    falling = demand([(300 - 15 * i, 60 - 1.0 * i, 4) for i in range(20)])
    outcome = scaling.decide(spec(predictive=PREDICTIVE), 4, samples(cpu=40, latency=600), state(history=falling), NOW)
    assert outcome.direction == "Hold"


def test_predictive_keeps_demand_not_raw_values() -> None:
    outcome = scaling.decide(spec(predictive=PREDICTIVE), 4, samples(cpu=50, latency=1), state(), NOW, ready=2)
    assert outcome.history[("cpu", None)][-1] == (NOW, 100.0)


# -- Defect 4: every omitted behaviour field takes its own direction's default. --

def test_omitted_fields_take_their_direction_defaults() -> None:
    policy = api.ScalingPolicySpec.model_validate({"targetRef": {"monitoredService": "web"},
                                                   "behavior": {"scaleDown": {"cooldownSeconds": 0}}})
    down = policy.behavior.scaleDown
    assert (down.stabilizationWindowSeconds, down.cooldownSeconds) == (300, 0)
    assert [(p.type, p.value, p.periodSeconds) for p in down.policies] == [("Percent", 50, 60)]
    policy = api.ScalingPolicySpec.model_validate({"targetRef": {"monitoredService": "web"},
                                                   "behavior": {"scaleUp": {"stabilizationWindowSeconds": 30}}})
    assert [(p.type, p.value, p.periodSeconds) for p in policy.behavior.scaleUp.policies] == [
        ("Percent", 100, 15), ("Pods", 4, 15)]
    assert policy.behavior.scaleDown.stabilizationWindowSeconds == 300


def test_an_explicit_empty_policy_list_means_no_step_limit() -> None:
    policy = spec(up={"policies": []})
    assert scaling.decide(policy, 2, samples(cpu=700, latency=1), state(), NOW).desired == 20


def test_period_start_counts_changes_in_both_directions() -> None:
    """HPA: periodStartReplicas = current - added + deleted within the period."""
    policy = spec(up={"policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]})
    events = (scaling.ScaleEvent(ago(50), 6, 4),)  # a scale-down 50 s ago: the period started at 6
    assert scaling.decide(policy, 4, samples(cpu=350, latency=1), state(events=events), NOW).desired == 8


def test_every_stage_is_reported() -> None:
    outcome = scaling.decide(spec(maxReplicas=6), 4, samples(cpu=350, latency=1), state(), NOW)
    assert [s.name for s in outcome.stages] == ["proposal", "stabilization", "cooldown", "step limit", "bounds",
                                                "platform"]
    assert outcome.limited_by == "bounds: maxReplicas 6"


RAILWAY_LIMITS = world.ReplicaLimits(floor=2, cap=50, floor_why="one replica per region (2 regions)",
                                     cap_why="Railway runs at most 50 replicas across all regions")


def test_the_platform_cap_binds_and_status_says_so() -> None:
    outcome = scaling.decide(spec(maxReplicas=80), 40, samples(cpu=140, latency=1), state(), NOW, limits=RAILWAY_LIMITS)
    assert outcome.desired == 50 and outcome.direction == "Up"
    assert outcome.limited_by == "platform: Railway runs at most 50 replicas across all regions"
    assert outcome.scaling_limited == ("True", "TooManyReplicas",
                                       "the platform binds: Railway runs at most 50 replicas across all regions")


def test_the_platform_floor_keeps_every_region() -> None:
    outcome = scaling.decide(spec(minReplicas=1), 3, samples(cpu=1, latency=1), state(), NOW, limits=RAILWAY_LIMITS)
    assert outcome.desired == 2 and outcome.limited_by == "platform: one replica per region (2 regions)"
    assert outcome.scaling_limited[:2] == ("True", "TooFewReplicas")
    held = scaling.decide(spec(minReplicas=1), 2, samples(cpu=1, latency=1), state(), NOW, limits=RAILWAY_LIMITS)
    assert held.direction == "Hold"


def test_no_platform_limit_within_them() -> None:
    outcome = scaling.decide(spec(), 4, samples(cpu=90, latency=1), state(), NOW, limits=RAILWAY_LIMITS)
    assert outcome.desired == 6 and outcome.limited_by is None


def test_custom_metric_by_name() -> None:
    policy = spec(metrics=[{"type": "custom", "name": "orders_backlog", "scaleUp": 500, "scaleDown": 50}])
    outcome = scaling.decide(policy, 2, {("custom", "orders_backlog"): scaling.Sample(1500, NOW)}, state(), NOW)
    assert (outcome.direction, outcome.desired) == ("Up", 6)
    assert outcome.reason.startswith("orders_backlog 1500 > 500")


def test_nan_is_unavailable() -> None:
    outcome = scaling.decide(spec(), 8, samples(cpu=float("nan"), latency=1), state(), NOW)
    assert outcome.direction == "Hold" and "not a number" in outcome.reason


def test_target_sets_where_a_scale_lands() -> None:
    """`target` sizes both directions (like an HPA target); unset, up sizes for scaleUp."""
    metrics = [{"type": "cpu", "scaleUp": 85, "scaleDown": 65, "target": 75}]
    up = scaling.decide(spec(metrics=metrics), 4, {("cpu", None): scaling.Sample(100, NOW)}, state(), NOW)
    assert up.desired == 6  # ceil(4 × 100 / 75); without target ceil(4 × 100 / 85) = 5
    down = scaling.decide(spec(metrics=metrics), 10, {("cpu", None): scaling.Sample(30, NOW)}, state(), NOW)
    assert down.desired == 4  # ceil(10 × 30 / 75)
    with pytest.raises(ValueError, match="target must lie within scaleDown..scaleUp"):
        spec(metrics=[{"type": "cpu", "scaleUp": 85, "scaleDown": 65, "target": 90}])


@pytest.mark.parametrize("value,scale_up", [(1e308, 1e-300), (1e300, 1e300), (float("inf"), 70), (5e-324, 1e300)])
def test_absurd_numbers_never_overflow(value: float, scale_up: float) -> None:
    """Thresholds and values at the edges of float: a decision within bounds, never an exception."""
    policy = spec(metrics=[{"type": "cpu", "scaleUp": scale_up, "scaleDown": 0}])
    outcome = scaling.decide(policy, 4, {("cpu", None): scaling.Sample(value, NOW)}, state(), NOW, ready=4)
    assert 2 <= outcome.desired <= 20
    assert len(outcome.reason) < 1024


# -- ScalingLimited is named by the direction asked of the step limit (HPA's table). --

HELD_UP = spec(up={"policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}]})


@pytest.mark.parametrize("policy,current,cpu,events,expected", [
    # +2 per 60 s already spent (4 -> 6 30 s ago): a scale-up held at the current count.
    (HELD_UP, 6, 140, (scaling.ScaleEvent(ago(30), 4, 6),), (6, "ScaleUpLimit")),
    (HELD_UP, 4, 140, (), (6, "ScaleUpLimit")),  # limited, not held
    (spec(up={"selectPolicy": "Disabled"}), 4, 140, (), (4, "ScaleUpLimit")),
    (spec(down={"selectPolicy": "Disabled"}), 8, 5, (), (8, "ScaleDownLimit")),
    (spec(down={"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}), 8, 5,
     (scaling.ScaleEvent(ago(30), 9, 8),), (8, "ScaleDownLimit")),
])
def test_scaling_limited_reason_follows_the_direction_asked(policy, current, cpu, events, expected) -> None:  # noqa: ANN001
    outcome = scaling.decide(policy, current, samples(cpu=cpu, latency=1), state(events=events), NOW)
    assert (outcome.desired, outcome.scaling_limited[1]) == expected, outcome.scaling_limited
    assert outcome.scaling_limited[0] == "True"


def test_the_step_limit_remembers_15_scales_inside_a_period_through_status() -> None:
    """+20 pods per 30 min, spent one at a time: after 15 scale-ups (2 -> 17), recorded in
    status as the operator records them, only 5 more are allowed (a status 10 deep forgot 5)."""
    from controller.core import scaling_status

    policy = spec(up={"policies": [{"type": "Pods", "value": 20, "periodSeconds": 1800}]}, maxReplicas=100)
    base = scaling.decide(policy, 2, samples(cpu=80, latency=1), state(), NOW)
    status: dict = {}
    for step in range(15):
        outcome = dataclasses.replace(base, direction="Up", current=2 + step, desired=3 + step)
        fields, _ = scaling_status.assess(scaling_status.Record(outcome, ago(60 * (15 - step)), actuated=True), status)
        status.update(fields)
    restored = scaling_status.state_from_status(status, LONG_AGO, None)
    outcome = scaling.decide(policy, 17, samples(cpu=700, latency=1), restored, NOW)
    assert outcome.desired == 22 and outcome.scaling_limited[1] == "ScaleUpLimit", outcome.reason
    assert len(status["recentDecisions"]) == 10  # for people; the step limit read all 15


def test_scale_events_older_than_the_longest_period_are_dropped() -> None:
    from controller.core import scaling_status

    events = [scaling.ScaleEvent(ago(seconds), 2, 3) for seconds in (10, 1799, 1801, 4000)]
    assert [e.time for e in scaling_status.kept_events(events, NOW)] == [ago(10), ago(1799)]


def test_saturation_sizes_a_scale_up_for_the_demand_offered() -> None:
    """4 pods saturated (cpu 100 %) turning away 60 % of requests serve 40 % of the demand:
    it needs 4 × 100 / 0.4 / 70 = 15 replicas. Without the correction: 6 (cpu), a climb."""
    metrics = [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}, {"type": "errorRate", "scaleUp": 50, "scaleDown": 1}]
    overload = {("cpu", None): scaling.Sample(100, NOW), ("errorRate", None): scaling.Sample(60, NOW)}
    plain = scaling.decide(spec(metrics=metrics), 4, overload, state(), NOW)
    corrected = scaling.decide(spec(metrics=metrics, saturation={"enabled": True}), 4, overload, state(), NOW)
    assert (plain.desired, corrected.desired) == (6, 15), corrected.reason
    assert "offered" in corrected.reason and corrected.metrics[0].value == 100  # status shows what was measured
    below = {("cpu", None): scaling.Sample(80, NOW), ("errorRate", None): scaling.Sample(60, NOW)}
    assert scaling.decide(spec(metrics=metrics, saturation={"enabled": True}), 4, below, state(), NOW).desired == 5


def test_a_pod_ready_since_the_last_round_is_not_counted_twice() -> None:
    """5 ready pods at 82 % last round; the 6th became ready since and has no usage of its own
    yet, so 82 % is still the 5 pods' average: 5 × 82 / 70 needs 6, which exist. Multiplied by
    6 it asked for 8: a second scale-up right after every first one."""
    before = state(history={scaling.READY: ((ago(15), 5.0),)})
    held = scaling.decide(spec(), 6, samples(cpu=82, latency=1), before, NOW, ready=6)
    assert (held.direction, held.desired) == ("Hold", 6), held.reason
    steady = state(history={scaling.READY: ((ago(15), 6.0),)})
    assert scaling.decide(spec(), 6, samples(cpu=82, latency=1), steady, NOW, ready=6).desired == 8
    assert held.history[scaling.READY] == ((NOW, 6.0),)  # the next round's count


STAFFED = [{"type": "cpu", "scaleUp": 78, "target": 76, "scaleDown": 66}]


def test_square_root_staffing_keeps_spare_at_a_few_replicas_and_runs_hot_at_many() -> None:
    """busy + 1.3 × √busy replicas: at 4 that is 53 % (one replica is a quarter of the capacity),
    at 12 it reaches the metric's own 66 %. Without staffing 4 × 55 % loses a replica."""
    staffing = {"enabled": True, "scaleUpSpare": 0.42, "targetSpare": 0.62, "scaleDownSpare": 1.3}
    plain, staffed = spec(metrics=STAFFED), spec(metrics=STAFFED, staffing=staffing)
    assert scaling.decide(plain, 4, {("cpu", None): scaling.Sample(55, NOW)}, state(), NOW).desired == 3
    held = scaling.decide(staffed, 4, {("cpu", None): scaling.Sample(55, NOW)}, state(), NOW)
    assert (held.direction, held.desired) == ("Hold", 4), held.reason
    many = scaling.decide(staffed, 12, {("cpu", None): scaling.Sample(60, NOW)}, state(), NOW)
    assert many.desired == 10 == scaling.decide(plain, 12, {("cpu", None): scaling.Sample(60, NOW)}, state(), NOW).desired
    assert held.metrics[0].scale_down == 66  # status shows the spec's thresholds


def test_square_root_staffing_shares() -> None:
    assert scaling._busy_share(4, 1.3) == pytest.approx(52.8, abs=0.1)
    assert scaling._busy_share(2, 0.42) == pytest.approx(74.4, abs=0.1)
    with pytest.raises(ValueError, match="ordered"):
        spec(staffing={"enabled": True, "scaleUpSpare": 1, "targetSpare": 0.5, "scaleDownSpare": 2})
