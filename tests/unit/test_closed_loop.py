"""The closed-loop simulator: the plant, the scorecard, and the default policy against HPA."""

from __future__ import annotations

import pathlib

import pytest

from controller import cli
from controller.api import scalingpolicy
from controller.sim import closedloop
from controller.sim import plant
from controller.sim import traces

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "manifests" / "examples" / "scalingpolicy.yaml"
REAL_WEEK = pathlib.Path(__file__).resolve().parents[2] / "bench" / "traces" / "nasa-july-1-7.csv.gz"


def default_spec() -> scalingpolicy.ScalingPolicySpec:
    return scalingpolicy.ScalingPolicySpec.model_validate({"targetRef": {"monitoredService": "web"}})


def test_plant_saturates_starts_pods_late_and_counts_violations() -> None:
    world = plant.Plant(plant.Model(capacity=50, startup_seconds=30), replicas=2)
    world.scale(0, 4)
    for at in range(70):
        world.advance(at, 150.0)  # 150 req/s: 2 ready pods saturate until the new ones are ready at 30 s
    assert world.utilisation[0] == 1.0 and world.violated[0]
    assert world.ready_counts[29] == 2 and world.ready_counts[30] == 4
    assert world.utilisation[35] == 1.0 and not world.violated[35]  # draining the backlog
    assert world.utilisation[69] == pytest.approx(0.75) and world.backlog == 0
    seen = world.observe(70)
    assert seen.ready == 4 and seen.values["cpu"] == pytest.approx(75, abs=1)  # new pods read their own window
    assert seen.values["errorRate"] == 0


def test_overload_shows_as_errors_and_latency() -> None:
    world = plant.Plant(plant.Model(capacity=50, queue_timeout_seconds=2), replicas=2)
    for at in range(30):
        world.advance(at, 300.0)
    seen = world.observe(30)
    assert seen.values["errorRate"] > 50 and seen.values["latencyP95"] > 2000 and seen.values["cpu"] == 100


def test_scale_down_removes_starting_pods_first() -> None:
    world = plant.Plant(plant.Model(startup_seconds=30), replicas=3)
    world.scale(100, 5)
    world.scale(110, 3)
    assert all(p.ready_at <= 100 for p in world.pods)


def test_flaps_are_reversals_within_five_minutes() -> None:
    assert closedloop.flaps([(0, 2, 4), (100, 4, 3), (500, 3, 5), (600, 5, 6)]) == 1
    assert closedloop.flaps([(0, 2, 4), (400, 4, 3)]) == 0


@pytest.mark.parametrize("name", ["step", "flash-crowd"])
def test_default_policy_meets_the_slo_at_least_as_well_as_hpa(name: str) -> None:
    spec = default_spec()
    comparison = closedloop.compare(
        [closedloop.PolicyController(spec), closedloop.HpaController(spec.minReplicas, spec.maxReplicas)],
        traces.built_in(name), plant.Model(), spec.minReplicas, spec.maxReplicas)
    ours, baseline = comparison.scores
    assert ours.slo_violation_seconds <= baseline.slo_violation_seconds, (ours, baseline)
    assert ours.flaps == 0
    assert ours.oracle_ratio >= 1  # the oracle is a lower bound


def test_every_built_in_trace_is_deterministic() -> None:
    for name in traces.BUILT_IN:
        trace = traces.built_in(name)
        assert [trace.load(t) for t in range(0, trace.duration, 997)] == \
               [traces.built_in(name).load(t) for t in range(0, trace.duration, 997)]
        assert all(trace.load(t) >= 0 for t in range(0, trace.duration, 60))


def test_csv_trace_interpolates_and_refuses_garbage(tmp_path) -> None:  # noqa: ANN001
    good = tmp_path / "load.csv"
    good.write_text("t,load\n0,100\n60,200\n")
    trace = traces.from_csv(good)
    assert (trace.load(0), trace.load(30), trace.load(600), trace.duration) == (100, 150, 200, 61)
    for text, words in [("x,y\n1,2\n", "header t,load"), ("t,load\n0,abc\n", "line 2"),
                        ("t,load\n5,1\n3,1\n", "times must increase"), ("t,load\n0,-1\n", ">= 0"),
                        ("t,load\n", "no rows")]:
        bad = tmp_path / "bad.csv"
        bad.write_text(text)
        with pytest.raises(ValueError, match=words):
            traces.from_csv(bad)


def test_the_real_week_reads_compressed_and_cuts_into_windows() -> None:
    """bench/traces/ holds the NASA week gzip-compressed: 15 s rows, p99 scaled to 490 req/s."""
    week = traces.from_csv(REAL_WEEK)
    assert week.name == "nasa-july-1-7" and week.duration == 7 * 86400 - 14
    day2 = traces.window(week, 86400, 6 * 3600, "day 2 00h")
    assert (day2.duration, day2.load(0), day2.load(100)) == (21600, week.load(86400), week.load(86500))
    loads = sorted(week.load(t) for t in range(0, week.duration, 15))
    assert loads[int(len(loads) * 0.99)] == pytest.approx(490, abs=1)
    with pytest.raises(ValueError, match="outside"):
        traces.window(week, week.duration - 10, 60, "past the end")


def test_cli_closed_loop_prints_a_scorecard_and_a_plot(tmp_path, capsys) -> None:  # noqa: ANN001
    picture = tmp_path / "step.png"
    assert cli.main(["simulate", str(EXAMPLE), "--trace", "step", "--plot", str(picture)]) == 0
    out = capsys.readouterr().out
    assert "SLO-violation s" in out and "\nhpa " in out and "\noracle " in out
    assert picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_refuses_a_bad_trace(tmp_path, capsys) -> None:  # noqa: ANN001
    assert cli.main(["simulate", str(EXAMPLE), "--trace", str(tmp_path / "missing.csv")]) == 2
    assert "missing.csv" in capsys.readouterr().err


def test_the_default_is_never_less_safe_or_calmer_than_hpa_on_a_real_window() -> None:
    """Day 4, 12:00-18:00 of the NASA week (a busy afternoon): the shipped default violates the
    SLO and reverses direction no more than HPA (issue 22: every real window, four plants)."""
    week = traces.from_csv(REAL_WEEK)
    window = traces.window(week, 3 * 86400 + 12 * 3600, 6 * 3600, "day 4 12h")
    spec = scalingpolicy.ScalingPolicySpec.model_validate({"targetRef": {"monitoredService": "web"}})
    for model in (plant.Model(), plant.Model(capacity=80, startup_seconds=90)):
        ours, hpa = closedloop.compare([closedloop.PolicyController(spec), closedloop.HpaController(2, 20)],
                                       window, model, 2, 20).scores
        assert ours.slo_violation_seconds <= hpa.slo_violation_seconds and ours.flaps <= hpa.flaps, (ours, hpa)
