"""Benchmark: the operator evaluating 100, 1,000 and 5,000 ScalingPolicies against the
local control plane and a real Prometheus, in steady state.

Per size: a fresh control plane; N Deployments (replicas 0, so no pods) with one
ScalingPolicy each (cpu and memory, evaluated every 30 s); a synthetic exporter with
cAdvisor/kube-state-metrics-shaped series for the N workloads, scraped by Prometheus; the
operator as its ServiceAccount. Once every policy is judged, K rounds are measured from
the operator's own /metrics and /proc: whole-process CPU seconds and wall time per round,
peak RSS, Prometheus queries and API writes per round.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

import yaml

from bench import exporter as exporter_module
from bench import health as health_bench
from bench import measure
from localcluster import cluster as cluster_module
from localcluster import operator as operator_module
from localcluster import prometheus as prometheus_module

NAMESPACE = "bench"
INTERVAL = 30
RATE_WINDOW_SECONDS = 120


def objects(count: int) -> list[dict]:
    docs = []
    for index in range(count):
        name = f"w{index}"
        docs.append(measure.idle_deployment(name, NAMESPACE))
        docs.append({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy",
                     "metadata": {"name": name, "namespace": NAMESPACE},
                     "spec": {"targetRef": {"kubernetes": {"kind": "Deployment", "name": name}},
                              "minReplicas": 0, "maxReplicas": 10, "evaluationIntervalSeconds": INTERVAL,
                              "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30},
                                          {"type": "memory", "scaleUp": 80, "scaleDown": 50}]}})
    return docs


def create(local: cluster_module.LocalCluster, docs: list[dict], chunk: int = 1000) -> None:
    for start in range(0, len(docs), chunk):
        local.kubectl("create", "-f", "-", input=yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                                                   "items": docs[start:start + chunk]}))


def settled(local: cluster_module.LocalCluster, count: int) -> int:
    items = json.loads(local.kubectl("get", "scp", "-n", NAMESPACE, "-o", "json"))["items"]
    return sum(1 for item in items for c in item.get("status", {}).get("conditions", [])
               if c["type"] == "ScalingActive" and c["reason"] == "ValidMetricFound")


def run_size(count: int, rounds: int, workdir: pathlib.Path) -> dict:
    local = cluster_module.LocalCluster(workdir / "cluster", log=lambda m: print(f"  {m}", flush=True))
    exporter = exporter_module.Exporter(NAMESPACE, count, cluster_module.free_port())
    prometheus = prometheus_module.Prometheus(workdir / "prometheus", [f"127.0.0.1:{exporter.port}"], scrape_seconds=5)
    operator = None
    try:
        local.start()
        operator_module.install(local)
        local.kubectl("create", "namespace", NAMESPACE)
        started = time.monotonic()
        create(local, objects(count))
        print(f"  created {count} Deployments + {count} ScalingPolicies in {time.monotonic() - started:.0f}s", flush=True)
        exporter.start()
        prometheus.start()
        prometheus_started = time.monotonic()
        time.sleep(6)  # one scrape
        operator = operator_module.OperatorProcess(
            local, workdir / "operator.log", f"--prometheus-url={prometheus.url}", "--log-level=WARNING").start()
        pid = operator.process.pid  # type: ignore[union-attr]
        started = time.monotonic()
        local.wait_for(lambda: settled(local, count) == count, 900, f"{count} policies evaluated", interval=5)
        settle = time.monotonic() - started
        print(f"  all {count} policies judged and evaluated in {settle:.0f}s", flush=True)
        # rate() reads low until its window (2m) has filled; bands would move while it does.
        time.sleep(max(INTERVAL, RATE_WINDOW_SECONDS + INTERVAL - (time.monotonic() - prometheus_started)))
        before_text, before_cpu = operator.metrics_text(), measure.cpu_seconds(pid)
        time.sleep(INTERVAL * rounds)
        after_text, after_cpu = operator.metrics_text(), measure.cpu_seconds(pid)

        def delta(name: str) -> float:
            return measure.metric(after_text, name) - measure.metric(before_text, name)

        measured_rounds = delta("capliquify_scaling_round_duration_seconds_count")
        return {
            "policies": count,
            "settle_s": round(settle),
            "rounds": int(measured_rounds),
            "cpu_s_per_round": round((after_cpu - before_cpu) / rounds, 2),
            "round_wall_s": round(delta("capliquify_scaling_round_duration_seconds_sum") / max(measured_rounds, 1), 2),
            "peak_rss_mb": round(measure.peak_rss_mb(pid)),
            "queries_per_round": round(delta("capliquify_prometheus_queries_total") / max(measured_rounds, 1), 1),
            "writes_per_round": round(delta("capliquify_api_writes_total") / rounds, 1),
        }
    finally:
        if operator is not None:
            operator.stop()
        prometheus.stop()
        exporter.stop()
        local.stop()
        local.remove()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench")
    parser.add_argument("--suites", default="scaling,health", help="scaling, health, or both")
    parser.add_argument("--sizes", default="100,1000,5000", help="ScalingPolicy counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checks", type=int, default=2000, help="health checks (10 per MonitoredService)")
    parser.add_argument("--check-interval", type=int, default=10)
    parser.add_argument("--measure-seconds", type=int, default=60)
    args = parser.parse_args(argv)
    suites = set(args.suites.split(","))
    out = pathlib.Path(".bench")
    out.mkdir(exist_ok=True)
    if "scaling" in suites:
        rows = []
        for size in (int(s) for s in args.sizes.split(",")):
            print(f"== {size} ScalingPolicies", flush=True)
            with tempfile.TemporaryDirectory(prefix=f"capliquify-bench-{size}-") as directory:
                rows.append(run_size(size, args.rounds, pathlib.Path(directory)))
            print(f"  {rows[-1]}", flush=True)
        header = ("| policies | CPU s / 30 s round | round wall s | peak RSS MB | Prometheus queries / round "
                  "| API writes / round (steady) | time to judge all (s) |\n|---|---|---|---|---|---|---|")
        table = "\n".join(
            f"| {r['policies']:,} | {r['cpu_s_per_round']} | {r['round_wall_s']} | {r['peak_rss_mb']} | "
            f"{r['queries_per_round']} | {r['writes_per_round']} | {r['settle_s']} |" for r in rows)
        print("\n" + header + "\n" + table)
        (out / "scaling.md").write_text(header + "\n" + table + "\n")
    if "health" in suites:
        print(f"== {args.checks} health checks every {args.check_interval}s", flush=True)
        with tempfile.TemporaryDirectory(prefix="capliquify-bench-health-") as directory:
            row = health_bench.run(args.checks, args.check_interval, args.measure_seconds, pathlib.Path(directory))
        print(f"  {row}", flush=True)
        text = health_bench.table([row])
        print("\n" + text)
        (out / "health.md").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
