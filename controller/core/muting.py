"""What holds notifications back while states still move: silences and inhibition: pure."""

from __future__ import annotations

import collections
import datetime
import typing

from controller.api import alertpolicy as api
from controller.api import matchers
from controller.core import routing

Labels = typing.Mapping[str, str]
# The older silence form names `rule`; the alert's label for it is `alertname`.
_SILENCE_KEYS = {"rule": "alertname"}


def silenced(spec: api.AlertPolicySpec, labels: Labels, now: datetime.datetime) -> bool:
    """Whether an active silence matches: active from `start` to `end` inclusive (Alertmanager:
    a silence is expired only after its end), all its matchers holding on the alert's labels."""
    return any(s.start <= now <= s.end
               and all(labels.get(_SILENCE_KEYS.get(k, k), "") == v for k, v in s.matchers.items())
               and matchers.match_all(routing.parsed(s.labelMatchers), labels)
               for s in spec.silences)


class Inhibitions:
    """The policy's inhibit rules over the alerts firing now, indexed once per evaluation: for
    each rule, how many firing sources carry each combination of its `equal` labels' values,
    so that asking about one alert costs a lookup, not a pass over every firing alert.

    As Alertmanager (inhibit/inhibit.go, read for its semantics): an alert that matches a
    rule's source matchers as well as its target matchers is inhibited only by sources that do
    not also match the target matchers; two such alerts never silence each other (nor does an
    alert itself)."""

    def __init__(self, spec: api.AlertPolicySpec, firing: typing.Iterable[Labels]) -> None:
        self.rules = [(routing.parsed(r.sourceMatchers), routing.parsed(r.targetMatchers), tuple(r.equal))
                      for r in spec.inhibitRules]
        self.sources: list[collections.Counter[tuple[str, ...]]] = [collections.Counter() for _ in self.rules]
        self.one_sided: list[collections.Counter[tuple[str, ...]]] = [collections.Counter() for _ in self.rules]
        for labels in firing:
            for index, (source, target, equal) in enumerate(self.rules):
                if matchers.match_all(source, labels):
                    key = _values(labels, equal)
                    self.sources[index][key] += 1
                    if not matchers.match_all(target, labels):
                        self.one_sided[index][key] += 1

    def inhibited(self, labels: Labels) -> bool:
        """Whether a firing source inhibits this alert: it matches a rule's target matchers,
        and a source carries the same value (or neither the label) for each `equal` label."""
        for index, (source, target, equal) in enumerate(self.rules):
            if not matchers.match_all(target, labels):
                continue
            counts = self.one_sided[index] if matchers.match_all(source, labels) else self.sources[index]
            if counts[_values(labels, equal)] > 0:
                return True
        return False


def _values(labels: Labels, names: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(labels.get(name, "") for name in names)
