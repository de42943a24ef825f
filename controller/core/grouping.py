"""Alert groups: one notification per group listing its alerts: pure.

A route whose `groupBy` is not `...` gathers the firing alerts it takes into groups, one per
value of its `groupBy` labels (Alertmanager's aggregation groups, dispatch/dispatch.go read
for its semantics). A new group waits `groupWait`, then sends one notification listing its
firing alerts; afterwards, when the set of firing alerts changed (one joined, one resolved),
it sends again once `groupInterval` has passed since its last notification, listing the
firing and the resolved; when nothing changed, it repeats every `repeatInterval` while one of
its alerts is not acknowledged. A group whose alerts have all resolved, and been told so, ends.

The state of each group (when it began, what it last told and when) is kept in
`status.groups`, written with the outbox before anything is sent, so a restart re-decides
nothing: a notification's key is the group's key, its start and its count.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import typing

from controller.api import matchers
from controller.core import routing
from controller.core import timestamps

FIRING, REPEAT, RESOLVED = "firing", "repeat", "resolved"
MAX_LISTED = 50  # alerts named in one notification's list (status and receivers bounded)
MAX_KEY = 1024  # status.groups[].key and status.deliveries[].group


@dataclasses.dataclass(frozen=True)
class Member:
    """An alert as a group sees it this round."""

    alert: str  # rule/service
    summary: str  # its text now (firing) or its resolved notice
    acknowledged: bool
    severity: str


@dataclasses.dataclass
class Gathered:
    route: routing.Resolved
    labels: dict[str, str]  # the groupBy labels' values: what the group's alerts share
    firing: list[Member] = dataclasses.field(default_factory=list)
    resolved: list[Member] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Flush:
    """One notification a group sends now, to its route's channels."""

    key: str  # idempotency key without the channel
    group: str
    route: routing.Resolved
    kind: str  # firing | repeat | resolved
    labels: dict[str, str]
    firing: tuple[Member, ...]
    resolved: tuple[Member, ...]
    summary: str
    since: datetime.datetime  # when the group began: what the notifications' firedAt says

    @property
    def severity(self) -> str:
        """The most severe of its alerts (a group may hold several severities)."""
        present = {m.severity for m in (*self.firing, *self.resolved)}
        return next((s for s in ("critical", "warning", "info") if s in present), "")


def grouped(route: routing.Resolved) -> bool:
    return not route.group_by_all


def group_key(route: routing.Resolved, labels: typing.Mapping[str, str]) -> tuple[str, dict[str, str]]:
    values = {name: labels.get(name, "") for name in sorted(route.group_by)}
    # Written as matchers (values escaped), so that alerting.group_labels reads them back; a
    # key longer than status keeps (MAX_KEY) is the labels' hash instead (its labels are then
    # not read back, the group itself works the same).
    text = ",".join(str(matchers.Matcher(name, matchers.EQUAL, value)) for name, value in values.items())
    key = f"{route.path}{{{text}}}"
    if len(key) > MAX_KEY:
        key = f"{route.path}{{#{hashlib.sha256(text.encode()).hexdigest()}}}"
    return key, values


def step(previous: typing.Sequence[typing.Mapping[str, typing.Any]], gathered: typing.Mapping[str, Gathered],
         now: datetime.datetime, policy_id: str, send_resolved: bool
         ) -> tuple[list[dict[str, typing.Any]], list[Flush]]:
    """The groups after this round and what they send. `gathered` holds, per group key, the
    firing alerts routed to it now and those that resolved since (any alert a group told as
    firing and no longer fires leaves it; only a resolved one is listed as resolved)."""
    before = {g["key"]: g for g in previous}
    groups, flushes = [], []
    for key in sorted(set(before) | set(gathered)):
        state = dict(before.get(key) or {"key": key})
        now_in = gathered.get(key)
        firing = sorted(now_in.firing, key=lambda m: m.alert) if now_in else []
        told = set(state.get("alerts") or [])
        resolved = [m for m in (now_in.resolved if now_in else []) if m.alert in told]
        if not state.get("lastNotified"):
            if not firing:
                continue  # never told, nothing firing: the group never was
            state.setdefault("since", timestamps.to_status(now))
            if now_in is not None and _elapsed(state["since"], now) >= now_in.route.group_wait:
                flushes.append(_flush(state, now_in, FIRING, firing, [], policy_id, now))
            groups.append(_kept(state))
            continue
        if now_in is None:  # its route no longer exists or takes none of them: the group ends
            continue
        changed = {m.alert for m in firing} != told
        since_last = _elapsed(state["lastNotified"], now)
        listed = resolved if send_resolved else []
        if changed and since_last >= now_in.route.group_interval and (firing or listed):
            joined = {m.alert for m in firing} - told
            kind = FIRING if joined else (RESOLVED if not firing else REPEAT)
            flushes.append(_flush(state, now_in, kind, firing, listed, policy_id, now))
        elif changed and since_last >= now_in.route.group_interval:
            state["alerts"] = [m.alert for m in firing]  # only unannounced resolutions changed it
        elif (not changed and firing and any(not m.acknowledged for m in firing)
              and since_last >= now_in.route.repeat):
            flushes.append(_flush(state, now_in, REPEAT, firing, [], policy_id, now))
        if state.get("alerts") or firing:
            groups.append(_kept(state))
    return groups, flushes



def _flush(state: dict[str, typing.Any], gathered: Gathered, kind: str, firing: list[Member],
           resolved: list[Member], policy_id: str, now: datetime.datetime) -> Flush:
    count = int(state.get("notifications") or 0)
    digest = hashlib.sha256(state["key"].encode()).hexdigest()[:16]  # a key of bounded length
    since = timestamps.from_status(state["since"])
    flush = Flush(f"{policy_id}/group/{digest}/{int(since.timestamp())}/{count}", state["key"], gathered.route, kind,
                  gathered.labels, tuple(firing), tuple(resolved), _text(kind, gathered.labels, firing, resolved),
                  since)
    state["notifications"] = count + 1
    state["lastNotified"] = timestamps.to_status(now)
    state["alerts"] = [m.alert for m in firing]
    return flush


def _kept(state: dict[str, typing.Any]) -> dict[str, typing.Any]:
    return {k: v for k, v in state.items() if v is not None}


def _elapsed(stamp: str, now: datetime.datetime) -> float:
    return (now - timestamps.from_status(stamp)).total_seconds()


def _text(kind: str, labels: typing.Mapping[str, str], firing: typing.Sequence[Member],
          resolved: typing.Sequence[Member]) -> str:
    """The group's message: what it is, how many fire and resolved, then one line each."""
    shared = ", ".join(f"{k}={v}" for k, v in labels.items() if v) or "all alerts"
    head = f"[{'RESOLVED' if kind == RESOLVED else 'FIRING'}:{len(firing)}] {shared}"
    if resolved:
        head += f" ({len(resolved)} resolved)"
    lines = [head, *(f"- {m.summary}" for m in firing[:MAX_LISTED]),
             *(f"- {m.summary}" for m in resolved[:MAX_LISTED])]
    return "\n".join(lines)
