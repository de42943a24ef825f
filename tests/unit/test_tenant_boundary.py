"""One tenant's answer never breaks another tenant's round (issue 21): each finding driven
through the real adapters and loops with tenant A hostile and tenant B ordinary, and a
search over the operator's loops for a tenant iterated outside a boundary."""

from __future__ import annotations

import ast
import asyncio
import datetime
import json
import math
import pathlib
import typing

import hypothesis
import kubernetes
import pytest
from hypothesis import strategies as st

from controller.adapters import actuator_scale
from controller.adapters import boundary
from controller.adapters import egress
from controller.adapters import kubernetes_rollback
from controller.adapters import metric_source
from controller.adapters import prometheus
from controller.adapters import railway
from controller.adapters import source_history
from controller.adapters import source_metrics_api
from controller.adapters import source_prometheus
from controller.api import alertpolicy
from controller.core import alerting
from controller.core import bounded
from controller.core import scaling
from controller.core import snapshot
from controller.core import targets
from controller.core import timestamps
from controller.operator import alerter as alerter_module
from controller.operator import guard as guard_module
from controller.operator import loop
from controller.operator import railway as railway_module
from controller.operator import scaler as scaler_module
from controller.operator import snapshots as snapshots_module
from controller.operator import view as view_module

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)
A, B = "tenant-a", "tenant-b"
PROM_A, PROM_B = "http://prometheus-a.example:9090", "http://prometheus-b.example:9090"


class FakeHttp:
    """The guarded client's seam: each URL answers its body (no socket: hundreds of examples)."""

    def __init__(self, bodies: dict[str, bytes]) -> None:
        self.bodies = bodies

    async def request(self, method: str, url: str, **_: typing.Any) -> egress.Response:
        for prefix, body in self.bodies.items():
            if url.startswith(prefix):
                return egress.Response(200, body, False)
        raise AssertionError(url)

    async def exchange(self, method: str, url: str, then: typing.Callable[[egress.Response], typing.Awaitable[typing.Any]],
                       **kwargs: typing.Any) -> typing.Any:
        return await then(await self.request(method, url, **kwargs))


def vector(namespace: str, timestamp: typing.Any, value: typing.Any) -> bytes:
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"namespace": namespace, "workload": "web"}, "value": [timestamp, value]}]}}).encode()


def prometheus_round(answer_a: bytes) -> metric_source.Samples:
    """One batched read of (cpu) for A and B, each against its own Prometheus."""
    source = source_prometheus.BatchedPrometheus(
        FakeHttp({PROM_A: answer_a, PROM_B: vector(B, NOW.timestamp(), "42")}),  # type: ignore[arg-type]
        lambda *_: None, "2m", lambda _: None)  # type: ignore[arg-type, return-value]
    requests = [metric_source.Request(tenant, ("cpu", None), targets.Target(tenant, "Deployment", "web", url))
                for tenant, url in ((A, PROM_A), (B, PROM_B))]
    return asyncio.run(source.read(requests))


B_SAMPLE = scaling.Sample(42.0, NOW)


@pytest.mark.parametrize("timestamp", [1e20, -1, 1e308, "1e20", 253402300800])
def test_a_prometheus_timestamp_datetime_cannot_hold_is_that_tenants_error(timestamp: typing.Any) -> None:
    """The finding: a sample time of 1e20 raised OverflowError outside the per-source guard
    (converting it to a datetime, after the parse) and every request of the round failed."""
    samples = prometheus_round(vector(A, timestamp, "1"))
    assert samples[B][("cpu", None)] == B_SAMPLE
    assert samples[A][("cpu", None)].value is None and samples[A][("cpu", None)].error


def test_prometheus_nan_is_no_data_and_inf_is_a_value() -> None:
    nan = prometheus_round(vector(A, NOW.timestamp(), "NaN"))[A][("cpu", None)]
    assert nan.value is None and nan.error == source_prometheus.NAN
    inf = prometheus_round(vector(A, NOW.timestamp(), "+Inf"))[A][("cpu", None)]
    assert inf.value == math.inf and inf.error is None


JSONISH = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.sampled_from([10**400, -(10**400), 1e20, 2**63]),
              st.floats(), st.text(max_size=8), st.sampled_from(["NaN", "+Inf", "-Inf", "1e400", "①"])),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(
        st.sampled_from(["status", "data", "resultType", "result", "metric", "value", "namespace", "workload", "x",
                         "serviceInstances", "edges", "node", "numReplicas", "serviceId", "serviceName", "domains"]),
        children, max_size=4),
    max_leaves=12)


def _dumps(document: typing.Any) -> bytes:
    return json.dumps(document, default=str).encode()  # NaN and Infinity as Python writes them


@st.composite
def prometheus_answers(draw: st.DrawFn) -> bytes:
    """Answers of any shape, and well-shaped ones whose time and value are anything."""
    if draw(st.booleans()):
        return _dumps(draw(JSONISH))
    return _dumps({"status": "success", "data": {"resultType": draw(st.sampled_from(["vector", "scalar", "matrix"])),
                   "result": [{"metric": {"namespace": A, "workload": "web"}, "value": [draw(JSONISH), draw(JSONISH)]}]
                   if draw(st.booleans()) else [draw(JSONISH), draw(JSONISH)]}})


@hypothesis.given(prometheus_answers())
@hypothesis.settings(max_examples=200, deadline=None, database=None)
@hypothesis.example(vector(A, 1e20, "1"))
@hypothesis.example(vector(A, 10**400, 10**400))
@hypothesis.example(b'{"status": "success", "data": {"resultType": "scalar", "result": [1e999, "NaN"]}}')
@hypothesis.example(b"[" * 100000)
def test_no_prometheus_answer_of_tenant_a_changes_tenant_bs_sample(answer: bytes) -> None:
    samples = prometheus_round(answer)
    assert samples[B][("cpu", None)] == B_SAMPLE
    a = samples[A][("cpu", None)]
    assert (a.value is None) or not math.isnan(a.value)  # NaN is never a value
    assert a.sampled_at is None or a.sampled_at.year <= 9999


@hypothesis.given(JSONISH)
@hypothesis.settings(max_examples=200, deadline=None, database=None)
def test_the_prometheus_parse_never_raises(document: typing.Any) -> None:
    result = prometheus.parse(200, _dumps(document))
    assert isinstance(result, prometheus.queries.QueryResult)


# -- Railway: a number past float's range in one service's answer -------------------------------

def railway_answer(cpu: typing.Any, replicas: typing.Any = 2) -> bytes:
    ts = int(NOW.timestamp())
    return json.dumps({"data": {
        "serviceInstance": {"serviceName": "web", "numReplicas": replicas, "latestDeployment": {"id": "d1", "status": "SUCCESS"}},
        "metrics": [{"measurement": "CPU_USAGE", "values": [{"ts": ts, "value": cpu}]},
                    {"measurement": "CPU_LIMIT", "values": [{"ts": ts, "value": 2}]}],
        "httpDurationMetrics": {"samples": [{"ts": ts, "p95": cpu}]},
        "httpMetricsGroupedByStatus": [{"statusCode": 500, "samples": [{"ts": ts, "value": cpu}]}]}}).encode()


class Marks:
    def __init__(self) -> None:
        self.marked: set[typing.Any] = set()

    def mark(self, *keys: typing.Any) -> None:
        self.marked.update(keys)


class Secrets:
    def secret_value(self, namespace: str, name: str, key: str) -> str:
        return f"token-{namespace}"


def railway_service(namespace: str, endpoint: str) -> dict[str, typing.Any]:
    return {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
            "metadata": {"namespace": namespace, "name": "web", "generation": 1, "resourceVersion": "1", "uid": namespace},
            "spec": {"target": {"railway": {"projectId": "p-1", "environmentId": "env-1", "serviceId": "svc-1", "endpoint": endpoint,
                                            "tokenSecretRef": {"name": "railway", "key": "token"}}}}}


def railway_poll(answer_a: bytes) -> railway_module.RailwayWatcher:
    view = view_module.View()
    endpoint_a, endpoint_b = "https://railway-a.example/graphql", "https://railway-b.example/graphql"
    view.upsert(railway_service(A, endpoint_a))
    view.upsert(railway_service(B, endpoint_b))
    watcher = railway_module.RailwayWatcher(view, Marks(), Secrets(), "https://backboard.example/graphql",  # type: ignore[arg-type]
                                            clock=lambda: NOW)
    watcher._http = FakeHttp({endpoint_a: answer_a, endpoint_b: railway_answer(0.5)})  # type: ignore[assignment]
    asyncio.run(watcher.poll())
    return watcher


@pytest.mark.parametrize("cpu,replicas", [(10**400, 2), (2, 10**400), (-(10**400), 2), (1e308, 2)])
def test_a_railway_number_past_floats_range_is_that_services_error(cpu: typing.Any, replicas: typing.Any) -> None:
    """The finding: `10**400` made math.isfinite raise OverflowError and the whole poll stopped."""
    watcher = railway_poll(railway_answer(cpu, replicas))
    b = watcher.samples(B, "env-1/svc-1")
    assert b is not None and b[("cpu", None)].value == 25.0, "B is polled and reported"
    a = watcher.samples(A, "env-1/svc-1")
    error = watcher.view.world.platform_errors.get((A, "Railway", "env-1/svc-1"))
    assert (a is not None and a[("cpu", None)].value is None) or error is not None
    for sample in (a or {}).values():
        assert sample.value is None or math.isfinite(sample.value)


@hypothesis.given(JSONISH)
@hypothesis.settings(max_examples=150, deadline=None, database=None)
@hypothesis.example(json.loads(railway_answer(10**400)))  # the finding, kept as an explicit example
def test_no_railway_answer_of_service_a_changes_service_bs_poll(document: typing.Any) -> None:
    watcher = railway_poll(_dumps({"data": document}) if not isinstance(document, dict) or "data" not in document
                           else _dumps(document))
    b = watcher.samples(B, "env-1/svc-1")
    assert b is not None and b[("cpu", None)].value == 25.0


@hypothesis.given(JSONISH, JSONISH)
@hypothesis.settings(max_examples=100, deadline=None, database=None)
@hypothesis.example("1e308", "1e308")  # two containers of 1e308: the sum overflowed to inf
def test_metrics_api_documents_of_any_shape_parse_without_an_exception(pod: typing.Any, usage: typing.Any) -> None:
    for document in (pod, {"metadata": {"name": "p"}, "spec": {"containers": [{"resources": {"requests": {"cpu": pod}}}] * 2}},
                     {"containers": [{"usage": {"cpu": usage, "memory": usage}}] * 2, "timestamp": usage}):
        if isinstance(document, dict):
            parsed_pod, parsed_usage = source_metrics_api.pod_of(document), source_metrics_api.usage_of(document)
            assert all(v is None or (math.isfinite(v) and v >= 0) for v in parsed_pod.requests.values())
            assert all(math.isfinite(v) and v >= 0 for v in parsed_usage.usage.values())


# -- the rollout guard: a ReplicaSet revision annotation that is not a number ------------------

REVISION = kubernetes_rollback.REVISION


def failed_deployment(namespace: str) -> dict[str, typing.Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"namespace": namespace, "name": "web", "generation": 2, "uid": f"uid-{namespace}", "resourceVersion": "7",
                         "annotations": {REVISION: "3"}},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     # revision 3's template, as its ReplicaSet has it (the rollback reads the template)
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "v3"}]}}},
            "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
                       "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}}


def replica_set(namespace: str, revision: str) -> dict[str, typing.Any]:
    return {"metadata": {"name": f"web-{revision}", "annotations": {REVISION: revision},
                         "ownerReferences": [{"uid": f"uid-{namespace}"}]},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": "h"}},
                                  "spec": {"containers": [{"name": "c", "image": f"v{revision}"}]}}}}


class FakeApps:
    """The API server's side of `rollout undo`, with tenant A's ReplicaSets as A wrote them."""

    def __init__(self, replica_sets: dict[str, list[dict[str, typing.Any]]]) -> None:
        self.replica_sets = replica_sets
        self.patched: list[str] = []

    def read_namespaced_deployment(self, name: str, namespace: str, **_: typing.Any) -> dict[str, typing.Any]:
        return failed_deployment(namespace)

    def list_namespaced_replica_set(self, namespace: str, **_: typing.Any) -> dict[str, typing.Any]:
        return {"items": self.replica_sets[namespace]}

    def patch_namespaced_deployment(self, name: str, namespace: str, body: typing.Any, **_: typing.Any) -> None:
        self.patched.append(namespace)

    def sanitize_for_serialization(self, value: typing.Any) -> typing.Any:
        return value


class KubernetesOnly:
    """The guard's rollback target: the real `rollout undo` adapter over FakeApps."""

    errors = (kubernetes.client.ApiException, kubernetes_rollback.RollbackError)

    def __init__(self, apps: FakeApps) -> None:
        self.target = kubernetes_rollback.KubernetesRollback.__new__(kubernetes_rollback.KubernetesRollback)
        self.target._apps, self.target._client, self.target._on_write = apps, apps, lambda _: None  # type: ignore[assignment]

    def supports(self, kind: str) -> bool:
        return kind == "Deployment"

    async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str:
        return self.target.rollback(namespace, name, failed_revision)


class Events:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def create_event(self, obj: typing.Mapping[str, typing.Any], event: typing.Any, now: typing.Any) -> None:
        self.events.append((obj["metadata"]["namespace"], event.reason))


class StatusWriter:
    def __init__(self, view: view_module.View) -> None:
        self.view = view

    async def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
        obj = dict(self.view.objects[(kind, namespace, name)])
        obj["status"] = {**(obj.get("status") or {}), **patch}
        return obj


def guard_round(a_revisions: list[str]) -> tuple[FakeApps, Events]:
    view = view_module.View()
    for namespace in (A, B):  # A first: it is judged before B
        view.upsert(failed_deployment(namespace))
        view.upsert({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
                     "metadata": {"namespace": namespace, "name": "web", "generation": 1, "resourceVersion": "1"},
                     "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                              "rollout": {"autoRollback": True}}})
    apps = FakeApps({A: [replica_set(A, r) for r in a_revisions], B: [replica_set(B, "2"), replica_set(B, "3")]})
    events = Events()
    evaluator = loop.Evaluator(view, events, 60.0, 4, status_writer=StatusWriter(view))  # type: ignore[arg-type]

    async def no_metrics(*_: typing.Any) -> dict:
        return {}

    guard = guard_module.Guard(view, evaluator, None, KubernetesOnly(apps), no_metrics)  # type: ignore[arg-type]
    asyncio.run(guard.rollout_round())
    return apps, events


@pytest.mark.parametrize("garbage", ["abc", "①", "1.5", "", "99999999999999999999999", "-2"])
def test_a_replica_set_revision_that_is_not_a_number_stops_nobody(garbage: str) -> None:
    """The finding: ValueError from int() on tenant A's ReplicaSet annotation aborted the
    guard's round every 2 s, before B (judged after A) was ever rolled back."""
    apps, events = guard_round([garbage, "2", "3"])
    assert apps.patched == [A, B], "A rolls back to its valid revision 2 (the garbage one is no candidate); B too"
    apps, events = guard_round([garbage, "3"])
    assert apps.patched == [B]
    assert (A, "RollbackFailed") in events.events, "A is told, as a failed rollback of its own"


@hypothesis.given(st.lists(st.one_of(st.text(max_size=6), st.sampled_from(["①", "١", "1e3", "0x1", "9" * 40])), max_size=4))
@hypothesis.settings(max_examples=200, deadline=None, database=None)
def test_the_rollback_patch_raises_only_rollback_error(revisions: list[str]) -> None:
    deployment = failed_deployment(A)
    for bad in ("3", revisions[0] if revisions else "x"):
        try:
            revision, _ = kubernetes_rollback.build_rollback_patch(deployment, [replica_set(A, r) for r in revisions], bad)
        except kubernetes_rollback.RollbackError:
            continue
        assert revision.isascii() and revision.isdigit()


# -- alerting: +Inf fires, NaN holds, status never carries Infinity --------------------------------

def latency_rule_spec() -> alertpolicy.AlertPolicySpec:
    return alertpolicy.AlertPolicySpec.model_validate({
        "serviceRef": "web",
        "rules": [{"name": "slow", "metric": "latencyP95", "op": ">", "threshold": 2000, "forSeconds": 0,
                   "keepFiringForSeconds": 0, "severity": "critical"}],
        "channels": [{"name": "hook", "webhook": {"url": "https://hooks.example/x"}}],
        "routes": [{"channels": ["hook"]}]})


def evaluate(value: float | None, previous: list[dict[str, typing.Any]], at: datetime.datetime = NOW) -> alerting.Evaluation:
    return alerting.evaluate(latency_rule_spec(), [alerting.Observation("web", {"latencyP95": value})], previous,
                             None, None, at, "uid")


def test_latency_past_the_top_bucket_fires_and_status_carries_no_infinity() -> None:
    """The default latency query answers +Inf during an outage: that SHOULD page, and the alert
    must fit status (an `Infinity` in the patch was refused, and the page never sent)."""
    fired = evaluate(math.inf, [])
    assert [a["state"] for a in fired.alerts] == [alerting.FIRING]
    assert "value" not in fired.alerts[0]
    json.dumps(fired.alerts, allow_nan=False)
    assert fired.notifications and "+Inf" in fired.notifications[0].summary


def test_nan_never_resolves_a_firing_alert_nor_fires_one() -> None:
    firing = evaluate(2500.0, []).alerts
    later = NOW + datetime.timedelta(minutes=5)
    held = evaluate(math.nan, firing, later)
    assert [a["state"] for a in held.alerts] == [alerting.FIRING] and not held.transitions
    assert evaluate(math.nan, []).alerts == []


def test_an_alert_policy_with_infinity_and_nan_reaches_status_fitted() -> None:
    alerts = evaluate(math.inf, []).alerts + [{"rule": "x", "service": "y", "state": "Firing", "value": math.nan}]
    patch = loop.STATUS_SCHEMAS["AlertPolicy"]
    fitted = bounded.fit_fields({"alerts": alerts}, patch)
    json.dumps(fitted, allow_nan=False)
    assert all("value" not in a for a in fitted["alerts"])


def test_a_snapshot_says_inf_and_writes_no_infinity() -> None:
    result = snapshot.assess({("cpu", None): scaling.Sample(40.0, NOW), ("latencyP95", None): scaling.Sample(math.inf, NOW)},
                             None, NOW)
    assert result.condition.message == "read cpu, latencyP95 +Inf" and result.condition.status == "True"
    assert result.fields["metrics"]["latencyP95"] is None and result.fields["metrics"]["cpu"] == 40.0
    json.dumps(result.fields, allow_nan=False)


@pytest.mark.parametrize("written", [{"cpu": "abc"}, {"cpu": 10**400}, {"custom": 3}, {"custom": {"q": "x"}},
                                     {"cpu": True}])
def test_a_snapshot_against_a_status_anyone_may_have_written_never_raises(written: dict[str, typing.Any]) -> None:
    result = snapshot.assess({("cpu", None): scaling.Sample(40.0, NOW), ("custom", "q"): scaling.Sample(1.0, NOW)},
                             written, NOW)
    assert result.fields["metrics"]["cpu"] == 40.0


# -- a search: no loop over tenants outside a boundary ---------------------------------------------

LOOPS = {
    "scaler.py": scaler_module, "snapshots.py": snapshots_module, "guard.py": guard_module,
    "railway.py": railway_module, "alerter.py": alerter_module, "actuator_scale.py": actuator_scale,
}
# Per-tenant coroutines the loops run side by side with gather: each wrapped by boundary.contained.
CONTAINED = [
    (scaler_module.Scaler, "_decide_and_act"), (railway_module.RailwayWatcher, "_ask"),
    (railway_module.RailwayWatcher, "_token"), (alerter_module.Alerter, "_deliver"),
    (source_prometheus.BatchedPrometheus, "_one"), (source_history.RangeHistory, "_one"),
    # and each request's parse, where an answer's numbers are built
    (prometheus, "parse"), (prometheus, "parse_range"), (source_prometheus, "_sample_of"), (railway, "_poll_answer"),
    (kubernetes_rollback.KubernetesRollback, "rollback"),
]


def _tenant_loops(tree: ast.AST) -> typing.Iterator[ast.For | ast.AsyncFor]:
    """`for` statements over tenants: over the view's objects of a kind, or binding a view key."""
    for node in ast.walk(tree):
        if not isinstance(node, (ast.For, ast.AsyncFor)):
            continue
        source = ast.unparse(node.iter)
        names = {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
        body_text = "\n".join(ast.unparse(statement) for statement in node.body)
        if "of_kind(" in source or "await " in body_text and names & {"key", "name", "binding", "need", "request"}:
            yield node


def _wrapped(node: ast.For | ast.AsyncFor) -> bool:
    """The loop's whole body is one boundary: `with boundary.tenant(...)`, or a `try` whose
    `except Exception` hands the failure to `boundary.failed`."""
    if len(node.body) != 1:
        return False
    body = node.body[0]
    if isinstance(body, ast.With):
        return any(ast.unparse(item.context_expr).startswith("boundary.tenant(") for item in body.items)
    return isinstance(body, ast.Try) and any(
        handler.type is not None and ast.unparse(handler.type) == "Exception"
        and "boundary.failed(" in ast.unparse(handler) for handler in body.handlers)


@pytest.mark.parametrize("name", sorted(LOOPS))
def test_every_loop_over_tenants_runs_each_inside_a_boundary(name: str) -> None:
    path = pathlib.Path(LOOPS[name].__file__)  # type: ignore[arg-type]
    loops = list(_tenant_loops(ast.parse(path.read_text())))
    assert loops, f"{name}: no loop over tenants found (has the search gone blind?)"
    bare = [f"{name}:{node.lineno} for {ast.unparse(node.target)} in {ast.unparse(node.iter)}"
            for node in loops if not _wrapped(node)]
    assert not bare, bare


@pytest.mark.parametrize("owner,method", CONTAINED, ids=[m for _, m in CONTAINED])
def test_every_per_tenant_coroutine_run_by_gather_is_contained(owner: typing.Any, method: str) -> None:
    assert getattr(getattr(owner, method), boundary.MARK, None), f"{owner.__name__}.{method} has no boundary"


def test_the_except_form_says_no_value_and_counts() -> None:
    counted: list[str] = []
    try:
        raise OverflowError("10**400 from a tenant")
    except Exception as failure:
        text = boundary.failed(failure, "x", "k", counted.append)
    assert text == counted[0] == "internal error (OverflowError)"


def test_the_boundary_keeps_cancellation_and_says_no_value() -> None:
    with boundary.tenant("x", "k") as guard:
        raise ValueError("secret-value-123")
    assert guard.failed and guard.error == "internal error (ValueError)" and "secret" not in guard.error

    with pytest.raises(asyncio.CancelledError):
        with boundary.tenant("x", "k"):
            raise asyncio.CancelledError


def test_a_failure_of_every_tenant_logs_once_a_minute_not_once_each(caplog: pytest.LogCaptureFixture) -> None:
    """A bug that fails all 10,000 tenants must not write 10,000 lines a round."""
    boundary._logged.clear()
    for index in range(10000):
        with boundary.tenant("scaling", ("ScalingPolicy", "ns", f"p{index}")):
            raise KeyError("x")
    records = [r for r in caplog.records if r.name == "controller.adapters.boundary"]
    assert len(records) == 1 and "p0" in records[0].getMessage()


def railway_environment(document: typing.Any) -> tuple[str, list[railway.ServiceSummary]] | str:
    endpoint = "https://railway.example/graphql"
    client = railway.RailwayClient(endpoint, "t", FakeHttp({endpoint: _dumps(document)}))  # type: ignore[arg-type]
    try:
        return asyncio.run(client.environment("p", "e"))
    except railway.RailwayError as error:
        return str(error)


def test_an_environment_answer_that_lies_is_a_railway_error_for_import() -> None:
    """`capliquify railway import` prints a clear error, never a traceback: a list where an
    object belongs raised AttributeError; 10**400 replicas became maxReplicas 10**400."""
    assert railway_environment({"data": {"environment": {"serviceInstances": [1]}}}) == \
        "malformed answer: serviceInstances is not a list"
    node = {"serviceId": "s", "serviceName": "web", "numReplicas": 10**400, "healthcheckTimeout": 10**400}
    name, services = railway_environment({"data": {"environment": {"name": "prod", "serviceInstances": {
        "edges": [{"node": node}]}}}})  # type: ignore[misc]
    assert services[0].replicas is None and services[0].healthcheck_timeout is None


@hypothesis.given(JSONISH)
@hypothesis.settings(max_examples=150, deadline=None, database=None)
def test_no_environment_answer_raises_anything_but_a_railway_error(document: typing.Any) -> None:
    railway_environment({"data": {"environment": document}})
    railway_environment({"data": {"environment": {"serviceInstances": {"edges": [{"node": document}]}}}})


@pytest.mark.parametrize("written", ["abc", 10**400, [1], None, math.nan])
def test_a_firing_alert_whose_status_value_anyone_wrote_still_repeats(written: typing.Any) -> None:
    """The value a repeat shows is read back from status: a string there raised ValueError
    (format code 'g' for str) and the policy's alerting stopped."""
    since = timestamps.to_status(NOW - datetime.timedelta(hours=2))
    firing = [{"rule": "slow", "service": "web", "state": "Firing", "since": since, "value": written,
               "notifications": 1, "lastNotified": since}]
    result = evaluate(None, firing)
    assert [a["state"] for a in result.alerts] == [alerting.FIRING]
    assert result.notifications and "?" in result.notifications[0].summary
