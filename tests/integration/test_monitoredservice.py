"""MonitoredService on the local control plane: health checks against real local HTTP
servers, and the rollout guard rolling back real Deployments (kwok keeps a bad revision's
pods unready through its `kwok.x-k8s.io/status: custom` annotation)."""

from __future__ import annotations

import http.server
import json
import threading
import time
import urllib.request

import pytest
import yaml

from tests import conftest
from localcluster import receivers

pytestmark = pytest.mark.integration
GROUP = "ops.capliquify.io/v1alpha1"
UNREADY = {"kwok.x-k8s.io/status": "custom"}  # kwok leaves these pods alone: never Ready


def deployment(image: str = "web:1", annotations: dict | None = None) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}, "annotations": annotations or {}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


def msvc(rollout: dict | None = None, checks: list | None = None, prometheus: str | None = None, slo=None) -> dict:  # noqa: ANN001
    spec: dict = {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}}}
    if rollout:
        spec["rollout"] = rollout
    if checks:
        spec["healthChecks"] = checks
    if prometheus:
        spec["metrics"] = {"prometheus": {"url": prometheus}}
    if slo:
        spec["slo"] = slo
    return {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "web"}, "spec": spec}


def get(cluster, kind, namespace, name="web") -> dict:  # noqa: ANN001
    return json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json"))


def rollout_status(cluster, namespace) -> dict:  # noqa: ANN001
    return get(cluster, "msvc", namespace).get("status", {}).get("rollout") or {}


def image(cluster, namespace) -> str:  # noqa: ANN001
    return get(cluster, "deployment", namespace)["spec"]["template"]["spec"]["containers"][0]["image"]


def events(cluster, namespace, reason=None) -> list[dict]:  # noqa: ANN001
    items = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
    found = [e for e in items if e["source"].get("component") == "capliquify-operator"
             and e["involvedObject"]["kind"] == "MonitoredService"]
    found.sort(key=lambda e: (e.get("lastTimestamp") or "", e["metadata"]["creationTimestamp"], e["metadata"]["name"]))
    return [e for e in found if reason is None or e["reason"] == reason]


def roll_to(cluster, namespace, new_image: str, annotations: dict | None = None) -> None:  # noqa: ANN001
    patch = {"spec": {"template": {"metadata": {"annotations": annotations or {"rev": new_image}},
                                   "spec": {"containers": [{"name": "web", "image": new_image}]}}}}
    cluster.kubectl("patch", "deployment", "web", "-n", namespace, "--type=strategic", "-p", json.dumps(patch))


def wait_phase(cluster, namespace, phase, seconds=90) -> dict:  # noqa: ANN001
    cluster.wait_for(lambda: rollout_status(cluster, namespace).get("phase") == phase, seconds, f"rollout {phase}")
    return rollout_status(cluster, namespace)


def test_progress_deadline_rolls_back_to_previous_revision(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
        deployment(), msvc({"autoRollback": True, "progressDeadlineSeconds": 30, "analysis": {"windowSeconds": 0}})]))
    operator_factory()
    wait_phase(cluster, namespace, "Healthy")
    roll_to(cluster, namespace, "web:2", UNREADY)
    cluster.wait_for(lambda: image(cluster, namespace) == "web:1", 120, "template rolled back to web:1")
    template = get(cluster, "deployment", namespace)["spec"]["template"]
    assert "pod-template-hash" not in template["metadata"]["labels"]
    assert "kwok.x-k8s.io/status" not in (template["metadata"].get("annotations") or {})
    status = rollout_status(cluster, namespace)
    assert status["rolledBackRevisions"] == ["2"]
    assert status["history"][0]["phase"] == "RolledBack" and "ProgressDeadlineExceeded" in status["history"][0]["reason"]
    rolled = events(cluster, namespace, "RolledBack")
    assert len(rolled) == 1 and rolled[0]["type"] == "Warning"
    # The rollback's own revision (3) comes up healthy and is recorded as a rollback.
    cluster.wait_for(lambda: rollout_status(cluster, namespace).get("rollbackRevisions") == ["3"], 60, "rollback recorded")


def test_healthy_rollout_is_left_alone(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
        deployment(), msvc({"autoRollback": True, "progressDeadlineSeconds": 30, "analysis": {"windowSeconds": 10}})]))
    operator_factory()
    wait_phase(cluster, namespace, "Healthy")
    roll_to(cluster, namespace, "web:2")
    wait_phase(cluster, namespace, "Analyzing", 60)
    status = wait_phase(cluster, namespace, "Healthy", 60)
    assert status["revision"] == "2" and status["history"][0] == {**status["history"][0], "phase": "Healthy", "revision": "2"}
    assert image(cluster, namespace) == "web:2"
    assert not events(cluster, namespace, "RolledBack")
    assert [e["reason"] for e in events(cluster, namespace, "RolloutSucceeded")] == ["RolloutSucceeded"]


def test_analysis_errors_roll_back_once_across_restarts(cluster, namespace, demo_stack, operator_factory) -> None:  # noqa: ANN001
    hooks = receivers.HttpReceiver()
    service = msvc({"autoRollback": True, "progressDeadlineSeconds": 60,
                    "analysis": {"windowSeconds": 120, "maxErrorRatePercent": 5, "maxLatencyP95Ms": 5000}},
                   prometheus=demo_stack.prometheus.url)
    # The AlertPolicy hook: a rule on the service's rollbacks, delivered to a webhook.
    policy = {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "rollouts"}, "spec": {
        "serviceRef": "web", "rules": [{"name": "RolledBack", "metric": "rollbacks", "op": ">", "threshold": 0,
                                        "severity": "warning", "summary": "{{service}} was rolled back"}],
        "channels": [{"name": "hook", "webhook": {"url": f"{hooks.url}/rollouts"}}],
        "routes": [{"severity": "warning", "channels": ["hook"], "repeatIntervalSeconds": 3600}]}}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([service, policy]))
    flags = ("--rate-window=10s", "--alert-interval-seconds=1", "--allow-loopback-egress")
    first = operator_factory(*flags)
    wait_phase(cluster, namespace, "Healthy")
    demo_stack.start_load(10)
    roll_to(cluster, namespace, "web:2")
    wait_phase(cluster, namespace, "Analyzing", 60)
    first.stop()  # a restart in the middle of the analysis window
    second = operator_factory(*flags)
    _control(demo_stack, {"errorRate": 60})
    cluster.wait_for(lambda: image(cluster, namespace) == "demo/web:1", 90, "rolled back on error rate")
    status = rollout_status(cluster, namespace)
    assert status["rolledBackRevisions"] == ["2"]
    assert "error rate" in status["history"][0]["reason"]
    _control(demo_stack, {"errorRate": 0})
    cluster.wait_for(lambda: len(hooks.delivered("/rollouts")) == 1, 30, "rollback notified")
    second.stop()  # and one right after the rollback
    operator_factory(*flags)
    time.sleep(20)
    assert len(events(cluster, namespace, "RolledBack")) == 1
    assert image(cluster, namespace) == "demo/web:1"
    revisions = get(cluster, "deployment", namespace)["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    assert revisions == "3", "exactly one rollback: revision 1 came back as 3"
    notified = [json.loads(r.body) for r in hooks.delivered("/rollouts")]
    assert [(n["kind"], n["rule"], n["summary"]) for n in notified] == [("firing", "RolledBack", "web was rolled back")]
    hooks.stop()


def _control(stack, body: dict) -> None:  # noqa: ANN001
    request = urllib.request.Request(f"{stack.app_url}/control", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


class Toggle(http.server.BaseHTTPRequestHandler):
    up = True
    delay = 0.0  # seconds before answering

    def do_GET(self) -> None:  # noqa: N802
        time.sleep(Toggle.delay)
        self.send_response(200 if Toggle.up else 503)
        self.end_headers()
        self.wfile.write(b"ok" if Toggle.up else b"down")

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def toggle_server():  # noqa: ANN201
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Toggle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Toggle.up, Toggle.delay = True, 0.0
    yield server
    Toggle.delay = 0.0
    server.shutdown()


def test_health_up_down_up(cluster, namespace, operator_factory, toggle_server) -> None:  # noqa: ANN001
    url = f"http://127.0.0.1:{toggle_server.server_address[1]}/health"
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([deployment(), msvc(
        checks=[{"name": "api", "http": {"url": url, "timeoutSeconds": 1}, "intervalSeconds": 1,
                 "failureThreshold": 2, "successThreshold": 2}],
        slo={"availabilityPercent": 10, "windowSeconds": 60})]))
    operator_factory("--allow-loopback-checks")

    def health() -> str:
        return get(cluster, "msvc", namespace).get("status", {}).get("health", "")

    cluster.wait_for(lambda: health() == "Healthy", 30, "Healthy")
    Toggle.up = False
    cluster.wait_for(lambda: health() == "Unhealthy", 30, "Unhealthy")
    check = get(cluster, "msvc", namespace)["status"]["checks"][0]
    assert check["healthy"] is False and check["message"] == "HTTP 503, expected 200"
    Toggle.up = True
    cluster.wait_for(lambda: health() == "Healthy", 30, "Healthy again")
    time.sleep(3)
    seen = [(e["type"], e["reason"]) for e in events(cluster, namespace) if e["message"].startswith("Healthy=")]
    # The first Healthy is announced only if an Unknown verdict was written before it: a first
    # verdict that is no problem makes no Event.
    assert seen in ([("Warning", "Unhealthy"), ("Normal", "Healthy")],
                    [("Normal", "Healthy"), ("Warning", "Unhealthy"), ("Normal", "Healthy")]), seen
    assert get(cluster, "msvc", namespace)["status"]["availabilityPercent"] < 100


def test_metadata_address_is_refused(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([deployment(), msvc(
        checks=[{"name": "imds", "http": {"url": "http://169.254.169.254/latest/meta-data/"}, "intervalSeconds": 5}])]))
    operator_factory("--allow-loopback-checks")

    def healthy_condition() -> dict:
        return next((c for c in get(cluster, "msvc", namespace).get("status", {}).get("conditions", [])
                     if c["type"] == "Healthy"), {})

    cluster.wait_for(lambda: healthy_condition().get("reason") == "EgressRefused", 30, "refused")
    assert "169.254.169.254 is a cloud metadata address" in healthy_condition()["message"]
    assert [e["type"] for e in events(cluster, namespace, "EgressRefused")] == ["Warning"]
    # Refused before any connection: no verdict, only the refusal.
    check = get(cluster, "msvc", namespace)["status"]["checks"][0]
    assert "healthy" not in check
    assert check["message"] == "169.254.169.254 is a cloud metadata address"


def metrics_condition(cluster, namespace) -> dict:  # noqa: ANN001
    return next((c for c in get(cluster, "msvc", namespace).get("status", {}).get("conditions", [])
                 if c["type"] == "MetricsAvailable"), {})


def test_metrics_snapshot_follows_the_source(cluster, namespace, demo_stack, operator_factory) -> None:  # noqa: ANN001
    service = msvc(prometheus=demo_stack.prometheus.url)
    service["spec"]["metrics"]["custom"] = [{"name": "answer", "query": "vector(42)", "unit": "count"}]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(service))
    demo_stack.start_load(10)
    operator_factory("--rate-window=10s", "--metrics-interval-seconds=2", "--allow-loopback-egress")

    def snapshot() -> dict:
        return get(cluster, "msvc", namespace).get("status", {}).get("metrics") or {}

    cluster.wait_for(lambda: (snapshot().get("requestRate") or 0) > 8 and snapshot().get("cpu") is not None,
                     90, "metrics of the loaded service in status")
    taken = snapshot()
    print("status.metrics under 10 req/s:", taken)
    # 10 req/s × 25 ms of CPU each over 2 pods of 250m: 50 % of request (see demo/webapp.py).
    assert 35 < taken["cpu"] < 65, taken
    assert taken["errorRate"] == 0 and taken["custom"] == {"answer": 42.0}
    assert taken["latencyP95"] > 0 and taken["memory"] > 0 and "sampledAt" in taken
    available = metrics_condition(cluster, namespace)
    assert (available["status"], available["reason"]) == ("True", "MetricsRead")
    assert available["message"].startswith("read cpu, memory, latencyP95, errorRate, requestRate"), available

    demo_stack.prometheus.stop()
    cluster.wait_for(lambda: metrics_condition(cluster, namespace).get("reason") == "MetricsUnavailable", 30,
                     "MetricsUnavailable")
    assert metrics_condition(cluster, namespace)["message"] == f"query failed: cannot connect to {demo_stack.prometheus.url}"
    assert [e["type"] for e in events(cluster, namespace, "MetricsUnavailable")] == ["Warning"]
    kept = snapshot()
    assert kept["cpu"] == pytest.approx(taken["cpu"], rel=0.5) and kept["custom"] == {"answer": 42.0}, \
        "the last values read stay, with their sample time"


def _deployment_writes(cluster, namespace) -> list[dict]:  # noqa: ANN001
    return [e for e in cluster.audit_events()
            if e.get("user", {}).get("username") == conftest.OPERATOR_USER and e.get("verb") == "patch"
            and e.get("objectRef", {}).get("resource") == "deployments"
            and e["objectRef"].get("namespace") == namespace and e.get("stage") == "ResponseComplete"]


def _probes_condition(cluster, namespace) -> dict:  # noqa: ANN001
    return next((c for c in get(cluster, "msvc", namespace).get("status", {}).get("conditions", [])
                 if c["type"] == "ProbesManaged"), {})


def test_probes_are_applied_once_and_never_fought(cluster, namespace, operator_factory, toggle_server) -> None:  # noqa: ANN001
    port = toggle_server.server_address[1]
    service = msvc(checks=[{"name": "api", "http": {"url": f"http://127.0.0.1:{port}/healthz", "timeoutSeconds": 2},
                            "intervalSeconds": 5, "failureThreshold": 3}])
    service["spec"]["probes"] = {"manage": True}
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([deployment(), service]))
    first = operator_factory("--allow-loopback-checks")

    def container() -> dict:
        return get(cluster, "deployment", namespace)["spec"]["template"]["spec"]["containers"][0]

    cluster.wait_for(lambda: _probes_condition(cluster, namespace).get("reason") == "ProbesInSync", 60, "probes in sync")
    readiness, liveness = container()["readinessProbe"], container()["livenessProbe"]
    assert readiness["httpGet"] == {"path": "/healthz", "port": port, "scheme": "HTTP"}
    assert (readiness["periodSeconds"], readiness["timeoutSeconds"], readiness["failureThreshold"]) == (5, 2, 3)
    assert (liveness["failureThreshold"], liveness["successThreshold"]) == (6, 1)
    deployment_now = json.loads(cluster.kubectl("get", "deployment", "web", "-n", namespace, "-o", "json",
                                                "--show-managed-fields"))
    managers = {(m["manager"], m["operation"]) for m in deployment_now["metadata"]["managedFields"]}
    assert ("capliquify-operator-probes", "Apply") in managers
    recorded = get(cluster, "msvc", namespace)["status"]["probes"]
    assert recorded["appliedGeneration"] == deployment_now["metadata"]["generation"] and recorded["reverts"] == 0
    assert len(_deployment_writes(cluster, namespace)) == 1
    assert [e["type"] for e in events(cluster, namespace, "ProbesUpdated")] == ["Normal"]

    # A second reconcile (a restart judges everything afresh) makes no write to the Deployment.
    first.stop()
    operator_factory("--allow-loopback-checks")
    time.sleep(15)
    assert len(_deployment_writes(cluster, namespace)) == 1

    # Something else keeps changing them: re-applied twice, then the operator stands back.
    for revert in (1, 2, 3):
        applied_before = len(_deployment_writes(cluster, namespace))
        cluster.kubectl("patch", "deployment", "web", "-n", namespace, "--type=json", "-p", json.dumps(
            [{"op": "replace", "path": "/spec/template/spec/containers/0/readinessProbe/periodSeconds", "value": 30}]))
        if revert < 3:
            cluster.wait_for(lambda: container()["readinessProbe"]["periodSeconds"] == 5, 30, f"re-applied after {revert}")
            cluster.wait_for(lambda revert=revert: get(cluster, "msvc", namespace)["status"]["probes"]["reverts"] == revert, 30,
                             f"revert {revert} counted")
            assert len(_deployment_writes(cluster, namespace)) == applied_before + 1
    cluster.wait_for(lambda: _probes_condition(cluster, namespace).get("reason") == "ProbesReverted", 30, "stood back")
    time.sleep(10)
    assert container()["readinessProbe"]["periodSeconds"] == 30, "the other writer's value stays"
    assert len(_deployment_writes(cluster, namespace)) == 3
    assert get(cluster, "msvc", namespace)["status"]["probes"] == {**recorded, "appliedGeneration": ANY_INT,
                                                                    "reverts": 3, "stopped": True}
    assert [e["type"] for e in events(cluster, namespace, "ProbesReverted")] == ["Warning"]
    print("probe applies by the operator:", len(_deployment_writes(cluster, namespace)),
          "| condition:", _probes_condition(cluster, namespace)["message"])


class _AnyInt(int):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, int)

    __hash__ = int.__hash__


ANY_INT = _AnyInt()


def slo_policy(rule: dict) -> dict:
    """An AlertPolicy "slo" with one burn-rate rule, delivered nowhere (a closed port)."""
    return {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "slo"}, "spec": {
        "serviceRef": "web", "rules": [rule],
        "channels": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/hook"}}],
        "routes": [{"channels": ["hook"]}]}}


def alert_state(cluster, namespace: str, rule: str) -> str:  # noqa: ANN001
    alerts = get(cluster, "alp", namespace, "slo").get("status", {}).get("alerts", [])
    return next((a["state"] for a in alerts if a["rule"] == rule), "Inactive")


def test_a_burn_rate_alert_fires_on_an_outage_not_on_a_blip(cluster, namespace, operator_factory, toggle_server) -> None:  # noqa: ANN001
    """Issue 12: the error budget of a 99.9 % availability SLO, multi-window (180 s and 30 s here,
    1 h and 5 min in production): a blip in a filled window is no page (2 failures of 180 probes
    burn 11x over the long window); a sustained failure is."""
    url = f"http://127.0.0.1:{toggle_server.server_address[1]}/health"
    policy = slo_policy({"name": "FastBurn", "metric": "burnRate", "threshold": 14.4, "severity": "critical",
                         "burnRateWindows": {"longSeconds": 180, "shortSeconds": 30}})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([deployment(), msvc(
        checks=[{"name": "api", "http": {"url": url, "timeoutSeconds": 1}, "intervalSeconds": 1, "failureThreshold": 3}],
        slo={"availabilityPercent": 99.9, "windowSeconds": 180}), policy]))
    operator_factory("--allow-loopback-egress", "--alert-interval-seconds=1", "--resync-seconds=10")

    def fast_burn() -> str:
        return alert_state(cluster, namespace, "FastBurn")

    Toggle.up = True
    cluster.wait_for(lambda: get(cluster, "msvc", namespace).get("status", {}).get("health") == "Healthy", 30, "Healthy")
    time.sleep(160)  # fill most of the long window with passing probes (the rest fills while we wait)
    Toggle.up = False
    time.sleep(1.2)  # a blip: one or two failed probes
    Toggle.up = True
    # The lost availability reaches status by the next resync (--resync-seconds=10); no page meanwhile.
    deadline = time.monotonic() + 40
    while get(cluster, "msvc", namespace)["status"].get("availabilityPercent", 100) >= 100:
        assert time.monotonic() < deadline, "the blip was never seen"
        assert fast_burn() != "Firing", get(cluster, "alp", namespace, "slo").get("status")
        time.sleep(1)
    for _ in range(5):
        assert fast_burn() != "Firing", get(cluster, "alp", namespace, "slo").get("status")
        time.sleep(1)
    Toggle.up = False  # an outage
    try:
        cluster.wait_for(lambda: fast_burn() == "Firing", 40,
                         f"FastBurn firing: {get(cluster, 'alp', namespace, 'slo').get('status')}")
    finally:
        Toggle.up = True


def test_a_latency_burn_rate_alert_fires_when_answers_slow_down(cluster, namespace, operator_factory, toggle_server) -> None:  # noqa: ANN001
    """Issue 12: slo.latencyP95Ms as an SLO. Probes every second; answers become slower than the
    target; the latency budget (5 % of answers, as a p95 allows) burns in both windows."""
    url = f"http://127.0.0.1:{toggle_server.server_address[1]}/health"
    policy = slo_policy({"name": "SlowBurn", "metric": "latencyBurnRate", "threshold": 6, "severity": "warning",
                         "burnRateWindows": {"longSeconds": 90, "shortSeconds": 30}})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([deployment(), msvc(
        checks=[{"name": "api", "http": {"url": url, "timeoutSeconds": 1}, "intervalSeconds": 1}],
        slo={"latencyP95Ms": 150, "windowSeconds": 300}), policy]))
    operator_factory("--allow-loopback-egress", "--alert-interval-seconds=1", "--resync-seconds=5")

    def slow_burn() -> str:
        return alert_state(cluster, namespace, "SlowBurn")

    cluster.wait_for(lambda: get(cluster, "msvc", namespace).get("status", {}).get("latencyWithinSloPercent") == 100,
                     60, "fast answers reported")
    time.sleep(20)
    assert slow_burn() != "Firing"
    Toggle.delay = 0.3  # every answer now takes twice the target; health stays Healthy
    try:
        cluster.wait_for(lambda: slow_burn() == "Firing", 90, "SlowBurn firing")
        status = get(cluster, "msvc", namespace)["status"]
        assert status["health"] == "Healthy" and status["latencyWithinSloPercent"] < 95, status
    finally:
        Toggle.delay = 0.0


def test_a_rollout_that_succeeds_and_one_that_fails_each_notify_once(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    hooks = receivers.HttpReceiver()
    try:
        service = msvc({"autoRollback": False, "progressDeadlineSeconds": 30, "analysis": {"windowSeconds": 5}})
        policy = {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "rollouts"}, "spec": {
            "serviceRef": "web", "sendResolved": False,
            "rules": [{"name": "Deployed", "metric": "rolloutsSucceeded", "op": ">", "threshold": 0, "severity": "info"},
                      {"name": "DeployFailed", "metric": "rolloutsFailed", "op": ">", "threshold": 0, "severity": "warning"}],
            "channels": [{"name": "hook", "webhook": {"url": f"{hooks.url}/rollouts"}}],
            "routes": [{"channels": ["hook"], "repeatIntervalSeconds": 3600}]}}
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([deployment(), service, policy]))
        operator_factory("--alert-interval-seconds=1", "--allow-loopback-egress")
        wait_phase(cluster, namespace, "Healthy")

        def rules_notified() -> list[str]:
            return [json.loads(r.body)["rule"] for r in hooks.delivered("/rollouts")]

        roll_to(cluster, namespace, "web:2")
        cluster.wait_for(lambda: rules_notified() == ["Deployed"], 90, "the successful rollout notified")
        roll_to(cluster, namespace, "web:3", UNREADY)
        wait_phase(cluster, namespace, "Failed", 90)
        cluster.wait_for(lambda: rules_notified() == ["Deployed", "DeployFailed"], 30, "the failed rollout notified")
        time.sleep(8)
        assert rules_notified() == ["Deployed", "DeployFailed"], "once each"
        assert image(cluster, namespace) == "web:3", "no autoRollback: the failed revision stays"
    finally:
        hooks.stop()
