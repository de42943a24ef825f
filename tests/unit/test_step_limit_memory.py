"""Found by the soak (issue 26, seed 7, 100 policies, docs/reliability.md): a policy limited to
one pod per 10 s stepped 6 -> 7 -> 8 within 4.6 s, by one leader. The step limit read its
period's events from status alone, and the status write of the first step had not reached the
view when the next round decided (writes queue behind each other under load). A step this
replica actuated counts against the period whether or not its status has landed."""

from __future__ import annotations

import datetime

from controller.api import scalingpolicy as api
from controller.core import scaling
from controller.core import scaling_status

NOW = datetime.datetime(2026, 12, 6, 2, 53, 32, tzinfo=datetime.timezone.utc)
SPEC = api.ScalingPolicySpec.model_validate({
    "targetRef": {"monitoredService": "w2"}, "minReplicas": 1, "maxReplicas": 8,
    "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
    "behavior": {"scaleUp": {"cooldownSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 10}]}}})

PROPOSAL = scaling.Proposal(8, "Up", "cpu above")


def _input(state: scaling.State, now: datetime.datetime) -> scaling.Input:
    """The stages' shared input at 7 replicas, all ready (the step limit reads current, events, now)."""
    return scaling.Input(SPEC, 7, 7, 7, state, now, (), {})


def test_a_step_whose_status_has_not_landed_still_counts_against_its_period() -> None:
    stepped = scaling.ScaleEvent(NOW - datetime.timedelta(seconds=4.6), 6, 7)
    memory = scaling.State(observing_since=NOW - datetime.timedelta(minutes=5), events=(stepped,))
    state = scaling_status.state_from_status({}, NOW - datetime.timedelta(minutes=5), memory)
    assert stepped in state.events
    assert scaling.step_limit(_input(state, NOW), PROPOSAL, 8).desired == 7


def test_a_step_known_from_both_status_and_memory_counts_once() -> None:
    at = NOW - datetime.timedelta(seconds=4.6)
    memory = scaling.State(observing_since=NOW - datetime.timedelta(minutes=5),
                           events=(scaling.ScaleEvent(at, 6, 7),))
    status = {"scaleEvents": [{"from": 6, "to": 7, "time": at.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")}]}
    state = scaling_status.state_from_status(status, NOW - datetime.timedelta(minutes=5), memory)
    assert len(state.events) == 1
    later = NOW + datetime.timedelta(seconds=6)  # past the period: the next step is allowed
    assert scaling.step_limit(_input(state, later), PROPOSAL, 8).desired == 8
