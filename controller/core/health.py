"""Health of a MonitoredService: per-check thresholds, overall state, availability, burn rates.

Pure: probe outcomes come in, states come out. Status is meant to change only on
transitions; streak counters live in memory (after a restart they start again, which can
only delay a transition, never invent one).
"""

from __future__ import annotations

import dataclasses
import datetime
import typing

from controller.api import monitoredservice as api

HEALTHY, DEGRADED, UNHEALTHY, UNKNOWN = (h.value for h in api.Health)

# Never probed unless an operator flag allows it: link-local (cloud metadata lives there),
# the metadata services' other addresses, unspecified addresses; loopback only when allowed.


@dataclasses.dataclass(frozen=True)
class ProbeResult:
    ok: bool
    latency_ms: float | None
    message: str


@dataclasses.dataclass(frozen=True)
class CheckState:
    healthy: bool | None = None  # None until thresholds have decided
    failures: int = 0
    successes: int = 0
    message: str = ""
    since: datetime.datetime | None = None  # when `healthy` last changed
    first_probe: datetime.datetime | None = None  # the start period counts from here
    passed_once: bool = False  # a first success ends the start period
    latency_ms: float | None = None  # the latest probe's, when it answered (a gate's latency bound)


def judge_response(status: int, body: str, check: api.HttpCheck) -> tuple[bool, str]:
    if status not in check.expectStatus:
        return False, f"HTTP {status}, expected {', '.join(map(str, check.expectStatus))}"
    if check.bodyContains is not None and check.bodyContains not in body:
        return False, f"HTTP {status}, body lacks {check.bodyContains!r}"
    return True, f"HTTP {status}"


def in_start_period(spec: api.HealthCheck, state: CheckState, now: datetime.datetime) -> bool:
    """Docker's start period: until the first success, failures within startPeriodSeconds of
    the first probe do not count (a slow start is not an outage)."""
    first = state.first_probe or now
    return not state.passed_once and (now - first).total_seconds() < spec.startPeriodSeconds


def apply_probe(spec: api.HealthCheck, state: CheckState, result: ProbeResult, now: datetime.datetime) -> CheckState:
    """Consecutive results decide, as kubelet's probes do: failureThreshold failures in a row
    make a check failing, successThreshold successes in a row make it passing again."""
    if not result.ok and in_start_period(spec, state, now):
        return dataclasses.replace(state, first_probe=state.first_probe or now, successes=0, latency_ms=result.latency_ms,
                                   message=f"{result.message} (start period: not counted)")
    failures = 0 if result.ok else state.failures + 1
    successes = state.successes + 1 if result.ok else 0
    healthy = state.healthy
    if result.ok and successes >= spec.successThreshold:
        healthy = True
    elif not result.ok and failures >= spec.failureThreshold:
        healthy = False
    changed = healthy != state.healthy
    return CheckState(
        healthy=healthy, failures=failures, successes=successes,
        message=result.message if changed or state.healthy is None else state.message,
        since=now if changed else state.since,
        first_probe=state.first_probe or now, passed_once=state.passed_once or result.ok, latency_ms=result.latency_ms,
    )


def overall(states: typing.Sequence[CheckState], healthy_percent: int = 100) -> tuple[str, str]:
    """(health, why) from the checks' verdicts alone: Unknown before any verdict, Healthy when
    all pass — or, every check decided, when at least `healthy_percent` of them pass (a quorum
    of endpoints) — Degraded when some fail, Unhealthy when all fail. Availability over the SLO
    window is reported beside it and judged by burn-rate alerts, never here: one failed
    probe in an hour is lost availability, not an hour of Unhealthy."""
    decided = [s for s in states if s.healthy is not None]
    if not states or not decided:
        return UNKNOWN, "no health verdict yet"
    failing = [s for s in decided if s.healthy is False]
    quorum = f" (quorum {healthy_percent} %)" if healthy_percent < 100 else ""
    if len(failing) == len(states):
        return UNHEALTHY, f"all {len(states)} check(s) failing"
    if failing:
        passing = len(decided) - len(failing)
        if len(decided) == len(states) and passing * 100 >= healthy_percent * len(states):
            return HEALTHY, f"{passing} of {len(states)} check(s) passing{quorum}"
        return DEGRADED, f"{len(failing)} of {len(states)} check(s) failing{quorum}"
    if len(decided) < len(states):
        return UNKNOWN, "waiting for every check's first verdict"
    return HEALTHY, f"all {len(states)} check(s) passing"


def availability(outcomes: typing.Sequence[tuple[datetime.datetime, bool]], now: datetime.datetime,
                 window_seconds: int) -> float | None:
    """Share of passing probes within the window, in percent; None without probes."""
    since = now - datetime.timedelta(seconds=window_seconds)
    recent = [ok for moment, ok in outcomes if moment >= since]
    if not recent:
        return None
    return round(100.0 * sum(recent) / len(recent), 2)


def burn_rate(outcomes: typing.Sequence[tuple[datetime.datetime, bool]], now: datetime.datetime,
              window_seconds: int, slo_percent: float) -> float | None:
    """How many times faster than the SLO allows the error budget burns over the window:
    (failed share of probes) / (1 - SLO). None without probes in the window."""
    since = now - datetime.timedelta(seconds=window_seconds)
    recent = [ok for moment, ok in outcomes if moment >= since]
    budget = 1 - slo_percent / 100
    if not recent or budget <= 0:
        return None
    return round((recent.count(False) / len(recent)) / budget, 3)


# A p95 objective lets 5 % of answers be slower than the target: that is the latency budget.
LATENCY_BUDGET = 0.05


def latency_within(latencies: typing.Sequence[tuple[datetime.datetime, float]], now: datetime.datetime,
                   window_seconds: int, target_ms: float) -> float | None:
    """Share of passing probes in the window that answered within `target_ms`, in percent."""
    since = now - datetime.timedelta(seconds=window_seconds)
    recent = [ms for moment, ms in latencies if moment >= since]
    if not recent:
        return None
    return round(100.0 * sum(1 for ms in recent if ms <= target_ms) / len(recent), 2)


def latency_burn_rate(latencies: typing.Sequence[tuple[datetime.datetime, float]], now: datetime.datetime,
                      window_seconds: int, target_ms: float) -> float | None:
    """How many times faster than a p95 objective allows the latency budget burns over the
    window: (share of passing probes slower than the target) / 5 %. None without probes."""
    within = latency_within(latencies, now, window_seconds, target_ms)
    return None if within is None else round((1 - within / 100) / LATENCY_BUDGET, 3)


def multi_window_latency_burn(latencies: typing.Sequence[tuple[datetime.datetime, float]], now: datetime.datetime,
                              long_seconds: int, short_seconds: int, target_ms: float) -> float | None:
    """The lower of the two windows' latency burn rates (as multi_window_burn)."""
    rates = [latency_burn_rate(latencies, now, seconds, target_ms) for seconds in (long_seconds, short_seconds)]
    return None if None in rates else min(typing.cast(list[float], rates))


def multi_window_burn(outcomes: typing.Sequence[tuple[datetime.datetime, bool]], now: datetime.datetime,
                      long_seconds: int, short_seconds: int, slo_percent: float) -> float | None:
    """The lower of the two windows' burn rates: above a threshold only when both are."""
    rates = [burn_rate(outcomes, now, seconds, slo_percent) for seconds in (long_seconds, short_seconds)]
    return None if None in rates else min(typing.cast(list[float], rates))
