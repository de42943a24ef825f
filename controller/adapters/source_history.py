"""Days of a workload's demand from Prometheus, for the seasonal forecast (core/forecast.py).

One range query per (Prometheus, credentials, query text, range): the query names its one
workload (queries.demand_query), so an answer is one series of at most RANGE_POINTS points.
Asked rarely (operator/seasonal.py: once per `refreshSeconds` a policy), each in its
namespace's fair share of the query client, at most IN_FLIGHT at once (one a namespace) so
the rounds' instant queries keep the client's other connections, each inside a boundary: one
tenant's answer is only ever that tenant's history or error.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import typing

from controller.adapters import boundary
from controller.adapters import egress
from controller.adapters import prometheus
from controller.adapters import shares
from controller.adapters import source_prometheus
from controller.core import queries
from controller.core import scaling
from controller.core import targets

logger = logging.getLogger(__name__)
IN_FLIGHT = 2  # range queries at once, all tenants together (of budget.PROMETHEUS_CONNECTIONS)
# In fair shares (adapters/shares.py): one namespace holds one place at most and the other stays
# free for the next namespace (a plain semaphore let one namespace's hanging Prometheus hold both
# places, deadline after deadline, and every other namespace's history waited behind it).
PER_NAMESPACE = 1


@dataclasses.dataclass(frozen=True)
class HistoryRequest:
    owner: typing.Hashable  # a ScalingPolicy's key
    metric: scaling.MetricKey
    target: targets.Target
    start: float  # Unix seconds
    end: float
    step: int


class RangeHistory:
    def __init__(self, client: egress.GuardedClient, secret_value: source_prometheus.SecretValue, rate_window: str,
                 *, tenant_queries_on_default: bool = False) -> None:
        self._client, self._secret_value, self.rate_window = client, secret_value, rate_window
        self.tenant_queries_on_default = tenant_queries_on_default
        self._in_flight = shares.FairShares(IN_FLIGHT, PER_NAMESPACE, reserve=IN_FLIGHT - PER_NAMESPACE)

    async def read(self, requests: typing.Sequence[HistoryRequest]) -> dict[typing.Hashable, queries.RangeResult]:
        results: dict[typing.Hashable, queries.RangeResult] = {}
        grouped: dict[tuple[typing.Any, ...], list[HistoryRequest]] = {}
        for request in requests:
            try:
                target = request.target
                refused = target.refused(request.metric, self.tenant_queries_on_default)
                if refused is not None:
                    results[request.owner] = queries.RangeResult(error="invalid query: " + refused)
                    continue
                query = queries.resolve(request.metric, target.overrides, target.custom, self.rate_window,
                                        target.namespace, target.name)
                if not query:
                    results[request.owner] = queries.RangeResult(error="no query for this metric")
                    continue
                text = queries.demand_query(query, target.namespace, target.name)
                key = (source_prometheus.source_key(target), text, request.start, request.end, request.step,
                       target.namespace)
                grouped.setdefault(key, []).append(request)
            except Exception as failure:  # this request's problem alone
                results[request.owner] = queries.RangeResult(
                    error=boundary.failed(failure, "planning a range query", request.owner))
        answers = await asyncio.gather(*(self._one(*key) for key in grouped))
        for group, answer in zip(grouped.values(), answers, strict=True):
            for request in group:
                results[request.owner] = answer
        return results

    @boundary.contained("a Prometheus range query", lambda error: queries.RangeResult(error=boundary.describe(error)))
    async def _one(self, source: source_prometheus.SourceKey, query: str, start: float, end: float, step: int,
                   namespace: str) -> queries.RangeResult:
        if not source.url:
            return queries.RangeResult(error="no Prometheus configured")
        async with self._in_flight.hold(source.namespace or namespace):
            with shares.tenant(source.namespace or namespace):
                try:
                    token = None
                    if source.auth is not None and source.namespace is not None:
                        token = await self._secret_value(source.namespace, *source.auth)
                    return await prometheus.PrometheusSource(self._client, source.url, token).query_range(
                        query, start, end, step)
                except Exception as error:  # this source's failure is its requests' error
                    logger.warning("range query against %s failed: %s", source.url, type(error).__name__)
                    return queries.RangeResult(error=f"{source.url}: {type(error).__name__}")
