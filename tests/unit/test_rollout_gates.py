"""Verification gates on a rollout (core/rollout.py): groups of health checks, each with a timeout
and a criterion (all healthy, a share healthy, a latency bound), judged during the analysis
window — the platform's post-deployment table, as the issue writes it."""

from __future__ import annotations

import datetime

import pytest

from controller.api import monitoredservice as api
from controller.core import health
from controller.core import rollout

T0 = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
HEALTH = [f"h{i}" for i in range(5)]
INTEGRATION = [f"i{i}" for i in range(5)]
SPEC = api.Rollout(autoRollback=True, progressDeadlineSeconds=60, analysis={
    "windowSeconds": 300, "requireHealthyChecks": False, "gates": [
        {"name": "health", "checks": HEALTH, "timeoutSeconds": 300},
        {"name": "integration", "checks": INTEGRATION, "timeoutSeconds": 300, "healthyPercent": 80},
        {"name": "performance", "checks": HEALTH, "timeoutSeconds": 120, "maxLatencyMs": 2000},
    ]})


def deploy(revision: str, complete: bool = True) -> rollout.DeploymentView:
    return rollout.DeploymentView(revision=revision, replicas=2, updated=2 if complete else 1,
                                  available=2 if complete else 1, generation=3, observed_generation=3,
                                  paused=False, deadline_exceeded=False)


def observed(failing: set[str] = frozenset(), undecided: set[str] = frozenset(), latency: float = 150) -> rollout.Analysis:
    checks = {name: rollout.CheckView(None if name in undecided else name not in failing, latency)
              for name in HEALTH + INTEGRATION}
    return rollout.Analysis(error_rate=0.1, latency_p95=100, health="Healthy", checks=checks)


def run(timeline: list[tuple[float, rollout.Analysis]]) -> rollout.Verdict:
    """Revision 1 healthy, revision 2 available at t=10, then the timeline (seconds after t=0)."""
    state = rollout.judge(SPEC, deploy("1"), {}, observed(), T0).status
    # Available at t=10, seen as the timeline's first observation (a gate may pass at once).
    state = rollout.judge(SPEC, deploy("2"), state, timeline[0][1], T0 + datetime.timedelta(seconds=10)).status
    assert state["phase"] == "Analyzing"
    verdict = None
    for seconds, seen in timeline:
        verdict = rollout.judge(SPEC, deploy("2"), state, seen, T0 + datetime.timedelta(seconds=seconds))
        state = verdict.status
        if state["phase"] != "Analyzing":
            break
    assert verdict is not None
    return verdict


def test_one_of_five_failing_in_the_80_percent_group_passes() -> None:
    verdict = run([(20, observed(failing={"i3"})), (200, observed(failing={"i3"})), (311, observed(failing={"i3"}))])
    assert verdict.status["phase"] == "Healthy" and verdict.rollback is None
    assert verdict.status["passedGates"] == ["health", "integration", "performance"]


def test_two_of_five_failing_in_the_80_percent_group_rolls_back_at_its_timeout() -> None:
    verdict = run([(20, observed(failing={"i1", "i3"})), (300, observed(failing={"i1", "i3"})),
                   (311, observed(failing={"i1", "i3"}))])
    assert verdict.rollback == "2" and verdict.status["phase"] == "RolledBack"
    assert verdict.status["reason"] == ("analysis of revision 2: gate integration not met within 300s: "
                                        "3 of 5 check(s) passing, 80 % needed")


def test_a_gate_waits_for_its_timeout_and_passes_once_met() -> None:
    """Checks still starting (no verdict) or failing early do not fail a gate before its timeout;
    once met it stays passed, as the platform's "within 300 s" reads."""
    verdict = run([(20, observed(undecided=set(HEALTH))), (100, observed(failing={"h0"})),
                   (200, observed()), (250, observed(failing={"h0"})), (311, observed(failing={"h0"}))])
    assert verdict.status["phase"] == "Healthy"


def test_the_all_healthy_gate_fails_with_one_failing() -> None:
    verdict = run([(20, observed(failing={"h4"})), (311, observed(failing={"h4"}))])
    assert verdict.rollback == "2"
    assert "gate health not met within 300s: 4 of 5 check(s) passing, 100 % needed" in verdict.status["reason"]


def test_the_latency_bound() -> None:
    slow = run([(20, observed(latency=2500)), (131, observed(latency=2500))])
    assert slow.rollback == "2"
    assert "gate performance not met within 120s: h0 answered in 2500ms, over 2000ms" in slow.status["reason"]
    fast = run([(20, observed(latency=2500)), (100, observed(latency=400)), (311, observed(latency=2500))])
    assert fast.status["phase"] == "Healthy"


def test_passed_gates_survive_a_restart_and_a_new_revision_starts_afresh() -> None:
    state = rollout.judge(SPEC, deploy("1"), {}, observed(), T0).status
    state = rollout.judge(SPEC, deploy("2"), state, observed(), T0 + datetime.timedelta(seconds=10)).status
    state = rollout.judge(SPEC, deploy("2"), state, observed(), T0 + datetime.timedelta(seconds=20)).status
    assert state["passedGates"] == ["health", "integration", "performance"]
    # A restart reads status: a gate passed before is not judged again.
    restarted = rollout.judge(SPEC, deploy("2"), dict(state), observed(failing={"h1"}), T0 + datetime.timedelta(seconds=311))
    assert restarted.status["phase"] == "Healthy"
    state = rollout.judge(SPEC, deploy("3", complete=False), restarted.status, observed(), T0 + datetime.timedelta(seconds=400)).status
    assert state["passedGates"] == []


@pytest.mark.parametrize("views,gate,unmet", [
    ({"a": rollout.CheckView(True, 10)}, {"checks": ["a"]}, None),
    ({}, {"checks": ["a"]}, "0 of 1 check(s) passing, 100 % needed (1 without a verdict yet)"),
    ({"a": rollout.CheckView(True, None)}, {"checks": ["a"], "maxLatencyMs": 5}, "a answered in no latency, over 5ms"),
])
def test_gate_criterion(views: dict, gate: dict, unmet: str | None) -> None:
    assert rollout.gate_unmet(api.Gate(name="g", timeoutSeconds=10, **gate), views) == unmet


def test_a_check_keeps_its_latest_latency() -> None:
    spec = api.HealthCheck(name="a", tcp={"host": "db", "port": 1})
    state = health.apply_probe(spec, health.CheckState(), health.ProbeResult(True, 12.5, "ok"), T0)
    assert state.latency_ms == 12.5


def test_gates_are_validated() -> None:
    from controller import validation

    base = {"target": {"kubernetes": {"name": "web"}}, "healthChecks": [{"name": "a", "tcp": {"host": "x", "port": 1}}]}
    assert validation.spec_problems("MonitoredService", {**base, "rollout": {"analysis": {"gates": [
        {"name": "g", "checks": ["a"], "timeoutSeconds": 300}]}}}) == []
    found = validation.spec_problems("MonitoredService", {**base, "rollout": {"analysis": {"windowSeconds": 100, "gates": [
        {"name": "g", "checks": ["a", "b"], "timeoutSeconds": 200}, {"name": "g", "checks": ["a"], "timeoutSeconds": 10}]}}})
    assert "spec.rollout.analysis.gates: every gate's checks must name healthChecks" in found
    assert ("spec.rollout.analysis.gates: a gate's timeoutSeconds must not exceed windowSeconds "
            "(gates are judged during the window)") in found
    assert 'spec.rollout.analysis.gates[1]: Duplicate value: {"name": "g"}' in found
