"""Per-object metrics are what status says, only on the leader, and survive odd status."""

from __future__ import annotations

import copy
import socket
import urllib.parse
import urllib.request

from prometheus_client import parser

from controller.operator import metrics
from controller.operator import object_metrics
from controller.operator import view as view_module

SCP = {"kind": "ScalingPolicy", "metadata": {"namespace": "shop", "name": "web", "resourceVersion": "1"},
       "status": {"target": "Deployment/web", "currentReplicas": 3, "desiredReplicas": 5,
                  "metrics": [{"type": "cpu", "value": 82.5, "scaleUp": 70, "scaleDown": 30},
                              {"type": "custom", "name": "queue", "scaleUp": 100, "scaleDown": 10}]}}
MSVC = {"kind": "MonitoredService", "metadata": {"namespace": "shop", "name": "web", "resourceVersion": "1"},
        "status": {"health": "Degraded", "rollout": {"revision": "4", "phase": "Progressing"}}}
ALP = {"kind": "AlertPolicy", "metadata": {"namespace": "shop", "name": "prod", "resourceVersion": "1"},
       "status": {"alerts": [{"rule": "HighMemory", "service": "web", "state": "Firing"}]}}
ODD = {"kind": "ScalingPolicy", "metadata": {"namespace": "shop", "name": "odd", "resourceVersion": "1"},
       "status": {"currentReplicas": "three", "metrics": [{"type": "cpu", "value": None}]}}


def scrape(leading: bool, view: view_module.View | None = None,
           exported: object_metrics.ObjectMetrics | None = None) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The text a scrape serves, parsed back by prometheus_client's own parser (so it is valid)."""
    if view is None:
        view = view_module.View()
        for obj in (SCP, MSVC, ALP, ODD):
            view.upsert(copy.deepcopy(obj))
    exported = exported or object_metrics.ObjectMetrics(view, lambda: leading)
    families = parser.text_string_to_metric_families(exported.text())
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}


def test_the_leader_exports_status_as_gauges() -> None:
    samples = scrape(leading=True)
    assert samples[("capliquify_scaling_replicas", (("namespace", "shop"), ("policy", "web"), ("state", "desired"),
                                                    ("target", "Deployment/web")))] == 5
    assert samples[("capliquify_scaling_metric", (("metric", "cpu"), ("namespace", "shop"), ("policy", "web"),
                                                  ("series", "value")))] == 82.5
    assert samples[("capliquify_scaling_metric", (("metric", "queue"), ("namespace", "shop"), ("policy", "web"),
                                                  ("series", "scale_down")))] == 10
    assert not [k for k in samples if k[0] == "capliquify_scaling_metric" and ("metric", "queue") in k[1]
                and ("series", "value") in k[1]], "no value, no sample"
    assert samples[("capliquify_service_health", (("health", "Degraded"), ("namespace", "shop"), ("service", "web")))] == 1
    assert samples[("capliquify_rollout_info", (("namespace", "shop"), ("phase", "Progressing"), ("revision", "4"),
                                                ("service", "web")))] == 1
    assert samples[("capliquify_alert_state", (("namespace", "shop"), ("policy", "prod"), ("rule", "HighMemory"),
                                               ("service", "web"), ("state", "Firing")))] == 1
    assert not [k for k in samples if ("policy", "odd") in k[1]], "a malformed status exports nothing"


def test_a_standby_exports_none() -> None:
    assert scrape(leading=False) == {}


def test_text_is_rendered_again_only_when_an_object_changes() -> None:
    view = view_module.View()
    view.upsert(copy.deepcopy(SCP))
    exported = object_metrics.ObjectMetrics(view, lambda: True)
    key = ("capliquify_scaling_replicas", (("namespace", "shop"), ("policy", "web"), ("state", "desired"),
                                           ("target", "Deployment/web")))
    assert scrape(True, view, exported)[key] == 5
    changed = copy.deepcopy(SCP)
    changed["metadata"]["resourceVersion"] = "2"
    changed["status"]["desiredReplicas"] = 7
    view.upsert(changed)
    assert scrape(True, view, exported)[key] == 7
    view.remove(changed)
    assert scrape(True, view, exported) == {}


def test_label_values_are_escaped() -> None:
    view = view_module.View()
    odd = copy.deepcopy(SCP)
    odd["status"]["target"] = 'Deployment/"we\\b"\nx'
    view.upsert(odd)
    samples = scrape(True, view)
    assert any(dict(labels).get("target") == odd["status"]["target"] for _, labels in samples)


def test_a_scrape_asking_for_one_gauge_renders_no_object_series() -> None:
    rendered = []

    class Counting(object_metrics.ObjectMetrics):
        def _render(self, wanted):  # noqa: ANN001, ANN202 - the base's signature
            rendered.append([name for name, _, _ in wanted])
            return super()._render(wanted)

    view = view_module.View()
    view.upsert(copy.deepcopy(SCP))
    view.upsert(copy.deepcopy(MSVC))
    exported = Counting(view, lambda: True)
    assert exported.text(frozenset({"capliquify_all_judged_seconds"})) == ""
    assert rendered == []
    only = exported.text(frozenset({"capliquify_service_health"}))
    assert rendered == [["capliquify_service_health"]]
    assert "capliquify_service_health{" in only and "capliquify_scaling_replicas" not in only


def test_the_metrics_server_honours_name_filters() -> None:
    asked = []
    port = free_port()
    metrics.serve(port, lambda names: asked.append(names) or 'capliquify_scaling_replicas{policy="web"} 5\n',
                  address="127.0.0.1")
    query = urllib.parse.urlencode([("name[]", "capliquify_all_judged_seconds")])
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics?{query}", timeout=5) as response:
        filtered = response.read().decode()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        whole = response.read().decode()
    assert asked == [frozenset({"capliquify_all_judged_seconds"}), None]
    assert [line.split()[2] for line in filtered.splitlines() if line.startswith("# TYPE")] == [
        "capliquify_all_judged_seconds"]
    assert "capliquify_reconciles_total" in whole and "capliquify_reconciles_total" not in filtered


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
