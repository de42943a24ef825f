"""What `kubectl capliquify` prints, from the objects as the API server returns them (pure:
no client, no clock). Every value comes from status, which the operator keeps bounded; a
field an older operator did not write shows as "-".

Status carries text from others (a Prometheus' error, a receiver's, names, an ack's author),
and a terminal obeys the control sequences it is sent (`ESC]52` writes the clipboard, `ESC[2J`
clears the screen, a newline forges a row). So every string of every object is made printable
as it enters (`printable`: a control character shown as its escape, `\x1b`), before anything
here reads it: nothing printed can carry one, whichever field it came from.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import typing

from controller.core import timestamps

Obj = typing.Mapping[str, typing.Any]
MISSING = "-"
WHY_WIDTH = 70


@dataclasses.dataclass(frozen=True)
class Row:
    namespace: str
    service: str
    target: str
    health: str
    replicas: str
    decision: str
    why: str
    alerts: str
    rollout: str


HEADER = ("NAMESPACE", "SERVICE", "TARGET", "HEALTH", "REPLICAS", "DECISION", "WHY", "FIRING", "ROLLOUT")


def printable(text: str) -> str:
    """`text` with every character a terminal would not print as itself (C0/C1 controls, DEL,
    format characters such as bidi overrides, line and paragraph separators) as its escape."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else c.encode("unicode_escape").decode("ascii") for c in text)


def clean(value: typing.Any) -> typing.Any:
    """A copy of an object (from the API server's JSON) with every string, key or value, printable."""
    if isinstance(value, str):
        return printable(value)
    if isinstance(value, typing.Mapping):
        return {clean(key): clean(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(item) for item in value]
    return value


def _meta(obj: Obj) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _status(obj: Obj) -> Obj:
    return obj.get("status") or {}


def short(text: str, width: int = WHY_WIDTH) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[:width - 1] + "…"


def decision_text(decision: Obj | None) -> str:
    if not decision:
        return MISSING
    moved = f"{decision.get('direction', '?')} {decision.get('from', '?')}→{decision.get('to', '?')}"
    return moved + ("" if decision.get("actuated", True) else " (not applied)")


def _policy_for(service: Obj, policies: typing.Sequence[Obj]) -> Obj | None:
    namespace, name = _meta(service)
    target = _status(service).get("target")
    for policy in policies:
        ref = (policy.get("spec") or {}).get("targetRef") or {}
        if _meta(policy)[0] != namespace:
            continue
        if ref.get("monitoredService") == name or (target and _status(policy).get("target") == target):
            return policy
    return None


def _firing(namespace: str, service: str, alert_policies: typing.Sequence[Obj]) -> list[str]:
    return sorted(f"{alert.get('rule')}" + (" (acked)" if alert.get("acknowledgedBy") else "")
                  for policy in alert_policies if _meta(policy)[0] == namespace
                  for alert in _status(policy).get("alerts") or []
                  if alert.get("service") == service and alert.get("state") == "Firing")


def _replicas(service: Obj | None, policy: Obj | None) -> str:
    counts = _status(service).get("replicas") or {} if service else {}
    ready = counts.get("ready", _status(policy).get("currentReplicas") if policy else None)
    desired = _status(policy).get("desiredReplicas") if policy else None
    if desired is None:
        desired = counts.get("desired")
    return f"{MISSING if ready is None else ready}/{MISSING if desired is None else desired}"


def _rollout(service: Obj) -> str:
    rollout = _status(service).get("rollout") or {}
    if not rollout.get("phase"):
        return MISSING
    return f"{rollout['phase']} r{rollout.get('revision', '?')}"


def status_rows(services: typing.Sequence[Obj], policies: typing.Sequence[Obj],
                alert_policies: typing.Sequence[Obj]) -> list[Row]:
    """One row per MonitoredService (with the ScalingPolicy that scales it), then one per
    ScalingPolicy that scales a workload directly."""
    services, policies, alert_policies = clean(services), clean(policies), clean(alert_policies)
    rows, used = [], set()
    for service in services:
        namespace, name = _meta(service)
        policy = _policy_for(service, policies)
        if policy is not None:
            used.add(_meta(policy))
        decision = _status(policy).get("lastDecision") if policy else None
        rows.append(Row(namespace, name, _status(service).get("target") or MISSING,
                        _status(service).get("health") or MISSING, _replicas(service, policy),
                        decision_text(decision), short(decision.get("reason", "")) if decision else MISSING,
                        ", ".join(_firing(namespace, name, alert_policies)) or MISSING, _rollout(service)))
    for policy in policies:
        if _meta(policy) in used:
            continue
        namespace, name = _meta(policy)
        decision = _status(policy).get("lastDecision")
        rows.append(Row(namespace, f"scp/{name}", _status(policy).get("target") or MISSING, MISSING,
                        _replicas(None, policy), decision_text(decision),
                        short(decision.get("reason", "")) if decision else MISSING, MISSING, MISSING))
    return sorted(rows, key=lambda row: (row.namespace, row.service))


def table(header: typing.Sequence[str], rows: typing.Sequence[typing.Sequence[str]]) -> str:
    """kubectl's plain table: columns padded with three spaces, no borders."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=False)]
    return "\n".join("   ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
                     for line in (header, *rows))


def status_table(rows: typing.Sequence[Row], all_namespaces: bool) -> str:
    cells = [dataclasses.astuple(row) for row in rows]
    if all_namespaces:
        return table(HEADER, cells)
    return table(HEADER[1:], [cell[1:] for cell in cells])


def why(policy: Obj) -> str:
    """The decision history of one ScalingPolicy, each with the stage that limited it."""
    policy = clean(policy)
    namespace, name = _meta(policy)
    status = _status(policy)
    lines = [f"ScalingPolicy {namespace}/{name} → {status.get('target') or MISSING}: "
             f"{status.get('currentReplicas', MISSING)} replicas now, {status.get('desiredReplicas', MISSING)} desired"]
    for condition in status.get("conditions") or []:
        lines.append(f"  {condition.get('type')}={condition.get('status')} {condition.get('reason')}: "
                     f"{short(condition.get('message', ''), 100)}")
    metrics = status.get("metrics") or []
    if metrics:
        lines.append("Metrics (value; scale up above, down below):")
        lines.append(table(("  METRIC", "VALUE", "UP", "DOWN", "SOURCE", "SAMPLED"), [
            ("  " + (m.get("name") or m.get("type", "?")), MISSING if m.get("value") is None else f"{m['value']:.4g}",
             f"{m.get('scaleUp', MISSING)}", f"{m.get('scaleDown', MISSING)}", m.get("source") or MISSING,
             m.get("sampledAt") or MISSING) for m in metrics]))
    decisions = status.get("recentDecisions") or ([status["lastDecision"]] if status.get("lastDecision") else [])
    lines.append("Decisions, newest first:" if decisions else "No decision yet.")
    if decisions:
        lines.append(table(("  TIME", "DECISION", "LIMITED BY", "WHY"), [
            ("  " + str(d.get("time", MISSING)), decision_text(d), d.get("limitedBy") or MISSING,
             short(d.get("reason", ""), 100)) for d in decisions]))
    if status.get("recommendation"):
        lines.append(f"Recommendation: {status['recommendation']}")
    return "\n".join(lines)


def ack_value(who: str, alert: str) -> str:
    """The ack annotation's value for one alert (rule/service), as core.alerting.parse_ack reads it."""
    return f"{who}: {alert}"


class PatchError(ValueError):
    """What the plugin cannot write, and why (one line)."""


_DURATION = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def duration(text: str) -> datetime.timedelta:
    """`2h`, `90m`, `1h30m`, `1d`, `45s` (kubectl's and Alertmanager's units, days added)."""
    match = _DURATION.fullmatch(text.strip())
    if not text.strip() or match is None:
        raise PatchError(f"--for is a duration such as 2h, 90m or 1h30m, got {text!r}")
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    span = datetime.timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    if span <= datetime.timedelta(0):
        raise PatchError(f"--for must be longer than nothing, got {text!r}")
    return span


def instant(text: str) -> datetime.datetime:
    """`--until`: an RFC 3339 time (2026-12-06T18:00:00Z); without an offset it is UTC."""
    try:
        return timestamps.from_status(text)
    except ValueError:
        raise PatchError(f"--until is a time such as 2026-12-06T18:00:00Z, got {text!r}") from None


def _stamp(moment: datetime.datetime) -> str:
    return timestamps.to_status(moment)


def new_silence(who: str, matchers: typing.Sequence[str], start: datetime.datetime, end: datetime.datetime,
                comment: str, name: str) -> dict[str, typing.Any]:
    """A Silence as spec.silences holds it, recorded under `who` (the caller, as the API server knows them)."""
    if end <= start:
        raise PatchError(f"the silence would end ({_stamp(end)}) before it starts ({_stamp(start)})")
    return {"name": name, "createdBy": who, "start": _stamp(start), "end": _stamp(end),
            "labelMatchers": list(matchers), "comment": comment}


def _version_test(policy: Obj) -> dict[str, typing.Any]:
    # The patch applies only to the object as read: two silencers each re-read and retry
    # instead of one writing a list that lacks the other's silence.
    return {"op": "test", "path": "/metadata/resourceVersion", "value": (policy.get("metadata") or {})["resourceVersion"]}


def silence_patch(policy: Obj, silence: typing.Mapping[str, typing.Any], limit: int) -> list[dict[str, typing.Any]]:
    """The JSON patch appending `silence` to the AlertPolicy `policy` as read."""
    silences = (policy.get("spec") or {}).get("silences")
    if silences is not None and any(s.get("name") == silence["name"] for s in silences):
        raise PatchError(f"a silence named {printable(silence['name'])} is already set: choose another --name")
    if silences is not None and len(silences) >= limit:
        raise PatchError(f"the policy already holds {len(silences)} silences, the most it may: unsilence one first")
    add = ({"op": "add", "path": "/spec/silences", "value": [dict(silence)]} if silences is None else
           {"op": "add", "path": "/spec/silences/-", "value": dict(silence)})
    return [_version_test(policy), add]


def unsilence_patch(policy: Obj, name: str) -> list[dict[str, typing.Any]]:
    """The JSON patch removing every silence named `name` (each tested to be that one first)."""
    silences = (policy.get("spec") or {}).get("silences") or []
    places = [index for index, silence in enumerate(silences) if silence.get("name") == name]
    if not places:
        named = ", ".join(printable(str(s["name"])) for s in silences if s.get("name")) or "none"
        raise PatchError(f"no silence named {printable(name)} (named silences: {named})")
    patch = [_version_test(policy)]
    for index in reversed(places):  # from the end: each removal leaves the earlier indexes as read
        patch += [{"op": "test", "path": f"/spec/silences/{index}/name", "value": name},
                  {"op": "remove", "path": f"/spec/silences/{index}"}]
    return patch


def annotation_path(key: str) -> str:
    """A JSON pointer to metadata.annotations[key] (RFC 6901: `~` and `/` escaped)."""
    return "/metadata/annotations/" + key.replace("~", "~0").replace("/", "~1")


def unack_patch(policy: Obj, key: str, value: str) -> list[dict[str, typing.Any]]:
    """The JSON patch removing the ack annotation, only if it still holds `value`."""
    return [_version_test(policy), {"op": "test", "path": annotation_path(key), "value": value},
            {"op": "remove", "path": annotation_path(key)}]
