from __future__ import annotations

import datetime

import pytest

from controller.core import conditions

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
T1 = T0 + datetime.timedelta(minutes=5)
READY_TRUE = {"type": "Ready", "status": "True", "reason": "TargetFound", "message": "found",
              "lastTransitionTime": "2026-11-01T12:00:00Z", "observedGeneration": 1}


@pytest.mark.parametrize(
    "before,change,expected_time",
    [
        ([], conditions.ConditionChange("Ready", "True", "TargetFound", "found"), "2026-11-01T12:05:00Z"),
        ([READY_TRUE], conditions.ConditionChange("Ready", "True", "TargetFound", "found"), "2026-11-01T12:00:00Z"),
        # A new reason or message without a status flip keeps the transition time.
        ([READY_TRUE], conditions.ConditionChange("Ready", "True", "Other", "changed"), "2026-11-01T12:00:00Z"),
        ([READY_TRUE], conditions.ConditionChange("Ready", "False", "TargetNotFound", "gone"), "2026-11-01T12:05:00Z"),
    ],
    ids=["new", "unchanged", "reason-only", "flip"],
)
def test_transition_time(before, change, expected_time) -> None:  # noqa: ANN001
    after = conditions.apply(before, [change], T1, 1)
    assert conditions.find(after, "Ready")["lastTransitionTime"] == expected_time
    assert conditions.find(after, "Ready")["status"] == change.status


def test_unchanged_condition_comes_back_identical() -> None:
    change = conditions.ConditionChange("Ready", "True", "TargetFound", "found")
    assert conditions.apply([READY_TRUE], [change], T1, 1) == [READY_TRUE]


def test_other_conditions_are_kept_in_order() -> None:
    other = {**READY_TRUE, "type": "Healthy"}
    after = conditions.apply([other, READY_TRUE], [conditions.ConditionChange("Ready", "False", "X", "y")], T1, 2)
    assert [c["type"] for c in after] == ["Healthy", "Ready"]
    assert after[0] == other
    assert after[1]["observedGeneration"] == 2
