"""Container probes derived from a health check, and when to (not) apply them: pure.

The operator applies only the probe fields it derives, with its own field manager, and
compares only those fields (the API server fills in defaults it does not set). If another
writer keeps undoing them, it stops after MAX_REVERTS and says so rather than fight.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
import urllib.parse

from controller import reasons
from controller.api import monitoredservice as api
from controller.core import conditions
from controller.core import world

MAX_REVERTS = 3


@dataclasses.dataclass(frozen=True)
class Plan:
    """What to do now: apply `apply` (then record `fields` with the new generation), or not."""

    fields: dict[str, typing.Any]
    condition: conditions.ConditionChange | None
    apply: dict[str, typing.Any] | None = None  # server-side apply body
    event: tuple[str, str, str] | None = None  # (type, reason, message) after a successful apply


def derive(spec: api.MonitoredServiceSpec) -> dict[str, dict[str, typing.Any]]:
    """readinessProbe (and livenessProbe) for the declared check."""
    check = next(c for c in spec.healthChecks if spec.probes.check in (None, c.name))
    action: dict[str, typing.Any]
    if check.http is not None:
        # A GET with no headers: kubelet's probe sends literal headers only, and a Secret's value
        # written into the pod template would be readable by anyone who reads the workload.
        url = urllib.parse.urlsplit(check.http.url)
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        port = spec.probes.port or url.port or (443 if url.scheme == "https" else 80)
        action = {"httpGet": {"path": path, "port": port, "scheme": url.scheme.upper()}}
    elif check.tcp is not None:
        action = {"tcpSocket": {"port": spec.probes.port or check.tcp.port}}
    else:
        assert check.grpc is not None
        action = {"grpc": {"port": spec.probes.port or check.grpc.port,
                           **({"service": check.grpc.service} if check.grpc.service else {})}}
    timing = {"periodSeconds": check.intervalSeconds, "timeoutSeconds": check.timeout_seconds}
    probes = {"readinessProbe": {**action, **timing, "failureThreshold": check.failureThreshold,
                                 "successThreshold": check.successThreshold}}
    if spec.probes.liveness:
        # Kubernetes requires successThreshold 1 for liveness; twice the failures before a restart.
        probes["livenessProbe"] = {**action, **timing, "failureThreshold": min(2 * check.failureThreshold, 100),
                                   "successThreshold": 1}
    return probes


def digest(container: str, desired: typing.Mapping[str, typing.Any]) -> str:
    text = json.dumps({"container": container, **desired}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def contains(live: typing.Any, desired: typing.Any) -> bool:
    """Does `live` carry every field of `desired` with the same value (defaults may be extra)?"""
    if isinstance(desired, dict):
        return isinstance(live, dict) and all(contains(live.get(k), v) for k, v in desired.items())
    return live == desired


def build_apply(kind: str, name: str, container: str, desired: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
    """The server-side apply body: only the fields the operator owns."""
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name},
            "spec": {"template": {"spec": {"containers": [{"name": container, **desired}]}}}}


def plan(
    spec: api.MonitoredServiceSpec,
    kind: str,
    name: str,
    containers: typing.Sequence[world.Container],
    generation: int,
    current: typing.Mapping[str, typing.Any] | None,
    has_condition: bool,
) -> Plan | None:
    """Decide for one service; None when there is nothing to say (wait for the watch to catch up)."""
    if not spec.probes.manage:
        if has_condition:
            return Plan({"probes": None}, _condition("False", reasons.NOT_MANAGED, "probes.manage is false: probes are left as they are"))
        return None
    wanted = spec.probes.container or (containers[0].name if containers else None)
    live = next((c for c in containers if c.name == wanted), None)
    if live is None:
        return Plan({}, _condition("False", reasons.CONTAINER_NOT_FOUND, f"{kind} {name} has no container {wanted}"))
    desired = derive(spec)
    target = digest(live.name, desired)
    state = dict(current or {})
    same = state.get("desired") == target and state.get("container") == live.name
    reverts = int(state.get("reverts") or 0) if same else 0
    applied = state.get("appliedGeneration") if same else None
    observed = {"readinessProbe": live.readiness, "livenessProbe": live.liveness}
    what = " and ".join(k for k in ("readinessProbe", "livenessProbe") if k in desired)
    if contains(observed, desired):
        record = {"container": live.name, "desired": target, "appliedGeneration": applied or generation,
                  "reverts": reverts, "stopped": False}
        return Plan({"probes": record}, _condition("True", reasons.PROBES_IN_SYNC, f"{what} of container {live.name} follow "
                                                   f"health check {_check_name(spec)}"))
    if same and state.get("stopped"):
        return Plan({}, _stopped(live.name, reverts))
    if applied is not None and generation <= applied:
        return None  # our own apply is not in the view yet
    if applied is not None:
        reverts += 1  # we had set exactly these, and something changed them since
    if reverts >= MAX_REVERTS:
        record = {"container": live.name, "desired": target, "appliedGeneration": applied, "reverts": reverts,
                  "stopped": True}
        return Plan({"probes": record}, _stopped(live.name, reverts))
    record = {"container": live.name, "desired": target, "appliedGeneration": None, "reverts": reverts,
              "stopped": False}
    note = f" (reverted by another writer {reverts} time{'s' if reverts > 1 else ''})" if reverts else ""
    return Plan({"probes": record}, None, build_apply(kind, name, live.name, desired),
                ("Normal", reasons.PROBES_UPDATED, f"set {what} of container {live.name} from health check "
                                           f"{_check_name(spec)}{note}"))


def _check_name(spec: api.MonitoredServiceSpec) -> str:
    return spec.probes.check or spec.healthChecks[0].name


def _stopped(container: str, reverts: int) -> conditions.ConditionChange:
    return _condition("False", reasons.PROBES_REVERTED, (
        f"another writer undid the probes of container {container} {reverts} times; the operator stopped managing "
        "them rather than fight. Declare them in one place: remove them from the other source, or set "
        "probes.manage false (changing the derived probes re-arms management)"))


def _condition(status: str, reason: str, message: str) -> conditions.ConditionChange:
    return conditions.ConditionChange(reasons.PROBES_MANAGED, status, reason, message)
