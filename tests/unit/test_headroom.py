"""Headroom (spec.headroom): cpu read as its demand projected on a rising trend plus a noise
band, and scale-downs landing between the target and the scale-down threshold."""

from __future__ import annotations

import datetime
import pathlib

import pytest
import yaml

from controller.api import scalingpolicy as api
from controller.core import scaling

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
METRICS = [{"type": "cpu", "scaleUp": 84, "target": 82, "scaleDown": 68}]
HEADROOM = {"enabled": True, "leadSeconds": 45, "windowSeconds": 180, "noiseBands": 1.0, "downLanding": 0.5}
ROOT = pathlib.Path(__file__).resolve().parents[2]


def spec(headroom: dict | None = None) -> api.ScalingPolicySpec:
    return api.ScalingPolicySpec.model_validate({
        "targetRef": {"monitoredService": "web"}, "metrics": METRICS, "minReplicas": 1, "maxReplicas": 50,
        "headroom": headroom or {"enabled": False},
        "behavior": {"scaleUp": {"stabilizationWindowSeconds": 0, "policies": []},
                     "scaleDown": {"stabilizationWindowSeconds": 0, "policies": []}},
    })


def run(policy: api.ScalingPolicySpec, cpu: list[float], replicas: int) -> list[scaling.Outcome]:
    """`cpu` read every 15 s on a fixed count (the decision is not applied: the demand is as given)."""
    state = scaling.State(observing_since=T0 - datetime.timedelta(hours=1))
    outcomes = []
    for i, value in enumerate(cpu):
        now = T0 + datetime.timedelta(seconds=15 * i)
        outcome = scaling.decide(policy, replicas, {("cpu", None): scaling.Sample(value, now)}, state, now)
        state = scaling.State(observing_since=state.observing_since, history=outcome.history,
                              recommendations=outcome.recommendations)
        outcomes.append(outcome)
    return outcomes


def test_a_rising_demand_scales_up_before_the_threshold_and_for_where_it_is_going() -> None:
    ramp = [70 + 1.5 * i for i in range(10)]  # 70 % → 83.5 %, +1.5 % per 15 s: below 84 % throughout
    plain = run(spec(), ramp, 10)
    ahead = run(spec(HEADROOM), ramp, 10)
    assert all(o.direction == "Hold" for o in plain)
    up = next(o for o in ahead if o.direction == "Up")
    at = ahead.index(up)
    assert ramp[at] < 84 and at < len(ramp) - 1
    # Read 45 s ahead: +4.5 % over the reading, and sized for that (at 82 %), not for the reading.
    assert up.desired == scaling._needed(10 * (ramp[at] + 4.5), 82) > scaling._needed(10 * ramp[at], 82)
    assert "ahead" in up.reason


def test_a_falling_trend_is_never_projected() -> None:
    fall = [80 - 2 * i for i in range(10)]  # ends at 62 %, below 68 %
    last = run(spec(HEADROOM), fall, 10)[-1]
    # Read as it is (a noiseless line has no band), not 45 s further down: lands at 75 % of 620.
    assert (last.direction, last.desired) == ("Down", 9) and "62% < 68%" in last.reason, last.reason
    # Flat and noiseless, the reading is the value: headroom adds nothing.
    flat = run(spec(HEADROOM), [70.0] * 10, 10)
    assert all(o.direction == "Hold" for o in flat) and flat[-1].reason.startswith("cpu 70%")


def test_noise_holds_a_scale_down_the_reading_alone_would_make() -> None:
    noisy = [40, 75] * 6 + [40]  # mean 57 %, last reading 40 % < 68 %
    plain = run(spec(), noisy, 10)[-1]
    banded = run(spec(HEADROOM), noisy, 10)[-1]
    assert plain.direction == "Down"
    # The fit's level (57 %) plus one band (~17 %) is 75 %: within 68..84, held.
    assert banded.direction == "Hold", banded.reason
    assert run(spec({**HEADROOM, "noiseBands": 0}), noisy, 10)[-1].direction == "Down"  # the level alone: 57 %


def test_a_scale_down_lands_between_target_and_scale_down_threshold() -> None:
    # 10 replicas at 50 % flat: 5 busy. Plain: sized for 82 % -> 7. Headroom: lands at
    # 82 - 0.5 × (82 - 68) = 75 % -> ceil(500 / 75) = 7; at downLanding 1 it lands at 68 % -> 8.
    assert run(spec(), [50.0] * 8, 10)[-1].desired == 7
    assert run(spec(HEADROOM), [50.0] * 8, 10)[-1].desired == 7
    assert run(spec({**HEADROOM, "downLanding": 1.0}), [50.0] * 8, 10)[-1].desired == 8
    assert run(spec({**HEADROOM, "downLanding": 0.0}), [50.0] * 8, 10)[-1].desired == 7


def test_history_is_bounded_by_its_window_and_absent_when_off() -> None:
    outcomes = run(spec({**HEADROOM, "windowSeconds": 60}), [50.0] * 40, 10)
    assert len(outcomes[-1].history[scaling.CPU_DEMAND]) == 5  # 60 s at 15 s, both ends
    assert scaling.CPU_DEMAND not in run(spec(), [50.0] * 3, 10)[-1].history


def test_too_short_a_history_changes_nothing() -> None:
    first = run(spec(HEADROOM), [83.0, 83.5], 10)
    assert [o.direction for o in first] == ["Hold", "Hold"]


@pytest.mark.parametrize("field, value", [("leadSeconds", -1), ("windowSeconds", 30), ("noiseBands", 6),
                                          ("downLanding", 1.5)])
def test_bounds(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=field):
        spec({**HEADROOM, field: value})


def test_the_recommended_profile_uses_it() -> None:
    document = yaml.safe_load((ROOT / "examples" / "profiles" / "trend-headroom.yaml").read_text())
    profile = api.ScalingPolicySpec.model_validate(document["spec"])
    assert profile.headroom.enabled and profile.staffing.enabled and profile.saturation.enabled
