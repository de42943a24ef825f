"""Liveness that notices a stall, not only a crash: every loop beats once per pass.

A loop whose task still exists but that has not come round within max(STALL_SECONDS,
3 × its own period) is stalled (a blocking call on the event loop, a deadlock, an await that
never returns); the liveness probe then fails and the kubelet restarts the pod.
"""

from __future__ import annotations

import time

from controller.operator import metrics

STALL_SECONDS = 180.0
_periods: dict[str, float] = {}
_last: dict[str, float] = {}


def expect(name: str, period_seconds: float) -> None:
    """`name` will beat at least every `period_seconds` when healthy."""
    _periods[name] = period_seconds
    _last.setdefault(name, time.monotonic())
    metrics.LOOP_PERIOD.labels(name).set(period_seconds)
    metrics.LOOP_LAST_PASS.labels(name).set_to_current_time()  # a loop that never comes round still shows


def beat(name: str) -> None:
    _last[name] = time.monotonic()
    metrics.LOOP_LAST_PASS.labels(name).set_to_current_time()


def stalled(now: float | None = None) -> list[str]:
    moment = time.monotonic() if now is None else now
    return sorted(name for name, period in _periods.items()
                  if moment - _last.get(name, moment) > max(STALL_SECONDS, 3 * period))


def expected() -> set[str]:
    return set(_periods)


def forget(*names: str) -> None:
    """`name` no longer runs on purpose (a replica that stopped acting): not a stall."""
    for name in names:
        _periods.pop(name, None)
        _last.pop(name, None)
