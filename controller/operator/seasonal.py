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
        self.arrived: per_object.PerObject[queries.RangeResult] = per_object.PerObject(view)
        self.errors: per_object.PerObject[str] = per_object.PerObject(view)  # the last range query's error
        self.task: asyncio.Future[None] | None = None

    def refresh(self, specs: typing.Mapping[view_module.Key, scalingpolicy.ScalingPolicySpec],
                resolved: typing.Mapping[view_module.Key, targets.Target]) -> None:
        """Start the range queries of the policies whose history is due; never waits for them."""
        if self.reader is None or (self.task is not None and not self.task.done()):
            return
        now, moment = self.monotonic(), self.clock()
        due = []
        for key, spec in specs.items():
            try:
                request = self._due(key, spec, resolved.get(key), now, moment)
                if request is not None:
                    due.append(request)
                    self.asked[key] = now
                    if len(due) >= PER_REFRESH:
                        break
            except Exception as failure:  # this tenant's problem alone
                boundary.failed(failure, "the seasonal history", key)
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
                self.arrived[typing.cast(view_module.Key, key)] = answer
            except Exception as failure:  # this tenant's problem alone
                boundary.failed(failure, "the seasonal history", key)

    def merged(self, key: view_module.Key, spec: scalingpolicy.ScalingPolicySpec,
               history: forecast.History | None) -> forecast.History | None:
        """`history` with the range answer that arrived for `key` since (if any) merged in."""
        answer = self.arrived.pop(key, None)
        if answer is None:
            if history is None and (self.task is None or self.task.done()):
                # Asked, nothing waiting, and no history in the decision's memory: a new term of
                # leadership (the scaler's memory was cleared, not this). Ask again at once.
                self.asked.pop(key, None)
            return history
        if answer.error is not None:
            self.errors[key] = answer.error
            return history
        self.errors.pop(key, None)
        return forecast.merge(history, spec.predictive.seasonal, answer.points)

    def error(self, key: view_module.Key) -> str | None:
        return self.errors.get(key)

    def forget(self, key: view_module.Key) -> None:
        for store in (self.asked, self.arrived, self.errors):
            store.pop(key, None)
