"""The scaler's actuation verdict, decided in the core: act, dry run, blocked, and which Event."""

from __future__ import annotations

import dataclasses

import pytest

from controller import reasons
from controller.api import scalingpolicy
from controller.core import actuation
from controller.core import scaling

SPEC = scalingpolicy.ScalingPolicySpec.model_validate({
    "targetRef": {"kubernetes": {"name": "web"}}, "minReplicas": 1, "maxReplicas": 10,
    "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]})
DRY = SPEC.model_copy(update={"mode": scalingpolicy.Mode.DRY_RUN.value})
UP = scaling.Outcome("Up", 2, 3, "cpu 95% > 70% (scale-up threshold)", None, (), ("True", "", ""), ("True", "", ""),
                     ("False", "", ""), (), {})
HOLD = dataclasses.replace(UP, direction="Hold", desired=2)
DOWN = dataclasses.replace(UP, direction="Down", desired=1, reason="cpu 5% < 30% (scale-down threshold)")
PAUSED = {reasons.PAUSED_ANNOTATION: "true"}
TO_ZERO = dataclasses.replace(UP, direction="Down", current=1, desired=0, reason=(
    "requestQueue 0 <= 0 (activation threshold) at 1 replica for 300s (idle since 2026-12-06T05:00:00Z)"))
WAKE = dataclasses.replace(UP, current=0, desired=1, reason="requestQueue 3 > 0 (activation threshold)")


def verdict(spec=SPEC, outcome=UP, hpa=None, others=(), annotations=None, last=None) -> actuation.Verdict:  # noqa: ANN001
    return actuation.judge(spec, outcome, "Deployment/web", hpa, list(others), annotations or {}, last or {})


@pytest.mark.parametrize("case,got,act,event,blocked", [
    ("acts", verdict(), True, None, None),
    ("holds", verdict(outcome=HOLD), False, None, None),
    ("dry run", verdict(spec=DRY), False, (reasons.WOULD_SCALE_UP, "(not applied: DryRun)"), None),
    ("an HPA", verdict(hpa="web"), False, (reasons.WOULD_SCALE_UP, "(not applied: ConflictingAutoscaler)"),
     (reasons.CONFLICTING_AUTOSCALER, "HorizontalPodAutoscaler web also targets Deployment/web")),
    ("another policy", verdict(others=["b", "a"]), False, (reasons.WOULD_SCALE_UP, "not applied"),
     (reasons.CONFLICTING_AUTOSCALER, "ScalingPolicy a, b also targets Deployment/web")),
    ("paused", verdict(outcome=DOWN, annotations=PAUSED), False, (reasons.WOULD_SCALE_DOWN, "(not applied: Paused)"),
     (reasons.PAUSED, f"annotation {reasons.PAUSED_ANNOTATION}=true: deciding, not actuating")),
    ("dry run, already recorded", verdict(spec=DRY, last={"direction": "Up", "from": 2, "to": 3}), False, None, None),
])
def test_the_verdict(case: str, got: actuation.Verdict, act: bool, event: tuple | None, blocked: tuple | None) -> None:
    assert got.act is act, case
    if event is None:
        assert got.event is None, case
    else:
        assert got.event is not None and got.event.reason == event[0] and event[1] in got.event.message, got.event
    assert (got.blocked_reason, got.blocked_message) == (blocked or (None, "")), case


def test_acting_says_what_to_post_once_done_and_a_refusal_its_warning() -> None:
    got = verdict()
    assert got.done is not None and (got.done.type, got.done.reason) == ("Normal", reasons.SCALED_UP)
    assert got.done.message == "cpu 95% > 70% (scale-up threshold): 2 -> 3"
    assert got.new and not verdict(last={"direction": "Up", "from": 2, "to": 3}).new
    refused = actuation.failed("Deployment/web", UP, "409 Conflict")
    assert (refused.type, refused.reason, refused.message) == ("Warning", reasons.FAILED_RESCALE, "Deployment/web -> 3: 409 Conflict")


GOLDEN = __import__("pathlib").Path(__file__).resolve().parents[1] / "golden" / "scaling-events.txt"
GOLDEN_CASES = [
    ("scale up", {}),
    ("scale down", {"outcome": DOWN}),
    ("dry run", {"spec": DRY}),
    ("dry run, down", {"spec": DRY, "outcome": DOWN}),
    ("an HPA on the workload", {"hpa": "web"}),
    ("two other policies", {"others": ["b", "a"]}),
    ("paused", {"annotations": PAUSED}),
    ("already recorded", {"spec": DRY, "last": {"direction": "Up", "from": 2, "to": 3}}),
    ("hold", {"outcome": HOLD}),
    ("scale to zero", {"outcome": TO_ZERO}),
    ("woken from zero", {"outcome": WAKE}),
    ("dry run, to zero", {"spec": DRY, "outcome": TO_ZERO}),
]


def _rendered() -> str:
    lines = []
    for name, kwargs in GOLDEN_CASES:
        got = verdict(**kwargs)
        lines.append(f"# {name}: act={got.act} blocked={got.blocked_reason or '-'} {got.blocked_message}".rstrip())
        for when, event in (("now", got.event), ("once scaled", got.done)):
            if event is not None:
                lines.append(f"{when}: {event.type} {event.reason}: {event.message}")
    refused = actuation.failed("Deployment/web", UP, "409 Conflict")
    lines.append(f"# refused by the platform\nnow: {refused.type} {refused.reason}: {refused.message}")
    return "\n".join(lines) + "\n"


def test_the_events_users_read_match_the_golden_file() -> None:
    """Every Event a scaling decision can post, reviewed as a diff: CAPLIQUIFY_UPDATE_GOLDEN=1 rewrites it."""
    import os

    if os.environ.get("CAPLIQUIFY_UPDATE_GOLDEN"):
        GOLDEN.write_text(_rendered())
    assert GOLDEN.read_text() == _rendered(), f"the scaling Events differ from {GOLDEN.name}; review, then rewrite it"
