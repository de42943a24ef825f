"""Table-driven tests of the rollout guard's judgement."""

from __future__ import annotations

import datetime

import pytest

from controller.api import monitoredservice as api
from controller.core import rollout

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
SPEC = api.Rollout(autoRollback=True, progressDeadlineSeconds=60,
                   analysis={"windowSeconds": 120, "maxErrorRatePercent": 5, "maxLatencyP95Ms": 2000})
CALM = rollout.Analysis(error_rate=0.5, latency_p95=100, health="Healthy")


def deploy(revision="2", complete=True, paused=False, deadline=False) -> rollout.DeploymentView:  # noqa: ANN001
    return rollout.DeploymentView(revision=revision, replicas=2, updated=2 if complete else 1,
                                  available=2 if complete else 1, generation=3, observed_generation=3,
                                  paused=paused, deadline_exceeded=deadline)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def step(spec, previous, view, seconds, observed=CALM) -> rollout.Verdict:  # noqa: ANN001
    return rollout.judge(spec, view, previous, observed, at(seconds))


def test_first_sight_of_a_complete_deployment_is_a_healthy_baseline() -> None:
    verdict = step(SPEC, {}, deploy("1"), 0)
    assert verdict.status["phase"] == "Healthy" and verdict.rollback is None and verdict.event is None
    assert verdict.condition.status == "True"


def test_healthy_rollout_passes_analysis() -> None:
    state = step(SPEC, {}, deploy("1"), 0).status
    state = step(SPEC, state, deploy("2", complete=False), 10).status
    assert state["phase"] == "Progressing"
    state = step(SPEC, state, deploy("2"), 20).status
    assert state["phase"] == "Analyzing"
    verdict = step(SPEC, state, deploy("2"), 141)
    assert verdict.status["phase"] == "Healthy" and verdict.rollback is None
    assert verdict.event == ("Normal", "RolloutSucceeded", "revision 2 passed 120s of analysis")
    assert verdict.status["history"][0]["phase"] == "Healthy"


def test_progress_deadline_rolls_back_once() -> None:
    state = step(SPEC, {}, deploy("1"), 0).status
    state = step(SPEC, state, deploy("2", complete=False), 10).status
    verdict = step(SPEC, state, deploy("2", complete=False), 71)
    assert verdict.rollback == "2" and verdict.status["phase"] == "RolledBack"
    assert verdict.status["pendingRollback"] == "2" and verdict.status["rolledBackRevisions"] == ["2"]
    assert verdict.event[1] == "RolledBack" and "ProgressDeadlineExceeded" in verdict.event[2]
    # The Deployment still shows revision 2 (its controller has not caught up): repeat the
    # patch (idempotent) but announce nothing new.
    again = step(SPEC, verdict.status, deploy("2", complete=False), 72)
    assert again.rollback == "2" and again.event is None
    # The rollback produced revision 3: it is recorded, and never rolled back itself.
    after = step(SPEC, again.status, deploy("3", complete=False), 80).status
    assert after["rollbackRevisions"] == ["3"] and after["pendingRollback"] is None
    failed = step(SPEC, after, deploy("3", complete=False), 200)
    assert failed.rollback is None and "is a rollback" in failed.status["reason"]


def test_deployment_condition_deadline_counts_too() -> None:
    state = step(SPEC, {"revision": "1", "phase": "Healthy"}, deploy("2", complete=False), 0).status
    assert step(SPEC, state, deploy("2", complete=False, deadline=True), 5).rollback == "2"


@pytest.mark.parametrize("observed,words", [
    (rollout.Analysis(12.0, 100, "Healthy"), "error rate 12.0% > 5%"),
    (rollout.Analysis(0.1, 4000, "Healthy"), "p95 latency 4000ms > 2000ms"),
    (rollout.Analysis(0.1, 100, "Unhealthy"), "health checks Unhealthy"),
])
def test_analysis_failures_roll_back(observed, words) -> None:  # noqa: ANN001
    state = step(SPEC, {"revision": "1", "phase": "Healthy"}, deploy("2"), 0).status
    assert state["phase"] == "Analyzing"
    verdict = step(SPEC, state, deploy("2"), 30, observed)
    assert verdict.rollback == "2" and words in verdict.status["reason"]


def test_no_rollback_without_auto_rollback_or_when_paused() -> None:
    manual = SPEC.model_copy(update={"autoRollback": False})
    state = step(manual, {"revision": "1", "phase": "Healthy"}, deploy("2"), 0).status
    verdict = step(manual, state, deploy("2"), 30, rollout.Analysis(50, 100, "Healthy"))
    assert verdict.rollback is None and verdict.status["phase"] == "Failed"
    assert verdict.event[:2] == ("Warning", "RolloutFailed") and verdict.condition.status == "False"
    state = step(SPEC, {"revision": "1", "phase": "Healthy"}, deploy("2", paused=True), 0).status
    paused = step(SPEC, state, deploy("2", paused=True), 30, rollout.Analysis(50, 100, "Healthy"))
    assert paused.rollback is None and "paused" in paused.status["reason"]


def test_restart_with_pending_rollback_finishes_it_without_a_second_event() -> None:
    pending = {"revision": "2", "phase": "RolledBack", "pendingRollback": "2", "rolledBackRevisions": ["2"],
               "reason": "analysis failed"}
    verdict = step(SPEC, pending, deploy("2"), 0)
    assert verdict.rollback == "2" and verdict.event is None


def test_restart_during_analysis_resumes_the_window() -> None:
    state = step(SPEC, {"revision": "1", "phase": "Healthy"}, deploy("2"), 0).status
    persisted = dict(state)  # what status held when the operator stopped
    verdict = step(SPEC, persisted, deploy("2"), 60, rollout.Analysis(30, 100, "Healthy"))
    assert verdict.rollback == "2"
    assert step(SPEC, verdict.status, deploy("2"), 61).event is None


def failed(revision: str, status: str) -> rollout.DeploymentView:
    """A Railway-style revision its platform reports failed outright."""
    return rollout.DeploymentView(revision=revision, replicas=1, updated=0, available=0, generation=0,
                                  observed_generation=0, paused=False, deadline_exceeded=False,
                                  failure=f"deployment {status}")


def test_a_revision_that_fails_outright_is_rolled_back_at_once() -> None:
    state = step(SPEC, {}, deploy("1"), 0).status
    verdict = step(SPEC, state, failed("2", "FAILED"), 5)  # long before the 60 s deadline
    assert verdict.rollback == "2" and verdict.status["phase"] == "RolledBack"
    assert verdict.event[1] == "RolledBack" and "deployment FAILED" in verdict.event[2]


def test_a_revision_that_crashes_under_analysis_is_rolled_back_before_the_window_ends() -> None:
    state = step(SPEC, {}, deploy("1"), 0).status
    state = step(SPEC, state, deploy("2"), 10).status
    assert state["phase"] == "Analyzing"
    verdict = step(SPEC, state, failed("2", "CRASHED"), 20)
    assert verdict.rollback == "2" and "deployment CRASHED" in verdict.status["reason"]


def test_a_healthy_revision_that_crashes_later_is_not_a_failed_rollout() -> None:
    state = step(SPEC, {}, deploy("1"), 0).status
    verdict = step(SPEC, state, failed("1", "CRASHED"), 500)
    assert verdict.rollback is None and verdict.status["phase"] == "Healthy"


def test_a_failed_rollback_product_is_not_rolled_back_again() -> None:
    state = step(SPEC, {}, deploy("1"), 0).status
    state = step(SPEC, state, failed("2", "FAILED"), 5).status
    verdict = step(SPEC, state, failed("3", "FAILED"), 15)  # what the rollback produced fails too
    assert verdict.rollback is None and verdict.status["rollbackRevisions"] == ["3"]
    assert "is a rollback" in verdict.status["reason"]


def test_a_failed_revision_judged_again_keeps_its_reason() -> None:
    """Found on a real node: the reason grew by its note at every judgement of a Failed revision."""
    state = step(SPEC, {}, deploy("1"), 0).status
    state = step(SPEC, state, failed("2", "FAILED"), 5).status
    state = step(SPEC, state, failed("3", "FAILED"), 15).status
    again = step(SPEC, state, failed("3", "FAILED"), 17)
    assert again.status["reason"] == state["reason"] and state["reason"].count("is a rollback") == 1
    paused = step(SPEC, {"revision": "1", "phase": "Healthy"}, deploy("2", paused=True), 0).status
    paused = step(SPEC, paused, deploy("2", paused=True), 30, rollout.Analysis(50, 100, "Healthy")).status
    twice = step(SPEC, paused, deploy("2", paused=True), 32, rollout.Analysis(50, 100, "Healthy")).status
    assert twice["reason"] == paused["reason"] and paused["reason"].count("paused") == 1
