"""Prometheus as a metric source: one instant query per request, behind the egress guard.

A hostile or broken server is contained here: every request has a total deadline (also sent
as Prometheus' own `timeout`), redirects are not followed, the body is capped, and the answer
is parsed defensively — anything but a well-formed vector or scalar is a typed error for this
source alone, never an exception in the caller's round.
"""

from __future__ import annotations

import asyncio
import json
import math
import typing

import aiohttp

from controller.adapters import answers
from controller.adapters import boundary
from controller.adapters import budget
from controller.adapters import egress
from controller.adapters import shares
from controller.api import scalingpolicy
from controller.core import numbers
from controller.core import queries

TIMEOUT_SECONDS = 10.0
BODY_LIMIT = budget.PROMETHEUS_ANSWER  # worked out from the pod's memory limit (budget.py)
SERIES_LIMIT = budget.PROMETHEUS_SERIES
# A range answer's points: the longest seasonal history (scalingpolicy.SEASONAL_POINTS_MAX) and
# its ends. About 30 bytes a point: 121 KiB, far under the body cap.
RANGE_POINTS = scalingpolicy.SEASONAL_POINTS_MAX + 1
Wanted = typing.AbstractSet[tuple[str, str]]  # the (namespace, workload) pairs a round can use


class PrometheusSource:
    """One Prometheus server with one set of credentials."""

    def __init__(self, client: egress.GuardedClient, url: str, token: str | None = None,
                 lane: answers.ParseLane | None = None) -> None:
        self._client, self.url = client, url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._lane = lane or answers.LANE

    async def query(self, promql: str, at: float | None = None, *, wanted: Wanted | None = None) -> queries.QueryResult:
        """The answer, narrowed to the series of `wanted` if given (see `narrowed`), evaluated at
        `at` (Unix seconds; Prometheus' now if None)."""
        async def parsed(response: egress.Response) -> queries.QueryResult:
            return await self._parse(response, wanted)

        try:
            # Parsed within the request's share of the client: an answer waiting for the parser
            # holds its namespace's place, so answers in memory never outnumber connections.
            return await self._client.exchange(
                "POST", f"{self.url}/api/v1/query", parsed, deadline=TIMEOUT_SECONDS, body_limit=BODY_LIMIT,
                data=form(promql, at), headers=self._headers)
        except egress.EgressRefused as refused:
            return queries.QueryResult(error=f"refused by the egress policy: {refused}")
        except asyncio.TimeoutError:
            return queries.QueryResult(error=f"{self.url} did not answer within {TIMEOUT_SECONDS:g}s")
        except aiohttp.ClientConnectorError:
            # Stable text (no object addresses): a condition message must not change every round.
            return queries.QueryResult(error=f"cannot connect to {self.url}")
        except (aiohttp.ClientError, ValueError) as error:
            return queries.QueryResult(error=f"{self.url}: {type(error).__name__}")

    async def query_range(self, promql: str, start: float, end: float, step: int) -> queries.RangeResult:
        """A range query's one series as (Unix seconds, value) points: the seasonal forecast's
        history (core/forecast.py). At most RANGE_POINTS points are asked for and accepted;
        the body cap and the parser process are the instant query's."""
        if (end - start) / step + 1 > RANGE_POINTS:
            return queries.RangeResult(error=f"more than {RANGE_POINTS} points asked for")

        async def parsed(response: egress.Response) -> queries.RangeResult:
            if len(response.body) <= budget.INLINE_PARSE:
                return parse_range(response.status, response.body, response.truncated)
            try:
                return await self._lane.run(shares.key_for(self.url), parse_range,
                                            response.status, response.body, response.truncated)
            except answers.ParserFailed as failed:
                return queries.RangeResult(error=f"the answer could not be parsed ({failed})")

        fields = {"query": promql, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}s",
                  "timeout": f"{TIMEOUT_SECONDS:g}s"}
        try:
            result = await self._client.exchange(
                "POST", f"{self.url}/api/v1/query_range", parsed, deadline=TIMEOUT_SECONDS, body_limit=BODY_LIMIT,
                data=fields, headers=self._headers)
            # Only the range asked for: a point a server dates elsewhere is no point of this history.
            return queries.RangeResult(tuple(p for p in result.points if start <= p[0] <= end), result.error)
        except egress.EgressRefused as refused:
            return queries.RangeResult(error=f"refused by the egress policy: {refused}")
        except asyncio.TimeoutError:
            return queries.RangeResult(error=f"{self.url} did not answer within {TIMEOUT_SECONDS:g}s")
        except aiohttp.ClientConnectorError:
            return queries.RangeResult(error=f"cannot connect to {self.url}")
        except (aiohttp.ClientError, ValueError) as error:
            return queries.RangeResult(error=f"{self.url}: {type(error).__name__}")

    async def _parse(self, response: egress.Response, wanted: Wanted | None) -> queries.QueryResult:
        if len(response.body) <= budget.INLINE_PARSE:
            return narrowed(parse(response.status, response.body, response.truncated), wanted)
        # A large answer is parsed in the parser process (answers.py): not on the loop, and
        # its document never in this process. What comes back is only what the round uses.
        frozen = frozenset(wanted) if wanted is not None else None
        try:
            return await self._lane.run(shares.key_for(self.url), parse_narrowed,
                                        response.status, response.body, response.truncated, frozen)
        except answers.ParserFailed as failed:
            return queries.QueryResult(error=f"the answer could not be parsed ({failed})")


def form(promql: str, at: float | None) -> dict[str, str]:
    """An instant query's form. `time` is the instant it is evaluated at: a round sends every
    query with the same one, so the metrics it compares (cpu against latency, one workload
    against another, a rollout's error rate against its latency) are of one moment, not of
    whenever each request happened to arrive. Without it Prometheus takes its own "now"."""
    fields = {"query": promql, "timeout": f"{TIMEOUT_SECONDS:g}s"}
    if at is not None:
        fields["time"] = f"{at:.3f}"
    return fields


def _malformed_range(error: Exception) -> queries.RangeResult:
    return queries.RangeResult(error=f"malformed answer: {boundary.describe(error)}")


@boundary.contained("parsing a Prometheus range answer", _malformed_range)
def parse_range(status: int, body: bytes, truncated: bool = False) -> queries.RangeResult:
    """A range-query answer of at most one series as points; every malformation is a stable
    error text. NaN and ±Inf values are no data (left out); more than RANGE_POINTS points, or
    more than one series, is refused (the query names one workload)."""
    if truncated:
        return queries.RangeResult(error=f"the answer is larger than {BODY_LIMIT / budget.MiB:.1f} MiB")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return queries.RangeResult(error=f"HTTP {status}, not a Prometheus answer (not JSON)")
    if not isinstance(document, dict):
        return queries.RangeResult(error=f"HTTP {status}, not a Prometheus answer")
    if document.get("status") != "success":
        message = document.get("error")
        text = message[:300] if isinstance(message, str) else "no error text"
        return queries.RangeResult(error=f"HTTP {status}: {text}")
    data = document.get("data")
    if not isinstance(data, dict) or data.get("resultType") != "matrix" or not isinstance(data.get("result"), list):
        return queries.RangeResult(error="malformed answer: not a matrix")
    result = data["result"]
    if len(result) > 1:
        return queries.RangeResult(error=f"the answer has {len(result)} series (one expected)")
    if not result:
        return queries.RangeResult()
    item = result[0]
    values = item.get("values") if isinstance(item, dict) else None
    if not isinstance(values, list):
        return queries.RangeResult(error="malformed answer: a series without values")
    if len(values) > RANGE_POINTS:
        return queries.RangeResult(error=f"the answer has more than {RANGE_POINTS} points")
    points = []
    for value in values:
        sample = _sample(value)
        if sample is not None and math.isfinite(sample[1]):
            points.append(sample)
    return queries.RangeResult(points=tuple(points))


def _malformed(error: Exception) -> queries.QueryResult:
    return queries.QueryResult(error=f"malformed answer: {boundary.describe(error)}")


@boundary.contained("parsing a Prometheus answer", _malformed)
def parse(status: int, body: bytes, truncated: bool = False) -> queries.QueryResult:
    """An instant-query answer as a QueryResult; every malformation is a stable error text.

    Inside its own boundary: whatever an answer makes this code raise is this request's
    error, never the round's (the batch parses every request's answer in one place)."""
    if truncated:
        return queries.QueryResult(error=f"the answer is larger than {BODY_LIMIT / budget.MiB:.1f} MiB")
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return queries.QueryResult(error=f"HTTP {status}, not a Prometheus answer (not JSON)")
    if not isinstance(document, dict):
        return queries.QueryResult(error=f"HTTP {status}, not a Prometheus answer")
    if document.get("status") != "success":
        message = document.get("error")
        text = message[:300] if isinstance(message, str) else "no error text"
        # 400 bad_data (and 422 execution errors) are the query's fault: no retry will help.
        return queries.QueryResult(error=f"HTTP {status}: {text}", invalid=status in (400, 422)
                                   or document.get("errorType") == "bad_data")
    data = document.get("data")
    if not isinstance(data, dict):
        return queries.QueryResult(error="malformed answer: no data")
    result = data.get("result")
    if data.get("resultType") == "scalar":
        sample = _sample(result)
        return queries.QueryResult(series=(queries.Series({}, sample[1], sample[0]),)) if sample else \
            queries.QueryResult(error="malformed answer: a scalar without a value")
    if not isinstance(result, list):
        return queries.QueryResult(error="malformed answer: the result is not a list")
    if len(result) > SERIES_LIMIT:
        return queries.QueryResult(error=f"the answer has more than {SERIES_LIMIT} series")
    series = []
    for item in result:
        parsed = _series(item)
        if parsed is not None:
            series.append(parsed)
    if result and not series:
        return queries.QueryResult(error="malformed answer: no series with a labels map and a [time, value] pair")
    return queries.QueryResult(series=tuple(series))


def _sample(value: typing.Any) -> tuple[float, float] | None:
    """(timestamp, value) of a `[time, "value"]` pair, built by core/numbers: a time datetime
    can hold (a timestamp of 1e20 once raised outside this parse, in every tenant's round), a
    value that is a number or ±Inf. NaN is Prometheus' "no data": kept as NaN here, so that
    the source says so for this series (source_prometheus.py) rather than "no series"."""
    if not isinstance(value, list) or len(value) != 2:
        return None
    try:
        timestamp = numbers.finite(value[0], 0.0, numbers.MAX_EPOCH, "timestamp")
        return timestamp, numbers.sample(value[1])
    except numbers.NumberError:
        return None


def _series(item: typing.Any) -> queries.Series | None:
    if not isinstance(item, dict):
        return None
    labels = item.get("metric", {})
    sample = _sample(item.get("value"))
    if not isinstance(labels, dict) or sample is None:
        return None
    return queries.Series(labels={str(k): str(v) for k, v in labels.items()}, value=sample[1], timestamp=sample[0])


def narrowed(result: queries.QueryResult, wanted: Wanted | None) -> queries.QueryResult:
    """Only the series a round can use: one per wanted (namespace, workload) (the last, as
    `queries.index` picks), or the answer's single series (`queries.sample_for` reads an
    answer of one series without those labels as every asker's). So what a round keeps
    grows with the operator's own objects, never with what a Prometheus chose to send."""
    if wanted is None or result.error is not None or len(result.series) <= 1:
        return result
    kept: dict[tuple[str, str], queries.Series] = {}
    for series in result.series:
        key = (series.labels.get("namespace", ""), series.labels.get("workload", ""))
        if key in wanted:
            kept[key] = queries.Series({"namespace": key[0], "workload": key[1]}, series.value, series.timestamp)
    return queries.QueryResult(series=tuple(kept.values()))


def parse_narrowed(status: int, body: bytes, truncated: bool, wanted: Wanted | None) -> queries.QueryResult:
    """`parse` then `narrowed`: what the parser process runs (answers.py)."""
    return narrowed(parse(status, body, truncated), wanted)
