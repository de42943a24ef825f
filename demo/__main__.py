"""`make demo`: the main job on the embedded local cluster.

Starts the local control plane and, as root, two real nodes beside kwok's (containerd and a
kubelet: localcluster/node.py), installs the operator as users do (`kubectl apply -k` of
manifests/ with the image override to the image `make image` built): two pods, one of them
the leader; measures the start-up to a first verdict as pods and as a host process in the same
run; applies the examples, then shows the scaling loop: the demo app under a load ramp scraped
by a real Prometheus, the operator scaling its Deployment up, then down once the load stops,
with a printed timeline; then the alerting loop: the app is told to fail, an AlertPolicy fires
to a local webhook receiver and resolves when the app recovers; then Railway. Prints the
leader pod's log and the Lease's holder, and ends with `kubectl get capliquify -A`.

Without root, buildah, containerd or runc (or with --host-process) the operator runs as a host
process as its own ServiceAccount (localcluster/operator.py), and the demo says why first."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

import yaml

from localcluster import cluster as cluster_module
from localcluster import node as node_module
from localcluster import operator as operator_module
from localcluster import pods
from localcluster import prometheus as prometheus_module
from localcluster import railway as railway_sim
from localcluster import receivers

REPO = cluster_module.REPO
NAMESPACE = "demo"
GROUP = "ops.capliquify.io/v1alpha1"
# (seconds from start, requests/s): cpu% per pod ≈ 10 × rate / pods.
RAMP = [(0, 10), (20, 30), (40, 50), (90, 0)]
# The operator's flags beside the shipped ones (`run --log-format=json --leader-elect`): every
# endpoint of the demo is on loopback, and its loops run faster so that the demo is short.
OPERATOR_FLAGS = ("--rate-window=15s", "--allow-loopback-egress", "--metrics-interval-seconds=5",
                  "--alert-interval-seconds=2", "--railway-interval-seconds=2")
REAL_NODES = 2  # the two replicas listen on the same ports: one per node (its own loopback address)


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


def local_examples(local: cluster_module.LocalCluster, prometheus_url: str, health_url: str) -> list[dict]:
    """manifests/examples as `kubectl apply -k` renders them, their endpoints pointed at this
    machine before they are applied (the operator is already running): the example names an
    in-cluster Prometheus and service, and real alert channels; here nothing leaves loopback
    (the channels are closed loopback ports)."""
    objects = [o for o in yaml.safe_load_all(local.kubectl("kustomize", str(REPO / "manifests" / "examples"))) if o]
    for item in objects:
        kind, name = item["kind"], item["metadata"]["name"]
        if (kind, name) == ("MonitoredService", "web"):
            item["spec"]["metrics"]["prometheus"]["url"] = prometheus_url
            item["spec"]["healthChecks"] = [{"name": "api", "http": {"url": health_url}, "intervalSeconds": 5}]
        elif (kind, name) == ("Secret", "alert-channels"):
            item["stringData"] = {"slack-webhook": "http://127.0.0.1:9/slack",
                                  "smtp": "host: 127.0.0.1\nport: 9\nfrom: capliquify@example.com\n",
                                  "sms": "url: http://127.0.0.1:9/sms\n"}
        elif (kind, name) == ("AlertPolicy", "prod-web"):
            for channel in item["spec"]["channels"]:
                if "alertmanager" in channel:
                    channel["alertmanager"]["url"] = "http://127.0.0.1:9"
    return objects


def first_verdict(local: cluster_module.LocalCluster, namespace: str, name: str = "web") -> bool:
    """The MonitoredService has a status written by the operator (its conditions)."""
    out = local.kubectl("get", "msvc", name, "-n", namespace, "-o", "json", check=False)
    return bool(out.strip()) and bool(json.loads(out).get("status", {}).get("conditions"))


class OperatorPods:
    """The operator as users install it, as pods: two real nodes (localcluster/node.py), the image
    `make image` built imported into their containerd, manifests/ applied through a kustomize
    overlay whose image override points at it (localcluster/pods.py)."""

    def __init__(self, local: cluster_module.LocalCluster, archive: pathlib.Path, workdir: pathlib.Path) -> None:
        self.local = local
        self.archive = archive
        self.workdir = workdir
        self.nodes: list[node_module.RealNode] = []
        self.metrics_port = cluster_module.free_port()
        self.health_port = cluster_module.free_port()

    def start_nodes(self) -> None:
        for index in range(REAL_NODES):
            self.nodes.append(node_module.RealNode(self.local, index, [self.archive]))
            self.nodes[-1].start()

    @property
    def metrics_targets(self) -> list[str]:
        """Each pod serves /metrics on its node's loopback address (host network)."""
        return [f"{node.address}:{self.metrics_port}" for node in self.nodes]

    def install(self) -> str:
        overlay = pods.operator_overlay(self.workdir / "overlay", self.local, pods.image_name(self.archive),
                                        self.metrics_port, self.health_port, OPERATOR_FLAGS)
        print((overlay / "kustomization.yaml").read_text(), end="")
        out = pods.install(self.local, overlay)
        # The OpenAPI document (kubectl explain, server-side apply) is published a few seconds later.
        self.local.wait_for(lambda: all(self.local.kubectl("explain", kind, check=False).strip()
                                        for kind in ("msvc", "scp", "alp")), 60, "CRD OpenAPI published")
        return out

    def ready(self, count: int = 2) -> bool:
        return len([pod for pod in pods.operator_pods(self.local) if pods.ready(pod)]) == count

    def scale(self, replicas: int) -> None:
        """The operator's Deployment scaled; to 0: returns when its pods are gone and the Lease is
        free (a stopping leader releases it; if it did not, it expires: said, with that pod's last
        log lines, followed to their end as a pod's log goes with the pod)."""
        running = pods.operator_pods(self.local) if replicas == 0 else []
        holder = pods.lease_holder(self.local) if replicas == 0 else ""
        logs = {pod["metadata"]["name"]: self.workdir / f"{pod['metadata']['name']}.log" for pod in running}
        followers = []
        for name, path in logs.items():
            with open(path, "wb") as out:
                followers.append(subprocess.Popen(self.local._kubectl_argv("logs", "-f", "-n", pods.NAMESPACE, name),
                                                  stdout=out, stderr=subprocess.DEVNULL))
        try:
            self.local.kubectl("scale", "deployment", "capliquify-operator", "-n", pods.NAMESPACE, f"--replicas={replicas}")
            if replicas != 0:
                return
            self.local.wait_for(lambda: not json.loads(self.local.kubectl(
                "get", "pods", "-n", pods.NAMESPACE, "-o", "json"))["items"], 120, "no operator pod left")
            if not pods.lease_free(self.local):
                waited = time.monotonic()
                self.local.wait_for(lambda: pods.lease_free(self.local), 60, "the Lease free")
                for follower in followers:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        follower.wait(timeout=10)
                path = logs.get(holder.split("_")[0])
                last = [line for line in (path.read_text(errors="replace").splitlines() if path else [])
                        if "aiohttp.access" not in line][-3:]
                print(f"  (the Lease was not released by {holder}, whose pod is gone: it expired "
                      f"{time.monotonic() - waited:.1f} s later; the pod's last log lines:)\n    " + "\n    ".join(last),
                      flush=True)
        finally:
            for follower in followers:
                if follower.poll() is None:
                    follower.kill()
                    follower.wait(timeout=10)

    def logs(self) -> str:
        """Every operator pod's log (the leader's has its first verdicts)."""
        return "\n".join(self.local.kubectl("logs", "-n", pods.NAMESPACE, pod["metadata"]["name"], check=False)
                         for pod in pods.operator_pods(self.local))

    def show_leader(self, lines: int = 4) -> None:
        leader = pods.leader_pod(self.local)
        if not leader:
            print(f"no operator pod holds the Lease (holder: {pods.lease_holder(self.local) or 'none'})")
            return
        name = leader["metadata"]["name"]
        say(f"kubectl logs -n {pods.NAMESPACE} {name} | grep -v aiohttp.access | tail -{lines}   "
            "(the leader's log, JSON lines; without the kubelet's probes' access lines)")
        log = self.local.kubectl("logs", "-n", pods.NAMESPACE, name).splitlines()
        print("\n".join([line for line in log if '"aiohttp.access"' not in line][-lines:]))
        print(f"Lease {pods.NAMESPACE}/{pods.LEASE} held by {pods.lease_holder(self.local)}: pod {name} on "
              f"{leader['spec'].get('nodeName')} ({leader.get('status', {}).get('podIP')})", flush=True)

    def diagnose(self) -> None:
        """On failure: what the pods and the kubelets said."""
        for pod in pods.operator_pods(self.local):
            name = pod["metadata"]["name"]
            print(f"--- kubectl logs {name}\n{self.local.kubectl('logs', '-n', pods.NAMESPACE, name, check=False)[-2000:]}",
                  file=sys.stderr)
        for node in self.nodes:
            log = node.log_path("kubelet")
            if log.exists():
                print(f"--- {log}\n{log.read_text(errors='replace')[-1500:]}", file=sys.stderr)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


VERDICT_LINE = re.compile(r"first verdicts for (\d+) objects, ([0-9.]+) s after start")


STARTUP_ROUNDS = (("pods", "host process"), ("host process", "pods"), ("pods", "host process"))


def startup_phase(local: cluster_module.LocalCluster, operator_pods: OperatorPods, objects: list[dict],
                  workdir: pathlib.Path) -> None:
    """The same start-up, in this run, as pods and as a host process, three times each in
    alternating order (the machine is shared: one sample of each says little): the operator's
    Deployment scaled from 0 to 2 (the pods scheduled, their containers started, a leader
    elected, its first round), or a host process (`capliquify run --leader-elect`, the same flags
    and ServiceAccount), with no operator running before either. Each time a fresh copy of
    demo/web (its Deployment and MonitoredService) waits for its first status."""
    say("Start-up, as pods and as a host process (same run, 3 times each): time to the first verdict on a fresh "
        "copy of demo/web, no operator running before")
    figures: dict[str, list[float]] = {"pods": [], "host process": []}
    try:
        for number, order in enumerate(STARTUP_ROUNDS):
            for where in order:
                operator_pods.scale(0)
                namespace = f"startup-{'pods' if where == 'pods' else 'host'}-{number}"
                local.kubectl("create", "namespace", namespace)
                local.kubectl_apply(*[{**item, "metadata": {**item["metadata"], "namespace": namespace}} for item in objects])
                host = None
                if where == "pods":
                    started = time.monotonic()
                    operator_pods.scale(2)
                else:
                    host = operator_module.OperatorProcess(local, workdir / f"host-operator-{number}.log", "--leader-elect",
                                                           *OPERATOR_FLAGS)
                    started = time.monotonic()
                    host.start()
                local.wait_for(lambda namespace=namespace: first_verdict(local, namespace), 180, f"first verdict ({where})")
                took = time.monotonic() - started
                figures[where].append(took)
                found = VERDICT_LINE.search(operator_pods.logs() if host is None else host.log())
                logged = f"{float(found.group(2)):.1f} s after the process started, by its log" if found else "no log line"
                print(f"as {where + ':':<13} {took:>5.1f} s from {'kubectl scale --replicas=2' if host is None else 'launch'} "
                      f"to {namespace}/web's first status ({logged})", flush=True)
                if host is not None:
                    host.stop()
                local.kubectl("delete", "namespace", namespace, "--wait=false")
        pod, process = statistics.median(figures["pods"]), statistics.median(figures["host process"])
        print(f"median of 3: as pods {pod:.1f} s, as a host process {process:.1f} s ({pod - process:+.1f} s as pods)",
              flush=True)
    finally:
        operator_pods.scale(2)
        local.wait_for(operator_pods.ready, 180, "two operator pods Ready again")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__.splitlines()[0])
    parser.add_argument("--host-process", action="store_true",
                        help="run the operator as a host process, not as pods on real nodes (no image, no kubelet)")
    args = parser.parse_args(argv)
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="capliquify-demo-"))
    local = cluster_module.LocalCluster(workdir / "cluster")
    app_port = cluster_module.free_port()
    prometheus = prometheus_module.Prometheus(workdir / "prometheus", [f"127.0.0.1:{app_port}"])
    operator: operator_module.OperatorProcess | None = None
    operator_pods: OperatorPods | None = None
    processes: list[subprocess.Popen[bytes]] = []
    hooks = receivers.HttpReceiver()
    simulator = railway_sim.RailwaySimulator(token="demo-token").start()
    simulator.add_service("svc-api", "api", replicas=1)
    production = railway_sim.RailwaySimulator(token="prod-token", environment_id="env-production").start()
    try:
        archive = None
        why_not_pods = "--host-process was given" if args.host_process else pods.unavailable()
        if why_not_pods is None:
            say("The operator's image (make image; skipped when up to date) and the real nodes' kubelet (built once)")
            try:
                # `make demo` has just run `make image`; run alone, the demo builds it (skipped when up to date).
                archive = pods.built_image() if os.environ.get("CAPLIQUIFY_IMAGE_BUILT") else pods.build_image()
                node_module.build()
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
                why_not_pods, archive = f"the image or the kubelet could not be built ({error})", None
        if why_not_pods is not None:
            say(f"The operator runs as a host process, not as pods: {why_not_pods}")
        say("Starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
        local.start()
        if archive is not None:
            operator_pods = OperatorPods(local, archive, workdir)
            say(f"{REAL_NODES} real nodes beside kwok's: containerd and a kubelet (the pinned k8s.io/kubernetes) each, "
                "on 127.0.0.2 and 127.0.0.3, the operator's image imported")
            try:
                operator_pods.start_nodes()
            except (RuntimeError, subprocess.SubprocessError, OSError) as error:  # TimeoutError is an OSError
                operator_pods.stop()
                operator_pods = None
                say(f"The operator runs as a host process, not as pods: a real node did not start "
                    f"({str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__})")
        if operator_pods is not None:
            print(local.kubectl("get", "nodes", "-l", f"{node_module.LABEL}=real", "-o", "wide"), end="")
            operator_targets = operator_pods.metrics_targets
            say("kubectl apply -k overlay/   (manifests/ as users install it, the image override to the local build: "
                "CRDs, RBAC, the operator Deployment of 2 replicas with leader election)")
            installed = time.monotonic()
            print(operator_pods.install(), end="")
        else:
            say("kubectl apply -k manifests/   (CRDs, RBAC, operator Deployment)")
            print(operator_module.install(local), end="")
            # The operator's process (started later): its metrics port is known now, so that Prometheus
            # scrapes the operator too (the dashboards' queries run against this Prometheus).
            operator = operator_module.OperatorProcess(local, workdir / "operator.log", *OPERATOR_FLAGS)
            operator_targets = [f"127.0.0.1:{operator.metrics_port}"]
        prometheus.extra_jobs = [{"job_name": "capliquify-operator", "honor_labels": True,
                                  "static_configs": [{"targets": operator_targets}]}]
        say(f"Prometheus on loopback ({prometheus.url}) scraping the demo app and the operator "
            f"({', '.join(operator_targets)}); namespace {NAMESPACE}")
        prometheus.start()
        say("kubectl apply -k manifests/examples   (web Deployment + one object per kind; their Prometheus, "
            "health check and alert channels pointed at loopback first)")
        print(local.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(
            local_examples(local, prometheus.url, f"http://127.0.0.1:{app_port}/health"))), end="")
        local.kubectl("create", "namespace", NAMESPACE)
        objects = demo_objects(prometheus.url, f"http://127.0.0.1:{app_port}/health", f"{hooks.url}/hook")
        local.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))
        created = time.monotonic()
        processes.append(subprocess.Popen(
            [sys.executable, "-m", "demo.webapp", f"--kubeconfig={local.kubeconfig}", f"--namespace={NAMESPACE}",
             f"--port={app_port}"], cwd=REPO, stdout=open(workdir / "webapp.log", "ab"), stderr=subprocess.STDOUT))
        if operator_pods is not None:
            say("The operator's pods on the real nodes (Ready by the kubelet's probe on /healthz)")
            local.wait_for(operator_pods.ready, 180, "two operator pods Ready")
            print(local.kubectl("get", "pods", "-n", pods.NAMESPACE, "-o", "wide"), end="")
            local.wait_for(lambda: bool(pods.leader_pod(local)), 60, "a leader among the pods")
            local.wait_for(lambda: first_verdict(local, NAMESPACE), 120, "demo/web's first verdict")
            now = time.monotonic()
            print(f"demo/web's first verdict: {now - installed:.1f} s after kubectl apply -k (pods scheduled and "
                  f"started, a leader elected), {now - created:.1f} s after demo/web was created", flush=True)
            startup_phase(local, operator_pods, objects[:2], workdir)
        else:
            assert operator is not None
            say("Running the operator as ServiceAccount capliquify-system/capliquify-operator (a host process)")
            launched = time.monotonic()
            operator.start()
            local.wait_for(lambda: first_verdict(local, NAMESPACE), 120, "demo/web's first verdict")
            print(f"demo/web's first verdict: {time.monotonic() - launched:.1f} s after the operator's launch", flush=True)
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
        say("kubectl capliquify status -A")
        print(capliquify_status(local), end="", flush=True)
        dashboard_queries(prometheus)
        if operator_pods is not None:
            operator_pods.show_leader()
        say("kubectl get capliquify -A")
        print(local.kubectl("get", "capliquify", "-A"), end="", flush=True)
        return 0
    except Exception as error:  # noqa: BLE001 - show the logs that explain it
        print(f"demo failed: {error}", file=sys.stderr)
        for log in sorted(workdir.rglob("*.log")):
            print(f"--- {log}\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
        if operator_pods is not None:
            with contextlib.suppress(Exception):
                operator_pods.diagnose()
        return 1
    finally:
        if operator is not None:
            operator.stop()
        for process in processes:
            process.terminate()
        if operator_pods is not None:
            operator_pods.stop()
        prometheus.stop()
        hooks.stop()
        simulator.stop()
        production.stop()
        local.stop()


if __name__ == "__main__":
    sys.exit(main())
