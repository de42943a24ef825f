"""A tenant's own PromQL never reaches the operator's shared Prometheus (targets.TENANT_QUERIES_RULE).

The operator's --prometheus-url holds every namespace's series; a MonitoredService's custom
queries and query overrides are written by whoever may write one. They are sent only to a
Prometheus the service names itself, unless the platform team starts the operator with
--allow-tenant-queries-on-default-prometheus. The default queries (grouped by namespace and
workload, each tenant given its own series only) still go to the shared one.
"""

from __future__ import annotations

import asyncio
import datetime
import typing

import pytest
from aiohttp import web

from controller import reasons
from controller.adapters import egress
from controller.adapters import metric_source
from controller.adapters import source_prometheus
from controller.api import monitoredservice
from controller.core import snapshot
from controller.core import status as status_module
from controller.core import targets

PEEK = 'sum(rate(http_requests_total{namespace="tenant-b"}[5m]))'
OVERRIDE = 'sum(container_cpu_usage_seconds_total{namespace="tenant-b"})'
SHARED = "http://prometheus.monitoring:9090"


def _spec(prometheus: str | None = None) -> monitoredservice.MonitoredServiceSpec:
    metrics: dict[str, typing.Any] = {"custom": [{"name": "peek", "query": PEEK}], "queries": {"cpu": OVERRIDE}}
    if prometheus is not None:
        metrics["prometheus"] = {"url": prometheus}
    return monitoredservice.MonitoredServiceSpec.model_validate(
        {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}}, "metrics": metrics})


@pytest.mark.parametrize(("own", "allowed", "refused"), [
    (None, False, True),  # the operator's shared Prometheus
    (SHARED, False, True),  # its address written into the service is still the shared one
    ("https://Prometheus.Monitoring.:9090/some/path", False, True),
    ("http://prometheus.monitoring", False, False),  # port 80: another server
    ("http://prometheus.tenant-a:9090", False, False),  # the tenant's own
    (None, True, False),  # the platform team said so
])
def test_a_tenants_own_queries_go_only_to_a_prometheus_it_names(own: str | None, allowed: bool, refused: bool) -> None:
    target = targets.of_service("tenant-a", _spec(own), SHARED)
    for metric in (("custom", "peek"), ("cpu", None)):
        reason = target.refused(metric, allowed)
        assert (reason == targets.TENANT_QUERIES_RULE) is refused, (own, allowed, metric, reason)
    for metric in (("memory", None), ("errorRate", None)):  # the operator's own queries, scoped by it
        assert target.refused(metric, allowed) is None
    assert targets.of_service("tenant-a", _spec(own), None).refused(("custom", "peek")) is None  # no shared one


def _read(own: str | None, allowed: bool) -> tuple[dict[typing.Any, typing.Any], list[str]]:
    """Tenant A's custom, overridden and default metrics read through the batched source, with
    the operator's Prometheus (and the tenant's own, when `own`) on loopback."""
    received: list[str] = []

    async def prometheus(request: web.Request) -> web.Response:
        received.append(str((await request.post()).get("query", "")))
        return web.json_response({"status": "success", "data": {"resultType": "vector", "result": [
            {"metric": {}, "value": [1700000000, "42"]}]}})

    async def scenario() -> dict[typing.Any, typing.Any]:
        app = web.Application()
        app.router.add_post("/api/v1/query", prometheus)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        client = egress.GuardedClient(True, limit=8)

        async def no_secret(*_: str) -> None:
            return None

        try:
            shared = f"http://127.0.0.1:{port}"
            target = targets.of_service("tenant-a", _spec(own and f"http://localhost:{port}"), shared)
            flag = {"tenant_queries_on_default": True} if allowed else {}  # off: as cli.py builds it by default
            source = source_prometheus.BatchedPrometheus(client, no_secret, "2m", lambda _: None, **flag)
            owner = ("MonitoredService", "tenant-a", "web")
            metrics = [("custom", "peek"), ("cpu", None), ("memory", None)]
            samples = await source.read([metric_source.Request(owner, metric, target) for metric in metrics])
            return samples[owner]
        finally:
            await client.close()
            await runner.cleanup()

    return asyncio.run(scenario()), received


def test_a_custom_query_for_another_namespace_never_reaches_the_shared_prometheus() -> None:
    samples, received = _read(None, False)
    assert PEEK not in received and OVERRIDE not in received, received
    assert len(received) == 1 and "container_memory_working_set_bytes" in received[0]  # the default query went
    assert samples[("memory", None)].value == 42
    for metric in (("custom", "peek"), ("cpu", None)):
        assert samples[metric].value is None and samples[metric].error == "invalid query: " + targets.TENANT_QUERIES_RULE
    # The service is told, by its condition and a Warning Event: not a silent skip.
    change = snapshot.condition(samples)
    assert (change.type, change.status, change.reason) == (reasons.METRICS_AVAILABLE, "False",
                                                            reasons.INVALID_METRIC_QUERY)
    assert "spec.metrics.prometheus.url" in change.message and "peek" in change.message, change.message
    now = datetime.datetime(2026, 6, 1, tzinfo=datetime.timezone.utc)
    written = [{"type": change.type, "status": change.status, "reason": change.reason, "message": change.message,
                "lastTransitionTime": now.isoformat()}]
    events = status_module.transition_events([], written)
    assert [(e.type, e.reason) for e in events] == [("Warning", reasons.INVALID_METRIC_QUERY)], events
    assert "--allow-tenant-queries-on-default-prometheus" in events[0].message


@pytest.mark.parametrize(("own", "allowed"), [("own", False), (None, True)])
def test_a_tenants_queries_go_to_its_own_prometheus_or_where_the_platform_team_allows(own: str | None,
                                                                                       allowed: bool) -> None:
    samples, received = _read(own, allowed)
    assert PEEK in received and OVERRIDE in received, received
    assert all(sample.value == 42 for sample in samples.values()), samples
