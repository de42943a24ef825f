"""The rollout guard's persisted state as a type (rollout.State: from_status / to_status)."""

from __future__ import annotations

import datetime
import typing

import pytest

from controller.api import monitoredservice as api
from controller.core import rollout
from controller.core import status as status_module

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
SPEC = api.Rollout(autoRollback=True, progressDeadlineSeconds=60, analysis=api.Analysis(windowSeconds=120))
CALM = rollout.Analysis(error_rate=0.5, latency_p95=100, health="Healthy")


def deploy(revision: str, complete: bool = True) -> rollout.DeploymentView:
    return rollout.DeploymentView(revision=revision, replicas=2, updated=2 if complete else 1,
                                  available=2 if complete else 1, generation=3, observed_generation=3,
                                  paused=False, deadline_exceeded=False)


def rolled_back() -> rollout.Verdict:
    """Revision 1 healthy, 2 misses its deadline and is rolled back, 3 (the rollback) rolls out."""
    state: typing.Any = {}
    for revision, complete, seconds in (("1", True, 0), ("2", False, 10), ("2", False, 80), ("3", False, 90)):
        state = rollout.judge(SPEC, deploy(revision, complete), state, CALM, T0 + datetime.timedelta(seconds=seconds))
        verdict = state
        state = verdict.state
    return verdict


def test_what_the_guard_writes_reads_back_as_the_same_state() -> None:
    verdict = rolled_back()
    status = verdict.status
    assert status["rollbackRevisions"] == ["3"] and status["rolledBackRevisions"] == ["2"]
    assert [(r["revision"], r["phase"]) for r in status["history"]] == [("2", "RolledBack")]
    assert status["startedAt"] == "2026-11-01T12:01:30Z" and status["passedGates"] == []
    assert rollout.State.from_status(status) == verdict.state
    assert rollout.State.from_status(status).to_status() == status


def test_judged_from_status_or_from_the_type_alike() -> None:
    verdict = rolled_back()
    later = T0 + datetime.timedelta(seconds=200)
    from_type = rollout.judge(SPEC, deploy("3"), verdict.state, CALM, later)
    from_status = rollout.judge(SPEC, deploy("3"), verdict.status, CALM, later)
    assert from_type == from_status and from_type.state.phase == "Analyzing"


def test_a_status_written_before_gates_and_hooks_existed_is_not_rewritten_for_them() -> None:
    """Absent stays absent: an empty list where status has none would be a status write per object."""
    old = {"revision": "1", "phase": "Healthy", "reason": "revision 1 available", "startedAt": "2026-11-01T12:00:00Z",
           "rolledBackRevisions": [], "rollbackRevisions": [], "history": []}
    written = rollout.State.from_status(old).to_status()
    assert "passedGates" not in written and "hooks" not in written
    assert not status_module._differs(old, written)


@pytest.mark.parametrize("garbage", [
    {"revision": 7, "phase": ["x"], "reason": None, "startedAt": "yesterday", "completedAt": 12},
    {"rolledBackRevisions": "2", "rollbackRevisions": [1, None, "3"], "passedGates": {"a": 1}, "hooks": "x"},
    {"history": [{"revision": "1"}, "x", {"revision": "2", "phase": "Healthy", "time": "not a time"},
                 {"revision": "3", "phase": "Failed", "reason": "r", "time": "2026-11-01T12:00:00Z"}]},
    "not a mapping",
])
def test_whatever_status_holds_is_read_without_an_exception(garbage: typing.Any) -> None:
    """Status is read, never trusted: a field of the wrong type or a time that is none is absent."""
    state = rollout.State.from_status(garbage)
    assert state.revision is None or isinstance(state.revision, str)
    assert all(isinstance(r, str) for r in state.rollback_revisions + state.rolled_back_revisions)
    assert all(isinstance(record.time, datetime.datetime) for record in state.history)
    rollout.judge(SPEC, deploy("4"), state, CALM, T0)  # and judged on


def test_what_is_read_is_bounded() -> None:
    many = [str(n) for n in range(500)]
    state = rollout.State.from_status({
        "rolledBackRevisions": many, "rollbackRevisions": many, "passedGates": many,
        "history": [{"revision": n, "phase": "Healthy", "reason": "", "time": "2026-11-01T12:00:00Z"} for n in many]})
    assert len(state.rolled_back_revisions) == len(state.rollback_revisions) == rollout.REVISIONS_KEPT
    assert state.rolled_back_revisions[-1] == "499"  # the newest kept
    assert len(state.passed_gates or ()) == rollout.GATES_KEPT and len(state.history) == rollout.HISTORY


def test_judge_leaves_the_previous_state_as_it_was() -> None:
    previous = {"revision": "1", "phase": "Healthy", "reason": "ok", "history": [], "rolledBackRevisions": []}
    copy = {k: (list(v) if isinstance(v, list) else v) for k, v in previous.items()}
    rollout.judge(SPEC, deploy("2", complete=False), previous, CALM, T0)
    assert previous == copy
