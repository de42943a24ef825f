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


@dataclasses.dataclass(frozen=True)
class Node:
    """A route compiled once per evaluation: its conditions parsed, its settings resolved."""

    matchers: tuple[matchers.Matcher, ...]
    resolved: Resolved
    continue_: bool
    children: tuple["Node", ...]


def compile_tree(spec: api.AlertPolicySpec) -> Node:
    """The tree with every route's matchers parsed and settings resolved: matching an alert
    then only evaluates matchers (an evaluation routes every rule on every service)."""
    root = _resolve(spec.defaultRoute or api.DefaultRoute(), None, ROOT, None)

    def nodes(routes: typing.Sequence[api.Route | api.Route2 | api.Route3], parent: Resolved,
              prefix: str) -> tuple[Node, ...]:
        out = []
        for index, route in enumerate(routes):
            resolved = _resolve(route, parent, f"{prefix}[{index}]", route.name)
            out.append(Node(tuple(route_matchers(route)), resolved, route.continue_,
                            nodes(getattr(route, "routes", []), resolved, f"{resolved.path}.routes")))
        return tuple(out)

    return Node((), root, False, nodes(spec.routes, root, "routes"))


def match(spec: api.AlertPolicySpec, labels: typing.Mapping[str, str], tree: Node | None = None) -> list[Resolved]:
    """The routes an alert takes, in order; `tree` is compile_tree(spec) when the caller has it."""
    root = tree if tree is not None else compile_tree(spec)
    return _children(root.children, labels) or [root.resolved]


def _children(nodes: typing.Sequence[Node], labels: typing.Mapping[str, str]) -> list[Resolved]:
    found: list[Resolved] = []
    for node in nodes:
        if not matchers.match_all(node.matchers, labels):
            continue
        matched = _children(node.children, labels) or [node.resolved]
        found += matched
        if not node.continue_:
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
    found: list[Resolved] = []

    def visit(node: Node) -> None:
        found.append(node.resolved)
        for child in node.children:
            visit(child)

    visit(compile_tree(spec))
    return found
