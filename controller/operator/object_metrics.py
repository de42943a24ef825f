"""Per-object metrics for dashboards (kube-state-metrics' way): what each object's status says,
from the view's copy, rendered as exposition text at scrape time.

Only the leader exports them (a standby's copy would double every series). What is exported is
what status already says, so the dashboards show what `kubectl get` shows:

- `capliquify_scaling_replicas{namespace, policy, target, state="current|desired"}`
- `capliquify_scaling_metric{namespace, policy, metric, series="value|scale_up|scale_down"}`:
  each metric against its band
- `capliquify_service_health{namespace, service, health}`: 1 for the service's current verdict
- `capliquify_rollout_info{namespace, service, revision, phase}`: 1 for the current revision
- `capliquify_alert_state{namespace, policy, rule, service, state}`: 1 per alert not Inactive

At 10,000 policies that is ~80,000 samples. Built through prometheus_client's families a scrape
took over a second of CPU (and the GIL from the loop); so each object's lines are rendered
once per resourceVersion and kept, and a scrape joins them (issue 10). What is kept is the
text of the objects the view holds, dropped with them.
"""

from __future__ import annotations

import logging
import threading
import typing

from prometheus_client import utils

from controller.operator import metrics
from controller.operator import view as view_module

logger = logging.getLogger(__name__)

# name, help, the kind whose status it comes from
FAMILIES = (
    ("capliquify_scaling_replicas", "Replicas of a ScalingPolicy's target: current and desired.", "ScalingPolicy"),
    ("capliquify_scaling_metric", "A ScalingPolicy's metric: its value and its scale-up/scale-down thresholds.",
     "ScalingPolicy"),
    ("capliquify_service_health", "1 for a MonitoredService's current health verdict.", "MonitoredService"),
    ("capliquify_rollout_info", "1 for a MonitoredService's current revision and its phase.", "MonitoredService"),
    ("capliquify_alert_state", "1 per alert that is Pending, Firing or Resolved.", "AlertPolicy"),
)
Lines = dict[str, list[str]]  # family name -> its sample lines for one object
Rendered = dict[str, str]  # family name -> one object's lines of it, joined


def _sample(lines: Lines, name: str, labels: typing.Sequence[tuple[str, object]], value: float) -> None:
    rendered = ",".join(f'{label}="{_escape(str(text))}"' for label, text in labels)
    lines.setdefault(name, []).append(f"{name}{{{rendered}}} {utils.floatToGoString(value)}\n")


def _escape(text: str) -> str:
    return text.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _where(obj: typing.Mapping[str, typing.Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace", "")), str(meta.get("name", ""))


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def scaling_lines(policy: typing.Mapping[str, typing.Any]) -> Lines:
    lines: Lines = {}
    namespace, name = _where(policy)
    status = policy.get("status") or {}
    target = status.get("target") or ""
    for state, field in (("current", "currentReplicas"), ("desired", "desiredReplicas")):
        if isinstance(status.get(field), int) and not isinstance(status.get(field), bool):
            _sample(lines, "capliquify_scaling_replicas",
                    (("namespace", namespace), ("policy", name), ("target", target), ("state", state)), status[field])
    for observed in status.get("metrics") or []:
        if not isinstance(observed, dict):
            continue
        label = observed.get("name") or observed.get("type") or ""
        for series, field in (("value", "value"), ("scale_up", "scaleUp"), ("scale_down", "scaleDown")):
            if _number(observed.get(field)):
                _sample(lines, "capliquify_scaling_metric",
                        (("namespace", namespace), ("policy", name), ("metric", label), ("series", series)),
                        observed[field])
    return lines


def service_lines(service: typing.Mapping[str, typing.Any]) -> Lines:
    lines: Lines = {}
    namespace, name = _where(service)
    status = service.get("status") or {}
    if status.get("health"):
        _sample(lines, "capliquify_service_health",
                (("namespace", namespace), ("service", name), ("health", status["health"])), 1)
    current = status.get("rollout") or {}
    if isinstance(current, dict) and current.get("revision") and current.get("phase"):
        _sample(lines, "capliquify_rollout_info", (("namespace", namespace), ("service", name),
                                                   ("revision", current["revision"]), ("phase", current["phase"])), 1)
    return lines


def alert_lines(policy: typing.Mapping[str, typing.Any]) -> Lines:
    lines: Lines = {}
    namespace, name = _where(policy)
    for alert in (policy.get("status") or {}).get("alerts") or []:
        if isinstance(alert, dict):
            _sample(lines, "capliquify_alert_state",
                    (("namespace", namespace), ("policy", name), ("rule", alert.get("rule", "")),
                     ("service", alert.get("service", "")), ("state", alert.get("state", ""))), 1)
    return lines


RENDERERS: dict[str, typing.Callable[[typing.Mapping[str, typing.Any]], Lines]] = {
    "ScalingPolicy": scaling_lines, "MonitoredService": service_lines, "AlertPolicy": alert_lines}


class ObjectMetrics:
    """The exposition text of every object's metrics; `text()` is called by the metrics server."""

    def __init__(self, view: view_module.View, leading: typing.Callable[[], bool]) -> None:
        self._view = view
        self._leading = leading
        self._cache: dict[view_module.Key, tuple[str, Rendered]] = {}  # key -> (resourceVersion, text)
        self._lock = threading.Lock()  # scrapes may overlap (one thread each)

    def text(self, names: metrics.Names = None) -> str:
        """The per-object families, or those of them in `names` (none asked: nothing rendered)."""
        if not self._leading():
            self._cache.clear()
            return ""
        wanted = [family for family in FAMILIES if names is None or family[0] in names]
        if not wanted:
            return ""
        try:
            with self._lock:
                return self._render(wanted)
        except Exception as error:  # a scrape never breaks the operator; the next one tries again
            logger.warning("object metrics not collected: %s", type(error).__name__)
            return ""

    def _render(self, wanted: typing.Sequence[tuple[str, str, str]]) -> str:
        by_family: dict[str, list[str]] = {name: [] for name, _, _ in FAMILIES}
        seen = set()
        for kind, render in RENDERERS.items():
            # Scrapes run on the metrics server's thread; list() of a dict's items is one C call
            # under the GIL, so the loop thread cannot resize the dict under it.
            for key, obj in list(self._view.of_kind(kind).items()):
                seen.add(key)
                version = str((obj.get("metadata") or {}).get("resourceVersion") or "")
                cached = self._cache.get(key)
                if cached is None or cached[0] != version or not version:
                    cached = (version, {name: "".join(lines) for name, lines in render(obj).items()})
                    self._cache[key] = cached
                for name, text in cached[1].items():
                    by_family[name].append(text)
        for gone in [key for key in self._cache if key not in seen]:
            del self._cache[gone]
        out = []
        for name, help_text, _ in wanted:
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} gauge\n")
            out.extend(by_family[name])
        return "".join(out)
