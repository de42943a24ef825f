"""Pure builders of status patches and transition Events, shared by every kind."""

from __future__ import annotations

import dataclasses
import datetime
import typing

from controller import reasons
from controller.core import bounded
from controller.core import conditions
from controller.core import platforms
from controller.core import readiness

NORMAL = "Normal"
WARNING = "Warning"

# Conditions whose transitions are worth an Event (a person follows these in describe):
# every transition, or only those into or out of the listed reasons.
ANNOUNCED: dict[str, frozenset[str] | None] = {
    reasons.READY: None,
    reasons.CHANNELS_READY: None,
    reasons.HEALTHY: None,
    reasons.METRICS_AVAILABLE: None,
    reasons.SCALING_ACTIVE: None,
    reasons.ABLE_TO_SCALE: frozenset({reasons.CONFLICTING_AUTOSCALER, reasons.PAUSED}),
    reasons.PROBES_MANAGED: frozenset({reasons.PROBES_REVERTED, reasons.CONTAINER_NOT_FOUND}),
    **platforms.ANNOUNCED,
}


QUIET_FIRST = frozenset({("Unknown", "Unknown"), ("Unknown", reasons.AWAITING_OBSERVATION)})


@dataclasses.dataclass(frozen=True)
class EventSpec:
    type: str  # Normal | Warning
    reason: str
    message: str


def build_status_patch(
    current: typing.Mapping[str, typing.Any],
    assessment: readiness.Assessment,
    now: datetime.datetime,
    generation: int,
    schema: typing.Mapping[str, typing.Any] | None = None,
) -> dict[str, typing.Any]:
    """The merge patch that brings `current` status to the assessment; {} when nothing changes.

    A field the assessment sets to None is removed; fields it does not mention are left
    to whoever owns them (scaling, health, alerting write their own parts). With the
    status `schema`, every value is fitted to it before it is compared, so what is written
    always fits and an over-long message does not look new every round; with or without it,
    a number that is not finite is never written.
    """
    desired: dict[str, typing.Any] = {k: v for k, v in assessment.initial.items() if k not in current}
    desired.update(assessment.fields)
    desired["conditions"] = conditions.apply(current.get("conditions") or [], assessment.conditions, now, generation)
    desired["observedGeneration"] = generation
    # Fitted always: without a schema nothing is cut, but no NaN or Infinity is ever written
    # (a patch that spells one is refused whole, and the object is wedged).
    desired = bounded.fit_fields(desired, schema or {})
    return {key: value for key, value in desired.items() if _differs(current.get(key), value)}


def _differs(current: typing.Any, desired: typing.Any) -> bool:
    if isinstance(desired, dict) and isinstance(current, dict):
        return any(_differs(current.get(key), value) for key, value in desired.items())
    if isinstance(desired, dict) and not desired:
        return False  # an empty object adds nothing under a merge patch
    return current != desired


def transition_events(
    before: typing.Sequence[typing.Mapping[str, typing.Any]],
    after: typing.Sequence[typing.Mapping[str, typing.Any]],
) -> list[EventSpec]:
    """An Event for each announced condition whose status or reason changed; a condition's
    first appearance only when it is a problem (at 10,000 objects a start-up would otherwise
    post 10,000 "all is well" Events)."""
    events = []
    for type_, only in ANNOUNCED.items():
        old, new = conditions.find(before, type_), conditions.find(after, type_)
        if new is None or (old is None and (new.get("status"), new.get("reason")) in QUIET_FIRST):
            continue  # nothing has happened yet: a first "Unknown" while waiting is not news
        if old is not None and (old.get("status"), old.get("reason")) == (new.get("status"), new.get("reason")):
            continue
        if only is not None and new.get("reason") not in only and (old or {}).get("reason") not in only:
            continue
        kind = NORMAL if new.get("status") == "True" else WARNING
        if old is None and kind == NORMAL:
            continue  # a first verdict that is no problem is said by status alone (issue 10)
        events.append(EventSpec(kind, new.get("reason", type_), f"{type_}={new.get('status')}: {new.get('message', '')}"))
    return events
