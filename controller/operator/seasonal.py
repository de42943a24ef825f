"""The seasonal forecast's history from Prometheus, refreshed rarely (spec.predictive.seasonal).

Between range queries every evaluation records its own demand (core/forecast.record, through
the core's decision); a range query fills the past: at start (so a restarted operator is warm
at once, not after days) and then once per `refreshSeconds` a policy. The queries run in the
background, never in a scaling round: a slow Prometheus delays a history, not a decision. At
most PER_REFRESH policies are asked per round (10,000 policies at start are asked over a few
minutes, not at once). Each answer waits here, per policy (uid), until its next decision
merges it (`merged`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import typing

from controller.adapters import boundary
from controller.adapters import source_history
from controller.api import scalingpolicy
from controller.core import forecast
from controller.core import queries
from controller.core import sources
from controller.core import targets
from controller.operator import per_object
from controller.operator import view as view_module

logger = logging.getLogger(__name__)
PER_REFRESH = 50  # policies whose history is asked for in one round, at most
FAILED = "history from Prometheus: "  # how a failed read is named in the forecast's message
RETRY_SECONDS = 300  # a failed read is tried again this much later, not a whole refreshSeconds


class SeasonalHistories:
    def __init__(self, view: view_module.View, reader: source_history.RangeHistory | None,
                 clock: typing.Callable[[], float] = time.time,
                 monotonic: typing.Callable[[], float] = time.monotonic) -> None:
        self.reader, self.clock, self.monotonic = reader, clock, monotonic
        self.asked: per_object.PerObject[float] = per_object.PerObject(view)  # when (monotonic)
        # A failed read's error, until the policy's next decision takes it.
        self.arrived: per_object.PerObject[queries.RangeResult] = per_object.PerObject(view)
        # A read's points, packed as the history is (8 bytes a point, not a tuple each) as soon as
        # they arrive: a policy that is never decided (no workload) holds 32 KiB at most, not ~450 KB.
        self.packed: per_object.PerObject[forecast.History] = per_object.PerObject(view)
        self.settings: dict[typing.Hashable, scalingpolicy.Seasonal] = {}  # of the reads in flight
        self.errors: per_object.PerObject[str] = per_object.PerObject(view)  # the last range query's error
        self.task: asyncio.Future[None] | None = None

    def refresh(self, specs: typing.Mapping[view_module.Key, scalingpolicy.ScalingPolicySpec],
                resolved: typing.Mapping[view_module.Key, targets.Target]) -> None:
        """Start the range queries of the policies whose history is due; never waits for them."""
        if self.reader is None or (self.task is not None and not self.task.done()):
            return
        now, moment = self.monotonic(), self.clock()
        by_namespace: dict[str, list[source_history.HistoryRequest]] = {}
        for key, spec in specs.items():
            try:
                request = self._due(key, spec, resolved.get(key), now, moment)
                if request is not None:
                    by_namespace.setdefault(request.target.namespace, []).append(request)
                    self.settings[key] = spec.predictive.seasonal
            except Exception as failure:  # this tenant's problem alone
                boundary.failed(failure, "the seasonal history", key)
        # One namespace's policy in turn, however many another has due: a namespace whose reads
        # are slow (its Prometheus at the deadline) never keeps another's from being asked.
        due: list[source_history.HistoryRequest] = []
        queues = list(by_namespace.values())
        while queues and len(due) < PER_REFRESH:
            queues = [queue for queue in queues if queue]
            for queue in queues:
                if len(due) < PER_REFRESH:
                    due.append(queue.pop(0))
        for request in due:
            self.asked[typing.cast(view_module.Key, request.owner)] = now
        if due:
            self.task = asyncio.ensure_future(self._read(due))

    def _due(self, key: view_module.Key, spec: scalingpolicy.ScalingPolicySpec, target: targets.Target | None,
             now: float, moment: float) -> source_history.HistoryRequest | None:
        settings = spec.predictive.seasonal
        if not settings.enabled or target is None or target.choose(forecast.metric_key(settings)[0])[0] != sources.PROMETHEUS:
            return None
        asked = self.asked.get(key)
        wait = min(RETRY_SECONDS, settings.refreshSeconds) if key in self.errors else settings.refreshSeconds
        if asked is not None and now - asked < wait:
            return None
        step = settings.stepSeconds
        end = moment // step * step
        start = end - settings.lookbackPeriods * settings.periodSeconds + step
        return source_history.HistoryRequest(key, forecast.metric_key(settings), target, start, end, step)

    async def _read(self, due: list[source_history.HistoryRequest]) -> None:
        assert self.reader is not None
        try:
            answers = await self.reader.read(due)
        except Exception as failure:  # the reader contains each query; this is its own fault
            logger.warning("seasonal history read failed: %s", type(failure).__name__)
            return
        for key, answer in answers.items():
            try:
                settings = self.settings.pop(key, None)
                if answer.error is not None or settings is None:
                    self.arrived[typing.cast(view_module.Key, key)] = answer
                else:
                    self.arrived.pop(typing.cast(view_module.Key, key), None)
                    self.packed[typing.cast(view_module.Key, key)] = forecast.merge(None, settings, answer.points)
            except Exception as failure:  # this tenant's problem alone
                boundary.failed(failure, "the seasonal history", key)

    def merged(self, key: view_module.Key, spec: scalingpolicy.ScalingPolicySpec,
               history: forecast.History | None) -> forecast.History | None:
        """`history` with the range answer that arrived for `key` since (if any) merged in."""
        packed = self.packed.pop(key, None)
        answer = self.arrived.pop(key, None)
        if packed is None and answer is None:
            if history is None and (self.task is None or self.task.done()):
                # Asked, nothing waiting, and no history in the decision's memory: a new term of
                # leadership (the scaler's memory was cleared, not this). Ask again at once.
                self.asked.pop(key, None)
            return history
        if answer is not None and answer.error is not None:
            self.errors[key] = answer.error
            return history
        self.errors.pop(key, None)
        points = forecast.points(packed) if packed is not None else answer.points if answer is not None else ()
        return forecast.merge(history, spec.predictive.seasonal, points)

    def error(self, key: view_module.Key) -> str | None:
        return self.errors.get(key)

    def forget(self, key: view_module.Key) -> None:
        for store in (self.asked, self.arrived, self.packed, self.errors, self.settings):
            store.pop(key, None)
