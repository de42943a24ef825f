"""The metric-source registry and the one entry point every reader uses (scaler, rollout
analysis, snapshots, alerting): each request goes to the source `core/sources.py` chooses for
its metric, each source gets its requests of the round at once, and every sample says which
source answered."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import typing

from controller.adapters import metric_source
from controller.core import scaling

logger = logging.getLogger(__name__)


class Sources:
    def __init__(self, registry: typing.Mapping[str, metric_source.MetricSource]) -> None:
        self.registry = dict(registry)

    async def read(self, requests: typing.Sequence[metric_source.Request]) -> metric_source.Samples:
        samples: metric_source.Samples = {}
        by_source: dict[str, list[metric_source.Request]] = {}
        for request in requests:
            name, why = request.target.choose(request.metric[0])
            if name is None or name not in self.registry:
                samples.setdefault(request.owner, {})[request.metric] = scaling.Sample(
                    None, None, why or f"the {name} metric source is not available in this operator")
                continue
            by_source.setdefault(name, []).append(request)
        names = list(by_source)
        answers = await asyncio.gather(*(self.registry[name].read(by_source[name]) for name in names),
                                       return_exceptions=True)
        for name, answer in zip(names, answers, strict=True):
            for request in by_source[name]:
                if isinstance(answer, BaseException):  # one source's failure is its requests' error only
                    logger.warning("metric source %s failed: %s", name, type(answer).__name__)
                    sample = scaling.Sample(None, None, f"{name}: {type(answer).__name__}")
                else:
                    sample = answer.get(request.owner, {}).get(request.metric) or scaling.Sample(None, None)
                samples.setdefault(request.owner, {})[request.metric] = dataclasses.replace(sample, source=name)
        return samples
