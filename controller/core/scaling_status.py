"""Status of a ScalingPolicy from the latest decision: pure, and quiet in a steady state.

Only changes are written: a decision enters lastDecision/recentDecisions when its
(direction, from, to) is new; the metrics snapshot is refreshed when a metric changes
band (below / within / above / unavailable) or a decision is recorded; condition
messages carry no running counters.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import typing

from controller import reasons
from controller.api import scalingpolicy as api
from controller.core import conditions
from controller.core import scaling
from controller.core import timestamps

HISTORY = 10  # recentDecisions, for people; the step limit reads scaleEvents
EVENT_HORIZON = datetime.timedelta(seconds=api.PERIOD_MAX_SECONDS)
# No scale call lands later than this after its decision: the API server's request timeout (one
# minute by default); Railway's deadline is 20 s, and 2 s in the token's rate limiter.
LANDING_BOUND = datetime.timedelta(seconds=60)


def kept_events(events: typing.Iterable[scaling.ScaleEvent], now: datetime.datetime) -> tuple[scaling.ScaleEvent, ...]:
    """The scale events a step limit may still count (within the longest period), newest first.
    Kept by age, not by number: more scales inside a period than a fixed depth would otherwise
    be forgotten, and the step limit would allow more change than configured."""
    recent = sorted((e for e in events if now - e.time <= EVENT_HORIZON), key=lambda e: e.time, reverse=True)
    return tuple(recent[: api.SCALE_EVENTS_KEPT])


def _parse(text: str | None) -> datetime.datetime | None:
    return timestamps.from_status(text) if text else None


def _event(entry: typing.Mapping[str, typing.Any]) -> scaling.ScaleEvent | None:
    moment = _parse(entry.get("time"))
    return None if moment is None else scaling.ScaleEvent(moment, entry["from"], entry["to"])


@dataclasses.dataclass(frozen=True)
class Record:
    """One evaluation as the operator performed it."""

    outcome: scaling.Outcome
    time: datetime.datetime
    dry_run: bool = False
    blocked_reason: str | None = None  # Paused | ConflictingAutoscaler
    blocked_message: str = ""
    actuated: bool = False
    landed: datetime.datetime | None = None  # when the scale call returned (the step's time)
    # A scale whose outcome is unknown (its answer cut off, a timeout after it left), stamped
    # when its failure came back: the latest it could have landed.
    unknown: scaling.ScaleEvent | None = None


def _stamp(moment: datetime.datetime) -> str:
    return timestamps.to_status(moment)


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


def _seasonal(outcome: scaling.Outcome) -> dict[str, typing.Any] | None:
    """status.seasonalForecast: whether the forecast is trusted and why (None: not enabled)."""
    made = outcome.forecast
    if made is None:
        return None
    entry: dict[str, typing.Any] = {"trusted": made.trusted, "reason": made.reason, "message": made.message[:512]}
    if made.demand is not None and math.isfinite(made.demand):
        entry["demand"] = round(made.demand, 3)
    if made.error is not None and math.isfinite(made.error):
        entry["error"] = round(made.error, 3)
    return entry


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
        # A step counts from when its scale landed, as HPA's (issue 26, run 14: a scale landing
        # 4 s after its decision let the next step reach the workload 6 s after it).
        landed = record.landed or record.time
        stamp = _stamp(landed)
        done = scaling.ScaleEvent(_parse(stamp), outcome.current, outcome.desired)  # type: ignore[arg-type]
        intent = scaling.ScaleEvent(record.time, outcome.current, outcome.desired)
        # Its intent (pending below, stamped when decided) is in status already: the same step,
        # replaced by it, kept once.
        earlier = (e for e in map(_event, current.get("scaleEvents") or [])
                   if e is not None and not _same(e, done) and not _same(e, intent))
        fields["scaleEvents"] = [{"from": e.from_replicas, "to": e.to_replicas, "time": _stamp(e.time)}
                                 for e in kept_events((done, *earlier), landed)]
        fields["lastScaleTime"] = stamp
        fields["lastScaleUpTime" if outcome.desired > outcome.current else "lastScaleDownTime"] = stamp
    elif record.unknown is not None:
        # Counted as if it landed when its failure came back; its intent replaced by it, kept
        # once. Not lastScaleTime: that names steps known to have been made.
        maybe = record.unknown
        stamped = scaling.ScaleEvent(_parse(_stamp(maybe.time)), maybe.from_replicas, maybe.to_replicas)  # type: ignore[arg-type]
        intent = scaling.ScaleEvent(record.time, maybe.from_replicas, maybe.to_replicas)
        earlier = (e for e in map(_event, current.get("scaleEvents") or [])
                   if e is not None and not _same(e, stamped) and not _same(e, intent))
        fields["scaleEvents"] = [{"from": e.from_replicas, "to": e.to_replicas, "time": _stamp(e.time)}
                                 for e in kept_events((stamped, *earlier), maybe.time)]
    def bands(entries: typing.Iterable[typing.Mapping[str, typing.Any]]) -> list[tuple[typing.Any, ...]]:
        return [(_band(m), m.get("type"), m.get("name"), m.get("source")) for m in entries]

    snapshot = _snapshot(outcome)
    if new_decision or bands(current.get("metrics") or []) != bands(snapshot):
        fields["metrics"] = snapshot
    seasonal = _seasonal(outcome)
    if seasonal != current.get("seasonalForecast"):
        fields["seasonalForecast"] = seasonal

    able = outcome.able_to_scale
    if record.blocked_reason:
        able = conditions.Stated("False", record.blocked_reason, record.blocked_message)
    changes = [
        conditions.ConditionChange(reasons.ABLE_TO_SCALE, *able),
        conditions.ConditionChange(reasons.SCALING_ACTIVE, *outcome.scaling_active),
        conditions.ConditionChange(reasons.SCALING_LIMITED, *outcome.scaling_limited),
    ]
    return fields, changes


def _same(a: scaling.ScaleEvent, b: scaling.ScaleEvent) -> bool:
    """One step, as status keeps it (whole seconds)."""
    return (a.from_replicas, a.to_replicas, _stamp(a.time)) == (b.from_replicas, b.to_replicas, _stamp(b.time))


def pending(current: typing.Mapping[str, typing.Any], intent: scaling.ScaleEvent | None,
            withdrawn: scaling.ScaleEvent | None) -> dict[str, typing.Any]:
    """status.scaleEvents with a step about to be made and without one that was not (issue 26).

    Intent first: the scaler writes the step it is about to make BEFORE the scale call, so a
    successor that takes the Lease while this replica is paused, killed or fenced counts it in
    its step limit and cooldown. A step written and never made only makes the limit more
    conservative for one period; a refused scale is `withdrawn` (its entry removed), so a retry
    does not wait out a period. {} when status already says so."""
    events = [e for e in map(_event, current.get("scaleEvents") or []) if e is not None]
    kept = [e for e in events if withdrawn is None or not _same(e, withdrawn)]
    if intent is not None and not any(_same(e, intent) for e in kept):
        kept.insert(0, intent)
    if len(kept) == len(events) and all(_same(a, b) for a, b in zip(kept, events, strict=True)):
        return {}
    newest_first = sorted(kept, key=lambda e: e.time, reverse=True)[: api.SCALE_EVENTS_KEPT]
    return {"scaleEvents": [{"from": e.from_replicas, "to": e.to_replicas, "time": _stamp(e.time)} for e in newest_first]}


def unsupported(message: str) -> list[conditions.ConditionChange]:
    return [conditions.ConditionChange(reasons.SCALING_ACTIVE, "False", reasons.UNSUPPORTED_TARGET, message)]


def _ours(event: scaling.ScaleEvent, memory: scaling.State | None) -> bool:
    """Whether a step in status is one this replica made (or tried): its memory has it, by
    when it landed or when it was decided."""
    for mine in memory.events if memory else ():
        if _same(event, mine) or (mine.decided is not None and _same(event, scaling.ScaleEvent(
                mine.decided, mine.from_replicas, mine.to_replicas))):
            return True
    return False


def unconfirmed(status: typing.Mapping[str, typing.Any], memory: scaling.State | None) -> list[scaling.ScaleEvent]:
    """Steps in status.scaleEvents that no record confirmed and this replica did not make: an
    intent (stamped at its decision) whose leader stopped before writing the record that
    replaces it by the landed step and moves lastScaleTime. Newest first."""
    last = _parse(status.get("lastScaleTime"))
    found = (_event(entry) for entry in status.get("scaleEvents") or [])
    return [e for e in found if e is not None and (last is None or e.time > last) and not _ours(e, memory)]


def step_key(event: scaling.ScaleEvent) -> tuple[str, int, int]:
    """A step as status names it (whole seconds)."""
    return _stamp(event.time), event.from_replicas, event.to_replicas


def recorded(status: typing.Mapping[str, typing.Any]) -> list[scaling.ScaleEvent]:
    """The steps status.scaleEvents names (one stamped after this replica read it was stamped
    by a replica whose clock ran ahead: it had happened by then, `landed_at`)."""
    return [e for e in map(_event, status.get("scaleEvents") or []) if e is not None]


def landed_at(event: scaling.ScaleEvent, first_read: datetime.datetime) -> datetime.datetime:
    """When an unconfirmed intent is counted as landed: when this replica first read it (its
    scale, if made, had landed by then, its leader being stopped or gone), but no later than
    LANDING_BOUND after its decision, and never before it; and a step stamped after this
    replica first read it (another replica's clock ahead: an hour held a policy for an hour)
    when it was first read."""
    return min(first_read, max(event.time, min(first_read, event.time + LANDING_BOUND)))


def state_from_status(
    status: typing.Mapping[str, typing.Any], observing_since: datetime.datetime,
    memory: scaling.State | None,
    first_read: typing.Mapping[tuple[str, int, int], datetime.datetime] | None = None,
) -> scaling.State:
    """Cooldowns and period events from status (they survive restarts); windows from memory.
    Events come from scaleEvents, and from recentDecisions for a status written before it.
    `first_read`: when this replica first read each unconfirmed intent, or first saw its
    workload run the intent's count, on its own clock (`unconfirmed`, by `step_key`;
    operator/scaler.py `_first_read`): it counts from then (`landed_at`), not from its
    decision (issue 26); and each step stamped in its future (`recorded`), with the
    lastScale*Time of the same stamp."""
    decided = [d for d in status.get("recentDecisions") or [] if d.get("actuated")]
    found = (_event(entry) for entry in [*(status.get("scaleEvents") or []), *decided])
    unique = {(e.time, e.from_replicas, e.to_replicas): e for e in found if e is not None}
    # The same stamp in lastScale*Time names the same step: it moves with it.
    moved: dict[str, datetime.datetime] = {}
    if first_read:
        for e in unique.values():
            if step_key(e) in first_read:
                landed = landed_at(e, first_read[step_key(e)])
                moved[_stamp(e.time)] = min(landed, moved.get(_stamp(e.time), landed))
        unique = {k: (dataclasses.replace(e, time=landed_at(e, first_read[step_key(e)]))
                      if step_key(e) in first_read else e) for k, e in unique.items()}

    def parse(text: str | None) -> datetime.datetime | None:
        moment = _parse(text)
        return moment if moment is None or not moved else moved.get(_stamp(moment), moment)

    # Newer than the last step a record confirmed: an intent, or a step whose outcome is unknown.
    confirmed = parse(status.get("lastScaleTime"))
    unique = {k: (dataclasses.replace(e, certain=False) if confirmed is None or e.time > confirmed else e)
              for k, e in unique.items()}
    # A step this replica actuated counts before its status write lands (issue 26's soak: under
    # load the next round decided first and stepped again within the period). Status keeps
    # whole seconds: the same step from memory is the one within a second of it.
    for event in memory.events if memory else ():
        if event.decided is not None:  # its intent, stamped when decided, is this step: not another
            intent = scaling.ScaleEvent(event.decided, event.from_replicas, event.to_replicas)
            unique = {k: e for k, e in unique.items() if not _same(e, intent)}
        if not any((e.from_replicas, e.to_replicas) == (event.from_replicas, event.to_replicas)
                   and abs((e.time - event.time).total_seconds()) < 1 for e in unique.values()):
            unique[(event.time, event.from_replicas, event.to_replicas)] = event
    events = tuple(sorted(unique.values(), key=lambda e: e.time, reverse=True))  # step_limit reads by age
    # A step in scaleEvents (an intent written before the scale, issue 26) starts its cooldown
    # too: a successor whose predecessor was paused before writing lastScaleUpTime still waits.
    last_up = max((t for t in (parse(status.get("lastScaleUpTime")),
                               *(e.time for e in events if e.to_replicas > e.from_replicas)) if t is not None), default=None)
    last_down = max((t for t in (parse(status.get("lastScaleDownTime")),
                                 *(e.time for e in events if e.to_replicas < e.from_replicas)) if t is not None), default=None)
    seen = dict(memory.seen) if memory else {}
    for entry in status.get("metrics") or []:
        key = (entry.get("type"), entry.get("name"))
        stamp = _parse(entry.get("sampledAt"))
        if stamp is not None and key not in seen:
            seen[key] = stamp
    return scaling.State(
        observing_since=memory.observing_since if memory else observing_since,
        seen=seen,
        last_scale_up=last_up,
        last_scale_down=last_down,
        events=events,
        recommendations=memory.recommendations if memory else (),
        history=memory.history if memory else {},
        seasonal=memory.seasonal if memory else None,
        forecast=memory.forecast if memory else None,
        idle_since=memory.idle_since if memory else None,  # scale to zero: a restart waits a whole idle period
    )
