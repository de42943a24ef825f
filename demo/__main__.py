"""`make demo`: the main job on the embedded local cluster.

Starts the local control plane, installs the operator (`kubectl apply -k manifests/`), runs
it as its own ServiceAccount, applies the examples, then shows the scaling loop: the demo
app under a load ramp scraped by a real Prometheus, the operator scaling its Deployment up,
then down once the load stops, with a printed timeline; then the alerting loop: the app is told
to fail, an AlertPolicy fires to a local webhook receiver and resolves when the app recovers.
Ends with `kubectl get capliquify -A`.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

from localcluster import cluster as cluster_module
from localcluster import operator as operator_module
from localcluster import prometheus as prometheus_module
from localcluster import railway as railway_sim
from localcluster import receivers

REPO = cluster_module.REPO
NAMESPACE = "demo"
GROUP = "ops.capliquify.io/v1alpha1"
# (seconds from start, requests/s): cpu% per pod ≈ 10 × rate / pods.
RAMP = [(0, 10), (20, 30), (40, 50), (90, 0)]


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def ready(local: cluster_module.LocalCluster, kind: str, namespace: str) -> bool:
    items = json.loads(local.kubectl("get", kind, "-n", namespace, "-o", "json"))["items"]
    return bool(items) and all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in item.get("status", {}).get("conditions", []))
        for item in items
    )


def demo_objects(prometheus_url: str, health_url: str, hook_url: str) -> list[dict]:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": NAMESPACE},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "web", "image": "demo/web:1"}]}}}}
    msvc = {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "web", "namespace": NAMESPACE},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                     "metrics": {"prometheus": {"url": prometheus_url}},
                     "healthChecks": [{"name": "app", "http": {"url": health_url}, "intervalSeconds": 5}]}}
    # The seed thresholds and the shipped scale-up behaviour (no timer: it waits for new pods
    # to be ready); only the scale-down window is shortened so the demo fits in a few minutes.
    scp = {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "web", "namespace": NAMESPACE},
           "spec": {"targetRef": {"monitoredService": "web"}, "minReplicas": 2, "maxReplicas": 10,
                    "evaluationIntervalSeconds": 5,
                    "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30},
                                {"type": "latencyP95", "scaleUp": 2000, "scaleDown": 500}],
                    "behavior": {"scaleDown": {"stabilizationWindowSeconds": 30,
                                               "policies": [{"type": "Percent", "value": 50, "periodSeconds": 15}]}}}}
    alp = {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "web", "namespace": NAMESPACE},
           "spec": {"serviceRef": "web",
                    "rules": [{"name": "HighErrorRate", "metric": "errorRate", "op": ">", "threshold": 5,
                               "forSeconds": 10, "severity": "warning",
                               "summary": "{{service}} error rate {{value}}% > {{threshold}}%"}],
                    "channels": [{"name": "hook", "webhook": {"url": hook_url}}],
                    "routes": [{"severity": "warning", "channels": ["hook"], "repeatIntervalSeconds": 3600}]}}
    return [deployment, msvc, scp, alp]


def railway_phase(local: cluster_module.LocalCluster, simulator: railway_sim.RailwaySimulator) -> None:
    say("Railway: a MonitoredService on a Railway service (local GraphQL simulator, schema-validated); "
        "its CPU demand rises, the ScalingPolicy scales it through Railway's API")
    objects = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "railway", "namespace": NAMESPACE},
         "stringData": {"token": "demo-token"}},
        {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "api", "namespace": NAMESPACE},
         "spec": {"target": {"railway": {"projectId": "demo", "environmentId": "env-1", "serviceId": "svc-api",
                                         "tokenSecretRef": {"name": "railway", "key": "token"},
                                         "endpoint": simulator.url}}}},
        {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "api", "namespace": NAMESPACE},
         "spec": {"targetRef": {"monitoredService": "api"}, "minReplicas": 1, "maxReplicas": 6,
                  "evaluationIntervalSeconds": 5, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                  "behavior": {"scaleUp": {"cooldownSeconds": 5}}}},
    ]
    local.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
    local.wait_for(lambda: ready(local, "msvc", NAMESPACE), 60, "Railway service found")
    started = time.monotonic()
    request = urllib.request.Request(f"http://127.0.0.1:{simulator.port}/control", method="POST",
                                     data=json.dumps({"serviceId": "svc-api", "loadVcpu": 3.0}).encode(),
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()
    seen = simulator.services["svc-api"].replicas
    print(f"{0:>5}s  Railway replicas {seen} (demand 3 vCPU, 1 vCPU per replica)", flush=True)
    while time.monotonic() - started < 60:
        replicas = simulator.services["svc-api"].replicas
        if replicas != seen:
            status = json.loads(local.kubectl("get", "scp", "api", "-n", NAMESPACE, "-o", "json"))["status"]
            print(f"{time.monotonic() - started:>5.0f}s  Railway replicas {replicas}: "
                  f"{status.get('lastDecision', {}).get('reason', '')}", flush=True)
            seen = replicas
        if seen >= 5:
            break
        time.sleep(1)
    print(f"GraphQL documents sent: {len(simulator.documents)}, refused by the schema: {len(simulator.invalid)}")


def railway_import_phase(local: cluster_module.LocalCluster, simulator: railway_sim.RailwaySimulator) -> None:
    say("Railway import: capliquify railway import reads the platform's production environment (web, api, worker, "
        "scheduler) and writes a policy set; applied as written")
    railway_sim.add_platform_services(simulator)
    imported = subprocess.run(
        [sys.executable, "-m", "controller", "railway", "import", "--project", "prj-platform",
         "--environment", "env-production", "--endpoint", simulator.url, "--allow-loopback-egress",
         *(arg for replicas in railway_sim.PLATFORM_RANGES for arg in ("--replicas", replicas))],
        capture_output=True, text=True, timeout=60, env={**os.environ, "RAILWAY_TOKEN": simulator.token}, cwd=REPO)
    if imported.returncode != 0:
        raise RuntimeError(f"railway import failed: {imported.stderr}")
    print(f"$ capliquify railway import --project prj-platform --environment env-production  "
          f"# {imported.stdout.count('kind: ')} objects (examples/railway/production.yaml is the same, for Railway itself)")
    local.kubectl("create", "namespace", "railway-prod")
    local.kubectl("create", "secret", "generic", "railway-token", "-n", "railway-prod", f"--from-literal=token={simulator.token}")
    # The AlertPolicies' Slack channel: a closed loopback port here (nothing leaves the machine).
    local.kubectl("create", "secret", "generic", "alert-channels", "-n", "railway-prod",
                  "--from-literal=slack-webhook=http://127.0.0.1:9/slack")
    print(local.kubectl("apply", "-n", "railway-prod", "-f", "-", input=imported.stdout), end="")
    local.wait_for(lambda: ready(local, "msvc", "railway-prod"), 60, "the four Railway services found")
    print(local.kubectl("get", "msvc,scp", "-n", "railway-prod"), end="", flush=True)


def control(app_port: int, body: dict) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{app_port}/control", data=json.dumps(body).encode(),
                                     method="POST", headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def alerting_phase(local: cluster_module.LocalCluster, app_port: int, hooks: receivers.HttpReceiver) -> None:
    say("Alerting: the demo app fails 30 % of requests under light load; AlertPolicy web notifies a local webhook")
    load = subprocess.Popen([sys.executable, "-m", "demo.loadgen", f"--url=http://127.0.0.1:{app_port}/",
                             "--rate=10", "--seconds=600"], cwd=REPO, stdout=subprocess.DEVNULL)
    try:
        started = time.monotonic()
        control(app_port, {"errorRate": 30})
        for kind in ("firing", "resolved"):
            local.wait_for(lambda kind=kind: any(json.loads(r.body)["kind"] == kind for r in hooks.delivered("/hook")),
                           180, f"{kind} notification")
            body = next(json.loads(r.body) for r in hooks.delivered("/hook") if json.loads(r.body)["kind"] == kind)
            print(f"{time.monotonic() - started:>5.0f}s  webhook got {kind}: {body['summary']} (key …/{body['key'].split('/', 1)[1]})",
                  flush=True)
            if kind == "firing":
                control(app_port, {"errorRate": 0})
        status = json.loads(local.kubectl("get", "alp", "web", "-n", NAMESPACE, "-o", "json"))["status"]
        print("status.deliveries:", [(d["channel"], d["kind"], d["outcome"]) for d in status["deliveries"]])
    finally:
        load.terminate()


def capliquify_status(local: cluster_module.LocalCluster) -> str:
    """`kubectl capliquify status -A`, as a user runs it (the plugin is installed beside this Python)."""
    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "KUBECONFIG": str(local.kubeconfig), "KUBECTL_VERSION_SKEW_WARNING": "false"}
    result = subprocess.run(["kubectl", "capliquify", "status", "-A"], capture_output=True, text=True, timeout=60, env=env)
    return result.stdout + result.stderr


def dashboard_queries(prometheus: prometheus_module.Prometheus) -> None:
    """Every query of the shipped Grafana dashboards, run against this demo's Prometheus (which
    scrapes the operator): how many return data."""
    from controller import dashboards  # the SDK is a dev/test dependency, installed by make

    say(f"The shipped dashboards' queries against this Prometheus ({prometheus.url})")
    empty, total = [], 0
    for name in dashboards.DASHBOARDS:
        for expr in dashboards.queries(json.loads(dashboards.render(name))):
            total += 1
            url = f"{prometheus.url}/api/v1/query?{urllib.parse.urlencode({'query': dashboards.concrete(expr, namespace=NAMESPACE)})}"
            with urllib.request.urlopen(url, timeout=10) as response:
                if not json.load(response)["data"]["result"]:
                    empty.append(f"{name}: {expr}")
    print(f"{total - len(empty)} of {total} return data" + "".join(f"\n  no data: {e}" for e in empty), flush=True)


def main() -> int:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="capliquify-demo-"))
    local = cluster_module.LocalCluster(workdir / "cluster")
    app_port = cluster_module.free_port()
    prometheus = prometheus_module.Prometheus(workdir / "prometheus", [f"127.0.0.1:{app_port}"])
    operator: operator_module.OperatorProcess | None = None
    processes: list[subprocess.Popen[bytes]] = []
    hooks = receivers.HttpReceiver()
    simulator = railway_sim.RailwaySimulator(token="demo-token").start()
    simulator.add_service("svc-api", "api", replicas=1)
    production = railway_sim.RailwaySimulator(token="prod-token", environment_id="env-production").start()
    try:
        say("Starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
        local.start()
        say("kubectl apply -k manifests/   (CRDs, RBAC, operator Deployment)")
        print(operator_module.install(local), end="")
        say("kubectl apply -k manifests/examples   (web Deployment + one object per kind)")
        print(local.kubectl("apply", "-k", str(REPO / "manifests" / "examples")), end="")
        # The operator's process (started later): its metrics port is known now, so that Prometheus
        # scrapes the operator too (the dashboards' queries run against this Prometheus).
        operator = operator_module.OperatorProcess(local, workdir / "operator.log", "--rate-window=15s",
                                                   "--allow-loopback-egress", "--metrics-interval-seconds=5",
                                                   "--alert-interval-seconds=2", "--railway-interval-seconds=2")
        prometheus.extra_jobs = [prometheus_module.static_job("capliquify-operator", f"127.0.0.1:{operator.metrics_port}")]
        say(f"Prometheus on loopback ({prometheus.url}) scraping the demo app and the operator; namespace {NAMESPACE}")
        prometheus.start()
        # The example names an in-cluster Prometheus and service; here everything stays on loopback.
        local.kubectl("patch", "msvc", "web", "-n", "shop", "--type=merge", "-p", json.dumps(
            {"spec": {"metrics": {"prometheus": {"url": prometheus.url}},
                      "healthChecks": [{"name": "api", "http": {"url": f"http://127.0.0.1:{app_port}/health"},
                                        "intervalSeconds": 5}]}}))
        # Its alert channels too: nothing leaves the machine (closed loopback ports).
        local.kubectl("patch", "secret", "alert-channels", "-n", "shop", "--type=merge", "-p", json.dumps(
            {"stringData": {"slack-webhook": "http://127.0.0.1:9/slack",
                            "smtp": "host: 127.0.0.1\nport: 9\nfrom: capliquify@example.com\n",
                            "sms": "url: http://127.0.0.1:9/sms\n"}}))
        local.kubectl("patch", "alp", "prod-web", "-n", "shop", "--type=json", "-p", json.dumps(
            [{"op": "replace", "path": "/spec/channels/2/alertmanager/url", "value": "http://127.0.0.1:9"}]))
        local.kubectl("create", "namespace", NAMESPACE)
        local.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(demo_objects(prometheus.url, f"http://127.0.0.1:{app_port}/health",
                                                                    f"{hooks.url}/hook")))
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "demo.webapp", f"--kubeconfig={local.kubeconfig}", f"--namespace={NAMESPACE}",
             f"--port={app_port}"], cwd=REPO, stdout=open(workdir / "webapp.log", "ab"), stderr=subprocess.STDOUT))
        say("Running the operator as ServiceAccount capliquify-system/capliquify-operator")
        operator.start()
        for kind in ("msvc", "scp", "alp"):
            local.wait_for(lambda kind=kind: ready(local, kind, "shop"), 60, f"{kind} Ready")
        local.wait_for(lambda: ready(local, "scp", NAMESPACE), 60, "demo policy Ready")

        say("Load ramp against the demo app; the operator scales deployment/web (timeline)")
        print(f"{'t(s)':>5}  {'load':>5}  {'replicas':>8}  {'ready':>5}  {'cpu%':>6}  last decision")
        load = None
        started = time.monotonic()
        step = 0
        last_line = ""
        peak_seen = (0, 0.0)
        while True:
            elapsed = time.monotonic() - started
            if step < len(RAMP) and elapsed >= RAMP[step][0]:
                if load is not None:
                    load.terminate()
                rate = RAMP[step][1]
                load = subprocess.Popen([sys.executable, "-m", "demo.loadgen", f"--url=http://127.0.0.1:{app_port}/",
                                         f"--rate={rate}", "--seconds=600"], cwd=REPO, stdout=subprocess.DEVNULL) \
                    if rate else None
                step += 1
            deployment = json.loads(local.kubectl("get", "deployment", "web", "-n", NAMESPACE, "-o", "json"))
            status = json.loads(local.kubectl("get", "scp", "web", "-n", NAMESPACE, "-o", "json")).get("status", {})
            cpu = next((m.get("value") for m in status.get("metrics", []) if m["type"] == "cpu"), None)
            decision = status.get("lastDecision") or {}
            rate = RAMP[step - 1][1]
            line = (f"{rate:>5}  {deployment['spec']['replicas']:>8}  {deployment.get('status', {}).get('readyReplicas', 0):>5}"
                    f"  {cpu if cpu is not None else '-':>6}  "
                    f"{decision.get('direction', '-')} {decision.get('from', '')}->{decision.get('to', '')}: "
                    f"{decision.get('reason', '')}")
            if line != last_line:
                print(f"{elapsed:>5.0f}  {line}", flush=True)
                last_line = line
            if step <= len(RAMP) - 1 or rate:  # the load is on: remember when the peak was reached
                peak_seen = max(peak_seen, (deployment["spec"]["replicas"], -elapsed))
            if step == len(RAMP) and deployment["spec"]["replicas"] == 2 and elapsed > RAMP[-1][0] + 20:
                break
            if elapsed > 400:
                print("(timeline cut at 400 s)")
                break
            time.sleep(2)
        if load is not None:
            load.terminate()
        peak_step = max(RAMP, key=lambda r: r[1])[0]
        print(f"time from the last load step (t={peak_step} s) to the target {peak_seen[0]} replicas: "
              f"{-peak_seen[1] - peak_step:.0f} s (scale-up waits for readiness, not a cooldown)")
        alerting_phase(local, app_port, hooks)
        railway_phase(local, simulator)
        railway_import_phase(local, production)

        say(f"kubectl get events -n {NAMESPACE} (from the operator)")
        print(local.kubectl("get", "events", "-n", NAMESPACE, "--field-selector", "source=capliquify-operator",
                            "--sort-by=.lastTimestamp"), end="")
        say("kubectl get capliquify -A")
        print(local.kubectl("get", "capliquify", "-A"), end="", flush=True)
        say("kubectl capliquify status -A")
        print(capliquify_status(local), end="", flush=True)
        dashboard_queries(prometheus)
        return 0
    except Exception as error:  # noqa: BLE001 - show the logs that explain it
        print(f"demo failed: {error}", file=sys.stderr)
        for log in sorted(workdir.rglob("*.log")):
            print(f"--- {log}\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
        return 1
    finally:
        if operator is not None:
            operator.stop()
        for process in processes:
            process.terminate()
        prometheus.stop()
        hooks.stop()
        simulator.stop()
        production.stop()
        local.stop()


if __name__ == "__main__":
    sys.exit(main())
