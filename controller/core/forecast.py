"""The seasonal forecast (spec.predictive.seasonal): demand ahead from the workload's own history.

Pure: functions of the settings, a bounded history, the current demand and `now` (Unix
seconds). Demand is a metric's value × ready replicas, as the trend forecast reads it: it does
not move when replicas do, so our own scaling is never read as a cycle.

- **History**: one float per `stepSeconds` bucket (NaN: no data), at most lookback + 1
  periods (≤ SEASONAL_POINTS_MAX + a period), packed as float64 (8 bytes a point). Every
  evaluation puts its demand in its bucket (the bucket's highest); a Prometheus range query
  fills the past (`merge`). The simulator and the operator feed it the same way.
- **Seasonal value** of a bucket: the median of the same bucket in each of the last
  `lookbackPeriods` periods (at least two present): one odd day does not move it.
- **Level**: how today compares with the seasonal values over the trust window (Σ actual ÷
  Σ seasonal, within LEVEL_MIN..LEVEL_MAX): a busier Monday than the week's median.
- **Forecast** for `leadSeconds`: the highest seasonal value of the buckets from now to
  now + lead, × the level.
- **Trust**: the forecasts this code would have made for each complete bucket of the trust
  window (each with the level of the window before it) against what happened there: the
  relative error Σ|forecast − actual| ÷ Σ actual. Above `tolerance` the forecast is not
  trusted, and stays so until the recent buckets are forecast well again.

How it acts (`apply`): a trusted forecast may propose a scale-up (when the forecast demand on
today's replicas is above the scale-up threshold, sized for the landing) and may hold a
scale-down the next `leadSeconds` would undo. It never proposes a scale-down.
"""

from __future__ import annotations

import array
import dataclasses
import fractions
import math
import typing

from controller.api import scalingpolicy as api

LEVEL_MIN, LEVEL_MAX = 0.5, 2.0  # today may be half or twice the seasonal median, not more
MIN_PERIODS = 2  # past periods a bucket's seasonal value needs
TRUSTED, MISSED, WARMING_UP, UNAVAILABLE = "Trusted", "Missed", "WarmingUp", "Unavailable"
NEEDS_PROMETHEUS = "unavailable: needs Prometheus (the metrics API keeps no history)"
_NAN = float("nan")
HUGE = 1e300  # a window summing past this is judged by `_level` as before (its float sums may overflow)


@dataclasses.dataclass(frozen=True)
class History:
    """Demand per bucket: bucket `first` (Unix seconds // step) is values[0]. `revision` counts
    the merges of a range query (a cached forecast is kept per bucket and revision)."""

    step: int
    first: int = 0
    values: bytes = b""  # float64, native order
    revision: int = 0

    def __len__(self) -> int:
        return len(self.values) // 8

    def points(self) -> "memoryview[float]":
        return memoryview(self.values).cast("d")

    def at(self, bucket: int) -> float:
        index = bucket - self.first
        if index < 0 or index >= len(self):
            return _NAN
        return float(self.points()[index])


@dataclasses.dataclass(frozen=True)
class Forecast:
    trusted: bool
    reason: str  # TRUSTED | MISSED | WARMING_UP | UNAVAILABLE
    message: str
    demand: float | None = None  # the demand forecast for the lead time
    error: float | None = None  # the recent relative error
    bucket: int = 0  # the bucket it was made in
    revision: int = 0
    until: int = 0  # the last bucket of its lead: with `bucket`, what it depends on


def metric_key(settings: api.Seasonal) -> tuple[str, str | None]:
    """The forecast metric's key as the core names metrics ((type, custom name))."""
    return api.MetricType(settings.metric).value, settings.name


def kept_buckets(settings: api.Seasonal) -> int:
    return (settings.lookbackPeriods + 1) * (settings.periodSeconds // settings.stepSeconds)


def _put(history: History | None, step: int, keep: int, points: typing.Iterable[tuple[float, float]],
         revision: int) -> History:
    values = array.array("d")
    first = 0
    if history is not None and history.step == step:
        values.frombytes(history.values)
        first = history.first
    for at, demand in points:
        if not math.isfinite(at) or not math.isfinite(demand) or demand < 0:
            continue  # no data is no point (a negative demand is no demand either)
        bucket = int(at // step)
        if not values:
            first = bucket
        if bucket < first:
            if first - bucket + len(values) > keep:
                continue  # older than what is kept
            values = array.array("d", [_NAN] * (first - bucket)) + values
            first = bucket
        index = bucket - first
        if index - len(values) >= keep:  # a gap longer than what is kept: nothing before it stays
            values, first, index = array.array("d"), bucket, 0
        if index >= len(values):
            values.extend([_NAN] * (index + 1 - len(values)))
        old = values[index]
        values[index] = demand if math.isnan(old) else max(old, demand)
    if len(values) > keep:
        drop = len(values) - keep
        values = values[drop:]
        first += drop
    return History(step, first, values.tobytes(), revision)


def record(history: History | None, settings: api.Seasonal, at: float, demand: float | None) -> History:
    """This evaluation's demand in its bucket (the bucket keeps its highest)."""
    revision = history.revision if history is not None else 0
    points = () if demand is None else ((at, demand),)
    return _put(history, settings.stepSeconds, kept_buckets(settings), points, revision)


def points(history: History) -> typing.Iterator[tuple[float, float]]:
    """A history's points with data, as (Unix seconds of the bucket, demand)."""
    for index, value in enumerate(history.points()):
        if not math.isnan(value):
            yield float((history.first + index) * history.step), float(value)


def merge(history: History | None, settings: api.Seasonal, points: typing.Iterable[tuple[float, float]]) -> History:
    """A range query's points (Unix seconds, demand) merged in; the revision moves on."""
    revision = (history.revision if history is not None else 0) + 1
    return _put(history, settings.stepSeconds, kept_buckets(settings), points, revision)


def _median(values: list[float]) -> float:
    values.sort()
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def seasonal_value(history: History, settings: api.Seasonal, bucket: int) -> float | None:
    """The median of the same bucket in the last `lookbackPeriods` periods (None: fewer than two)."""
    period = settings.periodSeconds // settings.stepSeconds
    past = [history.at(bucket - k * period) for k in range(1, settings.lookbackPeriods + 1)]
    present = [v for v in past if not math.isnan(v)]
    return _median(present) if len(present) >= MIN_PERIODS else None


def _level(actual: typing.Sequence[float], seasonal: typing.Sequence[float | None]) -> float | None:
    """Σ actual ÷ Σ seasonal over the buckets that have both, within LEVEL_MIN..LEVEL_MAX."""
    pairs = [(a, s) for a, s in zip(actual, seasonal, strict=True) if s is not None and not math.isnan(a)]
    if not pairs:
        return None
    total = sum(s for _, s in pairs)
    if total <= 0:
        return 1.0
    return min(LEVEL_MAX, max(LEVEL_MIN, sum(a for a, _ in pairs) / total))


def _sliding_levels(actual: typing.Sequence[float], seasonal: typing.Sequence[float | None],
                    window: int) -> list[float | None]:
    """`_level` of each window of `window` buckets ending before the last `window` positions
    (position i of the result: the window [i, i + window)), in one pass: the sums slide, exact
    (fractions of the floats: a window whose seasonal values are all 0 sums to exactly 0, as
    `_level` reads it). A window with a non-finite value, or sums near float's edge, is judged
    by `_level` itself."""
    levels: list[float | None] = []
    sum_actual = sum_seasonal = fractions.Fraction(0)
    pairs = 0

    def pair(index: int) -> tuple[float, float] | None:
        value, expected = actual[index], seasonal[index]
        return None if expected is None or math.isnan(value) else (value, expected)

    kept = [pair(index) for index in range(len(actual))]
    odd = [p is not None and not (math.isfinite(p[0]) and math.isfinite(p[1])) for p in kept]
    inside = 0  # non-finite pairs in the window
    for index in range(window):
        if kept[index] is not None:
            if odd[index]:
                inside += 1
            else:
                sum_actual += fractions.Fraction(kept[index][0])  # type: ignore[index]
                sum_seasonal += fractions.Fraction(kept[index][1])  # type: ignore[index]
            pairs += 1
    for first in range(window):
        if inside or sum_actual > HUGE or sum_seasonal > HUGE:  # as `_level` reads it, overflow and all
            levels.append(_level(actual[first:first + window], seasonal[first:first + window]))
        elif not pairs:
            levels.append(None)
        elif sum_seasonal <= 0:
            levels.append(1.0)
        else:
            ratio = sum_actual / sum_seasonal  # exact: past float's range for a tiny seasonal sum
            levels.append(LEVEL_MAX if ratio >= LEVEL_MAX else max(LEVEL_MIN, float(ratio)))
        for leaving, sign in ((first, -1), (first + window, 1)):
            if leaving >= len(kept) or kept[leaving] is None:
                continue
            if odd[leaving]:
                inside += sign
            else:
                sum_actual += sign * fractions.Fraction(kept[leaving][0])  # type: ignore[index]
                sum_seasonal += sign * fractions.Fraction(kept[leaving][1])  # type: ignore[index]
            pairs += sign
    return levels


def forecast(history: History | None, settings: api.Seasonal, now: float) -> Forecast:
    """The forecast for the next `leadSeconds` and whether to trust it (see the module's text).
    It depends on the complete buckets before now's and on the last bucket the lead reaches."""
    step = settings.stepSeconds
    bucket = int(now // step)
    revision = history.revision if history is not None else 0
    lead_end = int((now + settings.leadSeconds) // step)
    if history is None or not len(history):
        return Forecast(False, WARMING_UP, "warming up: no history yet", bucket=bucket, revision=revision,
                        until=lead_end)
    window = settings.trustWindowSeconds // step
    # Seasonal values from two trust windows back (the first judged bucket's level needs one)
    # to the end of the lead: each computed once.
    start = bucket - 2 * window
    seasonal = [seasonal_value(history, settings, b) for b in range(start, lead_end + 1)]
    actual = [history.at(b) for b in range(start, bucket)]

    def s(b: int) -> float | None:
        return seasonal[b - start]

    def a(b: int) -> float:
        return actual[b - start]

    ahead = [v for v in (s(b) for b in range(bucket, lead_end + 1)) if v is not None]
    periods = settings.lookbackPeriods
    if not ahead:
        have = sum(1 for k in range(1, periods + 1)
                   if not math.isnan(history.at(bucket - k * (settings.periodSeconds // step))))
        return Forecast(False, WARMING_UP, f"warming up: {have} of {periods} periods of history "
                        f"(needs {MIN_PERIODS})", bucket=bucket, revision=revision, until=lead_end)
    level = _level([a(b) for b in range(bucket - window, bucket)], [s(b) for b in range(bucket - window, bucket)])
    minutes = settings.trustWindowSeconds / 60
    if level is None:
        return Forecast(False, WARMING_UP, f"warming up: no demand seen in the last {minutes:g} min",
                        bucket=bucket, revision=revision, until=lead_end)
    demand = max(ahead) * level
    # What this code would have forecast for each complete bucket of the window, from the
    # window before it, against what happened.
    missed = total = 0.0
    judged = 0
    levels = _sliding_levels([a(b) for b in range(start, bucket)], seasonal[:bucket - start], window)
    for b in range(bucket - window, bucket):
        seen, expected = a(b), s(b)
        if math.isnan(seen) or expected is None:
            continue
        then = levels[b - (bucket - window)]
        if then is None:
            continue
        missed += abs(expected * then - seen)
        total += seen
        judged += 1
    if judged < max(2, window // 2) or total <= 0:
        return Forecast(False, WARMING_UP, f"warming up: {judged} of the last {window} steps can be judged "
                        f"(needs {max(2, window // 2)})", demand, None, bucket, revision, lead_end)
    error = missed / total
    if not math.isfinite(error) or error > settings.tolerance:
        return Forecast(False, MISSED, f"not trusted: off by {error:.0%} over the last {minutes:g} min "
                        f"(tolerance {settings.tolerance:.0%})", demand, error if math.isfinite(error) else None,
                        bucket, revision, lead_end)
    return Forecast(True, TRUSTED, f"trusted: within {error:.0%} over the last {minutes:g} min "
                    f"(tolerance {settings.tolerance:.0%})", demand, error, bucket, revision, lead_end)


def cached(previous: Forecast | None, history: History | None, settings: api.Seasonal, now: float) -> Forecast:
    """`forecast`, made again only when what it depends on moved: the bucket of now, the last
    bucket of the lead (at most twice a step), or the history (a range query merged in)."""
    bucket = int(now // settings.stepSeconds)
    until = int((now + settings.leadSeconds) // settings.stepSeconds)
    revision = history.revision if history is not None else 0
    if previous is not None and (previous.bucket, previous.until, previous.revision) == (bucket, until, revision) \
            and previous.reason != UNAVAILABLE:
        return previous
    return forecast(history, settings, now)


def _needed(demand: float, per_replica: float) -> int:
    """Replicas that carry `demand` at `per_replica` each (as scaling._needed)."""
    if per_replica <= 0:
        return 10**9
    ratio = demand / per_replica
    return 10**9 if not ratio < 10**9 else max(0, math.ceil(ratio - 1e-9))


def advise(settings: api.Seasonal, made: Forecast | None, value: float | None, scale_up: float, land_up: float,
           current: int, direction: str, replicas: int, label: str = "demand") -> tuple[int, str, str] | None:
    """What a trusted forecast changes in a proposal (replicas, direction, reason), or None.

    Up early: when the forecast demand on today's replicas is above the scale-up threshold,
    to the count that carries it at the landing (`land_up`). A scale-down is held to the
    count the forecast needs under the threshold (never above `current`). Never a scale-down:
    a forecast of less demand changes nothing."""
    if not settings.enabled or made is None or not made.trusted or made.demand is None or value is None:
        return None
    demand = made.demand
    lead = f"in {settings.leadSeconds}s (seasonal, {made.message})"
    if demand > scale_up * max(current, 1):
        needed = _needed(demand, land_up)
        if needed > max(current, replicas if direction == "Up" else current):
            return needed, "Up", (f"{label} forecast {demand / max(current, 1):.3g} on {current} replicas > "
                                  f"{scale_up:g} {lead}")
    if direction == "Down":
        floor = min(current, _needed(demand, scale_up))
        if floor > replicas:
            if floor >= current:
                return current, "Hold", f"scale-down held: {label} forecast {demand:.3g} needs {floor} replicas {lead}"
            return floor, "Down", f"scale-down to {floor}, not {replicas}: {label} forecast {demand:.3g} {lead}"
    return None
