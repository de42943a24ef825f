"""Benchmark: the operator's peak memory while tenants answer with the largest bodies the caps
allow, against the pod's limit (manifests/base/deployment.yaml).

A fresh control plane; N tenant namespaces, each with M Deployments (no pods), a
MonitoredService per Deployment whose Prometheus is that tenant's endpoint (bench/
memory_server.py: cpu, memory and a per-workload custom query, so every namespace asks its
own questions) and a 64 KiB-reading health check of an 8 MiB body every 5 s, and a
ScalingPolicy on each service every 5 s. The operator runs as its ServiceAccount, as
shipped. First a baseline window with small answers; then every tenant answers at the cap
(a quarter each: real series, the shape that grows most when parsed, 64 MiB without and
with a Content-Length). The operator's RSS and its parser process' are sampled from /proc
throughout; their sum is what the pod's limit is charged.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
import threading
import time
import urllib.request

import yaml

from bench import measure
from controller.adapters import budget
from localcluster import cluster as cluster_module
from localcluster import operator as operator_module

INTERVAL = 5
REPO = pathlib.Path(__file__).resolve().parents[1]


def manifest_limit_mib() -> int:
    documents = yaml.safe_load_all((REPO / "manifests/base/deployment.yaml").read_text())
    deployment = next(d for d in documents if d and d.get("kind") == "Deployment")
    limit = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"]
    match = re.fullmatch(r"(\d+)(Mi|Gi)", limit)
    assert match, f"the manifest's memory limit {limit!r} is not in Mi or Gi"
    return int(match.group(1)) * (1024 if match.group(2) == "Gi" else 1)


def objects(tenants: int, workloads: int, port: int) -> list[dict]:
    docs: list[dict] = []
    for i in range(tenants):
        namespace = f"t{i}"
        docs.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        for j in range(workloads):
            name = f"w{j}"
            docs.append(measure.idle_deployment(name, namespace))
            docs.append({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
                         "metadata": {"name": name, "namespace": namespace},
                         "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": name}},
                                  "metrics": {"prometheus": {"url": f"http://127.0.0.1:{port}/{namespace}"},
                                              "custom": [{"name": "load", "query":
                                                          'load{namespace="$namespace",workload="$workload"}'}]},
                                  "healthChecks": [{"name": "big", "intervalSeconds": INTERVAL, "http": {
                                      "url": f"http://127.0.0.1:{port}/health", "timeoutSeconds": INTERVAL,
                                      "bodyContains": "never-there"}}]}})
            docs.append({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy",
                         "metadata": {"name": name, "namespace": namespace},
                         "spec": {"targetRef": {"monitoredService": name}, "minReplicas": 1, "maxReplicas": 10,
                                  "evaluationIntervalSeconds": INTERVAL,
                                  "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30},
                                              {"type": "memory", "scaleUp": 80, "scaleDown": 50},
                                              {"type": "custom", "name": "load", "scaleUp": 70, "scaleDown": 30}]}})
    return docs


def rss_kib(pid: int) -> int:
    try:
        text = pathlib.Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    match = re.search(r"VmRSS:\s+(\d+) kB", text)
    return int(match.group(1)) if match else 0


def descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        parent = queue.pop()
        for task in pathlib.Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
            found += children
            queue += children
    return found


class Sampler(threading.Thread):
    """The operator's RSS, its descendants' (the parser process), and their sum, every 0.2 s."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_operator = self.peak_children = self.peak_total = 0
        self.running = True

    def reset(self) -> None:
        self.peak_operator = self.peak_children = self.peak_total = 0

    def run(self) -> None:
        while self.running:
            operator = rss_kib(self.pid)
            children = sum(rss_kib(child) for child in descendants(self.pid))
            self.peak_operator = max(self.peak_operator, operator)
            self.peak_children = max(self.peak_children, children)
            self.peak_total = max(self.peak_total, operator + children)
            time.sleep(0.2)

    def figures(self) -> dict:
        return {"operator_mib": round(self.peak_operator / 1024), "parser_mib": round(self.peak_children / 1024),
                "total_mib": round(self.peak_total / 1024)}


def control(port: int, what: str, method: str = "GET") -> dict:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/control/{what}", method=method)
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.loads(response.read())


def run(tenants: int, workloads: int, seconds: int, workdir: pathlib.Path) -> dict:
    port = cluster_module.free_port()
    local = cluster_module.LocalCluster(workdir / "cluster", log=lambda m: print(f"  {m}", flush=True))
    server = subprocess.Popen([sys.executable, "-m", "bench.memory_server", str(port), "--workloads", str(workloads)],
                              cwd=cluster_module.REPO)
    operator = None
    try:
        local.start()
        operator_module.install(local)
        docs = objects(tenants, workloads, port)
        local.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
        local.wait_for(lambda: sum(measure.deployments_settled(local, f"t{i}") for i in range(tenants))
                       == tenants * workloads, 300, "Deployments settled", interval=2)
        operator = operator_module.OperatorProcess(
            local, workdir / "operator.log", "--allow-loopback-checks", "--log-level=WARNING").start()
        pid = operator.process.pid  # type: ignore[union-attr]
        sampler = Sampler(pid)
        sampler.start()
        time.sleep(seconds)  # baseline: small answers
        baseline = sampler.figures()
        queries_before = measure.metric(operator.metrics_text("capliquify_prometheus_queries_total"),
                                        "capliquify_prometheus_queries_total")
        served_before = control(port, "served")["served"]
        sampler.reset()
        control(port, "large", "POST")
        started = time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - started
        large = sampler.figures()
        sampler.running = False
        operator.healthy()  # raises if the operator died meanwhile
        queries = measure.metric(operator.metrics_text("capliquify_prometheus_queries_total"),
                                 "capliquify_prometheus_queries_total") - queries_before
        served = control(port, "served")["served"] - served_before
        return {
            "tenants": tenants, "workloads": tenants * workloads, "seconds": seconds,
            "answer_cap_mib": round(budget.PROMETHEUS_ANSWER / budget.MiB, 2),
            "limit_mib": manifest_limit_mib(),
            "baseline": baseline, "large": large,
            "queries_per_s": round(queries / elapsed, 1),
            "answer_mib_per_s": round(served / budget.MiB / elapsed, 1),
            "operator_vmhwm_mib": round(measure.peak_rss_mb(pid)),
        }
    finally:
        if operator is not None:
            operator.stop()
        server.terminate()
        server.wait(timeout=10)
        local.stop()
        local.remove()


def table(rows: list[dict]) -> str:
    header = ("| tenants | workloads | answer cap MiB | answers written MiB/s | queries/s | peak RSS MiB, small answers "
              "(operator + parser) | peak RSS MiB, answers at the cap (operator + parser) | pod limit MiB |\n"
              "|---|---|---|---|---|---|---|---|")
    return header + "\n" + "\n".join(
        f"| {r['tenants']} | {r['workloads']} | {r['answer_cap_mib']} | {r['answer_mib_per_s']} | {r['queries_per_s']} | "
        f"{r['baseline']['total_mib']} ({r['baseline']['operator_mib']} + {r['baseline']['parser_mib']}) | "
        f"{r['large']['total_mib']} ({r['large']['operator_mib']} + {r['large']['parser_mib']}) | {r['limit_mib']} |"
        for r in rows)
