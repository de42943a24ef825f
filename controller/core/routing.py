"""The route tree: which routes an alert takes, with inherited settings: pure.

Alertmanager's algorithm (dispatch/route.go, read for its semantics): a route matches when
all its matchers hold on the alert's labels; its children are tried in order, the first
matching child wins unless it says `continue`; a matching route none of whose children
match is itself the match. The root (`defaultRoute`) matches every alert, so an alert no
route matches goes to the root's channels. A setting a route leaves unset is its parent's.
"""

from __future__ import annotations

import dataclasses
import functools
import typing

from controller.api import alertpolicy as api
from controller.api import matchers

GROUP_BY_ALL = "..."
# The root's defaults. Repeat 900 s (not Alertmanager's 4 h): repeats here are the nagging
# that acknowledgement stops and the window of flap damping, and a route without an interval
# meant 900 s before routes inherited; groupBy `...` and groupWait 0 keep a policy written
# before grouping sending one notification per alert at once (Alertmanager: [] and 30 s).
DEFAULT_REPEAT_SECONDS = 900
DEFAULT_GROUP_WAIT_SECONDS = 0
DEFAULT_GROUP_INTERVAL_SECONDS = 300
DEFAULT_GROUP_BY = (GROUP_BY_ALL,)
ROOT = "defaultRoute"


@dataclasses.dataclass(frozen=True)
class Resolved:
    """A matched route with every setting resolved (its own, else inherited)."""

    path: str  # defaultRoute, routes[2], routes[0].routes[1], ...
    name: str | None
    channels: tuple[str, ...]
    channel_kinds: tuple[str, ...]
    group_by: tuple[str, ...]
    group_wait: int
    group_interval: int
    repeat: int
    escalation: tuple[api.Escalation, ...]

    @property
    def group_by_all(self) -> bool:
        return GROUP_BY_ALL in self.group_by


def alert_labels(rule: api.Rule, service: str, namespace: str, policy: str) -> dict[str, str]:
    """The labels an alert carries: its rule's, then those the operator sets (which win, so a
    rule label cannot pretend to another service or severity)."""
    return {**rule.labels, "alertname": rule.name, "severity": _plain(rule.severity), "service": service,
            "namespace": namespace, "alertpolicy": policy}


def match(spec: api.AlertPolicySpec, labels: typing.Mapping[str, str]) -> list[Resolved]:
    root = _resolve(spec.defaultRoute or api.DefaultRoute(), None, ROOT, None)
    return _children(spec.routes, root, labels, "routes") or [root]


def _route(route: api.Route | api.Route2 | api.Route3, parent: Resolved, labels: typing.Mapping[str, str],
           path: str) -> list[Resolved]:
    if not matchers.match_all(route_matchers(route), labels):
        return []
    resolved = _resolve(route, parent, path, route.name)
    return _children(getattr(route, "routes", []), resolved, labels, f"{path}.routes") or [resolved]


def _children(routes: typing.Sequence[api.Route | api.Route2 | api.Route3], parent: Resolved,
              labels: typing.Mapping[str, str], prefix: str) -> list[Resolved]:
    found: list[Resolved] = []
    for index, child in enumerate(routes):
        matched = _route(child, parent, labels, f"{prefix}[{index}]")
        found += matched
        if matched and not child.continue_:
            break
    return found


def route_matchers(route: api.Route | api.Route2 | api.Route3) -> list[matchers.Matcher]:
    """A route's conditions: `severity` and `match` (the older fields, as equality matchers
    over the alert's labels) and `matchers`."""
    found = [matchers.Matcher("severity", matchers.EQUAL, _plain(route.severity))] if route.severity else []
    return found + matchers.equality(route.match) + _parsed(tuple(route.matchers))


@functools.lru_cache(maxsize=4096)
def _parsed(texts: tuple[str, ...]) -> list[matchers.Matcher]:
    return matchers.parse_all(texts)  # the models refused unreadable ones already


def parsed(texts: typing.Sequence[str]) -> list[matchers.Matcher]:
    return _parsed(tuple(texts))


def _resolve(settings: api.RouteSettings, parent: Resolved | None, path: str, name: str | None) -> Resolved:
    own_channels = bool(settings.channels or settings.channelKinds)
    return Resolved(
        path=path, name=name,
        channels=tuple(settings.channels) if own_channels or parent is None else parent.channels,
        channel_kinds=(tuple(_plain(k) for k in settings.channelKinds) if own_channels or parent is None
                       else parent.channel_kinds),
        group_by=_pick(None if settings.groupBy is None else tuple(settings.groupBy),
                       parent.group_by if parent else None, DEFAULT_GROUP_BY),
        group_wait=_pick(settings.groupWaitSeconds, parent.group_wait if parent else None, DEFAULT_GROUP_WAIT_SECONDS),
        group_interval=_pick(settings.groupIntervalSeconds, parent.group_interval if parent else None,
                             DEFAULT_GROUP_INTERVAL_SECONDS),
        repeat=_pick(settings.repeatIntervalSeconds, parent.repeat if parent else None, DEFAULT_REPEAT_SECONDS),
        escalation=_pick(None if settings.escalation is None else tuple(settings.escalation),
                         parent.escalation if parent else None, ()),
    )


T = typing.TypeVar("T")


def _pick(own: T | None, inherited: T | None, default: T) -> T:
    if own is not None:
        return own
    return inherited if inherited is not None else default


def _plain(value: typing.Any) -> str:
    return str(getattr(value, "value", value))


def walk(spec: api.AlertPolicySpec) -> list[Resolved]:
    """Every route of the tree, settings resolved, root first and depth first (the order
    Alertmanager's Route.Walk visits): for docs, `capliquify validate` and the conformance suite."""
    root = _resolve(spec.defaultRoute or api.DefaultRoute(), None, ROOT, None)
    found = [root]

    def visit(routes: typing.Sequence[api.Route | api.Route2 | api.Route3], parent: Resolved, prefix: str) -> None:
        for index, route in enumerate(routes):
            resolved = _resolve(route, parent, f"{prefix}[{index}]", route.name)
            found.append(resolved)
            visit(getattr(route, "routes", []), resolved, f"{resolved.path}.routes")

    visit(spec.routes, root, "routes")
    return found
