"""The seasonal forecast's history from Prometheus: the range answer's parse, the range query
against a real socket on loopback, the refresh schedule, and status."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import math
import typing

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from controller.adapters import egress
from controller.adapters import prometheus
from controller.adapters import source_history
from controller.api import scalingpolicy as api
from controller.core import forecast
from controller.core import queries
from controller.core import scaling
from controller.core import scaling_status
from controller.core import targets
from controller.operator import seasonal as seasonal_module
from controller.operator import view as view_module

KEY = ("ScalingPolicy", "shop", "web")


def matrix(*series: list[list[typing.Any]]) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "matrix", "result": [
        {"metric": {"namespace": "shop", "workload": "web"}, "values": values} for values in series]}}).encode()


def test_a_range_answer_is_its_finite_points() -> None:
    result = prometheus.parse_range(200, matrix([[1000, "5"], [1300, "NaN"], [1600, "+Inf"], [1900, "7.5"]]))
    assert result.error is None and result.points == ((1000.0, 5.0), (1900.0, 7.5))
    assert prometheus.parse_range(200, matrix()).points == ()  # no series: no history, no error


@pytest.mark.parametrize(("body", "words"), [
    (matrix([[1, "1"]], [[1, "2"]]), "2 series (one expected)"),
    (matrix([[i, "1"] for i in range(prometheus.RANGE_POINTS + 1)]), "more than 4033 points"),
    (b"<html>", "not JSON"),
    (json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode(), "not a matrix"),
    (json.dumps({"status": "error", "error": "bad_data: parse error"}).encode(), "HTTP 400: bad_data"),
])
def test_a_bad_range_answer_is_a_clear_error(body: bytes, words: str) -> None:
    result = prometheus.parse_range(400 if b"error" in body else 200, body)
    assert result.error is not None and words in result.error and result.points == ()


JSON = st.recursive(st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=30)


@hypothesis_settings(max_examples=200, deadline=None)
@given(JSON)
def test_the_range_parse_never_raises(document: typing.Any) -> None:
    for body in (json.dumps(document).encode(), json.dumps(
            {"status": "success", "data": {"resultType": "matrix", "result": [{"values": document}]}}).encode()):
        result = prometheus.parse_range(200, body)
        assert all(math.isfinite(t) and math.isfinite(v) for t, v in result.points)


def test_the_demand_query_names_one_workload_and_cannot_be_escaped() -> None:
    text = queries.demand_query("q", 'sh"op', "web")
    assert text.endswith('"namespace", "sh\\"op", "", ""), "workload", "web", "", "")')
    assert 'kube_pod_status_ready{condition="true"}' in text and "* on (namespace, workload)" in text


async def _no_secret(namespace: str, name: str, key: str) -> str | None:
    return None


def _serve(handler: typing.Callable[[web.Request], typing.Awaitable[web.StreamResponse]]) -> typing.Any:
    async def start() -> tuple[web.AppRunner, str]:
        app = web.Application()
        app.router.add_post("/api/v1/query_range", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return runner, f"http://127.0.0.1:{port}"
    return start


def test_a_range_query_asks_for_one_workloads_demand_and_a_tenants_failure_is_its_own() -> None:
    received: list[dict[str, str]] = []

    async def query_range(request: web.Request) -> web.Response:
        form = dict(await request.post())
        received.append(typing.cast(dict[str, str], form))
        if '"workload", "broken"' in str(form["query"]):
            return web.Response(body=b"not json")
        start, end = float(form["start"]), float(form["end"])
        return web.Response(body=matrix([[start - 300, "1"], [start, "40"], [end, "60"], [end + 1e9, "1"]]))

    async def scenario() -> dict[typing.Hashable, queries.RangeResult]:
        runner, url = await _serve(query_range)()
        client = egress.GuardedClient(allow_loopback=True)
        reader = source_history.RangeHistory(client, _no_secret, "2m")
        try:
            return await reader.read([
                source_history.HistoryRequest(("a",), ("cpu", None), targets.Target("shop", "Deployment", "web",
                                              prometheus_url=url), 86400.0, 4 * 86400.0, 300),
                source_history.HistoryRequest(("b",), ("cpu", None), targets.Target("other", "Deployment", "broken",
                                              prometheus_url=url), 86400.0, 4 * 86400.0, 300),
            ])
        finally:
            await client.close()
            await runner.cleanup()

    results = asyncio.run(scenario())
    assert results[("a",)].points == ((86400.0, 40.0), (4 * 86400.0, 60.0))  # points outside the range left out
    assert results[("b",)].error is not None and "not JSON" in results[("b",)].error
    assert {r["step"] for r in received} == {"300s"} and {r["start"] for r in received} == {"86400.000"}
    assert any('"workload", "web"' in r["query"] for r in received)


def settings(**overrides: typing.Any) -> dict[str, typing.Any]:
    return {"enabled": True, "refreshSeconds": 3600, **overrides}


def spec(**seasonal: typing.Any) -> api.ScalingPolicySpec:
    return api.ScalingPolicySpec.model_validate({
        "targetRef": {"monitoredService": "web"}, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
        "predictive": {"seasonal": settings(**seasonal)}})


class Reader:
    def __init__(self) -> None:
        self.asked: list[source_history.HistoryRequest] = []

    async def read(self, requests: typing.Sequence[source_history.HistoryRequest]) -> dict[typing.Hashable, queries.RangeResult]:
        self.asked += requests
        return {r.owner: queries.RangeResult(points=((r.end - 300, 50.0), (r.end, 60.0))) for r in requests}


def test_the_history_is_asked_at_start_then_once_per_refresh_and_only_of_prometheus() -> None:
    view = view_module.View()
    reader = Reader()
    clock = [100.0]
    histories = seasonal_module.SeasonalHistories(view, reader, clock=lambda: 1_000_000.0 + clock[0],  # type: ignore[arg-type]
                                                  monotonic=lambda: clock[0])
    prometheus_target = targets.Target("shop", "Deployment", "web", prometheus_url="http://prometheus:9090")
    metrics_api_target = targets.Target("shop", "Deployment", "api")
    other = ("ScalingPolicy", "shop", "api")

    async def rounds() -> None:
        histories.refresh({KEY: spec(), other: spec()}, {KEY: prometheus_target, other: metrics_api_target})
        assert histories.task is not None
        await histories.task
        clock[0] += 1800
        histories.refresh({KEY: spec()}, {KEY: prometheus_target})  # within refreshSeconds: not again
        clock[0] += 1801
        histories.refresh({KEY: spec()}, {KEY: prometheus_target})
        assert histories.task is not None
        await histories.task

    asyncio.run(rounds())
    assert [r.owner for r in reader.asked] == [KEY, KEY]  # the metrics API keeps no history: never asked
    first = reader.asked[0]
    assert (first.step, first.end - first.start) == (300, 4 * 86400 - 300) and first.end % 300 == 0
    merged = histories.merged(KEY, spec(), None)
    assert merged is not None and merged.at(int(reader.asked[1].end // 300)) == 60.0
    assert histories.merged(KEY, spec(), merged) is merged  # nothing new arrived


def test_a_failed_history_read_says_so_and_is_tried_again_within_minutes() -> None:
    view = view_module.View()
    reader = Reader()
    clock = [0.0]
    histories = seasonal_module.SeasonalHistories(view, reader, clock=lambda: 1_000_000.0,  # type: ignore[arg-type]
                                                  monotonic=lambda: clock[0])
    histories.asked[KEY] = 0.0
    histories.arrived[KEY] = queries.RangeResult(error="cannot connect to http://prometheus:9090")
    assert histories.merged(KEY, spec(), None) is None
    assert histories.error(KEY) == "cannot connect to http://prometheus:9090"
    target = {KEY: targets.Target("shop", "Deployment", "web", prometheus_url="http://prometheus:9090")}

    async def rounds() -> None:
        clock[0] = seasonal_module.RETRY_SECONDS - 1
        histories.refresh({KEY: spec()}, target)
        assert histories.task is None  # not yet
        clock[0] = seasonal_module.RETRY_SECONDS
        histories.refresh({KEY: spec()}, target)
        assert histories.task is not None
        await histories.task

    asyncio.run(rounds())
    assert [r.owner for r in reader.asked] == [KEY]
    assert histories.merged(KEY, spec(), None) is not None and histories.error(KEY) is None


NOW = datetime.datetime(2026, 11, 2, 12, tzinfo=datetime.timezone.utc)


def test_status_says_whether_the_forecast_is_trusted_and_why() -> None:
    policy = spec()
    samples = {("cpu", None): scaling.Sample(50.0, NOW, source="prometheus")}
    outcome = scaling.decide(policy, 4, samples, scaling.State(observing_since=NOW), NOW)
    assert outcome.forecast is not None and outcome.forecast.reason == forecast.WARMING_UP
    fields, _ = scaling_status.assess(scaling_status.Record(outcome, NOW), {})
    assert fields["seasonalForecast"] == {"trusted": False, "reason": "WarmingUp",
                                          "message": "warming up: 0 of 4 periods of history (needs 2)"}
    api.SeasonalForecast.model_validate(fields["seasonalForecast"])
    same, _ = scaling_status.assess(scaling_status.Record(outcome, NOW), {"seasonalForecast": fields["seasonalForecast"]})
    assert "seasonalForecast" not in same  # unchanged: not written again
    # The history survives the status round trip in memory (state_from_status keeps it).
    memory = scaling.State(observing_since=NOW, seasonal=outcome.seasonal, forecast=outcome.forecast)
    state = scaling_status.state_from_status({}, NOW, memory)
    assert state.seasonal is outcome.seasonal and state.forecast is outcome.forecast
    # Off: the field is removed.
    off = scaling.decide(spec(enabled=False), 4, samples, scaling.State(observing_since=NOW), NOW)
    cleared, _ = scaling_status.assess(scaling_status.Record(off, NOW), {"seasonalForecast": fields["seasonalForecast"]})
    assert cleared["seasonalForecast"] is None


def test_a_new_term_of_leadership_asks_for_the_history_again() -> None:
    view = view_module.View()
    reader = Reader()
    histories = seasonal_module.SeasonalHistories(view, reader, clock=lambda: 1_000_000.0,  # type: ignore[arg-type]
                                                  monotonic=lambda: 10.0)
    target = {KEY: targets.Target("shop", "Deployment", "web", prometheus_url="http://prometheus:9090")}

    async def term() -> forecast.History | None:
        histories.refresh({KEY: spec()}, target)
        assert histories.task is not None
        await histories.task
        return histories.merged(KEY, spec(), None)

    history = asyncio.run(term())
    assert history is not None and histories.merged(KEY, spec(), history) is history  # kept: not asked again
    histories.refresh({KEY: spec()}, target)
    assert len(reader.asked) == 1
    # The Lease was lost and won again: the scaler's memory (the history) is gone, this is not.
    assert histories.merged(KEY, spec(), None) is None
    assert asyncio.run(term()) is not None and len(reader.asked) == 2


def test_status_never_carries_a_non_finite_forecast() -> None:
    samples = {("cpu", None): scaling.Sample(50.0, NOW, source="prometheus")}
    outcome = scaling.decide(spec(), 4, samples, scaling.State(observing_since=NOW), NOW)
    for demand, error in ((math.inf, math.nan), (math.nan, math.inf), (1e308 * 10, 0.5)):
        made = forecast.Forecast(False, forecast.MISSED, "x" * 2000, demand, error)
        fields, _ = scaling_status.assess(scaling_status.Record(dataclasses.replace(outcome, forecast=made), NOW), {})
        entry = fields["seasonalForecast"]
        assert "demand" not in entry and len(entry["message"]) == 512
        assert all(math.isfinite(v) for v in entry.values() if isinstance(v, float))
        api.SeasonalForecast.model_validate(entry)
