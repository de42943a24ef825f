"""The Events an alerting round posts for its alerts' transitions, bounded per policy.

One Event per transition is what a reader of `kubectl describe` wants for a handful; a policy
whose 64 rules fire over 3,000 services at once would post 192,000 (each a write to the API
server, awaited in the round every other tenant's policy waits behind). So a round posts at
most EVENTS_PER_ROUND of them and then one Event per direction naming how many more changed
(Kubernetes' own recorder combines similar Events the same way). status.alerts stays the
record of every alert's state.
"""

from __future__ import annotations

import typing

from controller import reasons
from controller.api import alertpolicy as api
from controller.core import status

EVENTS_PER_ROUND = 10  # single transition Events per policy and round
NAMED_IN_SUMMARY = 3  # alerts the summary Event names before "…"
FIRING, RESOLVED = api.AlertState.FIRING.value, api.AlertState.RESOLVED.value


def transition_events(transitions: typing.Sequence[tuple[str, str, str]],
                      limit: int = EVENTS_PER_ROUND) -> list[status.EventSpec]:
    """`transitions`: (rule/service, from, to) in evaluation order. Only Firing and Resolved
    arrivals are told; the first `limit` one Event each, the rest one summary per direction."""
    told = [(alert, after) for alert, _, after in transitions if after in (FIRING, RESOLVED)]
    events = [_single(alert, after) for alert, after in told[:limit]]
    for direction in (FIRING, RESOLVED):
        rest = [alert for alert, after in told[limit:] if after == direction]
        if rest:
            events.append(_summary(direction, rest))
    return events


def _single(alert: str, after: str) -> status.EventSpec:
    if after == FIRING:
        return status.EventSpec("Warning", reasons.ALERT_FIRING, f"{alert} is firing")
    return status.EventSpec("Normal", reasons.ALERT_RESOLVED, f"{alert} resolved")


def _summary(direction: str, alerts: typing.Sequence[str]) -> status.EventSpec:
    named = ", ".join(alerts[:NAMED_IN_SUMMARY]) + (", …" if len(alerts) > NAMED_IN_SUMMARY else "")
    if direction == FIRING:
        return status.EventSpec("Warning", reasons.ALERT_FIRING,
                                f"{len(alerts)} more alerts are firing ({named}); status.alerts lists them")
    return status.EventSpec("Normal", reasons.ALERT_RESOLVED,
                            f"{len(alerts)} more alerts resolved ({named}); status.alerts lists them")
