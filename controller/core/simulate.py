"""What-if runs of the pure core over a metric timeline (`capliquify simulate`): pure.

A timeline is a list of points (seconds from the start, values by metric name); a value
holds until the next point names that metric again. Scaling is evaluated every
`evaluationIntervalSeconds` with instant actuation (replicas become ready at once); alerting
every `step` seconds for one service. Both use exactly the functions the operator runs.

Open loop, the timeline cannot answer the scaling, with one exception: cpu is an average over
the pods, so the series' cpu is read as measured at the starting count, i.e. a demand of
cpu × replicas₀ in replica-percent, and at n replicas the policy sees cpu × replicas₀ / n (the
same load spread over the count). Every other metric (memory, latency, errors, queues, custom)
is shown to the policy as the series says, whatever the count: a latency that stays high in the
series keeps asking for more. `follow=False` gives every metric as the series says.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing

from controller.api import alertpolicy
from controller.api import scalingpolicy
from controller.core import alerting
from controller.core import scaling

EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


@dataclasses.dataclass(frozen=True)
class Point:
    at: float
    values: typing.Mapping[str, float | None]


@dataclasses.dataclass(frozen=True)
class Row:
    at: float
    values: typing.Mapping[str, float | None]
    replicas: int
    event: str  # what happened, human-readable


def values_at(series: typing.Sequence[Point], at: float) -> dict[str, float | None]:
    values: dict[str, float | None] = {}
    for point in series:
        if point.at > at:
            break
        values.update(point.values)
    return values


FOLLOWS_COUNT = "cpu"  # the metric whose value is spread over the replicas


def seen(values: typing.Mapping[str, float | None], start: int, replicas: int, follow: bool) -> dict[str, float | None]:
    """The values as the policy sees them at `replicas`: cpu × start / replicas when `follow`."""
    out = dict(values)
    cpu = out.get(FOLLOWS_COUNT)
    if follow and cpu is not None and replicas > 0:
        out[FOLLOWS_COUNT] = cpu * start / replicas
    return out


def scaling_run(spec: scalingpolicy.ScalingPolicySpec, series: typing.Sequence[Point], replicas: int,
                until: float | None = None, follow: bool = True) -> list[Row]:
    """`follow`: cpu follows the count (see the module's docstring)."""
    start = replicas
    interval = spec.evaluationIntervalSeconds
    end = until if until is not None else (series[-1].at if series else 0) + 2 * interval
    state = scaling.State(observing_since=EPOCH)
    rows, at = [], 0.0
    while at <= end:
        now = EPOCH + datetime.timedelta(seconds=at)
        values = seen(values_at(series, at), start, replicas, follow)
        samples = {}
        for key in scaling.read_keys(spec):  # the policy's metrics and its activation metric
            value = values.get(scaling.metric_label(key))
            samples[key] = scaling.Sample(value, now if value is not None else None)
        outcome = scaling.decide(spec, replicas, samples, state, now)
        events = state.events
        last_up, last_down = state.last_scale_up, state.last_scale_down
        if outcome.desired != replicas:
            events = (*events, scaling.ScaleEvent(now, replicas, outcome.desired))[-10:]
            if outcome.desired > replicas:
                last_up = now
            else:
                last_down = now
            event = f"{outcome.direction} {replicas}->{outcome.desired}: {outcome.reason}"
            replicas = outcome.desired
        else:
            event = f"Hold: {outcome.reason}" if outcome.reason else "Hold"
        state = scaling.State(observing_since=EPOCH, last_scale_up=last_up, last_scale_down=last_down, events=events,
                              recommendations=outcome.recommendations, history=outcome.history,
                              idle_since=outcome.idle_since, seasonal=outcome.seasonal, forecast=outcome.forecast)
        rows.append(Row(at, values, replicas, event))
        at += interval
    return rows


def alerting_run(spec: alertpolicy.AlertPolicySpec, series: typing.Sequence[Point], step: float,
                 until: float | None = None, service: str = "service") -> list[Row]:
    end = until if until is not None else (series[-1].at if series else 0) + 2 * step
    alerts: list[dict[str, typing.Any]] = []
    groups: list[dict[str, typing.Any]] = []  # routes with groupBy keep their groups between steps
    rows, at = [], 0.0
    while at <= end:
        now = EPOCH + datetime.timedelta(seconds=at)
        values = values_at(series, at)
        named = {**values, **{f"custom:{name}": value for name, value in values.items()}}
        result = alerting.evaluate(spec, [alerting.Observation(service, named)], alerts, None, None, now, "simulate",
                                   groups=groups)
        alerts, groups = result.alerts, result.groups
        happened = [f"{alert}: {before} -> {after}" for alert, before, after in result.transitions]
        # A group's text has a line per alert: one row each still (" | " between its lines).
        happened += [f"notify {n.channel} ({n.kind}): {n.summary.replace(chr(10), ' | ')}" for n in result.notifications]
        rows.append(Row(at, values, 0, "; ".join(happened)))
        at += step
    return rows
