"""Label selectors as the API server evaluates them (matchLabels and matchExpressions)."""

from __future__ import annotations

import dataclasses
import typing


@dataclasses.dataclass(frozen=True)
class Selector:
    """A workload's `spec.selector`, immutable and hashable."""

    labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[tuple[str, str, tuple[str, ...]], ...] = ()  # (key, operator, values)

    @property
    def empty(self) -> bool:
        return not self.labels and not self.expressions


def parse(selector: typing.Mapping[str, typing.Any] | None) -> Selector:
    selector = selector or {}
    labels = tuple(sorted((str(k), str(v)) for k, v in (selector.get("matchLabels") or {}).items()))
    expressions = tuple(
        (str(e.get("key", "")), str(e.get("operator", "")), tuple(str(v) for v in e.get("values") or ()))
        for e in selector.get("matchExpressions") or ())
    return Selector(labels, expressions)


def matches(selector: Selector, labels: typing.Mapping[str, str]) -> bool:
    """Whether `labels` are selected. An empty selector selects nothing here: a workload
    always has one, and taking every pod of a namespace would be the wrong pods."""
    if selector.empty:
        return False
    if any(labels.get(key) != value for key, value in selector.labels):
        return False
    for key, operator, values in selector.expressions:
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False  # unknown operator: the API server would have refused it
    return True
