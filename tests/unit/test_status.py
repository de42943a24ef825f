from __future__ import annotations

import datetime

from controller.core import conditions
from controller.core import readiness
from controller.core import status

NOW = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
READY = conditions.ConditionChange("Ready", "True", "TargetFound", "found")
NOT_READY = conditions.ConditionChange("Ready", "False", "TargetNotFound", "gone")


def test_first_judgement_writes_everything() -> None:
    patch = status.build_status_patch({}, readiness.Assessment({"target": "Deployment/web"}, (READY,)), NOW, 3)
    assert patch["target"] == "Deployment/web"
    assert patch["observedGeneration"] == 3
    assert patch["conditions"][0]["lastTransitionTime"] == "2026-11-01T12:00:00Z"


def test_steady_state_patches_nothing() -> None:
    assessment = readiness.Assessment({"target": "Deployment/web", "replicas": {"ready": 2}}, (READY,))
    current = status.build_status_patch({}, assessment, NOW, 3)
    current["replicas"] = {"ready": 2, "desired": 2}  # fields owned by others are left alone
    later = NOW + datetime.timedelta(hours=1)
    assert status.build_status_patch(current, assessment, later, 3) == {}


def test_removed_field_is_patched_to_none() -> None:
    current = {"currentReplicas": 3, "observedGeneration": 1,
               "conditions": conditions.apply([], [READY], NOW, 1)}
    patch = status.build_status_patch(current, readiness.Assessment({"currentReplicas": None}, (READY,)), NOW, 1)
    assert patch == {"currentReplicas": None}


def test_events_on_transitions_only() -> None:
    before = conditions.apply([], [READY], NOW, 1)
    assert status.transition_events(before, before) == []
    after = conditions.apply(before, [NOT_READY], NOW, 1)
    assert status.transition_events(before, after) == [
        status.EventSpec("Warning", "TargetNotFound", "Ready=False: gone")
    ]
    assert status.transition_events(after, before)[0].type == "Normal"
    # A first verdict is announced only when it is a problem.
    assert status.transition_events([], before) == []
    assert status.transition_events([], after) == [status.EventSpec("Warning", "TargetNotFound", "Ready=False: gone")]


def test_initial_fields_only_while_absent() -> None:
    assessment = readiness.Assessment({}, (READY,), initial={"health": "Unknown"})
    assert status.build_status_patch({}, assessment, NOW, 1)["health"] == "Unknown"
    current = {"health": "Healthy", "observedGeneration": 1, "conditions": conditions.apply([], [READY], NOW, 1)}
    assert status.build_status_patch(current, assessment, NOW, 1) == {}


def test_first_unknown_is_not_announced() -> None:
    unknown = conditions.apply([], [conditions.ConditionChange("Healthy", "Unknown", "Unknown", "no verdict")], NOW, 1)
    assert status.transition_events([], unknown) == []
    healthy = conditions.apply(unknown, [conditions.ConditionChange("Healthy", "True", "Healthy", "ok")], NOW, 1)
    assert [e.type for e in status.transition_events(unknown, healthy)] == ["Normal"]
