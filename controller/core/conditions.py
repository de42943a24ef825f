"""Kubernetes-style conditions that keep lastTransitionTime unless status flips."""

from __future__ import annotations

import dataclasses
import datetime
import typing

from controller.core import timestamps


@dataclasses.dataclass(frozen=True)
class ConditionChange:
    """A condition as decided by the core, before times are attached."""

    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


class Stated(typing.NamedTuple):
    """A condition as a decision states it, before its type and times are attached: HPA's
    status, reason and message (a tuple still, so it unpacks and compares as one)."""

    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str


def find(conditions: typing.Sequence[typing.Mapping[str, typing.Any]], type_: str) -> dict[str, typing.Any] | None:
    for condition in conditions:
        if condition.get("type") == type_:
            return dict(condition)
    return None


def apply(
    conditions: typing.Sequence[typing.Mapping[str, typing.Any]],
    changes: typing.Iterable[ConditionChange],
    now: datetime.datetime,
    generation: int,
) -> list[dict[str, typing.Any]]:
    """The conditions after `changes`; an unchanged condition comes back identical.

    lastTransitionTime moves only when status flips, so a reason or message update
    alone does not look like a transition in `kubectl describe`.
    """
    result = [dict(condition) for condition in conditions]
    stamp = ""
    for change in changes:
        previous = find(result, change.type)
        if previous is not None and previous.get("status") == change.status and previous.get("lastTransitionTime"):
            transition = previous["lastTransitionTime"]
        else:
            stamp = stamp or timestamps.to_status(now)
            transition = stamp
        updated = {
            "type": change.type,
            "status": change.status,
            "reason": change.reason,
            "message": change.message,
            "lastTransitionTime": transition,
            "observedGeneration": generation,
        }
        if previous is None:
            result.append(updated)
        else:
            result = [updated if c.get("type") == change.type else c for c in result]
    return result


def is_true(conditions: typing.Sequence[typing.Mapping[str, typing.Any]], type_: str) -> bool:
    condition = find(conditions, type_)
    return condition is not None and condition.get("status") == "True"
