"""The scaling decision: a pure function of (spec, observations, previous state, now).

Named stages, in order, as HPA's `normalizeDesiredReplicasWithBehaviors` splits its own.
Every stage reads one frozen `Input` (HPA's `NormalizationArg`: spec, current and ready
counts, previous state, now, the metrics' views, the platform's limits) and what the stages
before it produced; each returns a `Stage`: the count it allows and, when it limited it, its
own condition reason and message (the conditions read them, never a message's wording):

1. **proposal** — from the metrics of *ready* pods (a metric is an average over them):
   up when ANY metric is above scaleUp, to ceil(ready × value / scaleUp) for the worst;
   pods not yet ready count as idle capacity on the way up, so a scale-up waits for the
   pods it added (HPA's unready-pod rule) instead of a timer. Down only when ALL are
   below scaleDown, to the count that puts every metric 70 % of the way up its hold band,
   pods not yet ready counted as busy (never removed as idle). Otherwise hold; missing
   data never proposes a scale-down (Hold, or the Fallback count when it is higher).
2. **predictive** (optional) — demand (value × ready replicas) fitted over 3 × horizon,
   from enough points only, projected `horizonSeconds` ahead; it may propose an earlier
   scale-up, never a down.
3. **stabilization** — HPA semantics: the result lies between the minimum of the up
   window's recommendations and the maximum of the down window's; a down window not yet
   observed since start-up holds.
4. **cooldown** — up: after the last scale-up; down: after the last scale either way.
5. **step limit** — Pods/Percent policies per period from the count at the period's start
   (every change within the period counted, as HPA does), picked by selectPolicy.
6. **bounds** — minReplicas/maxReplicas.
7. **platform** — what the target's platform allows whatever the policy says (a Railway
   service: at most 50 replicas across its regions, at least one per region it runs in).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import typing

from controller import reasons
from controller.api import scalingpolicy as api
from controller.core import conditions
from controller.core import forecast as forecast_module
from controller.core import timestamps
from controller.core import world

MetricKey = tuple[str, str | None]  # (type, custom name)


@dataclasses.dataclass(frozen=True)
class Sample:
    """One metric's value for one workload. Neither value nor error: the source was asked and
    nothing matched (no series)."""

    value: float | None
    sampled_at: datetime.datetime | None
    error: str | None = None  # e.g. the query was refused (HTTP 400)
    source: str | None = None  # which source answered (prometheus, metrics-api, railway)
    query: str | None = None  # with no series: the query that matched nothing (named in messages)


@dataclasses.dataclass(frozen=True)
class ScaleEvent:
    time: datetime.datetime  # when the scale landed (HPA: stored after the rescale returned)
    from_replicas: int
    to_replicas: int
    # When it was decided, if that was earlier (issue 26, run 14): its intent in status carries
    # that time and is this same step, not another one.
    decided: datetime.datetime | None = dataclasses.field(default=None, compare=False)
    # False: a step that may not have been made (its outcome unknown, or an intent no record
    # confirmed). It holds further steps its own way, and never loosens the other way (issue 26).
    certain: bool = dataclasses.field(default=True, compare=False)


@dataclasses.dataclass(frozen=True)
class State:
    """What the previous rounds left behind.

    `events` and the last scale times come from status (they survive a restart);
    `recommendations` and `history` (each metric's demand: value × ready replicas) are
    kept in memory, and `observing_since` says from when: a scale-down window that
    started before it is not yet fully observed.
    """

    observing_since: datetime.datetime
    last_scale_up: datetime.datetime | None = None
    last_scale_down: datetime.datetime | None = None
    events: tuple[ScaleEvent, ...] = ()
    recommendations: tuple[tuple[datetime.datetime, int], ...] = ()
    history: typing.Mapping[MetricKey, tuple[tuple[datetime.datetime, float], ...]] = dataclasses.field(
        default_factory=dict
    )
    # When each metric last had a value (status keeps it as sampledAt): a metric that never
    # had a series for this workload is "no series" and does not hold a scale-down; one that
    # had data and lost it holds.
    seen: typing.Mapping[MetricKey, datetime.datetime] = dataclasses.field(default_factory=dict)
    # The seasonal forecast's demand history (bounded: core/forecast.py) and its last forecast.
    seasonal: forecast_module.History | None = None
    forecast: forecast_module.Forecast | None = None
    # Scale to zero: since when the workload has been idle at one replica (activation metric at
    # or below its threshold, every metric available); kept in memory: a restart waits again.
    idle_since: datetime.datetime | None = None


@dataclasses.dataclass(frozen=True)
class MetricView:
    key: MetricKey
    label: str
    value: float | None
    scale_up: float
    scale_down: float
    sampled_at: datetime.datetime | None
    problem: str | None  # why it is unusable
    target: float | None = None  # where a scale lands (spec `target`), if set
    source: str | None = None
    no_series: bool = False  # never had a series for this workload: neither usable nor missing
    query: str | None = None
    settle: float | None = None  # where a scale-down lands, when set (headroom)

    @property
    def missing(self) -> bool:
        """Unusable in a way that must hold a scale-down."""
        return self.value is None and not self.no_series

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
    able_to_scale: conditions.Stated  # HPA-compatible
    scaling_active: conditions.Stated
    scaling_limited: conditions.Stated
    recommendations: tuple[tuple[datetime.datetime, int], ...]
    history: typing.Mapping[MetricKey, tuple[tuple[datetime.datetime, float], ...]]
    recommendation: str | None = None
    stages: tuple["Stage", ...] = ()
    seasonal: forecast_module.History | None = None  # the seasonal history after this round
    forecast: forecast_module.Forecast | None = None  # the seasonal forecast (None: not enabled)
    idle_since: datetime.datetime | None = None  # scale to zero: the next round's State.idle_since


@dataclasses.dataclass(frozen=True)
class Stage:
    """What one stage allowed: its name and the count after it; when it limited that count, its
    condition reason (CamelCase, HPA's where HPA has one) and the limit in words (`limit`, named
    in the outcome's reason). `condition`: the condition's message where it differs from `limit`."""

    name: str
    desired: int
    limit: str | None = None
    reason: str | None = None
    condition: str | None = None

    @property
    def message(self) -> str:
        """The condition's message for this stage's reason."""
        return self.condition or self.limit or ""


@dataclasses.dataclass(frozen=True)
class Input:
    """What every stage reads, built once per decision (HPA's NormalizationArg). `views` are the
    metrics as observed (the proposal applies saturation and staffing to its own copy), `ready`
    the ready pods now, `measured` those the metrics average over (`ready_before`), `history`
    each metric's demand including this round's."""

    spec: api.ScalingPolicySpec
    current: int
    ready: int
    measured: int
    state: State
    now: datetime.datetime
    views: tuple[MetricView, ...]
    history: typing.Mapping[MetricKey, tuple[tuple[datetime.datetime, float], ...]]
    limits: world.ReplicaLimits | None = None
    forecast: forecast_module.Forecast | None = None  # the seasonal forecast of this round
    servers: float = 1.0  # square-root staffing's servers per replica (`servers_per_replica`)


@dataclasses.dataclass(frozen=True)
class Proposal:
    replicas: int
    direction: str  # Up | Down | Hold
    reason: str


def metric_key(metric: api.MetricThreshold) -> MetricKey:
    return (str(metric.type), metric.name)


def metric_label(key: MetricKey) -> str:
    return key[1] if key[0] == api.MetricType.CUSTOM.value and key[1] else key[0]


UNITS = {"cpu": "%", "memory": "%", "latencyP95": "ms", "errorRate": "%", "requestRate": "/s", "requestQueue": ""}


def fmt(value: float, key: MetricKey) -> str:
    if not math.isfinite(value):  # a forecast past float's range reads "inf", never an exception
        return f"{value}" + UNITS.get(key[0], "")
    text = f"{value:.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.2f}".rstrip("0").rstrip(".")
    return text + UNITS.get(key[0], "")


def _stamp(moment: datetime.datetime) -> str:
    return timestamps.to_status(moment)


NO_SERIES = "no series"


def _views(
    spec: api.ScalingPolicySpec, samples: typing.Mapping[MetricKey, Sample], now: datetime.datetime,
    seen: typing.Mapping[MetricKey, datetime.datetime] | None = None,
) -> tuple[MetricView, ...]:
    stale_after = datetime.timedelta(seconds=spec.onMetricsUnavailable.staleAfterSeconds)
    seen = seen or {}
    views = []
    for metric in spec.metrics:
        key = metric_key(metric)
        sample = samples.get(key)
        problem = None
        value = None
        if sample is not None and sample.value is None and sample.error is None and key not in seen:
            views.append(MetricView(key, metric_label(key), None, metric.scaleUp, metric.scaleDown, None, NO_SERIES,
                                    metric.target, sample.source, no_series=True, query=sample.query))
            continue
        if sample is None or (sample.value is None and sample.error is None):
            problem = "no data"
        elif sample.error is not None:
            problem = sample.error
        elif sample.sampled_at is None or now - sample.sampled_at > stale_after:
            problem = "stale"
        elif sample.value is None or math.isnan(sample.value) or math.isinf(sample.value):
            problem = "not a number"
        else:
            value = sample.value
        sampled_at = sample.sampled_at if sample else None
        if value is None and sampled_at is None:
            sampled_at = seen.get(key)  # lost: status keeps when it was last seen (a restart still holds)
        views.append(MetricView(key, metric_label(key), value, metric.scaleUp, metric.scaleDown,
                                sampled_at, problem, metric.target, sample.source if sample else None))
    return tuple(views)


QUERY_IN_MESSAGE = 160  # characters of a query named in a message


def short_query(query: str) -> str:
    """A query as named in a condition message: its first QUERY_IN_MESSAGE characters."""
    return query if len(query) <= QUERY_IN_MESSAGE else query[:QUERY_IN_MESSAGE] + "…"


def no_series_list(views: typing.Iterable[MetricView]) -> str:
    """The metrics without a series, each with the query that matched nothing."""
    return "; ".join(f"{v.label} (query {short_query(v.query)})" if v.query else v.label for v in views if v.no_series)


def seen_after(state: State, views: typing.Iterable[MetricView]) -> dict[MetricKey, datetime.datetime]:
    """`state.seen` updated with the metrics that have a value now."""
    seen = dict(state.seen)
    for view in views:
        if view.value is not None and view.sampled_at is not None:
            seen[view.key] = view.sampled_at
    return seen


# Fewer fitted points than this, or a shorter history than the horizon, never forecast.
PREDICTIVE_MIN_POINTS = 6
PREDICTIVE_WINDOW_HORIZONS = 3


def _fit(points: typing.Sequence[tuple[datetime.datetime, float]], now: datetime.datetime) -> tuple[float, float] | None:
    """Least squares over the points: (value at `now`, slope per second), or None."""
    if len(points) < PREDICTIVE_MIN_POINTS:
        return None
    xs = [(t - now).total_seconds() for t, _ in points]
    ys = [v for _, v in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs)
    if denominator == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / denominator
    intercept = mean_y - slope * mean_x
    # Sums of values near float's limit overflow (inf - inf is NaN): no trend, not an exception.
    return (intercept, slope) if math.isfinite(intercept) and math.isfinite(slope) else None


def _ready(current: int, ready: int | None) -> int:
    return current if ready is None else max(0, min(ready, current))


def _needed(demand: float, per_replica: float) -> int:
    """Replicas that carry `demand` (metric × replicas) at `per_replica` each."""
    if per_replica <= 0:
        return 10**9 if demand > 0 else 0
    ratio = demand / per_replica
    # NaN (inf / inf at float's edges) sizes nothing: as many as allowed, never a scale-down blind.
    if ratio >= 10**9 or math.isnan(ratio):
        return 10**9
    return -10**9 if ratio <= -10**9 else math.ceil(ratio - 1e-9)  # -inf has no ceiling either


# Where a scale-down lands without a target: this far up the hold band (70/30: at 58 %). Far
# enough below scale-up that a small rise does not reverse it; on the NASA week and a Twitter
# trace, 0.7 cost 1-2 % fewer replica-hours than the middle (0.5) and never flapped more than
# HPA in any window (the middle did once).
DOWN_LANDING = 0.7


def landing(view: MetricView, up: bool) -> float:
    """Where a scale puts a metric: its `target` when set; else a scale-up sizes for the
    scale-up threshold (HPA's target) and a scale-down for DOWN_LANDING of the hold band. With
    headroom on, a scale-down lands where `settled` put it."""
    if not up and view.settle is not None:
        return view.settle
    if view.target is not None:
        return view.target
    # The difference, not a sum: no overflow on extreme thresholds (both are >= 0).
    return view.scale_up if up else view.scale_down + DOWN_LANDING * (view.scale_up - view.scale_down)


SATURATED_SERVED_FLOOR = 0.05  # at most ×20: an error rate near 100 % is an outage, not demand


def offered(spec: api.ScalingPolicySpec, views: tuple[MetricView, ...]) -> tuple[MetricView, ...]:
    """With `saturation` on: a saturated CPU reading divided by the share of requests served
    (1 - errorRate), the demand offered; every other view as it is."""
    errors = next((v.value for v in views if v.key == ("errorRate", None) and v.value is not None), None)
    if not spec.saturation.enabled or errors is None or errors <= 0:
        return views
    served = max(1 - errors / 100, SATURATED_SERVED_FLOOR)
    return tuple(
        dataclasses.replace(v, value=v.value / served, label=f"cpu (offered: {fmt(v.value, v.key)} served, "
                                                             f"errorRate {fmt(errors, ('errorRate', None))})")
        if v.key == ("cpu", None) and v.value is not None and v.value >= spec.saturation.cpuAbove else v
        for v in views)


def _busy_share(replicas: int, spare: float) -> float:
    """The utilisation (percent) at which `replicas` = busy + spare × √busy: √busy solves
    x² + spare·x − replicas = 0."""
    root = (-spare + math.sqrt(spare * spare + 4 * replicas)) / 2
    return 100 * root * root / replicas


def staffed(spec: api.ScalingPolicySpec, views: tuple[MetricView, ...], ready: int,
            servers: float = 1.0) -> tuple[MetricView, ...]:
    """With `staffing` on: cpu's thresholds at this count by square-root staffing, each capped
    at the metric's own (status keeps showing the spec's). `servers` per replica (at least 1):
    a spare of β·√(busy servers) servers is β/√servers·√busy replicas."""
    staffing = spec.staffing
    if not staffing.enabled or ready <= 0:
        return views
    scale = 1 / math.sqrt(max(servers, 1.0))
    out = []
    for view in views:
        if view.key == ("cpu", None) and view.value is not None:
            up = min(view.scale_up, _busy_share(ready, scale * staffing.scaleUpSpare))
            down = min(view.scale_down, _busy_share(ready, scale * staffing.scaleDownSpare))
            busy = ready * view.value / 100
            sized = busy + scale * staffing.targetSpare * math.sqrt(busy)
            target = 100 * busy / sized if sized > 0 else up
            target = min(max(min(target, landing(view, True)), down), up)
            view = dataclasses.replace(view, scale_up=up, scale_down=down, target=target)
        out.append(view)
    return tuple(out)


REQUEST_RATE: MetricKey = ("requestRate", None)
# A bound on the ratio. Whatever it reads, staffing only cools cpu's thresholds (each is capped at the
# metric's own): too many servers gives at worst the metric's thresholds, as without staffing.
MAX_SERVERS = 1e6


def servers_per_replica(spec: api.ScalingPolicySpec, views: tuple[MetricView, ...],
                        samples: typing.Mapping[MetricKey, Sample], measured: int, now: datetime.datetime) -> float:
    """With `staffing.serverRate`: the servers one replica is, requestRate ÷ (busy replicas ×
    serverRate), busy replicas being the offered cpu × the ready pods it averages over; at least
    1 (a replica is never less than one server) and at most MAX_SERVERS. 1 when it cannot be
    read: no fresh, finite, positive requestRate, no cpu above zero, or a ratio past float's range."""
    rate_per_server = spec.staffing.serverRate
    if not spec.staffing.enabled or rate_per_server is None:
        return 1.0
    sample = samples.get(REQUEST_RATE)
    cpu = next((v.value for v in offered(spec, views) if v.key == CPU and v.value is not None), None)
    if (sample is None or sample.error is not None or sample.value is None or sample.sampled_at is None
            or (now - sample.sampled_at).total_seconds() > spec.onMetricsUnavailable.staleAfterSeconds
            or not math.isfinite(sample.value) or sample.value <= 0 or cpu is None or not cpu > 0):
        return 1.0
    busy_servers = cpu / 100 * max(measured, 1) * rate_per_server
    servers = sample.value / busy_servers if math.isfinite(busy_servers) and busy_servers > 0 else 1.0
    return min(max(servers, 1.0), MAX_SERVERS) if math.isfinite(servers) else 1.0


def propose(inp: Input) -> Proposal:
    """Stage 1: (proposed replicas, direction, reason) from the metrics alone (saturation and
    staffing applied). On the way up the metrics average over `inp.measured` ready pods."""
    spec, current, ready, measured = inp.spec, inp.current, inp.ready, inp.measured
    views = settled(spec, staffed(spec, ahead(inp, offered(spec, inp.views)), ready, inp.servers))
    usable = [v for v in views if v.value is not None]
    missing = [v for v in views if v.missing]
    above = [v for v in usable if v.band == "above"]
    unready = current - ready
    if above and ready == 0 and current > 0:
        return Proposal(current, "Hold", f"no ready pod yet; waiting for {current} starting")
    if above:
        base = max(min(ready, measured), 1)
        worst = max(above, key=lambda v: _needed(base * v.value, landing(v, True)))  # type: ignore[operator]
        needed = _needed(base * worst.value, landing(worst, True))  # type: ignore[operator]
        reason = f"{worst.label} {fmt(worst.value, worst.key)} > {fmt(worst.scale_up, worst.key)} (scale-up threshold)"  # type: ignore[arg-type]
        if needed <= current and unready > 0:
            # HPA's rule: pods not yet ready are taken as idle capacity; they will carry it.
            return Proposal(current, "Hold", f"{reason}, but {unready} starting pod(s) cover it")
        if needed <= current and base < ready:
            return Proposal(current, "Hold", f"{reason}, but {ready - base} pod(s) ready since the last "
                                             "evaluation, not yet in the average, cover it")
        return Proposal(max(needed, current + 1), "Up", reason)
    if missing:
        names = ", ".join(f"{v.label} ({v.problem})" for v in missing)
        action = spec.onMetricsUnavailable
        if action.action == api.UnavailableAction.FALLBACK.value and action.replicas is not None and action.replicas > current:
            return Proposal(action.replicas, "Up", f"metrics unavailable: {names}; fallback to {action.replicas}")
        return Proposal(current, "Hold", f"metrics unavailable: {names}; holding (never scale down blind)")
    if not usable:
        return Proposal(current, "Hold", "no metric has a series for this workload yet")
    if all(v.band == "below" for v in usable):
        if ready == 0:
            return Proposal(current, "Hold", "all metrics below scale-down thresholds, but no pod is ready to measure")
        needed = max(_needed(ready * v.value, landing(v, False)) for v in usable)  # type: ignore[operator]
        proposed = max(needed + unready, 1)
        if proposed < current:
            summary = ", ".join(f"{v.label} {fmt(v.value, v.key)} < {fmt(v.scale_down, v.key)}" for v in usable)  # type: ignore[arg-type]
            return Proposal(proposed, "Down", f"all metrics below scale-down thresholds ({summary})")
        return Proposal(current, "Hold", "all metrics below scale-down thresholds, but fewer replicas would leave the hold band")
    within = [v for v in usable if v.band == "within"]
    first = within[0] if within else usable[0]
    return Proposal(current, "Hold", (
        f"{first.label} {fmt(first.value, first.key)} within {fmt(first.scale_down, first.key)}.."  # type: ignore[arg-type]
        f"{fmt(first.scale_up, first.key)} (hold band)"
    ))


# Kept beside the metrics' demand: the ready count of the previous evaluation.
READY: MetricKey = ("readyReplicas", None)


def ready_before(state: State, ready: int) -> int:
    """The ready pods a metric can be taken to average over. A pod that became ready since the
    last evaluation has no usage of its own yet (a rate needs samples after its start; the
    metrics API skips it; HPA ignores it for one metric window): the average is over the
    others, and multiplying it by today's ready count would count the newest pods' share twice
    (a second scale-up right after every first one)."""
    previous = state.history.get(READY, ())
    return min(ready, int(previous[-1][1])) if previous else ready


def demand_history(
    spec: api.ScalingPolicySpec, views: tuple[MetricView, ...], state: State, ready: int, now: datetime.datetime
) -> dict[MetricKey, tuple[tuple[datetime.datetime, float], ...]]:
    """Each metric's demand (value × ready replicas) over the predictive window: demand does
    not move when replicas do, so the fit does not mistake our own scaling for a trend."""
    keep = datetime.timedelta(seconds=spec.predictive.horizonSeconds * PREDICTIVE_WINDOW_HORIZONS)
    # This round's ready count: the next round's `ready_before`.
    history: dict[MetricKey, tuple[tuple[datetime.datetime, float], ...]] = {READY: ((now, float(ready)),)}
    for view in views:
        points = tuple((t, d) for t, d in state.history.get(view.key, ()) if now - t <= keep)
        if view.value is not None and ready > 0 and math.isfinite(view.value * ready):
            points += ((now, view.value * ready),)  # a demand past float's range is no point of a fit
        history[view.key] = points
    history.update(headroom_history(spec, views, state, ready, now))
    return history


# Kept beside the metrics' demand with headroom on: cpu × the ready pods it averages over.
CPU_DEMAND: MetricKey = ("cpuDemand", None)
CPU: MetricKey = ("cpu", None)


def headroom_history(spec: api.ScalingPolicySpec, views: tuple[MetricView, ...], state: State, ready: int,
                     now: datetime.datetime) -> dict[MetricKey, tuple[tuple[datetime.datetime, float], ...]]:
    """With headroom on: cpu's demand (value × the ready pods it averages over, `ready_before`)
    over the last `windowSeconds`, this round's included; at most one point per evaluation."""
    if not spec.headroom.enabled:
        return {}
    keep = datetime.timedelta(seconds=spec.headroom.windowSeconds)
    points = tuple((t, d) for t, d in state.history.get(CPU_DEMAND, ()) if now - t <= keep and t < now)
    cpu = next((v for v in views if v.key == CPU and v.value is not None), None)
    base = max(ready_before(state, ready), 1)
    if cpu is not None and ready > 0 and cpu.value is not None and math.isfinite(cpu.value * base):
        points += ((now, cpu.value * base / 100),)
    return {CPU_DEMAND: points}


def ahead(inp: Input, views: tuple[MetricView, ...]) -> tuple[MetricView, ...]:
    """With headroom on: cpu read as its demand `leadSeconds` ahead on a rising trend (a falling
    one is not projected: no scale-down on a forecast) plus `noiseBands` standard deviations of
    the demand's scatter around its fit, over the ready pods it averages over; never below the
    reading. Needs this round's demand and PREDICTIVE_MIN_POINTS points of history."""
    settings = inp.spec.headroom
    points = inp.history.get(CPU_DEMAND, ())
    cpu = next((v for v in views if v.key == CPU and v.value is not None), None)
    if not settings.enabled or cpu is None or cpu.value is None or not points or points[-1][0] != inp.now:
        return views
    fit = _fit(points, inp.now)
    if fit is None:
        return views
    level, slope = fit
    offsets = [(t - inp.now).total_seconds() for t, _ in points]
    squares = sum((d - level - slope * x) ** 2 for x, (_, d) in zip(offsets, points, strict=True))
    noise = math.sqrt(squares / max(1, len(points) - 2))
    demand = points[-1][1]
    projected = max(demand, level) + max(0.0, slope) * settings.leadSeconds + settings.noiseBands * noise
    value = 100 * projected / max(min(inp.ready, inp.measured), 1)
    if not math.isfinite(value) or value <= cpu.value:
        return views
    label = f"cpu (ahead: {fmt(cpu.value, CPU)} now, trend and noise over {settings.leadSeconds}s)"
    return tuple(dataclasses.replace(v, value=value, label=label) if v is cpu else v for v in views)


def settled(spec: api.ScalingPolicySpec, views: tuple[MetricView, ...]) -> tuple[MetricView, ...]:
    """With headroom on: cpu's scale-down lands `downLanding` of the way from where a scale-up
    sizes (its target) to its scale-down threshold: asymmetric, so the small rise that usually
    follows a fall does not reverse it at once."""
    if not spec.headroom.enabled:
        return views
    share = spec.headroom.downLanding
    return tuple(
        dataclasses.replace(v, settle=landing(v, True) - share * max(0.0, landing(v, True) - v.scale_down))
        if v.key == CPU else v for v in views)


def seasonal(inp: Input, proposal: Proposal) -> Proposal:
    """A trusted seasonal forecast may propose an earlier (or larger) scale-up, or hold a
    scale-down the next minutes would undo; never a down (core/forecast.py)."""
    settings = inp.spec.predictive.seasonal
    view = next((v for v in inp.views if v.key == forecast_module.metric_key(settings)), None)
    if view is None:
        return proposal
    advice = forecast_module.advise(settings, inp.forecast, view.value, view.scale_up, landing(view, True),
                                    inp.current, proposal.direction, proposal.replicas, view.label)
    return proposal if advice is None else Proposal(*advice)


def seasonal_forecast(spec: api.ScalingPolicySpec, views: tuple[MetricView, ...], state: State, ready: int,
                      now: datetime.datetime) -> tuple[forecast_module.History | None, forecast_module.Forecast | None]:
    """This round's demand of the seasonal metric recorded, and the forecast (made again only
    when the step, the lead's last step or the history moved: forecast.cached)."""
    settings = spec.predictive.seasonal
    if not settings.enabled:
        return None, None
    view = next((v for v in views if v.key == forecast_module.metric_key(settings)), None)
    if view is not None and view.source not in (None, "prometheus"):
        return None, forecast_module.Forecast(False, forecast_module.UNAVAILABLE, forecast_module.NEEDS_PROMETHEUS)
    demand = view.value * ready if view is not None and view.value is not None and ready > 0 else None
    at = now.timestamp()
    history = forecast_module.record(state.seasonal, settings, at, demand)
    return history, forecast_module.cached(state.forecast, history, settings, at)


def predict(inp: Input, proposal: Proposal) -> Proposal:
    """Stage 2: a rising demand trend may propose an earlier (or larger) scale-up, never a down."""
    proposal = seasonal(inp, proposal)
    spec, views, history, current, now = inp.spec, inp.views, inp.history, inp.current, inp.now
    if not spec.predictive.enabled or proposal.direction == "Down":
        return proposal
    horizon = spec.predictive.horizonSeconds
    best = proposal
    for view in views:
        points = history.get(view.key, ())
        if view.value is None or not points or (now - points[0][0]).total_seconds() < horizon:
            continue  # too short a history to forecast
        fit = _fit(points, now)
        if fit is None or fit[1] <= 0:
            continue
        projected = fit[0] + fit[1] * horizon
        if projected <= view.scale_up * max(current, 1):
            continue  # the forecast stays under the scale-up threshold on today's replicas
        needed = _needed(projected, landing(view, True))
        if needed > max(current, best.replicas if best.direction == "Up" else current):
            best = Proposal(needed, "Up", (
                f"{view.label} demand rising, forecast {fmt(projected / max(current, 1), view.key)} on {current} "
                f"replicas > {fmt(view.scale_up, view.key)} in {horizon}s (predictive)"))
    return best


def recommendations(inp: Input, proposal: Proposal) -> tuple[tuple[datetime.datetime, int], ...]:
    """The stabilization windows' recommendations after this round: the proposal joins them,
    those older than the longer window leave."""
    behavior = inp.spec.behavior
    keep = datetime.timedelta(seconds=max(behavior.scaleUp.stabilizationWindowSeconds,
                                          behavior.scaleDown.stabilizationWindowSeconds))
    now = inp.now
    return tuple((t, r) for t, r in (*inp.state.recommendations, (now, proposal.replicas)) if now - t <= keep)


def stabilize(inp: Input, proposal: Proposal, desired: int) -> Stage:
    """Stage 3 (HPA's stabilizeRecommendationWithBehaviors): between the up window's minimum
    and the down window's maximum; the proposal joins both windows. Reads the proposal, not
    `desired` (the count so far is the proposal's)."""
    spec, current, state, now = inp.spec, inp.current, inp.state, inp.now
    up_seconds = spec.behavior.scaleUp.stabilizationWindowSeconds
    down_seconds = spec.behavior.scaleDown.stabilizationWindowSeconds
    window = recommendations(inp, proposal)
    # A recommendation exactly a window old still counts (HPA: outside it); on purpose, measured:
    # docs/scaling.md "Conformance with HPA's tables".
    up_floor = min(r for t, r in window if now - t <= datetime.timedelta(seconds=up_seconds))
    down_ceiling = max(r for t, r in window if now - t <= datetime.timedelta(seconds=down_seconds))
    desired = min(max(current, up_floor), down_ceiling)
    # AbleToScale says the reason (as HPA's does) with a message that stays the same while it holds.
    if proposal.direction == "Up" and desired < proposal.replicas:
        return Stage("stabilization", desired, f"scale-up window {up_seconds}s", "ScaleUpStabilized",
                     f"recent recommendations were lower: applying the lowest of the last {up_seconds}s")
    if proposal.direction == "Down" and now - state.observing_since < datetime.timedelta(seconds=down_seconds):
        return Stage("stabilization", current, f"scale-down window {down_seconds}s not yet observed since start",
                     "ScaleDownStabilized", f"the scale-down window ({down_seconds}s) is not yet observed since start")
    if proposal.direction == "Down" and desired > proposal.replicas:
        return Stage("stabilization", desired,
                     f"scale-down window {down_seconds}s (highest recommendation {down_ceiling})", "ScaleDownStabilized",
                     f"recent recommendations were higher: applying the highest of the last {down_seconds}s")
    return Stage("stabilization", desired)


def cool_down(inp: Input, proposal: Proposal, desired: int) -> Stage:
    """Stage 4: cooldowns (AbleToScale's reason); an absolute time in the condition keeps it
    unchanged while waiting, the limit says how long is left."""
    spec, current, state, now = inp.spec, inp.current, inp.state, inp.now
    if desired > current and state.last_scale_up is not None:
        until = state.last_scale_up + datetime.timedelta(seconds=spec.behavior.scaleUp.cooldownSeconds)
        if until > now:
            return Stage("cooldown", current, f"scale-up cooldown ({(until - now).total_seconds():.0f}s left)",
                         "BackoffUpscale", f"scale-up cooldown until {_stamp(until)}")
    if desired < current:
        last = max((t for t in (state.last_scale_up, state.last_scale_down) if t is not None), default=None)
        if last is not None:
            until = last + datetime.timedelta(seconds=spec.behavior.scaleDown.cooldownSeconds)
            if until > now:
                return Stage("cooldown", current, f"scale-down cooldown ({(until - now).total_seconds():.0f}s left)",
                             "BackoffDownscale", f"scale-down cooldown until {_stamp(until)}")
    return Stage("cooldown", desired)


def _period_start(events: tuple[ScaleEvent, ...], current: int, now: datetime.datetime, period: int,
                  up: bool | None = None) -> int:
    """Replicas at the start of the period: current less every change made within it (HPA:
    currentReplicas - replicasAddedInCurrentPeriod + replicasDeletedInCurrentPeriod). A step
    that may not have been made counts only when it holds the direction asked (`up`; None:
    every step): counted the other way, a step down that never happened would let a step up
    of two pods."""
    since = now - datetime.timedelta(seconds=period)
    return current - sum(e.to_replicas - e.from_replicas for e in events
                         if e.time > since and (e.certain or up is None or (e.to_replicas > e.from_replicas) == up))


def step_limit(inp: Input, proposal: Proposal, desired: int) -> Stage:
    """Stage 5 (HPA's calculateScaleUpLimit / calculateScaleDownLimit). Its reason is named by
    the direction asked of it (`desired` against the current count), not by where it let the
    count land: a scale-up held at the current count, selectPolicy Disabled included, is
    ScaleUpLimit (HPA's convertDesiredReplicasWithBehaviorRate). A scale-down limit that does not
    pass minReplicas leaves the count to the bounds, whose reason wins there (HPA: TooFewReplicas;
    at maxReplicas the bounds say TooManyReplicas)."""
    spec, current, events, now = inp.spec, inp.current, inp.state.events, inp.now
    if desired == current:
        return Stage("step limit", desired)
    up = desired > current
    rules = spec.behavior.scaleUp if up else spec.behavior.scaleDown
    direction = "scale-up" if up else "scale-down"
    reason = "ScaleUpLimit" if up else "ScaleDownLimit"
    if rules.selectPolicy == api.SelectPolicy.DISABLED.value:
        if not up and current <= spec.minReplicas:
            return Stage("step limit", desired)  # the bounds bind as much (the limit is the current count)
        disabled = f"{direction} disabled (selectPolicy Disabled)"
        return Stage("step limit", current, disabled, reason, f"limited by step limit: {disabled}")
    limits = []
    for policy in rules.policies:
        start = _period_start(events, current, now, policy.periodSeconds, up)
        if policy.type == api.PolicyType.PODS.value:
            limit = start + policy.value if up else start - policy.value
        elif up:
            limit = math.ceil(start * (1 + policy.value / 100))
        else:
            limit = math.floor(start * (1 - policy.value / 100))
        limits.append((limit, f"{direction} policy {policy.type} {policy.value}"
                              f"{'%' if policy.type == 'Percent' else ''} per {policy.periodSeconds}s"))
    if not limits:
        return Stage("step limit", desired)
    # Max: the policy allowing the largest change; Min: the smallest.
    largest_change = rules.selectPolicy == api.SelectPolicy.MAX.value
    pick = (max if largest_change else min) if up else (min if largest_change else max)
    limit, name = pick(limits)
    if up and desired > limit:
        return Stage("step limit", max(limit, current), name, reason, f"limited by step limit: {name}")
    if not up and desired < limit:
        if limit <= spec.minReplicas:
            return Stage("step limit", desired)  # the bounds bind as much
        return Stage("step limit", min(limit, current), name, reason, f"limited by step limit: {name}")
    return Stage("step limit", desired)


def bound(inp: Input, proposal: Proposal, desired: int) -> Stage:
    """Stage 6: minReplicas/maxReplicas; at max while a metric still presses counts as limited."""
    spec = inp.spec
    if desired > spec.maxReplicas or (proposal.direction == "Up" and desired == spec.maxReplicas < proposal.replicas):
        return Stage("bounds", min(desired, spec.maxReplicas), f"maxReplicas {spec.maxReplicas}", "TooManyReplicas",
                     f"the desired replica count is more than the maximum {spec.maxReplicas}")
    if desired < spec.minReplicas:
        return Stage("bounds", spec.minReplicas, f"minReplicas {spec.minReplicas}", "TooFewReplicas",
                     f"the desired replica count is less than the minimum {spec.minReplicas}")
    return Stage("bounds", desired)


def platform_limit(inp: Input, proposal: Proposal, desired: int) -> Stage:
    """Stage 7: the target platform's own floor and cap (the policy cannot ask past them)."""
    limits = inp.limits
    if limits is not None and limits.cap is not None and desired > limits.cap:
        return Stage("platform", limits.cap, limits.cap_why, "TooManyReplicas", f"the platform binds: {limits.cap_why}")
    if limits is not None and desired < limits.floor:
        return Stage("platform", limits.floor, limits.floor_why, "TooFewReplicas",
                     f"the platform binds: {limits.floor_why}")
    return Stage("platform", desired)


# The stages after the proposal, in order: each reads the shared input, the proposal and the
# count the stage before it allowed. A new stage is a function of this shape and a line here.
LimitStage = typing.Callable[[Input, Proposal, int], Stage]
LIMITS: tuple[LimitStage, ...] = (stabilize, cool_down, step_limit, bound, platform_limit)


def _conditions(
    spec: api.ScalingPolicySpec, views: tuple[MetricView, ...], stages: typing.Sequence[Stage]
) -> tuple[conditions.Stated, conditions.Stated, conditions.Stated, str | None]:
    """AbleToScale, ScalingActive and ScalingLimited (HPA-compatible), each stage's own reason
    read by its name, and advice when stuck at max."""
    named = {stage.name: stage for stage in stages}
    cooldown, step, bounds, platform = named["cooldown"], named["step limit"], named["bounds"], named["platform"]
    able = conditions.Stated("True", "ReadyForNewScale", "the last scale is done; ready for a new one")
    if cooldown.reason:
        able = conditions.Stated("False", cooldown.reason, cooldown.message)
    elif named["stabilization"].reason:  # HPA: AbleToScale True ScaleUpStabilized / ScaleDownStabilized
        able = conditions.Stated("True", named["stabilization"].reason or "", named["stabilization"].message)
    limited = conditions.Stated("False", "DesiredWithinRange", "the desired count is within the acceptable range")
    recommendation = None
    # The platform's stage binds over the policy's bounds, the bounds over the step limit; the
    # step limit speaks only when the bounds left its count as it was.
    if platform.reason:
        limited = conditions.Stated("True", platform.reason, platform.message)
    elif bounds.reason:
        limited = conditions.Stated("True", bounds.reason, bounds.message)
        if bounds.reason == "TooManyReplicas":
            pressing = ", ".join(f"{v.label} > {fmt(v.scale_up, v.key)}" for v in views if v.band == "above") or "trend rising"
            recommendation = f"at maxReplicas {spec.maxReplicas} while {pressing}: raise maxReplicas or add capacity per replica"
    elif step.reason and step.desired == bounds.desired:
        limited = conditions.Stated("True", step.reason, step.message)
    invalid = [v for v in views if v.problem and v.problem.startswith("invalid query")]
    if invalid:
        active = conditions.Stated("False", "InvalidMetricQuery", "; ".join(f"{v.label}: {v.problem}" for v in invalid))
    elif any(v.missing for v in views):
        missing = ", ".join(f"{v.label} ({v.problem})" for v in views if v.missing)
        active = conditions.Stated("False", "MetricsUnavailable", f"no fresh value for {missing}")
    elif all(v.no_series for v in views):
        active = conditions.Stated("False", reasons.NO_SERIES, f"no series for {no_series_list(views)}: "
                  "nothing this workload exports matches its queries")
    elif any(v.no_series for v in views):
        fresh = sum(1 for v in views if v.value is not None)
        active = conditions.Stated("True", reasons.NO_SERIES, f"{fresh} metric(s) fresh; no series for {no_series_list(views)} "
                  "(never seen for this workload: not holding a scale-down)")
    else:
        active = conditions.Stated("True", "ValidMetricFound", f"{len(views)} metric(s) fresh")
    return able, active, limited, recommendation


def decide(
    spec: api.ScalingPolicySpec,
    current: int,
    samples: typing.Mapping[MetricKey, Sample],
    state: State,
    now: datetime.datetime,
    ready: int | None = None,
    limits: world.ReplicaLimits | None = None,
) -> Outcome:
    """`current` is the workload's replica count (spec), `ready` how many of its pods are
    ready (None: all of them), `limits` what its platform allows."""
    views = _views(spec, samples, now, state.seen)
    ready_now = _ready(current, ready)
    seasonal_history, made = seasonal_forecast(spec, views, state, ready_now, now)
    measured = ready_before(state, ready_now)
    inp = Input(spec, current, ready_now, measured, state, now, views,
                demand_history(spec, views, state, ready_now, now), limits, made,
                servers_per_replica(spec, views, samples, min(ready_now, measured), now))
    if asleep(inp):
        return from_zero(inp, samples)  # scale to zero: the activation metric alone decides at zero
    if current == 0 and spec.activation is None:
        return disabled_at_zero(inp)
    proposal = predict(inp, propose(inp))
    stages = [Stage("proposal", proposal.replicas)]
    for stage in LIMITS:
        stages.append(stage(inp, proposal, stages[-1].desired))
    able, active, limited, recommendation = _conditions(spec, views, stages)

    desired = stages[-1].desired
    binding = [s for s in stages if s.limit]
    # The stage that set the final count speaks; a stage whose limit a later one undid does not
    # (the bounds and the platform speak whenever they bind).
    speaking = next((s for s in reversed(binding) if s.desired == desired or s.name in ("bounds", "platform")), None)
    limited_by = f"{speaking.name}: {speaking.limit}" if speaking else None
    direction = "Up" if desired > current else "Down" if desired < current else "Hold"
    if direction == "Hold" and limited_by:
        summary = f"{proposal.reason}; held by {limited_by}"
    elif limited_by:
        summary = f"{proposal.reason}; limited by {limited_by}"
    else:
        summary = proposal.reason
    return to_zero(inp, samples, Outcome(direction, current, desired, summary, limited_by, views, able, active, limited,
                                         recommendations(inp, proposal), inp.history, recommendation, tuple(stages),
                                         seasonal_history, made))


# -- Scale to zero (spec.activation, minReplicas 0) ------------------------------------------
# At zero no pod runs and the policy's metrics have nothing to read: the activation metric
# alone wakes the workload (`from_zero`). From one replica it goes to zero only after the
# activation metric stayed at or below its threshold, the policy held at one replica and every
# metric was available, for `idleSeconds` without a break (`to_zero`). Missing activation data
# neither wakes nor sleeps; it also restarts the idle period.


def activation_key(activation: api.Activation) -> MetricKey:
    return (str(activation.type), activation.name)


def _activation(spec: api.ScalingPolicySpec, samples: typing.Mapping[MetricKey, Sample],
                now: datetime.datetime) -> tuple[str, float | None, str]:
    """(label, value, why it is unusable) of the activation metric. +Inf is a value (it wakes);
    NaN, -Inf, an error, no series, a stale or absent sample are not."""
    activation = spec.activation
    assert activation is not None
    key = activation_key(activation)
    label = f"activation metric {metric_label(key)}"
    sample = samples.get(key)
    if sample is None:
        return label, None, "no data"
    if sample.error is not None:
        return label, None, sample.error
    if sample.value is None:
        return label, None, f"no series (query {short_query(sample.query)})" if sample.query else NO_SERIES
    if sample.sampled_at is None or (now - sample.sampled_at).total_seconds() > spec.onMetricsUnavailable.staleAfterSeconds:
        return label, None, "stale"
    if math.isnan(sample.value) or sample.value == -math.inf:
        return label, None, "not a number"
    return label, sample.value, ""


def _threshold(spec: api.ScalingPolicySpec) -> str:
    activation = spec.activation
    assert activation is not None
    return fmt(activation.above, activation_key(activation))


def asleep(inp: Input) -> bool:
    """At zero with scale to zero configured: the activation metric alone decides."""
    return inp.spec.activation is not None and inp.current == 0


def disabled_at_zero(inp: Input) -> Outcome:
    """A workload at zero replicas under a policy with no activation rule: someone scaled it to
    zero by hand (maintenance, a paused service). HPA's rule: scaling is disabled until it has
    replicas again; the operator neither wakes it to minReplicas nor reads its metrics."""
    message = "scaling is disabled since the replica count of the target is zero"
    able = conditions.Stated("True", "ReadyForNewScale", "the last scale is done; ready for a new one")
    active = conditions.Stated("False", reasons.SCALING_DISABLED, message)
    limited = conditions.Stated("False", "DesiredWithinRange", "the desired count is within the acceptable range")
    return Outcome("Hold", 0, 0, f"{message} (scaled to zero by hand; minReplicas applies again from one replica)",
                   None, inp.views, able, active, limited, inp.state.recommendations, inp.history, None,
                   (Stage("proposal", 0),), seasonal=inp.state.seasonal)


def from_zero(inp: Input, samples: typing.Mapping[MetricKey, Sample]) -> Outcome:
    """At zero replicas: wake to one when the activation metric is above its threshold (the
    policy's metrics decide from the next round); else stay at zero. Missing activation data
    holds at zero, or falls back to onMetricsUnavailable's count when that says Fallback."""
    spec, now = inp.spec, inp.now
    label, value, problem = _activation(spec, samples, now)
    key = activation_key(spec.activation)  # type: ignore[arg-type]
    able = conditions.Stated("True", "ReadyForNewScale", "the last scale is done; ready for a new one")
    limited = conditions.Stated("False", "DesiredWithinRange", "the desired count is within the acceptable range")
    floor = inp.limits.floor if inp.limits is not None else 0
    desired, reason = 0, ""
    if value is None:
        fallback = spec.onMetricsUnavailable
        active = conditions.Stated("False", reasons.METRICS_UNAVAILABLE, f"no fresh value for {label} ({problem}): holding at zero")
        if fallback.action == api.UnavailableAction.FALLBACK.value and fallback.replicas:
            desired, reason = fallback.replicas, f"{label} unavailable ({problem}); fallback to {fallback.replicas}"
        else:
            reason = f"{label} unavailable ({problem}); holding at zero (never woken or slept blind)"
    elif value > spec.activation.above:  # type: ignore[union-attr]
        desired = max(1, floor)
        reason = f"{label.removeprefix('activation metric ')} {fmt(value, key)} > {_threshold(spec)} (activation threshold)"
        active = conditions.Stated("True", "ValidMetricFound", f"{label} fresh: waking from zero")
    else:
        reason = f"idle at zero: {label.removeprefix('activation metric ')} {fmt(value, key)} <= {_threshold(spec)} " \
                 "(activation threshold)"
        active = conditions.Stated("True", reasons.IDLE_AT_ZERO, f"0 replicas; {reason.removeprefix('idle at zero: ')}; it alone wakes "
                  "the workload (the other metrics have no pod to read)")
    desired = min(desired, spec.maxReplicas)
    direction = "Up" if desired > 0 else "Hold"
    stages = (Stage("proposal", desired), Stage("activation", desired))
    return Outcome(direction, 0, desired, reason, None, inp.views, able, active, limited,
                   inp.state.recommendations, inp.history, None, stages, seasonal=inp.state.seasonal)


def to_zero(inp: Input, samples: typing.Mapping[MetricKey, Sample], outcome: Outcome) -> Outcome:
    """From one replica: to zero once idle for `idleSeconds` (the idle period starts again at
    any break: a rise, missing data, a metric unavailable, any count but one). The outcome
    carries since when it has been idle (the next round's State.idle_since)."""
    spec, now = inp.spec, inp.now
    activation = spec.activation
    if activation is None:
        return outcome
    label, value, problem = _activation(spec, samples, now)
    if value is None and outcome.scaling_active[0] == "True":
        # Said where a person looks: with no activation data the workload is never scaled to zero.
        outcome = dataclasses.replace(outcome, scaling_active=conditions.Stated(
            "False", reasons.METRICS_UNAVAILABLE, f"no fresh value for {label} ({problem}): never scaled to zero blind; "
            f"{outcome.scaling_active[2]}"))
    floor = inp.limits.floor if inp.limits is not None else 0
    idle = (value is not None and value <= activation.above and inp.current == 1 and outcome.desired == 1
            and not any(v.missing for v in outcome.metrics))
    if not idle:
        return outcome
    since = inp.state.idle_since if inp.state.idle_since is not None and inp.state.idle_since <= now else now
    until = since + datetime.timedelta(seconds=activation.idleSeconds)
    name = label.removeprefix("activation metric ")
    key = activation_key(activation)
    if now < until:
        # Said in ScalingActive too (absolute times: written once when the idle period starts).
        status, why, message = outcome.scaling_active
        return dataclasses.replace(outcome, idle_since=since, scaling_active=conditions.Stated(status, why, (
            f"{message}; idle at one replica since {_stamp(since)}: to zero at {_stamp(until)} unless {name} rises "
            f"above {_threshold(spec)}")),
            reason=f"{outcome.reason}; idle since {_stamp(since)}, to zero at {_stamp(until)}")
    if floor > 0:  # the platform keeps a replica: said where a person looks, once it would sleep
        why = inp.limits.floor_why if inp.limits is not None else ""
        return dataclasses.replace(outcome, idle_since=since, scaling_limited=conditions.Stated(
            "True", "TooFewReplicas", f"the platform binds: {why}"),
            reason=f"{outcome.reason}; idle since {_stamp(since)}, held at {floor}: {why}")
    if spec.behavior.scaleDown.selectPolicy == api.SelectPolicy.DISABLED.value:
        return dataclasses.replace(outcome, idle_since=since, reason=f"{outcome.reason}; idle since {_stamp(since)}, "
                                   "held at one replica: scale-down disabled (selectPolicy Disabled)")
    reason = (f"{name} {fmt(value, key)} <= {_threshold(spec)} (activation threshold) at 1 replica for "  # type: ignore[arg-type]
              f"{activation.idleSeconds}s (idle since {_stamp(since)})")
    return dataclasses.replace(outcome, direction="Down", desired=0, reason=reason, limited_by=None, idle_since=since,
                               stages=(*outcome.stages, Stage("scale to zero", 0)))


def read_keys(spec: api.ScalingPolicySpec) -> list[MetricKey]:
    """The metrics to read for a policy: its own, its activation metric and, with `staffing.serverRate`,
    requestRate, each when it is not one of them."""
    keys = [metric_key(m) for m in spec.metrics]
    if spec.activation is not None and activation_key(spec.activation) not in keys:
        keys.append(activation_key(spec.activation))
    if spec.staffing.enabled and spec.staffing.serverRate is not None and REQUEST_RATE not in keys:
        keys.append(REQUEST_RATE)  # square-root staffing counts servers by it
    return keys
