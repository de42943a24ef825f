"""The alert state machine and what to notify: pure.

Per (rule, service): Inactive → Pending (condition true) → Firing (after forSeconds) →
Resolved (condition false for keepFiringForSeconds). A missing value holds the state: an
alert neither fires nor resolves on data it does not have. Firing notifies the severity's
route once, repeats every repeatIntervalSeconds until acknowledged, escalates per step;
resolving notifies the channels notified (with sendResolved). Silences hold notifications
back, not states. Every notification carries a deterministic key, so re-deciding after a
restart produces the same key and the outbox in status skips what it already holds.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import operator
import typing

from controller.api import alertpolicy as api
from controller.api import matchers
from controller.core import grouping
from controller.core import muting
from controller.core import numbers
from controller.core import routing
from controller.core import timestamps

OPS: typing.Mapping[str, typing.Callable[[float, float], bool]] = {
    ">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "==": operator.eq, "!=": operator.ne,
}
INACTIVE, PENDING, FIRING, RESOLVED = (state.value for state in api.AlertState)
RESOLVED_KEPT = datetime.timedelta(hours=1)  # a resolved alert stays visible this long
FIRING_KIND, REPEAT_KIND, ESCALATION_KIND, RESOLVED_KIND = "firing", "repeat", "escalation", "resolved"


@dataclasses.dataclass(frozen=True)
class Observation:
    """What is known of one selected service now; values by metric (custom ones as custom:<name>)."""

    service: str
    values: typing.Mapping[str, float | None]


@dataclasses.dataclass(frozen=True)
class Notification:
    key: str
    channel: str
    kind: str  # firing | repeat | escalation | resolved
    rule: str
    service: str
    severity: str
    summary: str
    fired_at: datetime.datetime
    route: str = ""  # the route's path in the tree that sent it
    group: str = ""  # a group's notification: the group's key
    alerts: tuple[str, ...] = ()  # a group's notification: rule/service=firing|resolved


@dataclasses.dataclass(frozen=True)
class Evaluation:
    alerts: list[dict[str, typing.Any]]  # status.alerts, Inactive ones omitted
    notifications: list[Notification]
    transitions: list[tuple[str, str, str]]  # (rule/service, from, to) for Events
    last_ack: str | None
    groups: list[dict[str, typing.Any]] = dataclasses.field(default_factory=list)  # status.groups

    @property
    def firing(self) -> int:
        return sum(1 for alert in self.alerts if alert["state"] == FIRING)


HEALTH_VALUES = {"Healthy": 0.0, "Degraded": 1.0, "Unhealthy": 2.0}
ROLLBACK_WINDOW = datetime.timedelta(minutes=10)


def observe(service: str, status: typing.Mapping[str, typing.Any],
            samples: typing.Mapping[tuple[str, str | None], typing.Any] | None,
            now: datetime.datetime) -> Observation:
    """A service's values for rules: its metric samples (None when stale or unread), health
    from status, and the rollout guard's rollbacks in the last ROLLBACK_WINDOW."""
    values: dict[str, float | None] = {}
    for (metric, custom), sample in (samples or {}).items():
        values[f"custom:{custom}" if metric == "custom" else metric] = sample.value if sample.error is None else None
    values["health"] = HEALTH_VALUES.get(status.get("health") or "")
    # Read back from status, which anyone with rights on it may have written: only a finite number counts.
    values["availability"] = numbers.finite_or_none(status.get("availabilityPercent"))
    history = (status.get("rollout") or {}).get("history") or []
    recent = [entry.get("phase") for entry in history if now - timestamps.from_status(entry["time"]) <= ROLLBACK_WINDOW]
    values["rollbacks"] = float(recent.count("RolledBack"))
    values["rolloutsSucceeded"] = float(recent.count("Healthy"))
    values["rolloutsFailed"] = float(recent.count("Failed"))
    return Observation(service, values)


def metric_name(rule: api.Rule) -> str:
    if rule.metric == api.AlertMetric.CUSTOM:
        return f"custom:{rule.customName}"
    if _plain(rule.metric) in BURN_RATE_METRICS:
        return burn_rate_name(_plain(rule.metric), rule.burnRateWindows.longSeconds, rule.burnRateWindows.shortSeconds)
    return _plain(rule.metric)


# The error budgets a burn-rate rule can watch: availability (health probes) and latency.
BURN_RATE_METRICS = (api.AlertMetric.BURN_RATE.value, api.AlertMetric.LATENCY_BURN_RATE.value)


def burn_rate_name(slo: str, long_seconds: int, short_seconds: int) -> str:
    return f"{slo}:{long_seconds}:{short_seconds}"


def burn_rate_windows(spec: api.AlertPolicySpec) -> set[tuple[str, int, int]]:
    """The (budget, long, short) windows the policy's burn-rate rules ask about."""
    return {(_plain(r.metric), r.burnRateWindows.longSeconds, r.burnRateWindows.shortSeconds) for r in spec.rules
            if _plain(r.metric) in BURN_RATE_METRICS}


def route_channels(spec: api.AlertPolicySpec, names: typing.Sequence[str],
                   kinds: typing.Sequence[api.ChannelKind | str]) -> list[str]:
    wanted = {_plain(kind) for kind in kinds}
    return [c.name for c in spec.channels
            if c.name in names or any(getattr(c, kind) is not None for kind in wanted)]


def silenced(spec: api.AlertPolicySpec, labels: typing.Mapping[str, str], now: datetime.datetime) -> bool:
    return muting.silenced(spec, labels, now)  # kept here for callers of alerting.silenced


def rule_annotations(rule: api.Rule, service: str) -> dict[str, str]:
    """A rule's annotations as forwarded (templates filled but {{value}}, which a delivery
    does not keep: the notification's summary carries it)."""
    values = {"rule": rule.name, "service": service, "threshold": f"{rule.threshold:g}", "op": _plain(rule.op)}
    return {name: render(text, values) for name, text in rule.annotations.items()}


def render(template: str, values: typing.Mapping[str, str]) -> str:
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", value)
    return template


def evaluate(
    spec: api.AlertPolicySpec,
    observations: typing.Sequence[Observation],
    previous: typing.Sequence[typing.Mapping[str, typing.Any]],
    ack: str | None,
    last_ack: str | None,
    now: datetime.datetime,
    policy_id: str,
    namespace: str = "",
    policy: str = "",
    groups: typing.Sequence[typing.Mapping[str, typing.Any]] = (),
) -> Evaluation:
    """Steps every (rule, service) alert, then decides notifications: after all states are
    known, so that an inhibition sees every alert firing now and a group all its alerts.
    `groups` is status.groups as last written (routes with groupBy)."""
    before = {(a["rule"], a["service"]): a for a in previous}
    new_ack = parse_ack(ack) if ack and ack != last_ack else None
    stepped = []
    for rule in spec.rules:
        for observation in observations:
            old = dict(before.get((rule.name, observation.service)) or {"state": INACTIVE})
            value = observation.values.get(metric_name(rule))
            alert = _step(rule, old, value, now)
            alert.update(rule=rule.name, service=observation.service)
            if new_ack and alert["state"] == FIRING and acknowledges(new_ack, rule.name, observation.service):
                alert["acknowledgedBy"] = new_ack[0]
            labels = routing.alert_labels(rule, observation.service, namespace, policy)
            stepped.append((rule, old, alert, value, labels))
    tree = routing.compile_tree(spec)
    inhibitions = muting.Inhibitions(spec, (labels for _, _, alert, _, labels in stepped if alert["state"] == FIRING))
    alerts, notifications, transitions = [], [], []
    gathered: dict[str, grouping.Gathered] = {}
    for rule, old, alert, value, labels in stepped:
        if alert["state"] != old["state"]:
            transitions.append((f"{rule.name}/{alert['service']}", old["state"], alert["state"]))
        held = muting.silenced(spec, labels, now) or inhibitions.inhibited(labels)
        routes = routing.match(spec, labels, tree)
        if not held:
            notifications += _notify(spec, rule, routes, old, alert, value, now, policy_id)
            _gather(gathered, rule, routes, alert, labels, value)
        if alert["state"] != INACTIVE and not (
                alert["state"] == RESOLVED and now - timestamps.from_status(alert["since"]) > RESOLVED_KEPT):
            alerts.append({k: v for k, v in alert.items() if v is not None and v != []})
    kept, flushes = grouping.step(groups, gathered, now, policy_id, spec.sendResolved)
    notifications += [notice for flush in flushes for notice in _group_notices(spec, flush)]
    return Evaluation(alerts, notifications, transitions, ack if ack else None, kept)


def _gather(gathered: dict[str, grouping.Gathered], rule: api.Rule, routes: typing.Sequence[routing.Resolved],
            alert: typing.Mapping[str, typing.Any], labels: typing.Mapping[str, str], value: float | None) -> None:
    """Puts a firing alert into its group on each grouped route it takes; a resolved one is
    offered to them too (a group lists it if it had told it as firing)."""
    if alert["state"] not in (FIRING, RESOLVED):
        return
    name = f"{rule.name}/{alert['service']}"
    if alert["state"] == FIRING:
        member = grouping.Member(name, _firing_text(rule, alert, value), bool(alert.get("acknowledgedBy")),
                                 _plain(rule.severity))
    else:
        member = grouping.Member(name, f"[RESOLVED] {rule.name} on {alert['service']} (now {_text(value)})", False,
                                 _plain(rule.severity))
    for route in routes:
        if not grouping.grouped(route):
            continue
        key, shared = grouping.group_key(route, labels)
        group = gathered.setdefault(key, grouping.Gathered(route, shared))
        (group.firing if alert["state"] == FIRING else group.resolved).append(member)


def group_members(spec: api.AlertPolicySpec, listed: typing.Sequence[str], namespace: str, policy: str
                  ) -> list[dict[str, typing.Any]]:
    """A group delivery's alerts (`rule/service=firing|resolved`, as the outbox keeps them)
    with their labels and annotations as the rules say now, for receivers that list them."""
    members = []
    for item in listed:
        alert, _, state = item.rpartition("=")
        rule_name, _, service = alert.partition("/")
        rule = next((r for r in spec.rules if r.name == rule_name), None)
        if rule is None:
            continue  # the rule was removed since: its alert is no longer described
        members.append({"alert": alert, "state": state, "labels": routing.alert_labels(rule, service, namespace, policy),
                        "annotations": rule_annotations(rule, service)})
    return members


def group_labels(group: str) -> dict[str, str]:
    """The labels a group's alerts share (its groupBy labels), read back from its key
    (`routes[0]{service="web"}`, written by grouping.group_key)."""
    inside = group[group.find("{"):]
    if inside in ("", "{}") or inside.startswith("{#"):  # none, or too long to keep: hashed
        return {}
    return {m.name: m.value for m in matchers.parse_set(inside)}


def _group_notices(spec: api.AlertPolicySpec, flush: grouping.Flush) -> list[Notification]:
    listed = (*(f"{m.alert}=firing" for m in flush.firing), *(f"{m.alert}=resolved" for m in flush.resolved))
    return [Notification(f"{flush.key}/{channel}", channel, flush.kind, "", "", flush.severity, flush.summary,
                         flush.since, flush.route.path, flush.group, listed)
            for channel in route_channels(spec, flush.route.channels, flush.route.channel_kinds)]


Ack = tuple[str, frozenset[str] | None]  # who; the alerts acknowledged (None: every firing one)


def parse_ack(value: str) -> Ack:
    """The ack annotation: `<who>` (holding neither ':' nor '/') or `<who>:` acknowledges every
    firing alert of the policy; `[<who>:] <rule>/<service>[, <rule>[/<service>] ...]` only those
    (a rule alone: all its services). The name is everything before the LAST ':', taken as
    written: alerts never hold a ':' (rule and service names cannot) while user names may
    (`system:serviceaccount:ns:sa`, OIDC issuers), and the admission policy accepts a new value
    only if this reads the requesting user's name from it (controller/admission.ack_accepted)."""
    who, colon, targets = value.rpartition(":")
    if not colon:
        if "/" not in value:
            return value[:253], None  # a name alone: the whole policy
        targets = value
    items = frozenset(t.strip() for t in targets.split(",") if t.strip())
    return (who or "ack")[:253], items or None


def acknowledges(ack: Ack, rule: str, service: str) -> bool:
    targets = ack[1]
    return targets is None or f"{rule}/{service}" in targets or rule in targets


def _step(rule: api.Rule, old: dict[str, typing.Any], value: float | None,
          now: datetime.datetime) -> dict[str, typing.Any]:
    alert = dict(old)
    state = old["state"]
    if value is None or math.isnan(value):
        return alert  # no data (NaN is Prometheus' "no data"): hold; it never fires nor resolves
    # ±Inf compares as itself: a p95 past the top histogram bucket (an outage) is +Inf and is
    # above any `>` threshold (docs/alerting.md). Status shows such a value as absent (`_kept`).
    holds = OPS[_plain(rule.op)](value, rule.threshold)
    stamp = timestamps.to_status(now)
    if state in (INACTIVE, RESOLVED) and holds:
        # A re-fire remembers when the last firing last notified: flap damping reads it.
        previous = old.get("lastNotified") or old.get("previousNotified")
        alert = {"state": PENDING, "since": stamp, "value": _kept(value), "previousNotified": previous}
        state = PENDING
    if state == PENDING:
        if not holds:
            return {"state": INACTIVE}
        if (now - timestamps.from_status(alert["since"])).total_seconds() >= rule.forSeconds:
            return {"state": FIRING, "since": stamp, "value": _kept(value), "notifications": 0,
                    "escalationLevel": 0, "previousNotified": alert.get("previousNotified")}
        return alert
    if state == FIRING:
        if holds:
            alert.pop("clearedAt", None)
            return alert
        cleared = alert.setdefault("clearedAt", stamp)
        if (now - timestamps.from_status(cleared)).total_seconds() >= rule.keepFiringForSeconds:
            return {**alert, "state": RESOLVED, "since": stamp, "value": _kept(value), "clearedAt": None}
    return alert


def matching_routes(spec: api.AlertPolicySpec, rule: api.Rule, service: str = "", namespace: str = "",
                    policy: str = "") -> list[routing.Resolved]:
    """The routes an alert of this rule (on this service) takes, settings resolved."""
    return routing.match(spec, routing.alert_labels(rule, service, namespace, policy))


def _notify(spec: api.AlertPolicySpec, rule: api.Rule, routes: typing.Sequence[routing.Resolved],
            old: typing.Mapping[str, typing.Any], alert: dict[str, typing.Any], value: float | None,
            now: datetime.datetime, policy_id: str) -> list[Notification]:
    """What this alert sends now through each matched route on its own (a grouped route
    sends through its group, and only escalates here). The first route's progress is the
    alert's own fields (as before routes could continue); each further route keeps its own in
    `continued`, so it repeats and escalates on its own interval."""
    state = alert["state"]
    if state not in (FIRING, RESOLVED) or not routes:
        return []
    fired_at = timestamps.from_status(alert["since"] if state == FIRING else old.get("since", alert["since"]))
    base = f"{policy_id}/{rule.name}/{alert['service']}/{int(fired_at.timestamp())}"
    kept = {entry.get("route"): entry for entry in alert.get("continued") or []}
    if state == RESOLVED:
        if not (old.get("state") == FIRING and spec.sendResolved):
            return []
        told = [route for index, route in enumerate(routes) if not grouping.grouped(route)
                and (old if index == 0 else kept.get(route.path) or {}).get("notifications")]
        text = _resolved_text(rule, alert["service"], old.get("value"), value)
        everyone = _unique(c for route in told for c in route_channels(spec, route.channels, route.channel_kinds))
        return [Notification(f"{base}/resolved/{c}", c, RESOLVED_KIND, rule.name, alert["service"],
                             _plain(rule.severity), text, fired_at, routes[0].path) for c in everyone]
    text = _firing_text(rule, alert, value)
    first, *further = routes
    out = _route_notices(spec, rule, first, alert, alert, now, fired_at, base, text, "")
    progress = []
    for route in further:
        entry = dict(kept.get(route.path) or {"route": route.path})
        out += _route_notices(spec, rule, route, alert, entry, now, fired_at, base, text, route.path)
        progress.append({k: v for k, v in entry.items() if v is not None})
    alert["continued"] = progress or None
    return out


def _firing_text(rule: api.Rule, alert: typing.Mapping[str, typing.Any], value: float | None) -> str:
    shown = alert.get("value") if value is None or math.isnan(value) else value
    return render(rule.summary, {"rule": rule.name, "service": alert["service"], "value": _text(shown),
                                 "threshold": f"{rule.threshold:g}", "op": _plain(rule.op)})


def _route_notices(spec: api.AlertPolicySpec, rule: api.Rule, route: routing.Resolved, alert: dict[str, typing.Any],
                   progress: dict[str, typing.Any], now: datetime.datetime, fired_at: datetime.datetime, base: str,
                   text: str, suffix_route: str) -> list[Notification]:
    """One route's firing, repeat and escalation notices; `progress` is where this route
    keeps its count, last notification and escalation level (the alert itself for the first
    route). Keys of the first route are as they always were; a further route's carry its path."""
    def to(channels: typing.Sequence[str], kind: str, suffix: str) -> list[Notification]:
        tag = f"{suffix}@{suffix_route}" if suffix_route else suffix
        return [Notification(f"{base}/{tag}/{channel}", channel, kind, rule.name, alert["service"],
                             _plain(rule.severity), text, fired_at, route.path) for channel in channels]

    out: list[Notification] = []
    main = route_channels(spec, route.channels, route.channel_kinds)
    acked = bool(alert.get("acknowledgedBy"))
    sent = int(progress.get("notifications") or 0)
    last = progress.get("lastNotified")
    previous = alert.get("previousNotified")
    if grouping.grouped(route):
        pass  # its firing, repeats and resolution go through its group (core/grouping.py)
    elif not suffix_route and sent == 0 and previous and (now - timestamps.from_status(previous)).total_seconds() < route.repeat:
        alert["damped"] = True  # flapping: re-fired within the cooldown of the last notification
    elif sent == 0 and not (suffix_route and alert.get("damped")):
        if not suffix_route:
            alert["damped"] = None
        out += to(main, FIRING_KIND, "firing")
    elif sent and not acked and last and (now - timestamps.from_status(last)).total_seconds() >= route.repeat:
        out += to(main, REPEAT_KIND, f"repeat{sent}")
    if out:
        progress["notifications"] = sent + 1
        progress["lastNotified"] = timestamps.to_status(now)
    level = int(progress.get("escalationLevel") or 0)
    for number, step in enumerate(sorted(route.escalation, key=lambda e: e.afterSeconds), start=1):
        if acked or alert.get("damped") or number <= level or (now - fired_at).total_seconds() < step.afterSeconds:
            continue
        out += to(route_channels(spec, step.channels, step.channelKinds), ESCALATION_KIND, f"escalation{number}")
        progress["escalationLevel"] = number
    return out


def _resolved_text(rule: api.Rule, service: str, fired_value: typing.Any, now_value: float | None) -> str:
    """A resolved notice reads as resolved: the summary as it was when firing (its value then),
    and the value now, which no longer satisfies the rule."""
    then = numbers.finite_or_none(fired_value)
    summary = render(rule.summary, {"rule": rule.name, "service": service, "value": _text(then),
                                    "threshold": f"{rule.threshold:g}", "op": _plain(rule.op)})
    return f"[RESOLVED] {summary} (now {_text(now_value)})"


def _unique(items: typing.Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _kept(value: float) -> float | None:
    """A value as status.alerts keeps it: rounded, and None when not finite (JSON cannot say
    Infinity: the API server refuses the whole patch, and the page would never be sent)."""
    return numbers.shown(round(value, 3)) if math.isfinite(value) else None


def _text(value: typing.Any) -> str:
    """A value in a notification's text, as Prometheus writes it (`+Inf`); `?` when unknown.
    Any value: the one shown may be read back from status, which anyone may have written."""
    if isinstance(value, float) and math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    number = numbers.finite_or_none(value if not isinstance(value, str) else None)
    return "?" if number is None else f"{round(number, 3):g}"


def _plain(value: typing.Any) -> str:
    """Enum fields arrive as plain strings (use_enum_values); defaults may still be members."""
    return str(getattr(value, "value", value))
