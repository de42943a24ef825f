"""Which PromQL to send: default queries, per-service overrides, and the batch plan.

Evaluation is batched: every policy that uses the same query text against the same
Prometheus shares one request per round. Default queries group by (namespace, workload),
so one query per metric kind answers every workload at once; the workload label is
derived from pod names (Deployment `<name>-<hash>-<suffix>`, StatefulSet `<name>-<n>`).
"""

from __future__ import annotations

import dataclasses
import math
import re
import typing

from controller.core import scaling

POD_TO_WORKLOAD = (
    'label_replace(label_replace({expr}, "workload", "$1", "pod", "^(.+)-[0-9]+$"), '
    '"workload", "$1", "pod", "^(.+)-[a-z0-9]{{6,10}}-[a-z0-9]{{5}}$")'
)
BY = "sum by (namespace, workload)"


def _w(expr: str) -> str:
    return POD_TO_WORKLOAD.format(expr=expr)


_REQUESTS = _w("rate(http_requests_total[$window])")
_ERRORS = _w('rate(http_requests_total{code=~"5.."}[$window])')
_CPU_USED = _w('rate(container_cpu_usage_seconds_total{container!="",pod!=""}[$window])')
_CPU_REQUESTED = _w('kube_pod_container_resource_requests{resource="cpu"}')
_MEMORY_USED = _w('container_memory_working_set_bytes{container!="",pod!=""}')
_MEMORY_REQUESTED = _w('kube_pod_container_resource_requests{resource="memory"}')
_LATENCY_BUCKETS = _w("rate(http_request_duration_seconds_bucket[$window])")
_IDLE_ZERO = f"({BY} ({_REQUESTS}) * 0)"  # an idle workload reads 0, not "no data"

# cAdvisor + kube-state-metrics for cpu/memory; conventional HTTP instrumentation for the rest.
DEFAULT_QUERIES: dict[str, str] = {
    "cpu": f"100 * {BY} ({_CPU_USED}) / {BY} ({_CPU_REQUESTED})",
    "memory": f"100 * {BY} ({_MEMORY_USED}) / {BY} ({_MEMORY_REQUESTED})",
    "latencyP95": f"(1000 * histogram_quantile(0.95, sum by (namespace, workload, le) ({_LATENCY_BUCKETS})) >= 0)"
                  f" or {_IDLE_ZERO}",
    "errorRate": f"100 * ({BY} ({_ERRORS}) or {_IDLE_ZERO}) / clamp_min({BY} ({_REQUESTS}), 0.001)",
    "requestRate": f"{BY} ({_REQUESTS})",
    "requestQueue": f"{BY} ({_w('http_requests_queued')})",
}


@dataclasses.dataclass(frozen=True)
class Need:
    """One value a policy needs this round."""

    owner: typing.Hashable
    metric: scaling.MetricKey
    namespace: str
    workload: str


@dataclasses.dataclass(frozen=True)
class Series:
    labels: typing.Mapping[str, str]
    value: float
    timestamp: float


@dataclasses.dataclass(frozen=True)
class QueryResult:
    series: tuple[Series, ...] = ()
    error: str | None = None
    invalid: bool = False  # Prometheus refused the query itself (HTTP 400)


@dataclasses.dataclass(frozen=True)
class RangeResult:
    """A range query's one series: (Unix seconds, value) points (no series: none)."""

    points: tuple[tuple[float, float], ...] = ()
    error: str | None = None


PLACEHOLDER = re.compile(r"\$(window|namespace|workload)\b")


def label_value(text: str) -> str:
    """`text` as the inside of a PromQL double-quoted string: it cannot end the string."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def resolve(
    metric: scaling.MetricKey,
    overrides: typing.Mapping[str, str | None],
    custom: typing.Mapping[str, str],
    window: str,
    namespace: str = "",
    workload: str = "",
) -> str | None:
    """The query text for a metric: the service's override, else the default; None if unknown.

    `$window` becomes the rate window; `$namespace` and `$workload` the service's namespace and
    workload name, escaped for a label matcher's string (`{namespace="$namespace"}`), in one
    pass so that a substituted value is never expanded again. A query that uses them is the
    service's own (not shared in a batch); one that does not is sent once for all services.
    """
    kind, name = metric
    if kind == "custom":
        text = custom.get(name or "")
    else:
        text = overrides.get(kind) or DEFAULT_QUERIES.get(kind)
    if not text:
        return None
    values = {"window": window, "namespace": label_value(namespace), "workload": label_value(workload)}
    return PLACEHOLDER.sub(lambda match: values[match.group(1)], text)


SourceT = typing.TypeVar("SourceT", bound=typing.Hashable)


def plan(needs: typing.Iterable[tuple[SourceT, str, Need]]) -> dict[tuple[SourceT, str], list[Need]]:
    """Group (source, query text, need) so that each distinct query is sent once per source
    (a source is a Prometheus together with the credentials it is asked with)."""
    grouped: dict[tuple[SourceT, str], list[Need]] = {}
    for url, query, need in needs:
        grouped.setdefault((url, query), []).append(need)
    return grouped


def index(result: QueryResult) -> dict[tuple[str, str], Series]:
    return {(s.labels.get("namespace", ""), s.labels.get("workload", "")): s for s in result.series}


def sample_for(need: Need, result: QueryResult, indexed: typing.Mapping[tuple[str, str], Series],
               to_time: typing.Callable[[float], typing.Any]) -> scaling.Sample:
    if result.error is not None:
        prefix = "invalid query: " if result.invalid else "query failed: "
        return scaling.Sample(None, None, prefix + result.error)
    series = indexed.get((need.namespace, need.workload))
    if series is None and len(result.series) == 1 and not {"namespace", "workload"} & result.series[0].labels.keys():
        series = result.series[0]  # a query answering one value for this service alone
    if series is None:
        return scaling.Sample(None, None)
    value = series.value if not math.isnan(series.value) else float("nan")
    return scaling.Sample(value, to_time(series.timestamp))


_READY = _w('kube_pod_status_ready{condition="true"}')
READY_PODS = f"{BY} ({_READY})"


def demand_query(query: str, namespace: str, workload: str) -> str:
    """The demand of one workload (the metric × its ready pods, as the core's demand history),
    for the seasonal forecast's range query: `query` answers per (namespace, workload), the
    ready pods come from kube-state-metrics, and the answer is narrowed to this workload in the
    query itself (`and on` a vector of its labels), so a range answer is one series."""
    only = (f'label_replace(label_replace(vector(1), "namespace", "{label_value(namespace)}", "", ""), '
            f'"workload", "{label_value(workload)}", "", "")')
    return f"(({query}) * on (namespace, workload) {READY_PODS}) and on (namespace, workload) {only}"
