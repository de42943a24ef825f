"""The metric-source seam's pure parts: which source answers, HPA's utilization from the
metrics API, label selectors, query placeholders with hostile names, and "no series"."""

from __future__ import annotations

import datetime
import typing

import pytest

from controller.adapters import budget
from controller.adapters import source_metrics_api
from controller.api import scalingpolicy as api
from controller.core import queries
from controller.core import scaling
from controller.core import scaling_status
from controller.core import selectors
from controller.core import sources
from controller.core import utilization

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("metric,explicit,platform,prometheus,expected", [
    ("cpu", None, sources.METRICS_API, True, sources.PROMETHEUS),       # Prometheus first when configured
    ("cpu", None, sources.METRICS_API, False, sources.METRICS_API),     # else what HPA reads
    ("latencyP95", None, sources.METRICS_API, False, None),             # the metrics API has no latency
    ("cpu", sources.METRICS_API, sources.METRICS_API, True, sources.METRICS_API),  # explicit wins
    ("latencyP95", sources.METRICS_API, sources.METRICS_API, True, sources.PROMETHEUS),  # explicit serves cpu/memory only
    ("cpu", sources.PROMETHEUS, sources.METRICS_API, False, None),      # explicit Prometheus, none configured
    ("memory", None, sources.RAILWAY, True, sources.RAILWAY),           # Railway's own, no exporter needed
    ("errorRate", None, sources.RAILWAY, True, sources.RAILWAY),      # Railway's HTTP metrics
    ("requestRate", None, sources.RAILWAY, True, sources.PROMETHEUS),
    ("custom", None, sources.RAILWAY, False, None),
])
def test_source_choice(metric, explicit, platform, prometheus, expected) -> None:  # noqa: ANN001
    chosen, why = sources.choose(metric, explicit, platform, prometheus)
    assert chosen == expected
    assert bool(why) is (expected is None)


def test_no_source_names_what_is_missing() -> None:
    assert sources.choose("latencyP95", None, sources.METRICS_API, False)[1] == (
        "no Prometheus configured (spec.metrics.prometheus or --prometheus-url); the metrics API serves cpu and memory only")


SELECTOR = selectors.parse({"matchLabels": {"app": "web"},
                            "matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]},
                                                 {"key": "tier", "operator": "Exists"}]})


@pytest.mark.parametrize("labels,expected", [
    ({"app": "web", "tier": "fe"}, True),
    ({"app": "web", "tier": "fe", "track": "stable"}, True),
    ({"app": "web", "tier": "fe", "track": "canary"}, False),
    ({"app": "web"}, False),
    ({"app": "api", "tier": "fe"}, False),
])
def test_selector(labels, expected) -> None:  # noqa: ANN001
    assert selectors.matches(SELECTOR, labels) is expected


def test_an_empty_selector_selects_nothing() -> None:
    assert not selectors.matches(selectors.parse(None), {"app": "web"})


WEB = selectors.parse({"matchLabels": {"app": "web"}})


def pod(name: str, ready: bool = True, cpu: float | None = 0.2, app: str = "web") -> utilization.Pod:
    return utilization.Pod(name, {"app": app}, ready, {"cpu": cpu, "memory": 256 * 2**20})


def usage(cpu: float, at: datetime.datetime = T0) -> utilization.Usage:
    return utilization.Usage({"cpu": cpu, "memory": 128 * 2**20}, at)


def test_utilization_is_hpas_sum_of_usage_over_sum_of_requests_of_ready_pods() -> None:
    pods = [pod("a"), pod("b"), pod("starting", ready=False), pod("other", app="api")]
    used = {"a": usage(0.1), "b": usage(0.2, T0 - datetime.timedelta(seconds=5)), "starting": usage(0.9), "other": usage(5)}
    sample = utilization.utilization("cpu", WEB, pods, used)
    assert sample.value == pytest.approx(75.0)  # (0.1 + 0.2) / (0.2 + 0.2)
    assert sample.sampled_at == T0 - datetime.timedelta(seconds=5)  # the oldest sample counted
    assert utilization.utilization("memory", WEB, pods, used).value == pytest.approx(50.0)


def test_utilization_without_requests_says_so_and_without_samples_has_no_data() -> None:
    missing = utilization.utilization("cpu", WEB, [pod("a", cpu=None)], {"a": usage(0.1)})
    assert missing.value is None and missing.error == "missing request for cpu on pod a"
    none = utilization.utilization("cpu", WEB, [pod("a")], {})
    assert none.value is None and none.error is None


def test_hostile_pod_and_usage_documents_are_parsed_without_a_crash() -> None:
    hostile = {"metadata": {"name": "p", "labels": {"app": "web"}},
               "spec": {"containers": [{"resources": {"requests": {"cpu": "1e999999"}}}, {"resources": "x"}]},
               "status": {"conditions": "nope"}}
    parsed = source_metrics_api.pod_of(hostile)
    assert parsed.requests == {"cpu": None, "memory": None} and parsed.ready is False
    used = source_metrics_api.usage_of({"containers": [{"usage": {"cpu": "-3", "memory": ["x"]}}, {"usage": {"cpu": "250m"}}],
                                        "timestamp": "not a time"})
    assert used.usage == {"cpu": 0.25} and used.sampled_at is None


@pytest.mark.parametrize("namespace,workload", [
    ('a"} or vector(1) #', 'w"}[5m]) or vector(999'),
    ("ns\\", "w\\\"x"),
    ("ns\nup", "$window"),
])
def test_placeholders_are_escaped_so_a_name_cannot_leave_its_string(namespace, workload) -> None:  # noqa: ANN001
    query = queries.resolve(("custom", "q"), {}, {"q": 'sum(x{namespace="$namespace",pod=~"$workload-.*"}[$window])'},
                            "2m", namespace, workload)
    assert query is not None
    # Unescaping each quoted string gives back exactly the names: nothing leaked outside them.
    inside = query.split('namespace="', 1)[1]
    decoded, rest = _read_string(inside)
    assert decoded == namespace
    decoded, rest = _read_string(rest.split('pod=~"', 1)[1])
    assert decoded == workload + "-.*"
    assert rest == "}[2m])"


def _read_string(text: str) -> tuple[str, str]:
    """A PromQL double-quoted string's value up to its closing quote, and what follows."""
    out, index = [], 0
    while text[index] != '"':
        if text[index] == "\\":
            out.append({"n": "\n"}.get(text[index + 1], text[index + 1]))
            index += 2
        else:
            out.append(text[index])
            index += 1
    return "".join(out), text[index + 1:]


def test_the_window_placeholder_is_still_replaced_and_others_are_left_alone() -> None:
    query = queries.resolve(("custom", "q"), {}, {"q": "rate(x[$window]) + $windowed"}, "30s")
    assert query == "rate(x[30s]) + $windowed"


FIVE = api.ScalingPolicySpec.model_validate({
    "targetRef": {"kubernetes": {"name": "web"}}, "minReplicas": 1, "maxReplicas": 10,
    "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}, {"type": "memory", "scaleUp": 80, "scaleDown": 50},
                {"type": "latencyP95", "scaleUp": 500, "scaleDown": 100},
                {"type": "errorRate", "scaleUp": 5, "scaleDown": 1},
                {"type": "requestQueue", "scaleUp": 10, "scaleDown": 2}],
    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 0, "cooldownSeconds": 0, "policies": []}}})
LOW = {("cpu", None): 10.0, ("memory", None): 20.0, ("latencyP95", None): 50.0, ("errorRate", None): 0.0}


def low_samples(queue: scaling.Sample) -> dict:
    now = T0 + datetime.timedelta(hours=1)
    return {**{key: scaling.Sample(value, now, source="prometheus") for key, value in LOW.items()},
            ("requestQueue", None): queue}


def test_a_metric_that_never_had_a_series_does_not_hold_a_scale_down() -> None:
    now = T0 + datetime.timedelta(hours=1)
    nothing = scaling.Sample(None, None, source="prometheus", query="sum by (namespace, workload) (http_requests_queued)")
    outcome = scaling.decide(FIVE, 6, low_samples(nothing), scaling.State(observing_since=T0), now)
    assert outcome.direction == "Down"
    assert outcome.scaling_active[:2] == ("True", "NoSeries")
    assert "no series for requestQueue (query sum by (namespace, workload) (http_requests_queued))" \
        in outcome.scaling_active[2]


def test_a_metric_that_had_data_and_lost_it_holds_even_after_a_restart() -> None:
    now = T0 + datetime.timedelta(hours=1)
    state = scaling.State(observing_since=T0, seen={("requestQueue", None): now - datetime.timedelta(minutes=5)})
    outcome = scaling.decide(FIVE, 6, low_samples(scaling.Sample(None, None)), state, now)
    assert outcome.direction == "Hold" and outcome.scaling_active[1] == "MetricsUnavailable"
    # Status keeps when it was last seen; a new process reads it back and still holds.
    record = scaling_status.Record(outcome, now)
    fields, _ = scaling_status.assess(record, {})
    restarted = scaling_status.state_from_status({"metrics": fields["metrics"]}, now, None)
    assert ("requestQueue", None) in restarted.seen
    again = scaling.decide(FIVE, 6, low_samples(scaling.Sample(None, None)), restarted, now)
    assert again.direction == "Hold"


def test_the_source_that_answered_is_in_status() -> None:
    now = T0 + datetime.timedelta(hours=1)
    outcome = scaling.decide(FIVE, 6, low_samples(scaling.Sample(None, None)), scaling.State(observing_since=T0), now)
    fields, _ = scaling_status.assess(scaling_status.Record(outcome, now), {})
    assert [entry.get("source") for entry in fields["metrics"]] == ["prometheus"] * 4 + [None]


# -- a namespace's pod list: read in pages, each page's bytes capped (adapters/budget.py) --------

def _pod_document(name: str, annotations: dict[str, str] | None = None) -> dict:
    return {"metadata": {"name": name, "labels": {"app": "web"}, "annotations": annotations or {}},
            "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "100m"}}}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}


def _read_namespaces(pods_by_namespace: dict[str, list[dict]], honour_limit: bool = True
                     ) -> tuple[dict[str, scaling.Sample], list[str]]:
    """One metrics-API read of each namespace's `web` against an API server on loopback that
    pages as Kubernetes does (`limit`, `continue`); the samples and the paths asked."""
    import asyncio
    import functools
    import json
    import threading
    import urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import kubernetes

    from controller.adapters import metric_source
    from controller.core import targets
    from controller.operator import pools

    asked: list[str] = []

    class Api(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 -- http.server's name
            asked.append(self.path)
            url = urllib.parse.urlsplit(self.path)
            query = dict(urllib.parse.parse_qsl(url.query))
            namespace = url.path.split("/")[-2]  # …/namespaces/<namespace>/pods
            if "metrics.k8s.io" in url.path:
                items = [{"metadata": {"name": pod["metadata"]["name"]}, "timestamp": "2026-11-01T12:00:00Z",
                          "containers": [{"name": "c", "usage": {"cpu": "50m"}}]}
                         for pod in pods_by_namespace[namespace]]
                document: dict = {"items": items, "metadata": {}}
            else:
                pods = pods_by_namespace[namespace]
                start = int(query.get("continue", "0"))
                end = start + int(query["limit"]) if honour_limit and "limit" in query else len(pods)
                document = {"items": pods[start:end], "metadata": {"continue": str(end) if end < len(pods) else ""}}
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except ConnectionError:
                pass  # the reader stopped at its cap

        def log_message(self, *_: typing.Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=f"http://127.0.0.1:{server.server_address[1]}"))
    try:
        source = source_metrics_api.MetricsApiSource(client, functools.partial(pools.run, pools.KUBE))
        requests = [metric_source.Request(("ScalingPolicy", namespace, "web"), ("cpu", None),
                                          targets.Target(namespace=namespace, kind="Deployment", name="web"), selector=WEB)
                    for namespace in pods_by_namespace]
        samples = asyncio.run(source.read(requests))
    finally:
        server.shutdown()
        client.close()
    return {owner[1]: by_metric[("cpu", None)] for owner, by_metric in samples.items()}, asked


def test_a_namespaces_pods_are_read_in_pages_and_every_page_counts() -> None:
    samples, asked = _read_namespaces({"shop": [_pod_document(f"web-{i}") for i in range(70)]})
    assert samples["shop"].error is None and samples["shop"].value == pytest.approx(50.0)
    pages = [path for path in asked if "/api/v1/" in path]
    assert len(pages) == 3 and all(f"limit={budget.METRICS_API_PAGE_PODS}" in path for path in pages), pages


def test_a_page_of_fat_pods_is_that_namespaces_error_and_another_namespace_is_read() -> None:
    fat = {f"a.example.com/k{index:05d}": "v" * 40 for index in range(4000)}  # 252 KB, as the API server admits
    for honour_limit in (True, False):  # an API server that ignores `limit` is capped by bytes alike
        samples, _ = _read_namespaces({"fat": [_pod_document(f"web-{i}", fat) for i in range(20)],
                                       "lean": [_pod_document(f"web-{i}") for i in range(3)]}, honour_limit)
        assert samples["fat"].value is None
        assert samples["fat"].error == (f"the Running pods of fat fill more than {budget.METRICS_API_PAGE // 1024} KiB "
                                        f"in a page of {budget.METRICS_API_PAGE_PODS} (annotations?)")
        assert samples["lean"].error is None and samples["lean"].value == pytest.approx(50.0)


def test_running_pods_past_the_cap_are_that_namespaces_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(budget, "METRICS_API_PODS", 40)
    samples, _ = _read_namespaces({"big": [_pod_document(f"web-{i}") for i in range(41)],
                                   "small": [_pod_document(f"web-{i}") for i in range(40)]})
    assert samples["big"].error == "big has more than 40 Running pods"
    assert samples["small"].error is None


def test_the_metrics_api_budget_counts_every_kube_thread() -> None:
    from controller.operator import pools

    assert budget.METRICS_API_READS >= pools.KUBE_THREADS
    assert budget.METRICS_API_PAGE * (2 * budget.METRICS_API_READS + 1 + 1 + budget.JSON_EXPANSION) <= budget.METRICS_API_BUDGET
