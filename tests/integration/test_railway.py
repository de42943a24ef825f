"""A Railway service as a MonitoredService target, scaled by a ScalingPolicy: the operator as
its ServiceAccount talks to the local Railway simulator, which validates every document
against Railway's published schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
import yaml

from localcluster import railway as railway_sim
from localcluster import receivers
from tests import conftest

pytestmark = pytest.mark.integration
GROUP = "ops.capliquify.io/v1alpha1"


def objects(endpoint: str) -> list[dict]:
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "railway"}, "stringData": {"token": "t0ken"}},
        {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "api"},
         "spec": {"target": {"railway": {"projectId": "p-1", "environmentId": "env-1", "serviceId": "svc-1",
                                         "tokenSecretRef": {"name": "railway", "key": "token"}, "endpoint": endpoint}}}},
        {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "api"},
         "spec": {"targetRef": {"monitoredService": "api"}, "minReplicas": 1, "maxReplicas": 5,
                  "evaluationIntervalSeconds": 5, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                  "behavior": {"scaleUp": {"cooldownSeconds": 5, "policies": [{"type": "Pods", "value": 2, "periodSeconds": 10}]},
                               "scaleDown": {"stabilizationWindowSeconds": 10, "cooldownSeconds": 5,
                                             "policies": [{"type": "Percent", "value": 100, "periodSeconds": 10}]}}}},
    ]


def get(cluster, kind: str, namespace: str, name: str = "api") -> dict:  # noqa: ANN001
    return json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json"))


def condition(cluster, kind: str, namespace: str, type_: str) -> dict:  # noqa: ANN001
    return next((c for c in get(cluster, kind, namespace).get("status", {}).get("conditions", [])
                 if c["type"] == type_), {})


def load(simulator: railway_sim.RailwaySimulator, vcpu: float) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{simulator.port}/control", method="POST",
                                     data=json.dumps({"serviceId": "svc-1", "loadVcpu": vcpu}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def test_railway_service_is_watched_and_scaled(cluster, namespace, operator_factory, railway) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects(railway.url)))
    operator_factory("--allow-loopback-egress", "--railway-interval-seconds=2", "--metrics-interval-seconds=2")
    cluster.wait_for(lambda: condition(cluster, "msvc", namespace, "Ready").get("reason") == "TargetFound", 60,
                     "Railway service found")
    status = get(cluster, "msvc", namespace)["status"]
    assert status["target"] == "Railway/svc-1" and status["replicas"] == {"desired": 1, "ready": 1}
    cluster.wait_for(lambda: (get(cluster, "msvc", namespace)["status"].get("metrics") or {}).get("cpu") == 40, 30,
                     "Railway cpu in status.metrics")
    assert condition(cluster, "msvc", namespace, "MetricsAvailable")["reason"] == "MetricsRead"

    timeline = []
    started = time.monotonic()
    load(railway, 2.0)  # 200 % of one replica's vCPU
    cluster.wait_for(lambda: railway.services["svc-1"].replicas == 3, 60, "scaled up to 3 on Railway")
    timeline.append((round(time.monotonic() - started), railway.services["svc-1"].replicas))
    time.sleep(12)
    assert railway.services["svc-1"].replicas == 3, "67 % at 3 replicas is inside the band: hold"
    load(railway, 0.2)
    cluster.wait_for(lambda: railway.services["svc-1"].replicas == 1, 90, "scaled down to 1 on Railway")
    timeline.append((round(time.monotonic() - started), railway.services["svc-1"].replicas))
    print("Railway replicas over time (s, replicas):", timeline, "| deployments:", len(railway.services["svc-1"].deployments))
    cluster.wait_for(lambda: (get(cluster, "scp", namespace)["status"].get("lastDecision") or {}).get("to") == 1, 15,
                     "the decision recorded in status")
    scp = get(cluster, "scp", namespace)["status"]
    assert scp["target"] == "Railway/svc-1" and scp["lastDecision"]["to"] == 1 and scp["lastDecision"]["actuated"]
    assert len(railway.services["svc-1"].deployments) == 3, "each replica change is applied by one deploy"
    assert railway.invalid == [] and len(railway.documents) > 10

    # Railway revokes the token: Ready=False with Railway's answer, and a Warning.
    railway.token = "rotated"
    cluster.wait_for(lambda: condition(cluster, "msvc", namespace, "Ready").get("reason") == "RailwayUnavailable", 60,
                     "RailwayUnavailable")
    assert condition(cluster, "msvc", namespace, "Ready")["message"] == \
        "Railway service svc-1: Railway refused the token (HTTP 401)"
    events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
    assert any(e["reason"] == "RailwayUnavailable" and e["type"] == "Warning" for e in events)


def control(simulator: railway_sim.RailwaySimulator, **values: float) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{simulator.port}/control", method="POST",
                                     data=json.dumps({"serviceId": "svc-1", **values}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def test_railway_http_metrics_drive_an_alert(cluster, namespace, operator_factory, railway) -> None:  # noqa: ANN001
    """Railway's own HTTP metrics (p95 latency, 5xx share) come through the metric-source seam:
    in the service's status.metrics, and an AlertPolicy rule on errorRate fires and resolves."""
    hook = receivers.HttpReceiver()
    try:
        service = objects(railway.url)[:2]  # the token Secret and the MonitoredService
        service[1]["metadata"]["labels"] = {"tier": "prod"}
        policy = {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "prod"}, "spec": {
            "selector": {"matchLabels": {"tier": "prod"}},
            "rules": [{"name": "HighErrorRate", "metric": "errorRate", "op": ">", "threshold": 5, "forSeconds": 2,
                       "severity": "warning", "summary": "{{service}} error rate {{value}}% > {{threshold}}%"}],
            "channels": [{"name": "hook", "webhook": {"url": f"{hook.url}/hook"}}],
            "routes": [{"severity": "warning", "channelKinds": ["webhook"], "repeatIntervalSeconds": 3600}]}}
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([*service, policy]))
        operator_factory("--allow-loopback-egress", "--railway-interval-seconds=2", "--metrics-interval-seconds=2",
                         "--alert-interval-seconds=1")

        def metrics() -> dict:
            return get(cluster, "msvc", namespace).get("status", {}).get("metrics") or {}

        cluster.wait_for(lambda: metrics().get("latencyP95") == 120 and metrics().get("errorRate") == 0, 60,
                         "Railway's p95 latency and error rate in status.metrics")
        control(railway, errorPercent=50, p95Ms=900)
        cluster.wait_for(lambda: any(json.loads(r.body).get("kind") == "firing" for r in hook.delivered("/hook")), 60,
                         "HighErrorRate fired on Railway's error rate")
        firing = next(json.loads(r.body) for r in hook.delivered("/hook") if json.loads(r.body).get("kind") == "firing")
        assert (firing["rule"], firing["service"]) == ("HighErrorRate", "api") and "50" in firing["summary"]
        assert metrics().get("latencyP95") == 900
        control(railway, errorPercent=0)
        cluster.wait_for(lambda: any(json.loads(r.body).get("kind") == "resolved" for r in hook.delivered("/hook")), 60,
                         "resolved when Railway's errors stop")
        assert len(hook.delivered("/hook")) == 2
    finally:
        hook.stop()


def test_a_429_storm_during_a_scale_up(cluster, namespace, operator_factory, railway) -> None:  # noqa: ANN001
    """Every second request is refused with 429 and Retry-After: 2 while the load rises: the
    scale-up happens once (one deploy, no step lost or doubled), the operator's request rate
    stays within its budget, and the MonitoredService says it is rate-limited while it is."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects(railway.url)))
    operator_factory("--allow-loopback-egress", "--railway-interval-seconds=2", "--metrics-interval-seconds=2")
    cluster.wait_for(lambda: condition(cluster, "msvc", namespace, "Ready").get("reason") == "TargetFound", 60,
                     "Railway service found")
    deployments_before = len(railway.services["svc-1"].deployments)
    railway.refuse_every, railway.retry_after = 2, 2
    storm_started = time.monotonic()
    load(railway, 2.0)  # 200 % of one replica: up to 3
    reasons_seen = set()
    while railway.services["svc-1"].replicas != 3 and time.monotonic() - storm_started < 120:
        reasons_seen.add(condition(cluster, "msvc", namespace, "Ready").get("reason"))
        time.sleep(1)
    assert railway.services["svc-1"].replicas == 3, "scaled up through the storm"
    scaled_after = time.monotonic() - storm_started
    assert "RailwayRateLimited" in reasons_seen, reasons_seen
    assert condition(cluster, "msvc", namespace, "Ready")["status"] == "True", "rate-limited is not unavailable"
    time.sleep(10)  # the storm goes on: nothing more to do, nothing done twice
    assert railway.services["svc-1"].replicas == 3
    assert len(railway.services["svc-1"].deployments) == deployments_before + 1, "one deploy for the one scale-up"
    storm = [(at, refused) for at, refused in railway.arrivals if at >= storm_started]
    seconds = storm[-1][0] - storm[0][0]
    # The budget: bursts of 10, 5 per second after that; each 429 pauses the token for 2 s.
    assert len(storm) <= 10 + 5 * seconds, (len(storm), seconds)
    print(f"429 storm: scaled to 3 after {scaled_after:.0f} s; {len(storm)} requests in {seconds:.0f} s, "
          f"{sum(1 for _, refused in storm if refused)} refused")
    # Nothing is sent during a Retry-After pause, beyond one request already in flight when the
    # 429 was answered (a poll and a scale may overlap).
    in_pauses = [sum(1 for at, _ in storm if start < at < start + 1.9) for start, refused in storm if refused]
    assert in_pauses and max(in_pauses) <= 1, in_pauses
    railway.refuse_every = 0
    cluster.wait_for(lambda: condition(cluster, "msvc", namespace, "Ready").get("reason") == "TargetFound", 30,
                     "no longer rate-limited")
    assert railway.invalid == []


def test_graphql_errors_inside_a_200_are_never_acted_on(cluster, namespace, operator_factory, railway) -> None:  # noqa: ANN001
    """Railway answers HTTP 200 with `errors` and the rest of the data (a partial answer) while
    the load rises: nothing is scaled on it, the service says why; once answers are whole
    again it scales, once."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(objects(railway.url)))
    operator_factory("--allow-loopback-egress", "--railway-interval-seconds=2", "--metrics-interval-seconds=2")
    cluster.wait_for(lambda: condition(cluster, "msvc", namespace, "Ready").get("reason") == "TargetFound", 60,
                     "Railway service found")
    deployments_before = len(railway.services["svc-1"].deployments)
    railway.failing_metrics = 10 ** 6
    load(railway, 2.0)
    cluster.wait_for(lambda: condition(cluster, "msvc", namespace, "Ready").get("reason") == "RailwayUnavailable", 30,
                     "the partial answer reported")
    assert "Problem processing request" in condition(cluster, "msvc", namespace, "Ready")["message"]
    time.sleep(10)
    assert railway.services["svc-1"].replicas == 1, "no scale on a partial read"
    assert len(railway.services["svc-1"].deployments) == deployments_before
    railway.failing_metrics = 0
    cluster.wait_for(lambda: railway.services["svc-1"].replicas == 3, 60, "scaled once answers are whole")
    time.sleep(6)
    assert len(railway.services["svc-1"].deployments) == deployments_before + 1
    assert railway.invalid == []


EXAMPLE = conftest.REPO / "examples" / "railway" / "production.yaml"
EXAMPLE_ARGS = ("--project", "prj-platform", "--environment", "env-production",
                "--target-endpoint", "https://backboard.railway.com/graphql/v2",
                *(arg for replicas in railway_sim.PLATFORM_RANGES for arg in ("--replicas", replicas)))
# The platform's four-service table: replicas range, GB / vCPU per replica, health path.
PLATFORM_TABLE = {"web": ((2, 10), (4, 4), "/api/health"), "api": ((2, 5), (2, 2), "/health"),
                  "worker": ((1, 5), (2, 2), "/worker/health"), "scheduler": ((1, 2), (1, 1), "/scheduler/health")}


def railway_import(simulator: railway_sim.RailwaySimulator, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAILWAY_TOKEN": simulator.token}
    return subprocess.run([sys.executable, "-m", "controller", "railway", "import", "--endpoint", simulator.url,
                           "--allow-loopback-egress", *args], capture_output=True, text=True, timeout=60, env=env,
                          cwd=conftest.REPO)


def test_railway_import_of_the_platform_environment(cluster, namespace) -> None:  # noqa: ANN001
    """The four production services → a policy set the real API server accepts; the shipped
    example is exactly this output (set CAPLIQUIFY_UPDATE_GOLDEN=1 to rewrite it)."""
    simulator = railway_sim.RailwaySimulator(token="import-token", environment_id="env-production").start()
    try:
        railway_sim.add_platform_services(simulator)
        result = railway_import(simulator, *EXAMPLE_ARGS)
        assert result.returncode == 0, result.stderr
        assert "import-token" not in result.stdout
        assert simulator.invalid == []
        if os.environ.get("CAPLIQUIFY_UPDATE_GOLDEN"):
            EXAMPLE.parent.mkdir(exist_ok=True)
            EXAMPLE.write_text(result.stdout)
        assert result.stdout == EXAMPLE.read_text(), "examples/railway/production.yaml is not what the import writes"
        documents = list(yaml.safe_load_all(result.stdout))
        assert sorted((d["kind"], d["metadata"]["name"]) for d in documents) == sorted(
            (kind, name) for name in ("web", "api", "worker", "scheduler")
            for kind in ("MonitoredService", "ScalingPolicy", "AlertPolicy"))
        # The example is the platform's table (the golden file cannot drift from it unnoticed).
        found = {}
        for name in PLATFORM_TABLE:
            target = next(d for d in documents if d["kind"] == "MonitoredService" and d["metadata"]["name"] == name
                          )["spec"]["target"]["railway"]
            scp = next(d for d in documents if d["kind"] == "ScalingPolicy" and d["metadata"]["name"] == name)["spec"]
            found[name] = ((scp["minReplicas"], scp["maxReplicas"]),
                           (target["resources"]["memoryGB"], target["resources"]["vCPUs"]),
                           target["deployHealthCheck"]["path"])
            assert target["deployHealthCheck"]["timeoutSeconds"] == 10
        assert found == PLATFORM_TABLE
        checks = {d["metadata"]["name"]: d["spec"].get("healthChecks") for d in documents if d["kind"] == "MonitoredService"}
        assert [(c["intervalSeconds"], c["http"]["timeoutSeconds"], c["failureThreshold"], c["startPeriodSeconds"])
                for c in checks["web"] + checks["api"]] == [(30, 10, 3, 60)] * 2
        assert checks["web"][0]["http"]["url"] == "https://web-production.up.railway.app/api/health"
        applied = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", str(EXAMPLE))
        assert applied.count("(server dry run)") == 12, applied
        unknown = railway_import(simulator, "--project", "p", "--environment", "nope")
        assert unknown.returncode == 1 and "Environment not found" in unknown.stderr
    finally:
        simulator.stop()


def test_a_railway_service_is_health_checked_continuously(cluster, namespace, operator_factory, railway) -> None:  # noqa: ANN001
    """Railway checks health only at deploy time; the operator checks the service's URL all the
    time, through the same checker and egress guard as any other service."""
    from localcluster import hostile

    service = hostile.HostileServer(hostile.http_reply(b"ok", content_type="text/plain"))
    try:
        documents = objects(railway.url)
        documents[1]["spec"]["healthChecks"] = [{"name": "health", "http": {"url": f"{service.url}/health",
                                                                            "timeoutSeconds": 2},
                                                 "intervalSeconds": 2, "failureThreshold": 2}]
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(documents[:2]))
        operator_factory("--allow-loopback-egress", "--railway-interval-seconds=2")
        cluster.wait_for(lambda: get(cluster, "msvc", namespace).get("status", {}).get("health") == "Healthy", 60,
                         "the Railway service is Healthy")
        service.reply = hostile.http_reply(b"down", status="503 Service Unavailable", content_type="text/plain")
        cluster.wait_for(lambda: get(cluster, "msvc", namespace).get("status", {}).get("health") == "Unhealthy", 30,
                         "the Railway service is Unhealthy while Railway still says SUCCESS")
        check = get(cluster, "msvc", namespace)["status"]["checks"][0]
        assert check["healthy"] is False and "503" in check["message"]
        assert condition(cluster, "msvc", namespace, "Ready")["reason"] == "TargetFound"
    finally:
        service.close()


def test_railway_instance_configuration_is_applied_once(cluster, namespace, operator_factory, railway) -> None:  # noqa: ANN001
    """Resources, deploy health check and pre-deploy command from the MonitoredService: sent once
    (one mutation, validated against the schema by the local Railway), nothing sent while Railway
    reports them as written, no deploy of their own; a refusal is a condition and one Warning,
    tried once, not at every poll, and never says the token."""
    documents = objects(railway.url)[:2]
    documents[1]["spec"]["target"]["railway"].update({
        "resources": {"memoryGB": 4, "vCPUs": 4}, "deployHealthCheck": {"path": "/api/health", "timeoutSeconds": 10},
        "preDeployCommand": ["npm run migrate"]})
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(documents))
    deployments = len(railway.services["svc-1"].deployments)
    operator_factory("--allow-loopback-egress", "--railway-interval-seconds=2")

    def sent() -> int:
        return sum(1 for d in railway.documents if "CapliquifyConfigure" in d)

    def reads() -> int:
        return sum(1 for d in railway.documents if "CapliquifyInstanceConfig" in d)

    cluster.wait_for(lambda: condition(cluster, "msvc", namespace, "RailwayConfigured").get("reason")
                     == "RailwayConfigInSync" and railway.services["svc-1"].healthcheck_path == "/api/health", 60,
                     "the instance configured")
    service = railway.services["svc-1"]
    assert (service.memory_limit_gb, service.cpu_limit) == (4.0, 4.0)
    assert (service.healthcheck_timeout, service.pre_deploy_command) == (10, ["npm run migrate"])
    assert sent() == 1
    events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
    applied = [e for e in events if e["reason"] == "RailwayConfigApplied"]
    assert len(applied) == 1 and "memoryGB 1 -> 4" in applied[0]["message"], applied
    assert "npm run migrate" not in applied[0]["message"]
    # Steady state: three more reads, no write, no deploy.
    seen = reads()
    cluster.wait_for(lambda: reads() >= seen + 3, 30, "three more reads of the instance")
    assert sent() == 1 and len(service.deployments) == deployments

    # Railway refuses a change: RailwayConfigured=False with Railway's words, a Warning, one try.
    railway.refuse_config = "Resource limits exceed your plan"
    cluster.kubectl("patch", "msvc", "api", "-n", namespace, "--type=merge", "-p",
                    json.dumps({"spec": {"target": {"railway": {"resources": {"memoryGB": 8}}}}}))
    cluster.wait_for(lambda: condition(cluster, "msvc", namespace, "RailwayConfigured").get("reason")
                     == "RailwayConfigRefused", 60, "the refusal reported")
    refused = condition(cluster, "msvc", namespace, "RailwayConfigured")
    assert refused["status"] == "False" and "Resource limits exceed your plan" in refused["message"]
    assert "t0ken" not in refused["message"]
    seen = reads()
    cluster.wait_for(lambda: reads() >= seen + 3, 30, "three more reads of the instance")
    assert sent() == 2, "a refused change is not sent again at every poll"
    events = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
    assert any(e["reason"] == "RailwayConfigRefused" and e["type"] == "Warning" for e in events)
    assert service.memory_limit_gb == 4.0 and railway.invalid == []
