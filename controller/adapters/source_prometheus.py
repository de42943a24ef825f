"""Prometheus as a metric source, batched: one request per (Prometheus, credentials, query)
per round, however many services ask the same question."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import math
import time
import typing

from controller.adapters import boundary
from controller.adapters import egress
from controller.adapters import metric_source
from controller.adapters import prometheus
from controller.adapters import shares
from controller.core import numbers
from controller.core import queries
from controller.core import scaling
from controller.core import sources

logger = logging.getLogger(__name__)
# A round waits at most this long for any query: one request's deadline, and a little for a
# share to come free. Past it, a query is its own namespace's error and the round goes on.
ROUND_SECONDS = prometheus.TIMEOUT_SECONDS + 2.0
SecretValue = typing.Callable[[str, str, str], typing.Awaitable[str | None]]


@dataclasses.dataclass(frozen=True)
class SourceKey:
    """Where a query goes and with whose credentials. A query with credentials is never
    shared across namespaces: namespace B must not ride on namespace A's token."""

    url: str
    namespace: str | None = None  # set only with credentials
    auth: tuple[str, str] | None = None  # Secret name, key


def source_key(target: typing.Any) -> SourceKey:
    if target.auth is None:
        return SourceKey(target.prometheus_url or "")
    return SourceKey(target.prometheus_url or "", target.namespace, target.auth)


class BatchedPrometheus:
    name = sources.PROMETHEUS

    def __init__(self, client: egress.GuardedClient, secret_value: SecretValue, rate_window: str,
                 on_query: typing.Callable[[int], None], clock: typing.Callable[[], float] = time.time,
                 *, tenant_queries_on_default: bool = False) -> None:
        # A tenant's own PromQL goes to the operator's shared Prometheus only when the platform
        # team said so (--allow-tenant-queries-on-default-prometheus): targets.TENANT_QUERIES_RULE.
        self.tenant_queries_on_default = tenant_queries_on_default
        # No semaphore of its own: a first-come one let one namespace's queued queries stand
        # in front of everyone's. The client's fair shares bound the connections instead.
        self._client, self._secret_value, self.rate_window = client, secret_value, rate_window
        self._on_query = on_query
        self._clock = clock  # the instant a round's queries are evaluated at (prometheus.form)

    streams = True  # read() takes on_owner (operator/sources.py)

    async def read(self, requests: typing.Sequence[metric_source.Request],
                   on_owner: metric_source.OnOwner | None = None) -> metric_source.Samples:
        """Every tenant's part runs inside a boundary (adapters/boundary.py): its query text,
        its request and parse (`_one`), its sample (`_sample_of`); one tenant's answer can
        only ever be that tenant's error. `on_owner(owner, samples)` is called as soon as all
        of an owner's samples are in: a tenant whose queries hang holds back no other's."""
        samples: metric_source.Samples = {}
        needs = []
        for request in requests:
            try:
                target = request.target
                refused = target.refused(request.metric, self.tenant_queries_on_default)
                if refused is not None:  # never sent: MetricsAvailable/ScalingActive say why
                    samples.setdefault(request.owner, {})[request.metric] = scaling.Sample(
                        None, None, "invalid query: " + refused)
                    continue
                query = queries.resolve(request.metric, target.overrides, target.custom, self.rate_window,
                                        target.namespace, target.name)
                needs.append((source_key(target), query or "",
                              queries.Need(request.owner, request.metric, target.namespace, target.name)))
            except Exception as failure:  # this request's problem alone
                samples.setdefault(request.owner, {})[request.metric] = scaling.Sample(
                    None, None, boundary.failed(failure, "planning a Prometheus query", request.owner))
        grouped = queries.plan(needs)
        at = self._clock()  # one instant for every query of the round
        self._on_query(sum(1 for source, query in grouped if source.url and query))
        outstanding: dict[typing.Hashable, int] = {}
        for group in grouped.values():
            for need in group:
                outstanding[need.owner] = outstanding.get(need.owner, 0) + 1
        for owner in {request.owner for request in requests} - outstanding.keys():
            if on_owner is not None:  # nothing to wait for (its planning failed)
                on_owner(owner, samples.get(owner, {}))
        tasks = {asyncio.ensure_future(self._charged(source, query, group, at)): (query, group)
                 for (source, query), group in grouped.items()}
        pending = set(tasks)
        try:
            while pending:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    query, group = tasks[task]
                    result = task.result()
                    indexed = queries.index(result)
                    for need in group:
                        samples.setdefault(need.owner, {})[need.metric] = _sample_of(need, query, result, indexed)
                        outstanding[need.owner] -= 1
                        if outstanding[need.owner] == 0 and on_owner is not None:
                            on_owner(need.owner, samples[need.owner])
        finally:
            for task in pending:
                task.cancel()  # the read was cancelled: so are its queries
        return samples

    async def _charged(self, source: SourceKey, query: str, needs: typing.Sequence[queries.Need],
                       at: float | None = None) -> queries.QueryResult:
        """One query, charged to the namespace asking (its connections and parses come from
        that namespace's share: adapters/shares.py) and bounded by the round's deadline: a
        query still queued behind its own namespace's slow ones is that namespace's error,
        and the round goes on without it."""
        namespaces = {need.namespace for need in needs}
        tenant = source.namespace or (next(iter(namespaces)) if len(namespaces) == 1 else None)
        wanted = frozenset((need.namespace, need.workload) for need in needs)
        with shares.tenant(tenant):
            try:
                return await asyncio.wait_for(self._one(source, query, wanted, at), ROUND_SECONDS)
            except asyncio.TimeoutError:
                return queries.QueryResult(error=f"no answer within the round's {ROUND_SECONDS:g}s")

    @boundary.contained("a Prometheus query", lambda error: queries.QueryResult(error=boundary.describe(error)))
    async def _one(self, source: SourceKey, query: str, wanted: prometheus.Wanted | None = None,
                   at: float | None = None) -> queries.QueryResult:
        if not source.url:
            return queries.QueryResult(error=sources.NO_SOURCE)
        if not query:
            return queries.QueryResult(error="no query for this metric (custom name not declared?)", invalid=True)
        try:
            token = None
            if source.auth is not None and source.namespace is not None:
                token = await self._secret_value(source.namespace, *source.auth)
            return await prometheus.PrometheusSource(self._client, source.url, token).query(query, at, wanted=wanted)
        except Exception as error:  # one source's failure is that source's error, never the round's
            logger.warning("metric query against %s failed: %s", source.url, type(error).__name__)
            return queries.QueryResult(error=f"{source.url}: {type(error).__name__}")


NAN = "the query answered NaN (no data)"


@boundary.contained("a Prometheus sample", lambda error: scaling.Sample(None, None, boundary.describe(error)))
def _sample_of(need: queries.Need, query: str, result: queries.QueryResult,
               indexed: typing.Mapping[tuple[str, str], queries.Series]) -> scaling.Sample:
    """One tenant's sample from a (shared) answer. NaN is "no data": an error for this sample
    (it holds a scale-down, never resolves or fires an alert), never a value."""
    sample = queries.sample_for(need, result, indexed, _from_epoch)
    if sample.value is not None and math.isnan(sample.value):
        return scaling.Sample(None, None, NAN)
    if sample.value is None and sample.error is None:
        sample = dataclasses.replace(sample, query=query)  # no series: say which query found nothing
    return sample


def _from_epoch(timestamp: float) -> datetime.datetime:
    return numbers.epoch(timestamp)  # the parse admitted only times datetime can hold
