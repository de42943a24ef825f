"""Whether a scaling decision is carried out, and which Event says so: a pure verdict.

The scaler (operator/scaler.py) feeds it what it observed — the decision, the policy's mode
and annotations, an HPA or other ScalingPolicies on the same workload, the decision status
last recorded — and carries out the verdict: patch (then post `done`), or post `event`, or
nothing. As `rollout.Verdict` and `probes.Plan` are for the guard and probe management.
"""

from __future__ import annotations

import dataclasses
import typing

from controller import reasons
from controller.api import scalingpolicy
from controller.core import scaling
from controller.core import status


@dataclasses.dataclass(frozen=True)
class Verdict:
    act: bool  # patch the target's replicas to outcome.desired now
    dry_run: bool
    blocked_reason: str | None  # why a decision is not actuated (a conflict, the paused annotation)
    blocked_message: str
    new: bool  # a decision to scale that status has not recorded yet
    event: status.EventSpec | None  # to post now, without acting (WouldScaleUp/Down: not applied, why)
    done: status.EventSpec | None  # to post once the patch succeeded (ScaledUp/ScaledDown)


def blocked(workload: str, autoscaler: str | None, other_policies: typing.Sequence[str],
            annotations: typing.Mapping[str, str]) -> tuple[str | None, str]:
    """(reason, message) when something stops actuation, else (None, "")."""
    if autoscaler is not None:
        return reasons.CONFLICTING_AUTOSCALER, f"HorizontalPodAutoscaler {autoscaler} also targets {workload}"
    if other_policies:
        return reasons.CONFLICTING_AUTOSCALER, f"ScalingPolicy {', '.join(sorted(other_policies))} also targets {workload}"
    if annotations.get(reasons.PAUSED_ANNOTATION) == "true":
        return reasons.PAUSED, f"annotation {reasons.PAUSED_ANNOTATION}=true: deciding, not actuating"
    return None, ""


def judge(spec: scalingpolicy.ScalingPolicySpec, outcome: scaling.Outcome, workload: str, autoscaler: str | None,
          other_policies: typing.Sequence[str], annotations: typing.Mapping[str, str],
          last_decision: typing.Mapping[str, typing.Any]) -> Verdict:
    """`workload` as status names it ("Deployment/web"); `last_decision` is status.lastDecision."""
    reason, message = blocked(workload, autoscaler, other_policies, annotations)
    dry_run = spec.mode == scalingpolicy.Mode.DRY_RUN.value
    new = outcome.direction != "Hold" and (last_decision.get("direction"), last_decision.get("from"),
                                           last_decision.get("to")) != (outcome.direction, outcome.current, outcome.desired)
    change = f"{outcome.reason}: {outcome.current} -> {outcome.desired}"
    if outcome.desired != outcome.current and not dry_run and reason is None:
        done = status.EventSpec("Normal", done_reason(outcome), change)
        return Verdict(True, dry_run, reason, message, new, None, done)
    event = None
    if new:
        why = "DryRun" if dry_run else (reason or "")
        event = status.EventSpec("Normal", reasons.WOULD_SCALE_UP if outcome.direction == "Up" else reasons.WOULD_SCALE_DOWN,
                                 f"{change} (not applied: {why})")
    return Verdict(False, dry_run, reason, message, new, event, None)


def done_reason(outcome: scaling.Outcome) -> str:
    """The Event of a scale carried out: scale to zero and waking from it have their own."""
    if outcome.desired == 0 < outcome.current:
        return reasons.SCALED_TO_ZERO
    if outcome.current == 0 < outcome.desired:
        return reasons.ACTIVATED
    return reasons.SCALED_UP if outcome.direction == "Up" else reasons.SCALED_DOWN


def failed(workload: str, outcome: scaling.Outcome, why: str) -> status.EventSpec:
    """The Event of a patch the platform refused."""
    return status.EventSpec("Warning", reasons.FAILED_RESCALE, f"{workload} -> {outcome.desired}: {why}")
