"""Status of a ScalingPolicy from the latest decision: pure, and quiet in a steady state.

Only changes are written: a decision enters lastDecision/recentDecisions when its
(direction, from, to) is new; the metrics snapshot is refreshed when a metric changes
band (below / within / above / unavailable) or a decision is recorded; condition
messages carry no running counters.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing

from controller import reasons
from controller.core import conditions
from controller.core import scaling

HISTORY = 10


@dataclasses.dataclass(frozen=True)
class Record:
    """One evaluation as the operator performed it."""

    outcome: scaling.Outcome
    time: datetime.datetime
    dry_run: bool = False
    blocked_reason: str | None = None  # Paused | ConflictingAutoscaler
    blocked_message: str = ""
    actuated: bool = False


def _stamp(moment: datetime.datetime) -> str:
    return conditions.format_time(moment)


def _band(entry: typing.Mapping[str, typing.Any]) -> str:
    value = entry.get("value")
    if value is None:
        return "unavailable"
    if value > entry.get("scaleUp", float("inf")):
        return "above"
    if value < entry.get("scaleDown", float("-inf")):
        return "below"
    return "within"


def _snapshot(outcome: scaling.Outcome) -> list[dict[str, typing.Any]]:
    entries = []
    for view in outcome.metrics:
        entry: dict[str, typing.Any] = {"type": view.key[0], "scaleUp": view.scale_up, "scaleDown": view.scale_down}
        if view.key[1]:
            entry["name"] = view.key[1]
        if view.value is not None:
            entry["value"] = round(view.value, 3)
        if view.sampled_at is not None:
            entry["sampledAt"] = _stamp(view.sampled_at)
        if view.source:
            entry["source"] = view.source
        entries.append(entry)
    return entries


def assess(record: Record, current: typing.Mapping[str, typing.Any]) -> tuple[dict[str, typing.Any], list[conditions.ConditionChange]]:
    outcome = record.outcome
    fields: dict[str, typing.Any] = {"desiredReplicas": outcome.desired, "recommendation": outcome.recommendation}
    previous = current.get("lastDecision") or {}
    new_decision = outcome.direction != "Hold" and (
        (previous.get("direction"), previous.get("from"), previous.get("to"))
        != (outcome.direction, outcome.current, outcome.desired)
    )
    if new_decision:
        decision = {
            "direction": outcome.direction, "from": outcome.current, "to": outcome.desired,
            "reason": outcome.reason, "actuated": record.actuated, "time": _stamp(record.time),
        }
        if outcome.limited_by:
            decision["limitedBy"] = outcome.limited_by
        fields["lastDecision"] = decision
        fields["recentDecisions"] = [decision, *(current.get("recentDecisions") or [])][:HISTORY]
    if record.actuated:
        stamp = _stamp(record.time)
        fields["lastScaleTime"] = stamp
        fields["lastScaleUpTime" if outcome.desired > outcome.current else "lastScaleDownTime"] = stamp
    def bands(entries: typing.Iterable[typing.Mapping[str, typing.Any]]) -> list[tuple[typing.Any, ...]]:
        return [(_band(m), m.get("type"), m.get("name"), m.get("source")) for m in entries]

    snapshot = _snapshot(outcome)
    if new_decision or bands(current.get("metrics") or []) != bands(snapshot):
        fields["metrics"] = snapshot

    able = outcome.able_to_scale
    if record.blocked_reason:
        able = ("False", record.blocked_reason, record.blocked_message)
    changes = [
        conditions.ConditionChange(reasons.ABLE_TO_SCALE, *able),
        conditions.ConditionChange(reasons.SCALING_ACTIVE, *outcome.scaling_active),
        conditions.ConditionChange(reasons.SCALING_LIMITED, *outcome.scaling_limited),
    ]
    return fields, changes


def unsupported(message: str) -> list[conditions.ConditionChange]:
    return [conditions.ConditionChange(reasons.SCALING_ACTIVE, "False", reasons.UNSUPPORTED_TARGET, message)]


def state_from_status(
    status: typing.Mapping[str, typing.Any], observing_since: datetime.datetime,
    memory: scaling.State | None,
) -> scaling.State:
    """Cooldowns and period events from status (they survive restarts); windows from memory."""
    def parse(text: str | None) -> datetime.datetime | None:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None

    events = tuple(
        scaling.ScaleEvent(parse(d["time"]), d["from"], d["to"])  # type: ignore[arg-type]
        for d in status.get("recentDecisions") or []
        if d.get("actuated") and d.get("time")
    )
    seen = dict(memory.seen) if memory else {}
    for entry in status.get("metrics") or []:
        key = (entry.get("type"), entry.get("name"))
        stamp = parse(entry.get("sampledAt"))
        if stamp is not None and key not in seen:
            seen[key] = stamp
    return scaling.State(
        observing_since=memory.observing_since if memory else observing_since,
        seen=seen,
        last_scale_up=parse(status.get("lastScaleUpTime")),
        last_scale_down=parse(status.get("lastScaleDownTime")),
        events=events,
        recommendations=memory.recommendations if memory else (),
        history=memory.history if memory else {},
    )
