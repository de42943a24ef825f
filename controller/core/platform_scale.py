"""Any object with a `scale` subresource as a platform (what a HorizontalPodAutoscaler scales:
Argo Rollouts, KServe, a custom resource).

A target `{apiGroup, resource, name}` goes by the world kind "<resource>.<apiGroup>"; its
actuator (adapters/actuator_scale.py) finds the resource through the API server's discovery,
reads its `scale` subresource (spec.replicas, status.selector) and counts the selector's ready
pods, and patches the scale's spec.replicas. It offers scaling only: no rollback, no probes.
"""

from __future__ import annotations

import string
import typing

from controller import reasons
from controller.api import common
from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import conditions
from controller.core import platform
from controller.core import selectors
from controller.core import sources
from controller.core import world as world_module

NAME = "scale"


def kind_of(api_group: str, resource: str) -> str:
    """The world kind of a scale target: "<resource>.<apiGroup>", as kubectl names a resource."""
    return f"{resource}.{api_group}"


def split_kind(kind: str) -> tuple[str, str]:
    """(apiGroup, resource) of a world kind made by `kind_of`."""
    resource, _, group = kind.partition(".")
    return group, resource


class Scale:
    name = NAME
    source = sources.METRICS_API  # the scale's selector picks the pods, as for a Deployment
    announced: typing.Mapping[str, frozenset[str] | None] = {}  # conditions of its own worth an Event

    @staticmethod
    def owns(kind: str) -> bool:
        return "." in kind

    @staticmethod
    def of_service(target: monitoredservice.Target) -> platform.Ref | None:
        return None  # named by a ScalingPolicy directly (admission checks its author on that object)

    @staticmethod
    def of_policy(ref: scalingpolicy.TargetRef) -> platform.Ref | None:
        scale = ref.scale
        if scale is None:
            return None
        kind = kind_of(scale.apiGroup, scale.resource)
        return platform.Ref(NAME, kind, scale.name, f"{kind}/{scale.name}")

    @staticmethod
    def secrets(target: monitoredservice.Target) -> list[tuple[common.SecretKeyRef, str]]:
        return []

    @staticmethod
    def judge(namespace: str, ref: platform.Ref, world: world_module.World
              ) -> tuple[world_module.Workload | None, conditions.ConditionChange]:
        key = (namespace, ref.kind, ref.name)
        error = world.platform_errors.get(key)
        if error is not None:
            return None, platform.ready(False, reasons.TARGET_NOT_FOUND, f"{ref.kind} {namespace}/{ref.name}: {error}")
        found = world.workload(namespace, ref.kind, ref.name)
        if found is None:
            return None, conditions.ConditionChange(reasons.READY, "Unknown", reasons.AWAITING_OBSERVATION,
                                                    f"reading the scale of {ref.kind} {ref.name}")
        return found, platform.ready(True, reasons.TARGET_FOUND, f"{ref.kind} {ref.name} found")

    @staticmethod
    def offers(kind: str) -> platform.Offers:
        return platform.Offers(scale=True, rollback=False, probes=False)

    @staticmethod
    def references(raw_target: typing.Mapping[str, typing.Any]) -> tuple[str, str] | None:
        return None  # polled: the poller marks the target's policies when its scale changes


PLATFORM = Scale()

# The label selector's string form, read in one pass: every character is looked at a bounded
# number of times (a backtracking regex took 3.9 s, the GIL held, on 'a' + 16,000 spaces + '!').
# The length is capped from Kubernetes' own label limits (apimachinery's validation): a key is
# at most 317 characters (a DNS-subdomain prefix of 253, '/', a name of 63), a value at most 63.
# A scale's selector has no count limit of its own; 64 requirements of the longest key and value
# (with an operator and a comma) is far more than any controller writes.
MAX_KEY = 253 + 1 + 63
MAX_VALUE = 63
MAX_REQUIREMENTS = 64
MAX_SELECTOR_LENGTH = MAX_REQUIREMENTS * (MAX_KEY + MAX_VALUE + 4)  # 24,576 characters
_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "_./-")
_VALUE_CHARS = frozenset(string.ascii_letters + string.digits + "_.-")


class _Unreadable(Exception):
    pass


def _spaces(text: str, at: int, end: int) -> int:
    while at < end and text[at].isspace():
        at += 1
    return at


def _run_of(text: str, at: int, end: int, chars: frozenset[str]) -> int:
    while at < end and text[at] in chars:
        at += 1
    return at


def _requirement(text: str, start: int, end: int) -> tuple[str, str, tuple[str, ...]] | None:
    """One requirement of text[start:end] as (key, operator, values) — operator "=" for a label
    pair — or None when it is blank. Each index moves forward only."""
    at = _spaces(text, start, end)
    if at == end:
        return None
    negated = text[at] == "!"
    at += negated
    key_end = _run_of(text, at, end, _KEY_CHARS)
    if key_end == at or key_end - at > MAX_KEY:
        raise _Unreadable
    key = text[at:key_end]
    at = _spaces(text, key_end, end)
    if at == end:
        return (key, "DoesNotExist" if negated else "Exists", ())
    if text[at] in "=!":
        if text[at] == "!" and (at + 1 == end or text[at + 1] != "="):
            raise _Unreadable
        equal = text[at] == "="
        at += 2 if at + 1 < end and text[at + 1] == "=" else 1
        if negated:
            raise _Unreadable
        value_start = _spaces(text, at, end)
        value_end = _run_of(text, value_start, end, _VALUE_CHARS)
        if value_end - value_start > MAX_VALUE or _spaces(text, value_end, end) != end:
            raise _Unreadable
        return (key, "=" if equal else "NotIn", (text[value_start:value_end],))
    # `key in (…)` / `key notin (…)`: the key and the word are apart by white space
    word = "in" if text[at:at + 2] == "in" else "notin" if text[at:at + 5] == "notin" else ""
    if negated or not word or at == key_end:
        raise _Unreadable
    at = _spaces(text, at + len(word), end)
    if at == end or text[at] != "(":
        raise _Unreadable
    close = at + 1
    while close < end and text[close] != ")":
        close += 1
    if close == end or _spaces(text, close + 1, end) != end:
        raise _Unreadable
    values = [value.strip() for value in text[at + 1:close].split(",")]
    if any(len(value) > MAX_VALUE for value in values):
        raise _Unreadable
    return (key, "In" if word == "in" else "NotIn", tuple(value for value in values if value))


def parse_selector(text: str) -> selectors.Selector | None:
    """A scale's status.selector (the label selector's string form, as `kubectl get -l` takes
    it) as a Selector; None when it cannot be read or is longer than MAX_SELECTOR_LENGTH (then
    no pods are its pods). Linear in the text's length: requirements are split at commas
    outside parentheses, and each is read left to right, never going back."""
    if len(text) > MAX_SELECTOR_LENGTH:
        return None
    labels: list[tuple[str, str]] = []
    expressions: list[tuple[str, str, tuple[str, ...]]] = []
    start, depth, length = 0, 0, len(text)
    for at in range(length + 1):
        if at < length:
            char = text[at]
            depth += char == "("
            depth -= char == ")"
            if char != "," or depth != 0:
                continue
        try:
            requirement = _requirement(text, start, at)
        except _Unreadable:
            return None
        start = at + 1
        if requirement is None:
            continue
        key, operator, values = requirement
        if operator == "=":
            labels.append((key, values[0]))
        else:
            expressions.append(requirement)
        if len(labels) + len(expressions) > MAX_REQUIREMENTS:
            return None
    return selectors.Selector(tuple(sorted(labels)), tuple(expressions))
