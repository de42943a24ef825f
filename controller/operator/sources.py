"""The metric-source registry and the one entry point every reader uses (scaler, rollout
analysis, snapshots, alerting): each request goes to the source `core/sources.py` chooses for
its metric, each source gets its requests of the round at once, and every sample says which
source answered.

With `on_owner`, a reader is told each owner's samples as soon as they are all in, from every
source it asked: a namespace whose Prometheus hangs (each query up to its deadline) holds
back its own decisions only, not the round's (the scaler decides as owners arrive)."""

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

    async def read(self, requests: typing.Sequence[metric_source.Request],
                   on_owner: metric_source.OnOwner | None = None) -> metric_source.Samples:
        samples: metric_source.Samples = {}
        by_source: dict[str, list[metric_source.Request]] = {}
        waiting: dict[typing.Hashable, set[str]] = {}  # owner -> sources that have not answered it yet
        asked: dict[tuple[str, typing.Hashable], list[metric_source.Request]] = {}  # (source, owner) -> requests
        for request in requests:
            name, why = request.target.choose(request.metric[0])
            samples.setdefault(request.owner, {})
            if name is None or name not in self.registry:
                samples[request.owner][request.metric] = scaling.Sample(
                    None, None, why or f"the {name} metric source is not available in this operator")
                continue
            by_source.setdefault(name, []).append(request)
            asked.setdefault((name, request.owner), []).append(request)
            waiting.setdefault(request.owner, set()).add(name)

        def answered(name: str, owner: typing.Hashable, answer: metric_source.Samples | BaseException) -> None:
            if name not in waiting.get(owner, ()):
                return  # told already (a streaming source, then its whole answer)
            for request in asked[(name, owner)]:
                if isinstance(answer, BaseException):  # one source's failure is its requests' error only
                    sample = scaling.Sample(None, None, f"{name}: {type(answer).__name__}")
                else:
                    sample = answer.get(owner, {}).get(request.metric) or scaling.Sample(None, None)
                samples[owner][request.metric] = dataclasses.replace(sample, source=name)
            waiting[owner].discard(name)
            if not waiting[owner] and on_owner is not None:
                on_owner(owner, samples[owner])

        if on_owner is not None:
            for owner in [owner for owner in samples if owner not in waiting]:
                on_owner(owner, samples[owner])  # no source to wait for: its samples say why

        async def one(name: str) -> None:
            source = self.registry[name]
            try:
                if on_owner is not None and getattr(source, "streams", False):
                    answer: metric_source.Samples | BaseException = await source.read(  # type: ignore[call-arg]
                        by_source[name], on_owner=lambda owner, got: answered(name, owner, {owner: got}))
                else:
                    answer = await source.read(by_source[name])
            except Exception as error:
                logger.warning("metric source %s failed: %s", name, type(error).__name__)
                answer = error
            for owner in {request.owner for request in by_source[name]}:
                answered(name, owner, answer)

        await asyncio.gather(*(one(name) for name in by_source))
        return samples
