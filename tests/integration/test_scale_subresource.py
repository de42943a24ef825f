"""The /scale platform on the real control plane (issue 25): a ScalingPolicy scales a custom
resource through its scale subresource — found by discovery, read with its selector for
readiness, patched as HPA patches — with the status, Events and conditions of a Deployment.

kwok runs no controller for the test's CRD, so the test plays it: it keeps as many pods as the
object's spec.replicas asks (labelled with its selector) and writes status.replicas and
status.selector. Prometheus is a stand-in answering cpu for (namespace, workload) with a value
the test sets."""

from __future__ import annotations

import http.server
import json
import threading
import time
import typing

import pytest
import yaml

from localcluster import operator as operator_module

pytestmark = pytest.mark.integration
GROUP = "ops.capliquify.io/v1alpha1"
CRD_NAME = "widgets.scale.example.com"
CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": CRD_NAME},
    "spec": {"group": "scale.example.com", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
                           "subresources": {"status": {}, "scale": {
                               "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
                               "labelSelectorPath": ".status.selector"}}}]}}
# The opt-in RBAC docs/platforms.md documents (the chart's scaleTargets renders the same rule).
RBAC = [
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "capliquify-scale-widgets"},
     "rules": [{"apiGroups": ["scale.example.com"], "resources": ["widgets/scale"], "verbs": ["get", "patch"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "capliquify-scale-widgets"},
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "capliquify-scale-widgets"},
     "subjects": [{"kind": "ServiceAccount", "name": operator_module.OPERATOR_ACCOUNT,
                   "namespace": operator_module.OPERATOR_NAMESPACE}]},
]
SELECTOR = "app=widget,widget=w"


class Prometheus:
    """Answers every instant query with one series for (namespace, w) at `value`, timestamped now."""

    def __init__(self, namespace: str) -> None:
        self.value = "95"
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
                    {"metric": {"namespace": namespace, "workload": "w"}, "value": [time.time(), outer.value]}]}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: typing.Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WidgetController:
    """The CRD's controller, played: pods for spec.replicas, status.replicas and status.selector."""

    def __init__(self, cluster, namespace: str) -> None:  # noqa: ANN001
        self.cluster, self.namespace = cluster, namespace
        self.stopped = threading.Event()
        self.history: list[int] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def get(self) -> dict:
        return json.loads(self.cluster.kubectl("get", "widgets.scale.example.com", "w", "-n", self.namespace, "-o", "json"))

    def _pods(self) -> list[str]:
        listed = json.loads(self.cluster.kubectl("get", "pods", "-n", self.namespace, "-l", SELECTOR, "-o", "json"))
        return sorted(p["metadata"]["name"] for p in listed["items"] if not p["metadata"].get("deletionTimestamp"))

    def reconcile(self) -> None:
        wanted = int(self.get()["spec"]["replicas"])
        if not self.history or self.history[-1] != wanted:
            self.history.append(wanted)
        pods = self._pods()
        for index in range(wanted):
            name = f"w-{index}"
            if name not in pods:
                self.cluster.kubectl("apply", "-n", self.namespace, "-f", "-", input=yaml.safe_dump({
                    "apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": name, "labels": {"app": "widget", "widget": "w"}},
                    "spec": {"containers": [{"name": "w", "image": "demo/widget:1"}]}}))
        for name in pods:
            if int(name.split("-")[1]) >= wanted:
                self.cluster.kubectl("delete", "pod", name, "-n", self.namespace, "--wait=false", "--grace-period=0")
        self.cluster.kubectl("patch", "widgets.scale.example.com", "w", "-n", self.namespace, "--subresource=status",
                             "--type=merge", "-p", json.dumps({"status": {"replicas": wanted, "selector": SELECTOR}}))

    def _run(self) -> None:
        while not self.stopped.wait(1.0):
            try:
                self.reconcile()
            except Exception as error:  # noqa: BLE001 - a conflict or a slow call: next second
                print("widget controller:", error)

    def ready_pods(self) -> int:
        listed = json.loads(self.cluster.kubectl("get", "pods", "-n", self.namespace, "-l", SELECTOR, "-o", "json"))
        return sum(1 for p in listed["items"] if any(
            c["type"] == "Ready" and c["status"] == "True" for c in (p.get("status") or {}).get("conditions") or []))


def policy() -> dict:
    return {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "w"}, "spec": {
        "targetRef": {"scale": {"apiGroup": "scale.example.com", "resource": "widgets", "name": "w"}},
        "minReplicas": 1, "maxReplicas": 3, "evaluationIntervalSeconds": 5,
        "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
        "behavior": {
            "scaleUp": {"cooldownSeconds": 5, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 5}]},
            "scaleDown": {"stabilizationWindowSeconds": 10, "cooldownSeconds": 5,
                          "policies": [{"type": "Percent", "value": 100, "periodSeconds": 5}]}},
        "onMetricsUnavailable": {"action": "Hold", "staleAfterSeconds": 60}}}


def test_a_policy_scales_a_custom_resource_through_its_scale_subresource(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    cluster.kubectl_apply(CRD, *RBAC)
    cluster.wait_for(lambda: "True" in cluster.kubectl(
        "get", "crd", CRD_NAME, "-o", 'jsonpath={.status.conditions[?(@.type=="Established")].status}'), 60, "CRD established")
    prometheus = Prometheus(namespace)
    controller = WidgetController(cluster, namespace)
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(
            {"apiVersion": "scale.example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"replicas": 1}}))
        controller.reconcile()
        cluster.wait_for(lambda: controller.ready_pods() == 1, 60, "the widget's first pod ready")
        controller.thread.start()
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(policy()))
        operator = operator_factory(f"--prometheus-url={prometheus.url}", "--allow-loopback-egress", "--rate-window=10s")

        def status() -> dict:
            return json.loads(cluster.kubectl("get", "scp", "w", "-n", namespace, "-o", "json")).get("status") or {}

        def condition(type_: str) -> dict:
            return next((c for c in status().get("conditions") or [] if c["type"] == type_), {})

        def events(reason: str) -> list[dict]:
            items = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
            return [e for e in items if e["reason"] == reason and e["source"].get("component") == "capliquify-operator"]

        cluster.wait_for(lambda: condition("Ready").get("reason") == "TargetFound", 60, "the widget found through discovery")
        assert condition("Ready")["status"] == "True"
        assert status()["target"] == "widgets.scale.example.com/w"
        cluster.wait_for(lambda: controller.get()["spec"]["replicas"] == 3, 120, "scaled up to maxReplicas")
        cluster.wait_for(lambda: controller.ready_pods() == 3, 60, "the played controller's pods ready")
        cluster.wait_for(lambda: status().get("currentReplicas") == 3, 60, "status reads the scale")
        assert controller.history[:3] == [1, 2, 3], f"one pod per step, each after the last was ready: {controller.history}"
        up = events("ScaledUp")
        assert up and all(e["type"] == "Normal" for e in up), up
        assert any(e["message"].startswith("cpu 95% > 70% (scale-up threshold)") and e["message"].endswith("1 -> 2")
                   for e in up), [e["message"] for e in up]
        assert condition("ScalingActive").get("reason") == "ValidMetricFound", condition("ScalingActive")
        assert condition("AbleToScale").get("status") == "True", condition("AbleToScale")
        decision = status()["lastDecision"]
        assert decision["direction"] == "Up" and decision["actuated"], decision
        shown = json.loads(cluster.kubectl("get", "widgets.scale.example.com", "w", "-n", namespace, "-o", "json",
                                           "--show-managed-fields"))
        managers = {m.get("manager") for m in shown["metadata"].get("managedFields") or []}
        assert "capliquify-operator" in managers, managers

        prometheus.value = "5"
        cluster.wait_for(lambda: controller.get()["spec"]["replicas"] == 1, 120, "scaled down to minReplicas")
        assert events("ScaledDown"), "a ScaledDown Event"
        cluster.wait_for(lambda: status().get("lastDecision", {}).get("direction") == "Down", 60, "the decision in status")
        log = operator.log()
        assert "Traceback" not in log and "round failed" not in log, log[-3000:]
    finally:
        controller.stopped.set()
        prometheus.close()
        cluster.kubectl("delete", "crd", CRD_NAME, "--wait=false", check=False)
        cluster.kubectl("delete", "-f", "-", "--wait=false", input=yaml.safe_dump_all(RBAC), check=False)
