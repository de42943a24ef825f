"""The scaling decision: a pure function of (spec, observations, previous state, now).

Order of judgement, each step recorded in the reason:
1. each metric's sample, fresh or not;
2. proportional proposal: up when ANY metric is above scaleUp (ceil(current × value /
   scaleUp) for the worst), down only when ALL are below scaleDown (the smallest count
   that keeps every metric under its scaleUp), otherwise hold; missing data never
   proposes a scale-down (Hold, or the Fallback count when it is higher);
3. predictive (optional): a rising trend may propose an earlier scale-up, never a down;
4. stabilization windows (HPA semantics: up takes the window's minimum, down its maximum;
   a down window not yet fully observed since start-up holds);
5. cooldowns; 6. step policies per period (Pods/Percent, selectPolicy); 7. min/max.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import typing

from controller.api import scalingpolicy as api

MetricKey = tuple[str, str | None]  # (type, custom name)


@dataclasses.dataclass(frozen=True)
class Sample:
    value: float | None
    sampled_at: datetime.datetime | None
    error: str | None = None  # e.g. the query was refused (HTTP 400)


@dataclasses.dataclass(frozen=True)
class ScaleEvent:
    time: datetime.datetime
    from_replicas: int
    to_replicas: int


@dataclasses.dataclass(frozen=True)
class State:
    """What the previous rounds left behind.

    `events` and the last scale times come from status (they survive a restart);
    `recommendations` and `history` are kept in memory, and `observing_since` says from
    when: a scale-down window that started before it is not yet fully observed.
    """

    observing_since: datetime.datetime
    last_scale_up: datetime.datetime | None = None
    last_scale_down: datetime.datetime | None = None
    events: tuple[ScaleEvent, ...] = ()
    recommendations: tuple[tuple[datetime.datetime, int], ...] = ()
    history: typing.Mapping[MetricKey, tuple[tuple[datetime.datetime, float], ...]] = dataclasses.field(
        default_factory=dict
    )


@dataclasses.dataclass(frozen=True)
class MetricView:
    key: MetricKey
    label: str
    value: float | None
    scale_up: float
    scale_down: float
    sampled_at: datetime.datetime | None
    problem: str | None  # why it is unusable

    @property
    def band(self) -> str:
        if self.value is None:
            return "unavailable"
        if self.value > self.scale_up:
            return "above"
        if self.value < self.scale_down:
            return "below"
        return "within"


@dataclasses.dataclass(frozen=True)
class Outcome:
    direction: str  # Up | Down | Hold
    current: int
    desired: int
    reason: str
    limited_by: str | None
    metrics: tuple[MetricView, ...]
    able_to_scale: tuple[str, str, str]  # status, reason, message (HPA-compatible)
    scaling_active: tuple[str, str, str]
    scaling_limited: tuple[str, str, str]
    recommendations: tuple[tuple[datetime.datetime, int], ...]
    history: typing.Mapping[MetricKey, tuple[tuple[datetime.datetime, float], ...]]
    recommendation: str | None = None


def metric_key(metric: api.MetricThreshold) -> MetricKey:
    return (str(metric.type), metric.name)


def metric_label(key: MetricKey) -> str:
    return key[1] if key[0] == api.MetricType.CUSTOM.value and key[1] else key[0]


UNITS = {"cpu": "%", "memory": "%", "latencyP95": "ms", "errorRate": "%", "requestRate": "/s", "requestQueue": ""}


def fmt(value: float, key: MetricKey) -> str:
    text = f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")
    return text + UNITS.get(key[0], "")


def _stamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _views(
    spec: api.ScalingPolicySpec, samples: typing.Mapping[MetricKey, Sample], now: datetime.datetime
) -> tuple[MetricView, ...]:
    stale_after = datetime.timedelta(seconds=spec.onMetricsUnavailable.staleAfterSeconds)
    views = []
    for metric in spec.metrics:
        key = metric_key(metric)
        sample = samples.get(key)
        problem = None
        value = None
        if sample is None or (sample.value is None and sample.error is None):
            problem = "no data"
        elif sample.error is not None:
            problem = sample.error
        elif sample.sampled_at is None or now - sample.sampled_at > stale_after:
            problem = "stale"
        elif math.isnan(sample.value) or math.isinf(sample.value):
            problem = "not a number"
        else:
            value = sample.value
        views.append(MetricView(key, metric_label(key), value, metric.scaleUp, metric.scaleDown,
                                sample.sampled_at if sample else None, problem))
    return tuple(views)


def _trend(points: tuple[tuple[datetime.datetime, float], ...]) -> float | None:
    """Least-squares slope per second, or None with fewer than 3 points."""
    if len(points) < 3:
        return None
    t0 = points[0][0]
    xs = [(t - t0).total_seconds() for t, _ in points]
    ys = [v for _, v in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs)
    if denominator == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / denominator


def _period_start(events: tuple[ScaleEvent, ...], current: int, now: datetime.datetime, period: int, up: bool) -> int:
    """Replicas at the start of the period: current minus the changes made within it."""
    since = now - datetime.timedelta(seconds=period)
    changed = sum(
        e.to_replicas - e.from_replicas
        for e in events
        if e.time > since and ((e.to_replicas > e.from_replicas) == up) and e.to_replicas != e.from_replicas
    )
    return current - changed


def _step_limit(
    rules: api.ScalingRules, events: tuple[ScaleEvent, ...], current: int, now: datetime.datetime, up: bool
) -> tuple[int | None, str | None]:
    if rules.selectPolicy == api.SelectPolicy.DISABLED.value:
        return current, "scaling in this direction is disabled (selectPolicy Disabled)"
    limits = []
    for policy in rules.policies:
        start = _period_start(events, current, now, policy.periodSeconds, up)
        if policy.type == api.PolicyType.PODS.value:
            limit = start + policy.value if up else start - policy.value
        elif up:
            limit = math.ceil(start * (1 + policy.value / 100))
        else:
            limit = math.floor(start * (1 - policy.value / 100))
        limits.append((limit, f"{policy.type} {policy.value}{'%' if policy.type == 'Percent' else ''} per "
                              f"{policy.periodSeconds}s"))
    if not limits:
        return None, None
    # Max: the policy allowing the largest change; Min: the smallest.
    largest_change = rules.selectPolicy == api.SelectPolicy.MAX.value
    if up:
        return (max if largest_change else min)(limits)
    return (min if largest_change else max)(limits)


def _proposal(
    spec: api.ScalingPolicySpec, views: tuple[MetricView, ...], current: int
) -> tuple[int, str, str]:
    """(proposed replicas, direction, reason) from the metrics alone."""
    base = max(current, 1)
    usable = [v for v in views if v.value is not None]
    missing = [v for v in views if v.value is None]
    above = [v for v in usable if v.band == "above"]
    if above:
        worst = max(above, key=lambda v: math.ceil(base * v.value / v.scale_up))  # type: ignore[operator]
        proposed = max(math.ceil(base * worst.value / worst.scale_up), current + 1)  # type: ignore[operator]
        reason = f"{worst.label} {fmt(worst.value, worst.key)} > {fmt(worst.scale_up, worst.key)} (scale-up threshold)"  # type: ignore[arg-type]
        return proposed, "Up", reason
    if missing:
        names = ", ".join(f"{v.label} ({v.problem})" for v in missing)
        action = spec.onMetricsUnavailable
        if action.action == api.UnavailableAction.FALLBACK.value and action.replicas is not None and action.replicas > current:
            return action.replicas, "Up", f"metrics unavailable: {names}; fallback to {action.replicas}"
        return current, "Hold", f"metrics unavailable: {names}; holding (never scale down blind)"
    if usable and all(v.band == "below" for v in usable):
        needed = max(math.ceil(current * v.value / v.scale_up) for v in usable)  # type: ignore[operator]
        proposed = max(needed, 1)
        if proposed < current:
            summary = ", ".join(f"{v.label} {fmt(v.value, v.key)} < {fmt(v.scale_down, v.key)}" for v in usable)  # type: ignore[arg-type]
            return proposed, "Down", f"all metrics below scale-down thresholds ({summary})"
        return current, "Hold", "all metrics below scale-down thresholds, but fewer replicas would exceed scale-up"
    within = [v for v in usable if v.band == "within"]
    first = within[0] if within else usable[0]
    return current, "Hold", (
        f"{first.label} {fmt(first.value, first.key)} within {fmt(first.scale_down, first.key)}.."  # type: ignore[arg-type]
        f"{fmt(first.scale_up, first.key)} (hold band)"
    )


def decide(
    spec: api.ScalingPolicySpec,
    current: int,
    samples: typing.Mapping[MetricKey, Sample],
    state: State,
    now: datetime.datetime,
) -> Outcome:
    views = _views(spec, samples, now)
    history = {
        key: tuple((t, v) for t, v in state.history.get(key, ()) if now - t <= datetime.timedelta(
            seconds=max(spec.predictive.horizonSeconds, 300))) + (((now, view.value),) if view.value is not None else ())
        for key, view in ((v.key, v) for v in views)
    }
    proposed, direction, reason = _proposal(spec, views, current)
    invalid = [v for v in views if v.problem and v.problem.startswith("invalid query")]

    if spec.predictive.enabled and direction != "Up":
        for view in views:
            slope = _trend(history.get(view.key, ()))
            if view.value is None or slope is None or slope <= 0:
                continue
            projected = view.value + slope * spec.predictive.horizonSeconds
            if projected > view.scale_up:
                proposed = max(math.ceil(max(current, 1) * projected / view.scale_up), current + 1)
                direction = "Up"
                reason = (f"{view.label} {fmt(view.value, view.key)} rising, forecast {fmt(projected, view.key)} > "
                          f"{fmt(view.scale_up, view.key)} in {spec.predictive.horizonSeconds}s (predictive)")
                break

    limited_by: str | None = None
    # Stabilization (HPA semantics); the latest proposal joins both windows.
    recommendations = state.recommendations + ((now, proposed),)
    longest = max(spec.behavior.scaleUp.stabilizationWindowSeconds, spec.behavior.scaleDown.stabilizationWindowSeconds)
    recommendations = tuple((t, r) for t, r in recommendations if now - t <= datetime.timedelta(seconds=longest))
    up_window = datetime.timedelta(seconds=spec.behavior.scaleUp.stabilizationWindowSeconds)
    down_window = datetime.timedelta(seconds=spec.behavior.scaleDown.stabilizationWindowSeconds)
    up_recommendation = min(r for t, r in recommendations if now - t <= up_window)
    down_recommendation = max(r for t, r in recommendations if now - t <= down_window)
    desired = current
    if direction == "Up":
        desired = max(current, up_recommendation)
        if desired < proposed:
            limited_by = f"scale-up stabilization window {spec.behavior.scaleUp.stabilizationWindowSeconds}s"
    elif direction == "Down":
        desired = min(current, down_recommendation)
        if now - state.observing_since < down_window:
            desired = current
            limited_by = (f"scale-down stabilization window {spec.behavior.scaleDown.stabilizationWindowSeconds}s "
                          "not yet observed since start")
        elif desired > proposed:
            limited_by = f"scale-down stabilization window {spec.behavior.scaleDown.stabilizationWindowSeconds}s"

    able = ("True", "ReadyForNewScale", "the last scale is done; ready for a new one")
    # Cooldowns: up counts from the last scale-up; down from the last scale in either direction.
    if desired > current and state.last_scale_up is not None:
        until = state.last_scale_up + datetime.timedelta(seconds=spec.behavior.scaleUp.cooldownSeconds)
        if until > now:
            limited_by = f"scale-up cooldown ({(until - now).total_seconds():.0f}s left)"
            # An absolute time keeps the condition unchanged (no write) while cooling down.
            able = ("False", "BackoffUpscale", f"scale-up cooldown until {_stamp(until)}")
            desired = current
    if desired < current:
        last = max((t for t in (state.last_scale_up, state.last_scale_down) if t is not None), default=None)
        if last is not None:
            until = last + datetime.timedelta(seconds=spec.behavior.scaleDown.cooldownSeconds)
            if until > now:
                limited_by = f"scale-down cooldown ({(until - now).total_seconds():.0f}s left)"
                able = ("False", "BackoffDownscale", f"scale-down cooldown until {_stamp(until)}")
                desired = current

    # Step policies per period.
    if desired != current:
        up = desired > current
        limit, policy = _step_limit(spec.behavior.scaleUp if up else spec.behavior.scaleDown, state.events, current, now, up)
        if limit is not None and ((up and desired > limit) or (not up and desired < limit)):
            desired = max(limit, current) if up else min(limit, current)
            limited_by = f"{'scale-up' if up else 'scale-down'} policy {policy}"

    # Bounds.
    limited = ("False", "DesiredWithinRange", "the desired count is within the acceptable range")
    recommendation = None
    if desired > spec.maxReplicas or (direction == "Up" and desired == spec.maxReplicas < proposed):
        desired = min(desired, spec.maxReplicas)
        limited_by = f"maxReplicas {spec.maxReplicas}"
        limited = ("True", "TooManyReplicas", f"the desired replica count is more than the maximum {spec.maxReplicas}")
        pressing = ", ".join(f"{v.label} > {fmt(v.scale_up, v.key)}" for v in views if v.band == "above") or "trend rising"
        recommendation = f"at maxReplicas {spec.maxReplicas} while {pressing}: raise maxReplicas or add capacity per replica"
    elif desired < spec.minReplicas:
        desired = spec.minReplicas
        limited_by = f"minReplicas {spec.minReplicas}"
        limited = ("True", "TooFewReplicas", f"the desired replica count is less than the minimum {spec.minReplicas}")
    elif limited_by and "policy" in limited_by:
        limited = ("True", "ScaleUpLimit" if desired > current else "ScaleDownLimit", f"limited by {limited_by}")

    if invalid:
        active = ("False", "InvalidMetricQuery", "; ".join(f"{v.label}: {v.problem}" for v in invalid))
    elif any(v.value is None for v in views):
        missing = ", ".join(f"{v.label} ({v.problem})" for v in views if v.value is None)
        active = ("False", "MetricsUnavailable", f"no fresh value for {missing}")
    else:
        active = ("True", "ValidMetricFound", f"{len(views)} metric(s) fresh")

    final_direction = "Up" if desired > current else "Down" if desired < current else "Hold"
    summary = reason if final_direction != "Hold" or not limited_by else f"{reason}; held by {limited_by}"
    if final_direction != "Hold" and limited_by:
        summary = f"{reason}; limited by {limited_by}"
    return Outcome(final_direction, current, desired, summary, limited_by, views, able, active, limited,
                   recommendations, history, recommendation)
