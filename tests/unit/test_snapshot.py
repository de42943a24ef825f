from __future__ import annotations

import datetime

import pytest

from controller.core import scaling
from controller.core import snapshot

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
T1 = T0 + datetime.timedelta(seconds=30)


def read(value: float | None, at: datetime.datetime = T1) -> scaling.Sample:
    return scaling.Sample(value, at if value is not None else None)


FAILED = scaling.Sample(None, None, "query failed: cannot connect to http://127.0.0.1:9")
INVALID = scaling.Sample(None, None, "invalid query: parse error at char 5")


def samples(**values: scaling.Sample) -> dict[scaling.MetricKey, scaling.Sample]:
    out: dict[scaling.MetricKey, scaling.Sample] = {}
    for name, sample in values.items():
        key = (name, None) if name in snapshot.BUILTIN else ("custom", name)
        out[key] = sample
    return out


@pytest.mark.parametrize("kind,before,after,expected", [
    ("cpu", None, 40.0, True),
    ("cpu", 40.0, None, True),
    ("cpu", None, None, False),
    ("cpu", 40.0, 43.0, False),       # under 10 %
    ("cpu", 40.0, 45.0, True),        # 12.5 % and above the 2-point floor
    ("cpu", 5.0, 6.5, False),         # 30 % but under the floor
    ("latencyP95", 180.0, 185.0, False),
    ("latencyP95", 180.0, 260.0, True),
    ("errorRate", 0.0, 0.4, False),   # noise under the 0.5-point floor
    ("errorRate", 0.0, 8.0, True),
    ("custom", 0.0, 0.5, True),       # custom metrics: relative only
], ids=lambda value: str(value))
def test_material(kind, before, after, expected) -> None:  # noqa: ANN001
    assert snapshot.material(kind, before, after) is expected


@pytest.mark.parametrize("given,status,reason,message", [
    (samples(cpu=read(41), memory=read(55)), "True", "MetricsRead", "read cpu, memory"),
    (samples(memory=read(55), cpu=read(None)), "True", "NoSeries", "read memory; no series for cpu"),
    (samples(memory=read(55), cpu=FAILED), "True", "MetricsRead", "read memory; no data for cpu"),
    (samples(memory=read(55), cpu=FAILED, orders=read(None)), "True", "NoSeries",
     "read memory; no series for orders; no data for cpu"),
    (samples(cpu=read(None), memory=read(None)), "False", "NoData", "no query returned data for this workload"),
    (samples(cpu=FAILED, memory=FAILED), "False", "MetricsUnavailable", FAILED.error),
    (samples(cpu=read(41), orders=INVALID), "False", "InvalidMetricQuery", f"orders: {INVALID.error}"),
], ids=["all-read", "no-series", "some-failed", "no-series-and-failed", "no-data", "prometheus-down", "invalid-custom"])
def test_condition(given, status, reason, message) -> None:  # noqa: ANN001
    change = snapshot.condition(given)
    assert (change.type, change.status, change.reason, change.message) == ("MetricsAvailable", status, reason, message)


def test_first_snapshot_is_written_with_the_sample_time() -> None:
    result = snapshot.assess(samples(cpu=read(41.04), errorRate=read(None), orders=read(7)), None, T1)
    assert result.fields == {"metrics": {
        "cpu": 41.04, "memory": None, "latencyP95": None, "errorRate": None, "requestRate": None,
        "requestQueue": None, "custom": {"orders": 7.0}, "sampledAt": "2026-11-01T12:00:30Z"}}


def test_values_within_tolerance_write_nothing() -> None:
    current = {"cpu": 41.0, "latencyP95": 180.0, "custom": {"orders": 7.0}, "sampledAt": "2026-11-01T12:00:00Z"}
    result = snapshot.assess(samples(cpu=read(42.5), latencyP95=read(185), orders=read(7.2)), current, T1)
    assert result.fields == {}
    assert result.condition.status == "True"


def test_a_material_move_rewrites_the_snapshot() -> None:
    current = {"cpu": 41.0, "latencyP95": 180.0, "sampledAt": "2026-11-01T12:00:00Z"}
    result = snapshot.assess(samples(cpu=read(80), latencyP95=read(185)), current, T1)
    assert result.fields["metrics"]["cpu"] == 80.0
    assert result.fields["metrics"]["latencyP95"] == 185.0
    assert result.fields["metrics"]["sampledAt"] == "2026-11-01T12:00:30Z"


def test_a_failed_source_keeps_the_last_values() -> None:
    current = {"cpu": 41.0, "sampledAt": "2026-11-01T12:00:00Z"}
    result = snapshot.assess(samples(cpu=FAILED, memory=FAILED), current, T1)
    assert result.fields == {}
    assert (result.condition.status, result.condition.reason) == ("False", "MetricsUnavailable")


def test_undeclared_custom_metrics_are_removed() -> None:
    current = {"cpu": 41.0, "custom": {"orders": 7.0}, "sampledAt": "2026-11-01T12:00:00Z"}
    result = snapshot.assess(samples(cpu=read(41)), current, T1)
    assert result.fields["metrics"]["custom"] == {"orders": None}
