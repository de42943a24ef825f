"""The seasonal forecast (core/forecast.py) and its hook in the predict stage."""

from __future__ import annotations

import datetime
import math

import pydantic
import pytest

from controller.api import scalingpolicy as api
from controller.core import forecast
from controller.core import scaling

# An hourly cycle at one-minute steps keeps the tests small; the code knows no day.
HOUR, STEP = 3600, 60
EPOCH = datetime.datetime(2026, 11, 2, tzinfo=datetime.timezone.utc)
T0 = EPOCH.timestamp()


def settings(**overrides) -> api.Seasonal:  # noqa: ANN003
    base = {"enabled": True, "periodSeconds": HOUR, "stepSeconds": STEP, "lookbackPeriods": 4, "leadSeconds": 120,
            "tolerance": 0.2, "trustWindowSeconds": 600}
    return api.Seasonal.model_validate({**base, **overrides})


def cycle(minute: int, low: float = 100.0, high: float = 800.0) -> float:
    """Demand ramps from `low` to `high` at minute 30 of every hour."""
    return low if minute % 60 < 30 else high


def history(today: list[float], periods: int = 4, config: api.Seasonal | None = None) -> forecast.History:
    """`periods` hours of the cycle, then today's minutes as given."""
    points = [(T0 + m * STEP, cycle(m)) for m in range(periods * 60)]
    points += [(T0 + (periods * 60 + m) * STEP, v) for m, v in enumerate(today)]
    return forecast.merge(None, config or settings(), points)


def at_minute(minute: float, periods: int = 4) -> float:
    return T0 + (periods * 60 + minute) * STEP


def policy(**seasonal) -> api.ScalingPolicySpec:  # noqa: ANN003
    return api.ScalingPolicySpec.model_validate({
        "targetRef": {"monitoredService": "web"},
        "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
        "behavior": {"scaleUp": {"policies": []}, "scaleDown": {"stabilizationWindowSeconds": 0, "policies": []}},
        "predictive": {"seasonal": settings(**seasonal).model_dump()},
    })


def decide(spec: api.ScalingPolicySpec, seasonal: forecast.History, now: float, current: int, cpu: float,
           source: str | None = None) -> scaling.Outcome:
    moment = datetime.datetime.fromtimestamp(now, datetime.timezone.utc)
    state = scaling.State(observing_since=EPOCH, seasonal=seasonal)
    return scaling.decide(spec, current, {("cpu", None): scaling.Sample(cpu, moment, source=source)}, state, moment)


def test_a_clean_cycle_is_trusted_and_forecasts_the_ramp_ahead() -> None:
    made = forecast.forecast(history([100.0] * 28), settings(), at_minute(28.5))
    assert made.trusted and made.reason == forecast.TRUSTED
    assert made.demand == pytest.approx(800.0)  # minute 30 is within the 120 s lead
    assert made.error == pytest.approx(0.0)
    assert "trusted: within 0%" in made.message


def test_trusted_forecast_scales_up_before_the_ramp_and_not_without_it() -> None:
    seasonal = history([100.0] * 28)
    # 4 replicas at 25 %: demand 100, in the hold band. The ramp to 800 is 90 s away.
    outcome = decide(policy(), seasonal, at_minute(28.5), 4, 25.0)
    assert (outcome.direction, outcome.desired) == ("Up", 12)  # ceil(800 / 70)
    assert "seasonal" in outcome.reason and "trusted" in outcome.reason
    assert outcome.forecast is not None and outcome.forecast.trusted
    off = decide(policy(enabled=False), seasonal, at_minute(28.5), 4, 25.0)
    assert (off.direction, off.desired) == ("Down", 2) and off.forecast is None  # 25 % < 30 %: down, unaware


def test_the_seasonal_forecast_ignored_after_it_misses() -> None:
    # The ramp forecast for minute 30 did not come today: by minute 40 the forecast is not trusted.
    made = forecast.forecast(history([100.0] * 40), settings(), at_minute(40.5))
    assert not made.trusted and made.reason == forecast.MISSED
    assert made.error is not None and made.error > 0.2
    assert "not trusted: off by" in made.message and "tolerance 20%" in made.message
    # Over the last ten minutes demand swung 20 <-> 180 where 100 was forecast (80 % off): the
    # ramp it foresees 90 s ahead scales nothing.
    erratic = [100.0] * 18 + [20.0, 180.0] * 5
    seasonal = history(erratic)
    outcome = decide(policy(), seasonal, at_minute(28.5), 4, 40.0)
    assert outcome.forecast is not None and outcome.forecast.reason == forecast.MISSED
    assert outcome.forecast.error is not None and outcome.forecast.error > 0.5
    assert outcome.forecast.demand == pytest.approx(800.0)
    assert (outcome.direction, outcome.desired) == ("Hold", 4)
    # The same history and reading with a tolerance the miss fits in is acted on: it is the
    # trust that held the scale-up above, not the numbers.
    trusting = decide(policy(tolerance=2), seasonal, at_minute(28.5), 4, 40.0)
    assert (trusting.direction, trusting.desired) == ("Up", 12)
    # Trusted again once a whole window was forecast well (the next hour's ramp, minute 88.5).
    recovered = history(erratic + [cycle(m) for m in range(28, 88)])
    again = decide(policy(), recovered, at_minute(88.5), 4, 40.0)
    assert again.forecast is not None and again.forecast.trusted
    assert (again.direction, again.desired) == ("Up", 12)


def test_never_scales_down_on_a_forecast_alone() -> None:
    # 12 replicas at 50 % (demand 600) where the cycle says 100: a Hold stays a Hold.
    seasonal = history([100.0] * 10)
    made = forecast.forecast(seasonal, settings(), at_minute(10.5))
    assert made.trusted and made.demand == pytest.approx(100.0)
    outcome = decide(policy(), seasonal, at_minute(10.5), 12, 50.0)
    assert (outcome.direction, outcome.desired) == ("Hold", 12)
    config = settings()
    for demand in (0.0, 10.0, 100.0, 700.0, 5000.0, math.inf):
        trusted = forecast.Forecast(True, forecast.TRUSTED, "trusted", demand)
        for direction, replicas in (("Hold", 10), ("Down", 4), ("Up", 14)):
            advice = forecast.advise(config, trusted, 50.0, 70.0, 70.0, 10, direction, replicas)
            if advice is not None:
                assert advice[0] >= replicas or advice[1] == "Up", (demand, direction, advice)
                assert advice[1] != "Down" or replicas < advice[0] < 10


def test_a_trusted_forecast_holds_a_scale_down_the_ramp_would_undo() -> None:
    seasonal = history([100.0] * 28)
    # 12 replicas at 5 %: demand 60, all below 30 %: a scale-down to 2, but the ramp needs 12.
    outcome = decide(policy(), seasonal, at_minute(28.5), 12, 5.0)
    assert (outcome.direction, outcome.desired) == ("Hold", 12)
    assert "scale-down held" in outcome.reason
    quiet = decide(policy(), seasonal, at_minute(10.5), 12, 5.0)  # no ramp within the lead
    assert quiet.direction == "Down"


def test_warming_up_until_two_periods() -> None:
    made = forecast.forecast(history([100.0] * 28, periods=1), settings(), at_minute(28.5, periods=1))
    assert not made.trusted and made.reason == forecast.WARMING_UP
    assert "1 of 4 periods" in made.message
    assert forecast.forecast(None, settings(), T0).reason == forecast.WARMING_UP


def test_the_metrics_api_has_no_history() -> None:
    outcome = decide(policy(), history([100.0] * 28), at_minute(28.5), 4, 50.0, source="metrics-api")
    assert outcome.forecast is not None and outcome.forecast.reason == forecast.UNAVAILABLE
    assert "needs Prometheus" in outcome.forecast.message
    assert outcome.direction == "Hold"


def test_history_is_bounded_and_takes_no_non_finite_point() -> None:
    config = settings()
    seasonal = None
    for minute in range(20 * 60):
        seasonal = forecast.record(seasonal, config, T0 + minute * STEP + 7, float(minute))
    assert seasonal is not None and len(seasonal) == forecast.kept_buckets(config) == 5 * 60
    assert seasonal.at(seasonal.first + len(seasonal) - 1) == 20 * 60 - 1
    before = seasonal
    for bad in (math.nan, math.inf, -math.inf, -1.0):
        seasonal = forecast.record(seasonal, config, T0 + 20 * 60 * STEP, bad)
    assert seasonal.values[: len(before.values)] == before.values and len(seasonal) == len(before)
    # A bucket keeps its highest; a range query's old points merge in and move the revision.
    seasonal = forecast.record(seasonal, config, T0 + 19 * 60 * STEP + 59 * STEP + 30, 5.0)
    assert seasonal.at(seasonal.first + len(seasonal) - 1) == 20 * 60 - 1
    merged = forecast.merge(seasonal, config, [(T0, 1.0), (T0 + 17 * 60 * STEP, 9999.0)])
    assert merged.revision == seasonal.revision + 1 and merged.at(int(T0 // STEP) + 17 * 60) == 9999.0
    assert len(merged) == len(seasonal)  # T0 is older than what is kept


def test_the_forecast_is_made_once_per_step() -> None:
    seasonal = history([100.0] * 28)
    first = forecast.cached(None, seasonal, settings(), at_minute(28.1))
    assert forecast.cached(first, seasonal, settings(), at_minute(28.9)) is first
    assert forecast.cached(first, seasonal, settings(), at_minute(29.1)) is not first
    refreshed = forecast.merge(seasonal, settings(), [])
    assert forecast.cached(first, refreshed, settings(), at_minute(28.5)) is not first


def test_a_ramp_entering_the_lead_within_a_step_is_seen_at_once() -> None:
    # A 90 s lead: at minute 28.2 it reaches into minute 29 (100), at 28.6 into minute 30 (800),
    # both within the step of minute 28. The forecast made at 28.2 must not stand for 28.6.
    seasonal, config = history([100.0] * 28), settings(leadSeconds=90)
    early = forecast.cached(None, seasonal, config, at_minute(28.2))
    assert early.demand == pytest.approx(100.0)
    late = forecast.cached(early, seasonal, config, at_minute(28.6))
    assert late.demand == pytest.approx(800.0)


@pytest.mark.parametrize(("seasonal", "words"), [
    ({"periodSeconds": 3600, "stepSeconds": 420}, "multiple of stepSeconds"),
    ({"periodSeconds": 7 * 86400, "stepSeconds": 60, "lookbackPeriods": 2}, "at most 4032 points"),
    ({"trustWindowSeconds": 300, "stepSeconds": 300}, "at least two steps"),
    ({"metric": "custom"}, "name is required"),
])
def test_bounds_are_refused_with_a_clear_error(seasonal: dict, words: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=words):
        api.Seasonal.model_validate({"enabled": True, **seasonal})


def test_the_metric_must_be_one_of_the_policy_s() -> None:
    with pytest.raises(pydantic.ValidationError, match="must be one of spec.metrics"):
        api.ScalingPolicySpec.model_validate({
            "targetRef": {"monitoredService": "web"}, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
            "predictive": {"seasonal": {"enabled": True, "metric": "requestRate"}}})


def test_simulate_carries_the_history_and_scales_ahead_of_the_ramp() -> None:
    from controller.core import simulate

    series = [simulate.Point(m * 60.0, {"cpu": 20.0 if m % 60 < 30 else 90.0}) for m in range(6 * 60)]
    rows = simulate.scaling_run(policy(), series, 4)
    ahead = [row for row in rows if "(seasonal" in row.event and row.event.startswith("Up")]
    assert ahead, "a scale-up ahead of the ramp once the cycle has been seen"
    assert all(row.at >= 2 * HOUR and row.at % HOUR < 30 * 60 for row in ahead), [(r.at, r.event) for r in ahead]


def test_a_point_far_from_the_history_never_grows_it_past_its_bound() -> None:
    config = settings()
    seasonal = forecast.merge(None, config, [(T0 + m * STEP, 1.0) for m in range(60)])
    far = forecast.merge(seasonal, config, [(1e12, 5.0)])  # a server's date ~31,700 years on
    assert len(far) == 1 and far.at(int(1e12 // STEP)) == 5.0
    assert len(forecast.merge(far, config, [(T0, 1.0)])) == 1  # and the old one is older than what is kept


SPEC = {"targetRef": {"monitoredService": "web"}, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]}


@pytest.mark.parametrize(("seasonal", "message"), [
    ({"enabled": True, "metric": "requestRate"}, "predictive.seasonal.metric must be one of spec.metrics"),
    ({"periodSeconds": 3600, "stepSeconds": 420}, "periodSeconds must be a multiple of stepSeconds"),
    ({"periodSeconds": 604800, "stepSeconds": 60, "lookbackPeriods": 2}, "must be at most 4032 points"),
    ({"trustWindowSeconds": 300, "stepSeconds": 300}, "trustWindowSeconds must cover at least two steps"),
    ({"metric": "custom"}, "name is required for metric custom"),
])
def test_the_crds_cel_rules_and_the_models_refuse_the_same(seasonal: dict, message: str) -> None:
    from controller import celcheck
    from controller import validation

    raw = {**SPEC, "predictive": {"seasonal": seasonal}}
    assert any(message in v for v in celcheck.spec_violations("ScalingPolicy", raw)), "the CRD's CEL rule"
    with pytest.raises(pydantic.ValidationError, match=message[:30]):
        api.ScalingPolicySpec.model_validate(raw)
    document = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": "web"},
                "spec": raw}
    assert any(message in p for p in validation.check(0, document).problems)


def test_a_well_formed_seasonal_policy_passes_everywhere() -> None:
    from controller import celcheck

    raw = {**SPEC, "predictive": {"seasonal": {"enabled": True, "lookbackPeriods": 7, "leadSeconds": 90}}}
    parsed = api.ScalingPolicySpec.model_validate(raw)
    assert parsed.predictive.seasonal.lookbackPeriods == 7
    # The rules run on a spec as the API server holds it: every default filled in.
    assert celcheck.spec_violations("ScalingPolicy", parsed.model_dump(mode="json", by_alias=True,
                                                                        exclude_none=True)) == []


def test_the_sliding_levels_are_each_windows_level() -> None:
    """The trust window's levels in one pass (forecast._sliding_levels) against `_level` of each
    window computed afresh, as the forecast once did (window² steps): random windows with gaps,
    NaN, zeros, and values at float's edge (one window of infinities is judged by `_level`)."""
    from hypothesis import given
    from hypothesis import settings as hypothesis_settings
    from hypothesis import strategies as st

    values = st.one_of(st.just(0.0), st.floats(0, 1e6), st.just(math.nan), st.just(1.7e308))
    seasonals = st.one_of(st.none(), st.just(0.0), st.floats(0, 1e6), st.just(1.7e308), st.just(math.inf))

    @hypothesis_settings(max_examples=300, deadline=None)
    @given(st.integers(1, 12).flatmap(lambda window: st.tuples(
        st.just(window), st.lists(values, min_size=2 * window, max_size=2 * window),
        st.lists(seasonals, min_size=2 * window, max_size=2 * window))))
    def check(case: tuple[int, list[float], list[float | None]]) -> None:
        window, actual, seasonal = case
        sliding = forecast._sliding_levels(actual, seasonal, window)
        for first, level in enumerate(sliding):
            fresh = forecast._level(actual[first:first + window], seasonal[first:first + window])
            assert (level is None) == (fresh is None), (first, level, fresh)
            if level is not None and fresh is not None:
                assert math.isclose(level, fresh, rel_tol=1e-9), (first, level, fresh)

    check()
    # Found by this search (a tenant's history can hold it): a seasonal sum so small the level
    # is past float's range raised OverflowError instead of reading as LEVEL_MAX.
    tiny = forecast._sliding_levels([0.0, 4.0, 0.0, 0.0], [None, 2.2250738585072014e-308, None, None], 2)
    assert tiny[1] == forecast.LEVEL_MAX
