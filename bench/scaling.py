"""The scaling benchmark at one size: start-up, steady rounds (leader and warm standby), a
restart, and (optionally) failover.

Per size: a fresh control plane; N Deployments (replicas 0, so no pods) with one
ScalingPolicy each (cpu and memory, evaluated every 30 s); a synthetic exporter with
cAdvisor/kube-state-metrics-shaped series for the N workloads, scraped by Prometheus; the
operator as its ServiceAccount with leader election on, as shipped. Everything is read from
the operators' own /metrics and /proc:

- start-up: seconds from process start until every object was judged (its first verdict
  written), and the status writes and Events that took;
- steady state: K rounds of the leader (CPU s per round, RSS, queries, writes) and of a warm
  standby beside it (CPU s per round);
- restart: the leader stopped, a new process started onto the written status: seconds until
  everything is judged, and the writes it made meanwhile and in the 30 s after;
- failover: the leader killed (SIGKILL) with a warm standby beside it, seconds until the
  standby leads and has completed its first scaling round; the median of several kills.

`start_up_with_services` (`python -m bench --suites services --sizes N`, not run by default):
start-up and restart with a MonitoredService beside each policy.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import statistics
import time
import typing

import yaml

from bench import exporter as exporter_module
from bench import measure
from localcluster import cluster as cluster_module
from localcluster import operator as operator_module
from localcluster import prometheus as prometheus_module

NAMESPACE = "bench"
INTERVAL = 30
RATE_WINDOW_SECONDS = 120
ELECTION = ("--leader-elect",)  # controller-runtime's timings: lease 15 s, renew deadline 10 s, retry 2 s
QUIET_SECONDS = 30
# The deployment controller at its default 20 requests a second takes ~15 min to see 10,000
# Deployments; the operator is started once it has (measure.deployments_settled).
CONTROLLER_MANAGER_ARGS = ("--kube-api-qps=300", "--kube-api-burst=600")


def objects(count: int, services: bool = False) -> list[dict]:
    """N Deployments with a ScalingPolicy each; and a MonitoredService each with `services`."""
    docs = []
    for index in range(count):
        name = f"w{index}"
        docs.append(measure.idle_deployment(name, NAMESPACE))
        if services:
            docs.append({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
                         "metadata": {"name": name, "namespace": NAMESPACE},
                         "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": name}}}})
        docs.append({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy",
                     "metadata": {"name": name, "namespace": NAMESPACE},
                     "spec": {"targetRef": {"kubernetes": {"kind": "Deployment", "name": name}},
                              "minReplicas": 1, "maxReplicas": 10, "evaluationIntervalSeconds": INTERVAL,
                              "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30},
                                          {"type": "memory", "scaleUp": 80, "scaleDown": 50}]}})
    return docs


def create(local: cluster_module.LocalCluster, docs: list[dict], chunk: int = 1000) -> None:
    for start in range(0, len(docs), chunk):
        local.kubectl("create", "-f", "-", input=yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                                                   "items": docs[start:start + chunk]}))


def settled(local: cluster_module.LocalCluster) -> int:
    items = json.loads(local.kubectl("get", "scp", "-n", NAMESPACE, "-o", "json"))["items"]
    return sum(1 for item in items for c in item.get("status", {}).get("conditions", [])
               if c["type"] == "ScalingActive" and c["reason"] == "ValidMetricFound")


@dataclasses.dataclass
class Bench:
    local: cluster_module.LocalCluster
    prometheus: prometheus_module.Prometheus
    workdir: pathlib.Path
    started: list[operator_module.OperatorProcess] = dataclasses.field(default_factory=list)

    def operator(self, *extra: str) -> operator_module.OperatorProcess:
        process = operator_module.OperatorProcess(
            self.local, self.workdir / f"operator-{len(self.started)}.log", f"--prometheus-url={self.prometheus.url}",
            "--log-level=WARNING", "--allow-loopback-egress", *ELECTION, *extra)  # Prometheus is on loopback here
        self.started.append(process)
        return process.start()

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()


def value(operator: operator_module.OperatorProcess, name: str, labels: str = "") -> float:
    text = operator.metrics_text(name)
    if not labels:
        return measure.metric(text, name)
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + "{") and labels in line)


def judged(operator: operator_module.OperatorProcess) -> float:
    """Seconds from start until everything was judged (0 until then)."""
    return value(operator, "capliquify_all_judged_seconds")


def wait_judged(local: cluster_module.LocalCluster, operator: operator_module.OperatorProcess, seconds: float) -> float:
    # The figure is the operator's own (capliquify_all_judged_seconds), so polling more often
    # would not make it finer. Each poll asks for that one gauge (`name[]`): a whole scrape
    # renders every object's series, at 10,000 policies a tenth of the operator's CPU during
    # the very phase measured.
    local.wait_for(lambda: judged(operator) > 0, seconds, "every object judged", interval=5)
    return judged(operator)


def start_up(bench: Bench, count: int, judged_objects: int | None = None) -> tuple[operator_module.OperatorProcess, dict]:
    """A leader onto `count` policies (and `judged_objects` objects in all, when there are
    others): seconds until all are judged, and the status writes and Events that took."""
    judged_objects = judged_objects or count
    leader = bench.operator()
    first = wait_judged(bench.local, leader, 900)
    print(f"  first verdict for all {judged_objects} objects in {first:.0f}s", flush=True)
    bench.local.wait_for(lambda: settled(bench.local) == count, 300, f"{count} policies evaluated", interval=5)
    return leader, {
        "first_verdicts_s": round(first),
        "startup_status_writes_per_object": round(
            value(leader, "capliquify_api_writes_total", 'verb="patch"') / judged_objects, 2),
        "startup_events": int(value(leader, "capliquify_api_writes_total", 'verb="create"')),
    }


def steady(bench: Bench, leader: operator_module.OperatorProcess, standby: operator_module.OperatorProcess,
           rounds: int) -> dict:
    assert leader.process is not None and standby.process is not None
    before_text, before_cpu = leader.metrics_text(), measure.cpu_seconds(leader.process.pid)
    standby_cpu = measure.cpu_seconds(standby.process.pid)
    time.sleep(INTERVAL * rounds)
    after_text, after_cpu = leader.metrics_text(), measure.cpu_seconds(leader.process.pid)

    def delta(name: str) -> float:
        return measure.metric(after_text, name) - measure.metric(before_text, name)

    measured_rounds = delta("capliquify_scaling_round_duration_seconds_count")
    return {
        "rounds": int(measured_rounds),
        "cpu_s_per_round": round((after_cpu - before_cpu) / rounds, 2),
        "standby_cpu_s_per_round": round((measure.cpu_seconds(standby.process.pid) - standby_cpu) / rounds, 3),
        "round_wall_s": round(delta("capliquify_scaling_round_duration_seconds_sum") / max(measured_rounds, 1), 2),
        "peak_rss_mb": round(measure.peak_rss_mb(leader.process.pid)),
        "standby_peak_rss_mb": round(measure.peak_rss_mb(standby.process.pid)),
        "queries_per_round": round(delta("capliquify_prometheus_queries_total") / max(measured_rounds, 1), 1),
        "writes_per_round": round(delta("capliquify_api_writes_total") / rounds, 1),
    }


def restart(bench: Bench) -> tuple[operator_module.OperatorProcess, dict]:
    """A new process onto written status: judged quickly, writes nothing."""
    again = bench.operator()
    seconds = wait_judged(bench.local, again, 300)
    time.sleep(QUIET_SECONDS)
    return again, {"restart_judged_s": round(seconds, 1),
                   "restart_writes": int(value(again, "capliquify_api_writes_total"))}


def failover(bench: Bench, leader: operator_module.OperatorProcess, count: int, kills: int) -> dict:
    """Kill the leader with a warm standby beside it, `kills` times; seconds until the standby
    leads and has completed its first scaling round."""
    times = []
    for _ in range(kills):
        standby = bench.operator()
        bench.local.wait_for(lambda standby=standby: value(standby, "capliquify_watched_objects") >= count, 300,
                             "standby warm", interval=1)
        time.sleep(3)  # a few renewals seen: the standby knows the lease is live
        assert leader.process is not None
        leader.process.kill()
        killed = time.monotonic()
        bench.local.wait_for(lambda standby=standby: value(standby, "capliquify_leader") == 1
                             and value(standby, "capliquify_scaling_round_duration_seconds_count") > 0,
                             120, "standby took over", interval=0.1)
        times.append(time.monotonic() - killed)
        leader.process.wait(timeout=10)
        leader = standby
    return {"failover_s_median": round(statistics.median(times), 1), "failover_s": [round(t, 1) for t in times]}


@contextlib.contextmanager
def prepared(count: int, workdir: pathlib.Path, services: bool = False) -> typing.Iterator[Bench]:
    """A fresh control plane with the objects, the exporter and Prometheus, ready for an operator
    to start: Prometheus' rate window filled, every Deployment seen by its controller."""
    local = cluster_module.LocalCluster(workdir / "cluster", log=lambda m: print(f"  {m}", flush=True),
                                        controller_manager_args=CONTROLLER_MANAGER_ARGS)
    exporter = exporter_module.Exporter(NAMESPACE, count, cluster_module.free_port())
    prometheus = prometheus_module.Prometheus(workdir / "prometheus", [f"127.0.0.1:{exporter.port}"], scrape_seconds=5)
    bench = Bench(local, prometheus, workdir)
    try:
        local.start()
        operator_module.install(local)
        local.kubectl("create", "namespace", NAMESPACE)
        started = time.monotonic()
        create(local, objects(count, services))
        print(f"  created {count} Deployments + {count} ScalingPolicies{' + MonitoredServices' if services else ''} "
              f"in {time.monotonic() - started:.0f}s", flush=True)
        exporter.start()
        prometheus.start()
        # The operator starts onto a Prometheus that has been running: rate() reads low until its
        # window (2m) has filled, and a start-up judged on that would be judged again (bands move).
        time.sleep(RATE_WINDOW_SECONDS + 10)
        local.wait_for(lambda: measure.deployments_settled(local, NAMESPACE) == count, 1800,
                       f"{count} Deployments settled", interval=10)
        yield bench
    finally:
        bench.stop_all()
        prometheus.stop()
        exporter.stop()
        local.stop()
        local.remove()


def start_up_with_services(count: int, workdir: pathlib.Path) -> dict[str, typing.Any]:
    """Start-up and restart only, with a MonitoredService beside each ScalingPolicy (issue 10
    names 10,000 of each): twice the first verdicts, each one status write."""
    with prepared(count, workdir, services=True) as bench:
        leader, figures = start_up(bench, count, judged_objects=2 * count)
        row: dict[str, typing.Any] = {"objects": 2 * count, **figures}
        if leader.process is not None:
            row["peak_rss_mb"] = round(measure.peak_rss_mb(leader.process.pid))
        leader.stop()
        _, figures = restart(bench)
        row.update(figures)
        return row


def run_size(count: int, rounds: int, workdir: pathlib.Path, kills: int = 0) -> dict[str, typing.Any]:
    with prepared(count, workdir) as bench:
        row: dict[str, typing.Any] = {"policies": count}
        leader, figures = start_up(bench, count)
        row.update(figures)
        standby = bench.operator()
        bench.local.wait_for(lambda: value(standby, "capliquify_watched_objects") >= count, 300, "standby warm", interval=1)
        time.sleep(INTERVAL)
        row.update(steady(bench, leader, standby, rounds))
        standby.stop()
        leader.stop()
        leader, figures = restart(bench)
        row.update(figures)
        if kills:
            row.update(failover(bench, leader, count, kills))
        return row


HEADER = ("| policies | CPU s / 30 s round | standby CPU s / round | round wall s | peak RSS MB | Prometheus queries / round "
          "| API writes / round (steady) | first verdict for all (s) | status writes / object at start | Events at start "
          "| restart: all judged (s) | restart: writes | failover (s, median) |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def table(rows: list[dict[str, typing.Any]]) -> str:
    return HEADER + "\n" + "\n".join(
        f"| {r['policies']:,} | {r['cpu_s_per_round']} | {r['standby_cpu_s_per_round']} | {r['round_wall_s']} "
        f"| {r['peak_rss_mb']} | {r['queries_per_round']} | {r['writes_per_round']} | {r['first_verdicts_s']} "
        f"| {r['startup_status_writes_per_object']} | {r['startup_events']} | {r['restart_judged_s']} "
        f"| {r['restart_writes']} | {r.get('failover_s_median', '–')} |" for r in rows)
