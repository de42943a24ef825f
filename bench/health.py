"""Benchmark: 2,000 operator-side health checks every 10 s against local HTTP servers.

A fresh control plane; N/10 MonitoredServices with 10 checks each (targets: Deployments with
no pods); the checks spread over the ports of a local aiohttp server in its own process; the
operator as its ServiceAccount with loopback checks allowed. Once every service is Healthy,
a window is measured from the operator's /metrics and /proc: achieved probes per second,
scheduling lag (due → probe start) p50/p99 from its histogram, CPU per check, peak RSS, API
writes.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
import time

from bench import measure
from localcluster import cluster as cluster_module
from localcluster import operator as operator_module

NAMESPACE = "bench-health"
CHECKS_PER_SERVICE = 10
SERVER_PORTS = 8
LAG = "capliquify_health_check_lag_seconds"


def objects(services: int, interval: int, ports: list[int]) -> list[dict]:
    docs = []
    for index in range(services):
        name = f"s{index}"
        docs.append(measure.idle_deployment(name, NAMESPACE))
        checks = [{"name": f"c{n}", "intervalSeconds": interval, "failureThreshold": 3,
                   "http": {"url": f"http://127.0.0.1:{ports[(index * CHECKS_PER_SERVICE + n) % len(ports)]}/health",
                            "timeoutSeconds": 5}}
                  for n in range(CHECKS_PER_SERVICE)]
        docs.append({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
                     "metadata": {"name": name, "namespace": NAMESPACE},
                     "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": name}}, "healthChecks": checks}})
    return docs


def healthy(local: cluster_module.LocalCluster) -> int:
    items = json.loads(local.kubectl("get", "msvc", "-n", NAMESPACE, "-o", "json"))["items"]
    return sum(1 for item in items if item.get("status", {}).get("health") == "Healthy")


def run(checks: int, interval: int, measure_seconds: int, workdir: pathlib.Path) -> dict:
    services = checks // CHECKS_PER_SERVICE
    ports = [cluster_module.free_port() for _ in range(SERVER_PORTS)]
    local = cluster_module.LocalCluster(workdir / "cluster", log=lambda m: print(f"  {m}", flush=True))
    server = subprocess.Popen([sys.executable, "-m", "bench.health_server", *map(str, ports)], cwd=cluster_module.REPO)
    operator = None
    try:
        local.start()
        operator_module.install(local)
        local.kubectl("create", "namespace", NAMESPACE)
        docs = objects(services, interval, ports)
        local.kubectl("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
        # A Deployment its controller has not yet seen is a rollout in progress to the guard
        # (Progressing, then Analyzing): real transitions, whose writes would land in the window.
        local.wait_for(lambda: measure.deployments_settled(local, NAMESPACE) == services, 300,
                       f"{services} Deployments settled", interval=2)
        operator = operator_module.OperatorProcess(
            local, workdir / "operator.log", "--allow-loopback-checks", "--log-level=WARNING").start()
        pid = operator.process.pid  # type: ignore[union-attr]
        started = time.monotonic()
        local.wait_for(lambda: healthy(local) == services, 300, f"{services} services Healthy", interval=5)
        settle = time.monotonic() - started
        print(f"  {checks} checks: all {services} services Healthy in {settle:.0f}s", flush=True)
        time.sleep(interval * 2)  # past the first (spread) round
        before_text, before_cpu, before = operator.metrics_text(), measure.cpu_seconds(pid), time.monotonic()
        time.sleep(measure_seconds)
        after_text, after_cpu, elapsed = operator.metrics_text(), measure.cpu_seconds(pid), time.monotonic() - before

        def delta(name: str) -> float:
            return measure.metric(after_text, name) - measure.metric(before_text, name)

        probes = delta("capliquify_health_probes_total")
        lag_before, lag_after = measure.buckets(before_text, LAG), measure.buckets(after_text, LAG)
        lag = {bound: lag_after[bound] - lag_before.get(bound, 0.0) for bound in lag_after}
        return {
            "checks": checks,
            "interval_s": interval,
            "expected_per_s": round(checks / interval, 1),
            "achieved_per_s": round(probes / elapsed, 1),
            "failed_probes": int(measure.metric(after_text, 'capliquify_health_probes_total{result="failed"}')),
            "lag_p50_ms": round(1000 * measure.histogram_quantile(0.50, lag), 1),
            "lag_p99_ms": round(1000 * measure.histogram_quantile(0.99, lag), 1),
            "cpu_ms_per_check": round(1000 * (after_cpu - before_cpu) / max(probes, 1), 2),
            "cpu_share": round((after_cpu - before_cpu) / elapsed, 3),
            "peak_rss_mb": round(measure.peak_rss_mb(pid)),
            "writes_per_min": round(60 * delta("capliquify_api_writes_total") / elapsed, 1),
        }
    finally:
        if operator is not None:
            operator.stop()
        server.terminate()
        server.wait(timeout=10)
        local.stop()
        local.remove()


def table(rows: list[dict]) -> str:
    header = ("| checks | interval s | probes/s expected | probes/s achieved | lag p50 ms | lag p99 ms "
              "| CPU ms / check | operator CPU share | peak RSS MB | API writes / min (steady) |\n"
              "|---|---|---|---|---|---|---|---|---|---|")
    return header + "\n" + "\n".join(
        f"| {r['checks']:,} | {r['interval_s']} | {r['expected_per_s']} | {r['achieved_per_s']} | {r['lag_p50_ms']} | "
        f"{r['lag_p99_ms']} | {r['cpu_ms_per_check']} | {r['cpu_share']} | {r['peak_rss_mb']} | "
        f"{r['writes_per_min']} |" for r in rows)
