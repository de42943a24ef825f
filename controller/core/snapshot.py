"""A MonitoredService's metrics snapshot and its MetricsAvailable condition: pure.

The snapshot in status moves only when a value moved materially (see MATERIAL), a metric
appeared or vanished, or the condition changed; values that wander within the tolerance
leave status (and sampledAt) alone, so a steady service costs no API writes. Live values
are always one Prometheus query away; status is for people and for restarts.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import typing

from controller import reasons
from controller.core import conditions
from controller.core import numbers
from controller.core import scaling
from controller.core import timestamps

BUILTIN = ("cpu", "memory", "latencyP95", "errorRate", "requestRate", "requestQueue")
RESOURCE_KEYS: tuple[scaling.MetricKey, ...] = (("cpu", None), ("memory", None))
RELATIVE = 0.10
# Absolute floors (below these a change is noise whatever its relative size).
FLOOR: typing.Mapping[str, float] = {
    "cpu": 2.0, "memory": 2.0, "latencyP95": 10.0, "errorRate": 0.5, "requestRate": 0.5, "requestQueue": 1.0,
}


@dataclasses.dataclass(frozen=True)
class Snapshot:
    fields: dict[str, typing.Any]  # {"metrics": ...} when status should change, else {}
    condition: conditions.ConditionChange


def metric_keys(custom_names: typing.Iterable[str]) -> tuple[scaling.MetricKey, ...]:
    return (*((kind, None) for kind in BUILTIN), *(("custom", name) for name in custom_names))


def material(kind: str, before: float | None, after: float | None) -> bool:
    """Is the change from `before` to `after` worth a status write?"""
    if before is None or after is None:
        return before is not after
    delta = abs(after - before)
    return delta > FLOOR.get(kind, 0.0) and delta > RELATIVE * max(abs(before), abs(after))


def _value(sample: scaling.Sample | None) -> float | None:
    if sample is None or sample.value is None or math.isnan(sample.value) or math.isinf(sample.value):
        return None
    return round(sample.value, 3)


def condition(samples: typing.Mapping[scaling.MetricKey, scaling.Sample]) -> conditions.ConditionChange:
    samples = dict(sorted(samples.items(), key=_order))  # messages must not depend on query order
    invalid = sorted((_label(key), sample.error) for key, sample in samples.items()
                     if sample.error and sample.error.startswith("invalid query"))
    if invalid:
        return _metrics(False, reasons.INVALID_METRIC_QUERY, "; ".join(f"{label}: {error}" for label, error in invalid))
    # +Inf (a quantile past the top bucket: an outage) is read, and said, though status cannot carry it.
    read = [_label(key) + _infinity(sample) for key, sample in samples.items()
            if _value(sample) is not None or _infinity(sample)]
    failed = [sample.error for sample in samples.values() if sample.error]
    if not read and failed:
        return _metrics(False, reasons.METRICS_UNAVAILABLE, sorted(failed)[0])
    if not read:
        return _metrics(False, reasons.NO_DATA, "no query returned data for this workload")
    no_series = [_label(key) + (f" (query {scaling.short_query(sample.query)})" if sample.query else "")
                 for key, sample in samples.items() if _value(sample) is None and not sample.error
                 and not _infinity(sample)]
    failed_labels = [_label(key) for key, sample in samples.items() if _value(sample) is None and sample.error]
    message = f"read {', '.join(read)}"
    if no_series:  # the source answered and nothing matched: named, so a missing exporter is seen
        message += f"; no series for {'; '.join(no_series)}"
    if failed_labels:
        message += f"; no data for {', '.join(failed_labels)}"
    return _metrics(True, reasons.NO_SERIES if no_series else reasons.METRICS_READ, message)


def assess(
    samples: typing.Mapping[scaling.MetricKey, scaling.Sample],
    current: typing.Mapping[str, typing.Any] | None,
    now: datetime.datetime,
) -> Snapshot:
    """Status metrics for these samples, compared with `current` (status.metrics as written)."""
    change = condition(samples)
    current = current or {}
    # A failed query says nothing about the value: the last one read stays, with its time,
    # and the condition says why it is not fresh. No data (the series is gone) removes it.
    values = {key: _current(current, *key) if sample.error else _value(sample) for key, sample in samples.items()}
    written = current.get("custom")
    stale = set(written if isinstance(written, dict) else {}) - {name for kind, name in values if kind == "custom"}
    source = next((samples[key].source for key in RESOURCE_KEYS if key in samples and samples[key].source), None)
    moved = stale or source != current.get("source") or any(
        material(kind, _current(current, kind, name), value) for (kind, name), value in values.items())
    if not moved:
        return Snapshot({}, change)
    sampled = [s.sampled_at for s in samples.values() if s.sampled_at is not None and _value(s) is not None]
    snapshot: dict[str, typing.Any] = {kind: values.get((kind, None)) for kind in BUILTIN}
    # Under a merge patch None removes a key: metrics without data and custom names no
    # longer declared disappear instead of lingering with old values.
    custom: dict[str, float | None] = {name: None for name in stale}
    custom.update({name: value for (kind, name), value in values.items() if kind == "custom" and name})
    snapshot["custom"] = custom
    snapshot["sampledAt"] = timestamps.to_status(max(sampled) if sampled else now)
    if source is not None or current.get("source"):
        snapshot["source"] = source  # of cpu and memory (spec.metrics.source chooses it)
    return Snapshot({"metrics": snapshot}, change)


def unavailable(reason: str, message: str) -> Snapshot:
    return Snapshot({}, _metrics(False, reason, message))


def _current(current: typing.Mapping[str, typing.Any], kind: str, name: str | None) -> float | None:
    # Read back from status, which anyone with rights on it may have written: a finite number or nothing.
    custom = current.get("custom")
    value = (custom if isinstance(custom, dict) else {}).get(name) if kind == "custom" else current.get(kind)
    return numbers.finite_or_none(value)


def _infinity(sample: scaling.Sample) -> str:
    """" +Inf" / " -Inf" for an infinite value read without error, else ""."""
    if sample.error or sample.value is None or not math.isinf(sample.value):
        return ""
    return " +Inf" if sample.value > 0 else " -Inf"


def _order(item: tuple[scaling.MetricKey, typing.Any]) -> tuple[int, str]:
    kind, name = item[0]
    return (BUILTIN.index(kind) if kind in BUILTIN else len(BUILTIN), name or "")


def _label(key: scaling.MetricKey) -> str:
    return key[1] if key[0] == "custom" and key[1] else key[0]


def _metrics(status: bool, reason: str, message: str) -> conditions.ConditionChange:
    return conditions.ConditionChange(reasons.METRICS_AVAILABLE, "True" if status else "False", reason, message)
