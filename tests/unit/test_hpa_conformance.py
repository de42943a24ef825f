"""Kubernetes HPA's own behavior, stabilization and condition tables (tests/conformance/hpa/,
transcribed as data from horizontal_test.go at the pinned v1.36.3) run against this project's
scaling stages (controller/core/scaling.py: every stage after the proposal, and the conditions)
and against the HPA port `make bench-quality` compares with (controller/sim/hpa.py). Every case
agrees, or is listed in DIFFERS with the reason we differ on purpose (the same list is in
docs/scaling.md, "Conformance with HPA's tables"); a listed case that starts agreeing fails too,
so the list cannot go stale. Tests HPA has that do not apply are named, with why, in
tests/conformance/hpa/not_applicable.yaml."""

from __future__ import annotations

import datetime
import functools
import pathlib
import typing

import pytest
import yaml

from controller.api import scalingpolicy as api
from controller.core import scaling
from controller.sim import hpa as sim
from controller.sim import plant

DATA = pathlib.Path(__file__).parent.parent / "conformance" / "hpa"
NOW = datetime.datetime(2026, 11, 1, 13, 0, tzinfo=datetime.timezone.utc)
LONG_AGO = NOW - datetime.timedelta(days=1)  # every scale-down window fully observed
SIM_NOW = 100_000  # the port counts whole seconds

OUR_DOWN_DEFAULT = ("our default scale-down is at most -50 % per 60 s (HPA's: -100 % per 15 s), so a scale-down "
                    "is gentler than HPA's (docs/scaling.md, Defaults)")
SUCCEEDED_RESCALE = ("AbleToScale SucceededRescale is HPA's word for a scale it has just made; our decision says "
                     "ReadyForNewScale and the operator records the scale as a ScaledUp/ScaledDown Event")

WINDOW_EDGE = ("a recommendation exactly a window old still counts here (HPA: outside the window), one evaluation "
               "more of caution: with HPA's edge, loads whose phases are multiples of the window scale down one "
               "evaluation before the load returns (make bench-quality, held-out square-10min, default profile: SLO "
               "violation 240 -> 420 s, flaps 0 -> 8; square-3min, efficient: 45 -> 900 s)")

# case id -> why we differ on purpose
DIFFERS = {
    "edge-a recommendation exactly the down window old is outside it": WINDOW_EDGE,
    "edge-a recommendation exactly the up window old is outside it": WINDOW_EDGE,
    "ours-scaleDown with default policy and previous events": OUR_DOWN_DEFAULT,
    **{f"controller-{name}-able": SUCCEEDED_RESCALE for name in (
        "TestScaleDownWithScalingRules", "TestUpscaleCap", "TestUpscaleCapGreaterThanMaxReplicas", "TestMinReplicas",
        "TestZeroMinReplicasDesiredZero", "TestMinReplicasDesiredZero", "TestMaxReplicas", "TestTooFewReplicas",
        "TestTooManyReplicas")},
}


@functools.lru_cache(maxsize=None)
def load(name: str) -> typing.Any:
    return yaml.safe_load((DATA / name).read_text())


def differ(case_id: str, outcome: bool) -> None:
    """A case listed in DIFFERS must still differ; any other must agree."""
    if case_id in DIFFERS:
        assert not outcome, f"{case_id} now agrees with HPA: take it off DIFFERS and docs/scaling.md"
    else:
        assert outcome, f"{case_id} disagrees with HPA"


def rules(table: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
    return {"stabilizationWindowSeconds": table["window"], "cooldownSeconds": 0, "selectPolicy": table["select"],
            "policies": [{"type": t, "value": v, "periodSeconds": p} for t, v, p in table["policies"]]}


def make_spec(minimum: int, maximum: int, up: typing.Mapping[str, typing.Any] | None,
              down: typing.Mapping[str, typing.Any] | None) -> api.ScalingPolicySpec:
    """A policy with these bounds and rules; a direction given as None takes OUR default."""
    behavior = {}
    if up is not None:
        behavior["scaleUp"] = rules(up)
    if down is not None:
        behavior["scaleDown"] = rules(down)
    body: dict[str, typing.Any] = {
        "targetRef": {"monitoredService": "conformance"}, "minReplicas": minimum, "maxReplicas": maximum,
        "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}], "behavior": behavior}
    if minimum == 0:  # minReplicas 0 is scale to zero here: it needs an activation metric
        body["activation"] = {"type": "requestRate"}
    return api.ScalingPolicySpec.model_validate(body)


def spread(events: typing.Sequence[typing.Any] | None) -> list[tuple[float, int]]:
    """generateEventsUniformDistribution(changes, period): (seconds ago, change) per event."""
    if not events:
        return []
    changes, period = events
    segment = period / len(changes)
    return [(period - segment * (i + 1) + segment / 2, change) for i, change in enumerate(changes)]


def state(up_events: typing.Sequence[tuple[float, int]] = (), down_events: typing.Sequence[tuple[float, int]] = (),
          recommendations: typing.Sequence[typing.Sequence[int]] = (), since: datetime.datetime = LONG_AGO
          ) -> scaling.State:
    def at(age: float) -> datetime.datetime:
        return NOW - datetime.timedelta(seconds=age)

    events = [scaling.ScaleEvent(at(age), 100, 100 + change) for age, change in up_events]
    events += [scaling.ScaleEvent(at(age), 100, 100 - change) for age, change in down_events]
    return scaling.State(observing_since=since, events=tuple(sorted(events, key=lambda e: e.time, reverse=True)),
                         recommendations=tuple((at(age), r) for r, age in recommendations))


def decide(spec: api.ScalingPolicySpec, current: int, desired: int, st: scaling.State
           ) -> tuple[list[scaling.Stage], tuple[str, str, str], tuple[str, str, str], scaling.Input, scaling.Proposal]:
    """Our stages after a proposal of `desired` replicas, and the conditions they make."""
    direction = "Up" if desired > current else "Down" if desired < current else "Hold"
    proposal = scaling.Proposal(desired, direction, "conformance")
    inp = scaling.Input(spec, current, current, current, st, NOW, (), {})
    stages = [scaling.Stage("proposal", desired)]
    for stage in scaling.LIMITS:
        stages.append(stage(inp, proposal, stages[-1].desired))
    able, _active, limited, _advice = scaling._conditions(spec, (), stages)
    return stages, able, limited, inp, proposal


def sim_rules(table: typing.Mapping[str, typing.Any]) -> sim.Rules:
    return sim.Rules(table["window"], tuple((t, v, p) for t, v, p in table["policies"]), table["select"])


def sim_events(events: list[tuple[float, int]], sign: int) -> list[tuple[int, int]]:
    # The port counts whole seconds; the spread's half seconds are rounded away from the period's edge.
    return [(SIM_NOW - int(age), sign * change) for age, change in events]


# -- TestScalingWithRules --------------------------------------------------------------------


def rule_cases(variant: str) -> list[typing.Any]:
    cases = load("behavior.yaml")["scaling_with_rules"] + load("behavior.yaml")["edge"]
    if variant == "ours":  # the cases that leave a direction to its default, with OUR defaults
        cases = [c for c in cases if c["up"] is None or c["down"] is None]
    return [pytest.param(c, id=f"{variant}-{c['name']}") for c in cases]


@pytest.mark.parametrize("case", rule_cases("hpa"))
def test_scaling_with_rules(case: typing.Mapping[str, typing.Any]) -> None:
    """HPA's defaults written out where the case leaves a direction to them."""
    defaults = load("behavior.yaml")["hpa_defaults"]
    spec = make_spec(case["min"], case["max"], case["up"] or defaults["up"], case["down"] or defaults["down"])
    st = state(spread(case.get("up_events")), spread(case.get("down_events")))
    stages, _able, limited, _inp, _proposal = decide(spec, case["current"], case["desired"], st)
    assert (stages[-1].desired, limited[1]) == (case["replicas"], case["condition"])


@pytest.mark.parametrize("case", rule_cases("ours"))
def test_scaling_with_rules_our_defaults(case: typing.Mapping[str, typing.Any], request: pytest.FixtureRequest) -> None:
    spec = make_spec(case["min"], case["max"], case["up"], case["down"])
    st = state(spread(case.get("up_events")), spread(case.get("down_events")))
    stages, _able, limited, _inp, _proposal = decide(spec, case["current"], case["desired"], st)
    differ(request.node.callspec.id, (stages[-1].desired, limited[1]) == (case["replicas"], case["condition"]))


@pytest.mark.parametrize("case", rule_cases("hpa"))
def test_scaling_with_rules_sim_port(case: typing.Mapping[str, typing.Any]) -> None:
    """The same table through the HPA port `make bench-quality` runs (replicas only: it keeps no conditions)."""
    defaults = load("behavior.yaml")["hpa_defaults"]
    replicas = sim.convert_with_rate(
        SIM_NOW, case["current"], case["desired"], case["min"], case["max"],
        sim_events(spread(case.get("up_events")), 1), sim_events(spread(case.get("down_events")), -1),
        sim_rules(case["up"] or defaults["up"]), sim_rules(case["down"] or defaults["down"]))
    assert replicas == case["replicas"]


# -- TestConvertDesiredReplicasWithRules, TestCalculateScale{Up,Down}Limit*, TestStoreScaleEvents


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"])
                                  for c in load("behavior.yaml")["convert_with_rules"]["cases"]])
def test_convert_desired_replicas_with_rules(case: typing.Mapping[str, typing.Any]) -> None:
    legacy = load("behavior.yaml")["convert_with_rules"]["legacy"]
    spec = make_spec(case["min"], case["max"], legacy["up"], legacy["down"])
    stages, _able, limited, _inp, _proposal = decide(spec, case["current"], case["desired"], state())
    assert (stages[-1].desired, limited[1]) == (case["replicas"], case["condition"])


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in load("behavior.yaml")["scale_limits"]])
def test_calculate_scale_limit(case: typing.Mapping[str, typing.Any]) -> None:
    up = case["direction"] == "up"
    spec = make_spec(1, 10000, case["rules"] if up else None, None if up else case["rules"])
    stages, _able, _limited, _inp, _proposal = decide(spec, case["current"], 10000 if up else 1, state())
    assert next(s for s in stages if s.name == "step limit").desired == case["limit"]
    starts = sim._period_starts(SIM_NOW, case["current"], [], [], sim_rules(case["rules"]))
    assert starts  # the port's limit, from the same period starts
    limit = (sim.scale_up_limit if up else sim.scale_down_limit)(SIM_NOW, case["current"], [], [], sim_rules(case["rules"]))
    assert limit == case["limit"]


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"])
                                  for c in load("behavior.yaml")["replicas_change_per_period"]])
@pytest.mark.parametrize("direction", ["up", "down"])
def test_replicas_change_per_period(case: typing.Mapping[str, typing.Any], direction: str) -> None:
    """getReplicasChangePerPeriod(60, events), as our step limit's start of a 60 s period."""
    events = [(age, change) for change, age in case["events"]]
    st = state(up_events=events) if direction == "up" else state(down_events=events)
    start = scaling._period_start(st.events, 50, NOW, 60)
    assert (50 - start if direction == "up" else start - 50) == case["change"]


# -- TestNormalizeDesiredReplicasWithBehavior and TestNormalizeDesiredReplicas -----------------


def live(stored: typing.Sequence[typing.Sequence[int]], longest: int) -> list[int]:
    """The recommendations either implementation can still use: this round's, and those younger
    than the longer window."""
    return sorted(r for r, age in stored if age == 0 or age < longest)


def stabilization_cases(table: str) -> list[typing.Any]:
    return [pytest.param(c, id=c["name"]) for c in load("stabilization.yaml")[table]]


def windows(case: typing.Mapping[str, typing.Any]) -> tuple[int, int]:
    return (case["up_window"], case["down_window"]) if "up_window" in case else (0, 300)


@pytest.mark.parametrize("table,case", [pytest.param(t, c.values[0], id=f"{t}-{c.id}")
                                        for t in ("with_behavior", "legacy", "edge") for c in stabilization_cases(t)])
def test_stabilize_recommendation(table: str, case: typing.Mapping[str, typing.Any],
                                  request: pytest.FixtureRequest) -> None:
    up_window, down_window = windows(case)
    current = case.get("current", 100)
    no_limit = {"policies": [], "select": "Max"}
    spec = make_spec(1, 1000, {"window": up_window, **no_limit}, {"window": down_window, **no_limit})
    stages, _able, _limited, inp, proposal = decide(spec, current, case["desired"],
                                                    state(recommendations=case["recommendations"]))
    stabilized = next(s for s in stages if s.name == "stabilization").desired
    differ(request.node.callspec.id, stabilized == stages[-1].desired == case["replicas"])
    if case["stored"] is not None:
        ours = [[r, round((NOW - t).total_seconds())] for t, r in scaling.recommendations(inp, proposal)]
        assert live(ours, max(up_window, down_window)) == live(case["stored"], max(up_window, down_window))


@pytest.mark.parametrize("table,case", [pytest.param(t, c.values[0], id=f"{t}-{c.id}")
                                        for t in ("with_behavior", "legacy", "edge") for c in stabilization_cases(t)])
def test_stabilize_recommendation_sim_port(table: str, case: typing.Mapping[str, typing.Any]) -> None:
    """The port keeps HPA's slice as HPA does: its stored history is compared entry by entry."""
    up_window, down_window = windows(case)
    history = [(SIM_NOW - age, r) for r, age in case["recommendations"]]
    replicas = sim.stabilize(history, SIM_NOW, case.get("current", 100), case["desired"],
                             sim.Rules(up_window, ()), sim.Rules(down_window, ()))
    assert replicas == case["replicas"]
    if case["stored"] is not None:
        assert [[r, SIM_NOW - at] for at, r in history] == case["stored"]
    if "upstream_length" in case:
        assert len(history) == case["upstream_length"]


# -- Whole-controller cases: behavior, bounds and conditions ---------------------------------


def controller_rules(case: typing.Mapping[str, typing.Any]) -> tuple[dict[str, typing.Any], dict[str, typing.Any]]:
    if case["behavior"] == "legacy":
        legacy = load("behavior.yaml")["convert_with_rules"]["legacy"]
        return legacy["up"], {**legacy["down"], "window": 300}
    defaults = load("behavior.yaml")["hpa_defaults"]
    return case["behavior"]["up"] or defaults["up"], case["behavior"]["down"] or defaults["down"]


def controller_cases(part: str) -> list[typing.Any]:
    return [pytest.param(c, id=f"controller-{c['name']}-{part}") for c in load("controller.yaml")["cases"]
            if part != "limited" or c["limited"] is not None]


def run_controller(case: typing.Mapping[str, typing.Any]
                   ) -> tuple[list[scaling.Stage], tuple[str, str, str], tuple[str, str, str]]:
    up, down = controller_rules(case)
    spec = make_spec(case["min"], case["max"], up, down)
    seeded = case["recommendations"] is None  # HPA's first sight: ours has just started observing
    st = state(recommendations=case["recommendations"] or (), since=NOW if seeded else LONG_AGO)
    stages, able, limited, _inp, _proposal = decide(spec, case["current"], case["desired"], st)
    return stages, able, limited


@pytest.mark.parametrize("case", controller_cases("replicas"))
def test_controller_replicas(case: typing.Mapping[str, typing.Any]) -> None:
    stages, _able, _limited = run_controller(case)
    assert stages[-1].desired == case["replicas"]


@pytest.mark.parametrize("case", controller_cases("limited"))
def test_controller_scaling_limited(case: typing.Mapping[str, typing.Any]) -> None:
    _stages, _able, limited = run_controller(case)
    assert limited[1] == case["limited"]


@pytest.mark.parametrize("case", controller_cases("able"))
def test_controller_able_to_scale(case: typing.Mapping[str, typing.Any], request: pytest.FixtureRequest) -> None:
    _stages, able, _limited = run_controller(case)
    differ(request.node.callspec.id, able[:2] == ("True", case["able"]))


def test_controller_sim_port() -> None:
    """The whole-controller cases' replicas through the port (seeded with the current count at first sight)."""
    for case in load("controller.yaml")["cases"]:
        up, down = controller_rules(case)
        seeded = case["recommendations"] is None
        history = [(SIM_NOW, case["current"])] if seeded else [(SIM_NOW - age, r) for r, age in case["recommendations"]]
        current = case["current"]
        if current < case["min"] or current > case["max"]:
            replicas = min(max(current, case["min"]), case["max"])  # reconcileAutoscaler: no metrics read
        else:
            stabilized = sim.stabilize(history, SIM_NOW, current, case["desired"], sim_rules(up), sim_rules(down))
            replicas = sim.convert_with_rate(SIM_NOW, current, stabilized, case["min"], case["max"], [], [],
                                             sim_rules(up), sim_rules(down))
        assert replicas == case["replicas"], case["name"]


# -- Replica calculator (the port only: our proposal has thresholds, not a target) -------------


def pod(kind: str) -> plant.Pod:
    """Upstream's pod kinds as the port sees pods: (created, ready at), SIM_NOW being now."""
    return {"ready": plant.Pod(SIM_NOW - 100_000, SIM_NOW - 99_000), "unready": plant.Pod(SIM_NOW - 100_000, SIM_NOW + 1),
            "hot": plant.Pod(SIM_NOW, SIM_NOW), "cool": plant.Pod(SIM_NOW - 180, SIM_NOW - 170)}[kind]


@pytest.mark.parametrize("case", [pytest.param(c, id=c["name"]) for c in load("replica_calculator.yaml")["cases"]])
def test_replica_calculator_sim_port(case: typing.Mapping[str, typing.Any]) -> None:
    requests = case.get("requests") or [1.0] * len(case["levels"])
    utilisation = tuple(level / (request * 1000) * 100 for level, request in zip(case["levels"], requests, strict=True))
    pods = tuple(pod(kind) for kind in case["pods"])
    observation = plant.Observation(at=SIM_NOW, replicas=case["current"], ready=sum(k != "unready" for k in case["pods"]),
                                    pods=pods, values={}, pod_cpu=utilisation)
    replicas = sim.resource_replicas(observation, window=60, target=case["target"], tolerance=0.1,
                                     cpu_initialization_period=120)
    assert replicas == case["replicas"]


def test_not_applicable_named() -> None:
    """Every upstream test left out is named with a reason (the list the figures in docs/scaling.md count)."""
    groups = load("not_applicable.yaml")["groups"]
    assert groups and all(g["tests"] and len(g["why"]) > 40 for g in groups)
