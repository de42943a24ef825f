"""MonitoredService metrics snapshots: one batched read per round for every service.

Every interval (on a grid, like scaling rounds) the metrics of all ready MonitoredServices
are read through the metric-source seam in one batch (one query per metric kind per
Prometheus, one list per namespace from the metrics API, Railway's own metrics from its
poll), and a service is handed to the evaluation loop only when its status would
change: a material move of a value, a metric appearing or vanishing, a condition flip.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
import typing


from controller import reasons
from controller.adapters import boundary
from controller.api import monitoredservice as api
from controller.core import conditions
from controller.core import scaling
from controller.core import snapshot
from controller.operator import loop
from controller.operator import per_object
from controller.operator import view as view_module

logger = logging.getLogger(__name__)
KIND = api.KIND.kind
TICK_SECONDS = 1.0
ReadMetrics = typing.Callable[..., typing.Awaitable[dict[typing.Any, dict[scaling.MetricKey, scaling.Sample]]]]


@dataclasses.dataclass(frozen=True)
class Reading:
    time: datetime.datetime
    samples: dict[scaling.MetricKey, scaling.Sample] | None  # None: no source to read
    fallback: snapshot.Snapshot | None = None

    def judge(self, current: typing.Mapping[str, typing.Any] | None) -> snapshot.Snapshot:
        if self.samples is None:
            assert self.fallback is not None
            return self.fallback
        return snapshot.assess(self.samples, current, self.time)


class Snapshots:
    def __init__(self, view: view_module.View, evaluator: loop.Evaluator, read_metrics: ReadMetrics,
                 interval_seconds: float = 30.0,
                 clock: typing.Callable[[], datetime.datetime] = loop.utcnow) -> None:
        self.view, self.evaluator, self.read_metrics = view, evaluator, read_metrics
        self.interval_seconds = interval_seconds
        self.clock = clock
        # Per object (uid): a service made again under its name starts with no reading of the old.
        self.readings: per_object.PerObject[Reading] = per_object.PerObject(view)

    def contribute(self, key: view_module.Key, current: loop.Status) -> loop.Contribution:
        if key[0] != KIND or key not in self.readings:
            return None
        # Judged against status as it is now, so a value already written is not written again.
        result = self.readings[key].judge(current.get("metrics"))
        return result.fields, [result.condition]

    async def run(self) -> None:
        # Full rounds on a grid (every restart's rounds fall on the same instants); in between,
        # a service that has just become ready is read at once rather than at the next round.
        next_round = time.time() - time.time() % self.interval_seconds + self.interval_seconds
        while True:
            await asyncio.sleep(TICK_SECONDS)
            full = time.time() >= next_round
            while next_round <= time.time():
                next_round += self.interval_seconds
            try:
                await self.round(only_new=not full)
            except Exception:  # one bad round must not end the snapshots
                logger.exception("metrics snapshot round failed")

    async def round(self, only_new: bool = False) -> None:
        for key in [k for k in self.readings if k not in self.view.objects]:
            del self.readings[key]
        services = []
        now = self.clock()
        for key in list(self.view.of_kind(KIND)):
            try:
                if only_new and key in self.readings:
                    continue
                if not self.evaluator.is_ready(key):
                    continue
                spec = self.view.valid(key, api.MonitoredServiceSpec)
                if spec is None:
                    continue
                services.append((key, spec))
            except Exception as failure:  # this tenant's problem alone
                boundary.failed(failure, "metrics snapshot", key)
        if not services:
            return
        samples = await self.read_metrics(services)
        now = self.clock()
        for key, _ in services:
            try:
                self._store(key, Reading(now, samples.get(key, {})))
            except Exception as failure:  # a value one service's status holds is its own problem
                boundary.failed(failure, "metrics snapshot", key)

    def _store(self, key: view_module.Key, reading: Reading) -> None:
        obj = self.view.objects.get(key)
        if obj is None:
            return
        self.readings[key] = reading
        status = obj.get("status") or {}
        result = reading.judge(status.get("metrics"))
        found = conditions.find(status.get("conditions") or [], reasons.METRICS_AVAILABLE)
        same = found is not None and (found.get("status"), found.get("reason"), found.get("message")) == (
            result.condition.status, result.condition.reason, result.condition.message)
        if result.fields or not same:
            self.evaluator.mark(key)  # a steady service is not even re-judged
