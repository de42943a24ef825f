"""The Kubernetes metrics API (`metrics.k8s.io/v1beta1`, served by metrics-server) as a
metric source for cpu and memory, as HPA reads it: no Prometheus needed.

One round costs two list calls per namespace, whatever the number of workloads in it: the
namespace's running pods (readiness and requests) and its PodMetrics (usage); each
workload's value is computed from its own pods (core/utilization.py).

The pods are read in pages of `budget.METRICS_API_PAGE_PODS`, each page's bytes capped
(`budget.METRICS_API_PAGE`) and parsed one page at a time, keeping only what utilization needs:
a tenant's fat annotations cost at most one page (a 5 MB list of 20 pods used to add 456 MiB at
600 pods and stall the loop 1.4 s). A page past the cap, or more Running pods than
`budget.METRICS_API_PODS`, is that namespace's error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import typing

import kubernetes

from controller.adapters import boundary
from controller.adapters import budget
from controller.adapters import metric_source
from controller.core import numbers
from controller.core import scaling
from controller.core import selectors
from controller.core import sources
from controller.core import timestamps
from controller.core import utilization

logger = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10.0
RunBlocking = typing.Callable[..., typing.Awaitable[typing.Any]]
READ_CHUNK = 64 * 1024
_PARSING = threading.Lock()  # one page parsed at a time, whichever namespace (budget.py)


class PodListError(Exception):
    """A namespace's Running pods past the caps (adapters/budget.py): that namespace's error."""


class MetricsApiSource:
    name = sources.METRICS_API

    def __init__(self, api_client: kubernetes.client.ApiClient, run_blocking: RunBlocking) -> None:
        self._core: typing.Any = kubernetes.client.CoreV1Api(api_client)
        self._custom: typing.Any = kubernetes.client.CustomObjectsApi(api_client)
        self._run = run_blocking

    async def read(self, requests: typing.Sequence[metric_source.Request]) -> metric_source.Samples:
        namespaces = sorted({r.target.namespace for r in requests})
        answers = await asyncio.gather(*(self._namespace(namespace) for namespace in namespaces))
        by_namespace = dict(zip(namespaces, answers, strict=True))
        samples: metric_source.Samples = {}
        # A workload's pods are picked out of its namespace once per round, not once per metric.
        selected: dict[tuple[str, selectors.Selector], list[utilization.Pod]] = {}
        for request in requests:
            try:
                answer = by_namespace[request.target.namespace]
                if isinstance(answer, str):
                    sample = scaling.Sample(None, None, answer)
                else:
                    pods, usage = answer
                    key = (request.target.namespace, request.selector)
                    if key not in selected:
                        selected[key] = [pod for pod in pods if pod.ready and selectors.matches(request.selector, pod.labels)]
                    sample = utilization.utilization(request.metric[0], request.selector, selected[key], usage)
            except Exception as failure:  # one workload's pods are its own problem
                sample = scaling.Sample(None, None, boundary.failed(failure, "a metrics API sample", request.owner))
            samples.setdefault(request.owner, {})[request.metric] = sample
        return samples

    async def _namespace(self, namespace: str) -> tuple[list[utilization.Pod], dict[str, utilization.Usage]] | str:
        try:
            pods, usage = await asyncio.gather(self._run(self._pods, namespace), self._run(self._usage, namespace))
        except kubernetes.client.ApiException as error:
            return _describe(error, namespace)
        except PodListError as error:
            return str(error)
        except Exception as error:  # a broken answer is this namespace's error, never the round's
            logger.warning("metrics API read in %s failed: %s", namespace, type(error).__name__)
            return f"metrics.k8s.io in {namespace}: {type(error).__name__}"
        return pods, usage

    def _pods(self, namespace: str) -> list[utilization.Pod]:
        pods: list[utilization.Pod] = []
        token: str | None = None
        while True:
            paging = {"_continue": token} if token else {}
            response = self._core.list_namespaced_pod(
                namespace, field_selector="status.phase=Running", limit=budget.METRICS_API_PAGE_PODS,
                _preload_content=False, _request_timeout=TIMEOUT_SECONDS, **paging)
            body = _capped(response, budget.METRICS_API_PAGE)
            if body is None:
                raise PodListError(f"the Running pods of {namespace} fill more than {budget.METRICS_API_PAGE // 1024} "
                                   f"KiB in a page of {budget.METRICS_API_PAGE_PODS} (annotations?)")
            with _PARSING:  # the page and its parsed document, then only the pods' needed fields
                page = _mapping(json.loads(body))
                del body
                pods.extend(pod_of(item) for item in _items(page.get("items")))
                after = _mapping(page.get("metadata")).get("continue")
                del page
            if len(pods) > budget.METRICS_API_PODS:
                raise PodListError(f"{namespace} has more than {budget.METRICS_API_PODS} Running pods")
            if not after or not isinstance(after, str):
                return pods
            token = after

    def _usage(self, namespace: str) -> dict[str, utilization.Usage]:
        document = self._custom.list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", namespace, "pods", _request_timeout=TIMEOUT_SECONDS)
        return {str(_mapping(item.get("metadata")).get("name")): usage_of(item)
                for item in _items(_mapping(document).get("items"))}


def _capped(response: typing.Any, cap: int) -> bytearray | None:
    """A urllib3 response's body, or None once it passes `cap` bytes (never more held)."""
    body = bytearray()
    try:
        while chunk := response.read(READ_CHUNK):
            body += chunk
            if len(body) > cap:
                response.close()  # the rest is never read: the connection is not reused
                return None
        return body
    finally:
        response.release_conn()


def _describe(error: kubernetes.client.ApiException, namespace: str) -> str:
    # Stable texts: a condition message must not change every round.
    if error.status == 404:
        return "metrics.k8s.io is not served (is metrics-server installed?)"
    if error.status == 403:
        return f"forbidden to read pods or pods.metrics.k8s.io in {namespace}"
    return f"metrics.k8s.io in {namespace}: HTTP {error.status}"


def _quantity(text: typing.Any) -> float | None:
    """A quantity as a finite, non-negative number; anything else is absent (never a crash)."""
    if not isinstance(text, (str, int, float)):
        return None
    try:
        value = float(kubernetes.utils.parse_quantity(text))
    except (ValueError, TypeError, ArithmeticError):
        return None
    return numbers.finite_or_none(value, 0.0)  # through the one constructor: finite, not negative


def _mapping(value: typing.Any) -> typing.Mapping[str, typing.Any]:
    return value if isinstance(value, dict) else {}


def _items(value: typing.Any) -> list[typing.Mapping[str, typing.Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def pod_of(item: typing.Mapping[str, typing.Any]) -> utilization.Pod:
    """A pod as far as utilization needs it; a malformed field reads as absent."""
    meta, spec, status = _mapping(item.get("metadata")), _mapping(item.get("spec")), _mapping(item.get("status"))
    requests: dict[str, float | None] = {}
    containers = _items(spec.get("containers"))
    for resource in utilization.RESOURCES:
        values = [_quantity(_mapping(_mapping(c.get("resources")).get("requests")).get(resource)) for c in containers]
        # A sum of finite quantities can still overflow: then it is absent, like a missing request.
        requests[resource] = None if not values or None in values else numbers.finite_or_none(
            sum(v for v in values if v is not None))
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in _items(status.get("conditions")))
    labels = {str(k): str(v) for k, v in _mapping(meta.get("labels")).items()}
    return utilization.Pod(str(meta.get("name", "")), labels, ready, requests)


def usage_of(item: typing.Mapping[str, typing.Any]) -> utilization.Usage:
    totals: dict[str, float] = {}
    for container in _items(item.get("containers")):
        for resource in utilization.RESOURCES:
            value = _quantity(_mapping(container.get("usage")).get(resource))
            total = numbers.finite_or_none(totals.get(resource, 0.0) + value) if value is not None else None
            if total is not None:
                totals[resource] = total
    stamp = item.get("timestamp")
    return utilization.Usage(totals, timestamps.or_none(stamp))
