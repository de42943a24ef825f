"""Table-driven tests of the pure scaling decision: every branch of the documented order."""

from __future__ import annotations

import datetime

import pytest

from controller.api import scalingpolicy as api
from controller.core import scaling

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
     "scale-down stabilization window 300s"),
    ("down window not observed since start", spec(down={"stabilizationWindowSeconds": 300}), 8,
     samples(cpu=20, latency=400), state(since=ago(100)), ("Hold", 8), "not yet observed since start"),
    ("up stabilization takes the window minimum", spec(up={"stabilizationWindowSeconds": 120}), 4,
     samples(cpu=140, latency=1), state(recommendations=((ago(60), 5),)), ("Up", 5), "scale-up stabilization window"),
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


def test_predictive_scales_up_ahead_but_never_down() -> None:
    policy = spec(predictive={"enabled": True, "horizonSeconds": 300})
    rising = {("cpu", None): tuple((ago(90 - 30 * i), 40.0 + 5 * i) for i in range(3))}
    outcome = scaling.decide(policy, 4, samples(cpu=55, latency=1), state(history=rising), NOW)
    assert outcome.direction == "Up" and "predictive" in outcome.reason
    falling = {("cpu", None): tuple((ago(90 - 30 * i), 60.0 - 10 * i) for i in range(3))}
    outcome = scaling.decide(policy, 4, samples(cpu=35, latency=600), state(history=falling), NOW)
    assert outcome.direction == "Hold"
    assert scaling.decide(spec(), 4, samples(cpu=55, latency=1), state(history=rising), NOW).direction == "Hold"


def test_custom_metric_by_name() -> None:
    policy = spec(metrics=[{"type": "custom", "name": "orders_backlog", "scaleUp": 500, "scaleDown": 50}])
    outcome = scaling.decide(policy, 2, {("custom", "orders_backlog"): scaling.Sample(1500, NOW)}, state(), NOW)
    assert (outcome.direction, outcome.desired) == ("Up", 6)
    assert outcome.reason.startswith("orders_backlog 1500 > 500")


def test_nan_is_unavailable() -> None:
    outcome = scaling.decide(spec(), 8, samples(cpu=float("nan"), latency=1), state(), NOW)
    assert outcome.direction == "Hold" and "not a number" in outcome.reason
