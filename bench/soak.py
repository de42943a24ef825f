"""The soak (issue 26): faults on a seeded random schedule, overlapping, against the real local
control plane with two operator replicas as their ServiceAccount, and invariants checked from
the outside (the API server's audit log, the receivers' logs, the workloads' scale history).

    python -m bench.soak --duration 300 --seed 7            # `make soak DURATION=300 SEED=7`
    python -m bench.soak --duration 120 --break-fence       # the harness's own check

What runs: per namespace, `per_namespace` Deployments (kwok's pods) with a MonitoredService, a
ScalingPolicy and an AlertPolicy each; an exporter whose gauges the harness moves (`soak_cpu`, the
work per ready replica; `soak_errors`, a percentage in seeded episodes), scraped every second by
Debian's Prometheus; the receivers (a webhook, an SMTP server, Debian's Alertmanager). Every
endpoint the operator talks to is behind toxiproxy: each replica's API server connection, the
Prometheus the objects name, and each receiver.

Invariants (each a list of violations in the report; the run fails on any):
- writes: no write of the operator's ServiceAccount from a replica other than the last to take
  or renew the Lease at the moment the API server received it (audit log);
- notifications: each error episode delivered to the webhook and to email exactly once per
  firing (one idempotency key; re-sends of the same key are counted, not duplicates) and its
  resolution likewise; nothing delivered that no episode explains; each firing seen in
  Alertmanager;
- scaling: every replica count of the scale history within [min, max]; no change beyond the
  step limit (one pod per 10 s either way); no scale-down while Prometheus had answered nothing
  for longer than staleAfterSeconds;
- convergence: after the last fault every object is true to the world (ScalingPolicy status =
  the Deployment's replicas and ScalingActive; MonitoredService's error rate read back; every
  episode resolved) within two intervals; the p50/p99 of the time it took are reported;
- resources: each replica's RSS and open sockets flat, its steady level against its end, a
  leader's sockets against a leader's and a standby's against a standby's (resource_growth);
  reported for the replica judged over the longest span. Its CPU per scaling round while it
  leads: the first settled window of leading against the last (cpu_per_round); reported for the
  replica that led the most rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import http.server
import json
import os
import pathlib
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import typing

import kubernetes
import yaml

from localcluster import alertmanager as alertmanager_module
from localcluster import cluster as cluster_module
from localcluster import faults as faults_module
from localcluster import hostile
from localcluster import operator as operator_module
from localcluster import prometheus as prometheus_module
from localcluster import railway as railway_module
from localcluster import receivers
from localcluster import toxiproxy as toxiproxy_module

GROUP = "ops.capliquify.io/v1alpha1"
LEASE_DURATION, RENEW_DEADLINE, RETRY = 6, 4, 1
FLAGS = ("--leader-elect", f"--leader-elect-lease-duration={LEASE_DURATION}",
         f"--leader-elect-renew-deadline={RENEW_DEADLINE}", f"--leader-elect-retry-period={RETRY}",
         "--resync-seconds=10", "--metrics-interval-seconds=2", "--alert-interval-seconds=1",
         "--allow-loopback-egress", "--railway-interval-seconds=2")
INTERVAL = 5  # ScalingPolicy evaluationIntervalSeconds
MIN_REPLICAS, MAX_REPLICAS = 1, 8
STEP, STEP_PERIOD = 1, 10  # pods per period, both ways
STALE_AFTER = 15
THRESHOLD = 5  # errorRate > 5 % fires
# Rollouts: a failing revision (bad-revision faults) answers at BAD_LATENCY ms p95 while it runs;
# the analysis fails over MAX_LATENCY and the guard rolls it back (once per failed revision).
GOOD_LATENCY, BAD_LATENCY, MAX_LATENCY = 50.0, 5000.0, 1000
REVISION_ANNOTATION = "soak/revision"
# Per namespace one Railway service ("rw", on the local Railway server) scaled by a ScalingPolicy
# on Railway's own cpu; railway-429 faults answer its requests 429 with Retry-After.
RAILWAY_TOKEN, RAILWAY_NAME = "soak-t0ken", "rw"
EPISODE = (25.0, 35.0)  # seconds of errors
# Seconds without errors after each episode. The route repeats every REPEAT s and damps a re-fire
# within REPEAT of the last notice (flap damping, docs/alerting.md): a resolution delivered up to
# QUIET[0] - REPEAT late (retries after a receiver fault) still leaves the next firing undamped.
QUIET = (100.0, 130.0)
REPEAT = 60  # the schema's least
SETTLE = 60  # seconds after the last fault, load held still, to measure convergence
# What an error episode needs to be seen by the operator at all: a stretch of this many seconds
# with a leader acting, the API server up and Prometheus answering (a scrape 1 s, the metrics
# snapshot every 2 s and its round over 100 objects, forSeconds 2, the alert round 1 s, the
# status write before the send). Measured in run 9 (docs/reliability.md): after Prometheus came
# back, alerts fired 2-7 s later. An episode without such a stretch could not fire: it is
# counted as blind, not missed (and a notice for it is not a fault either).
SEEN_FOR = 12.0
# A new leader's acting loops start after it takes the Lease, and its first rounds read every
# object's metrics before alerting on them (5 s at 100 objects of each kind in run 9).
TAKEOVER_LAG = 10.0
# A replica that stood down (no renewal within its renew deadline) and leads again starts a new
# term as a new leader does: its acting loops and what they learnt were dropped at the stand-down,
# so it catches up, reads and judges afresh. The audit log shows no holder change then (run 14: 38
# same-holder lapses, 23 of them new terms by the replicas' logs), so the term starts are read
# from the replicas' logs, the line the elector writes when it starts to lead.
TERM_STARTED = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) INFO controller\.operator\.election: "
                          r"became the leader \(", re.MULTILINE)
CONVERGE_BOUND = 2 * INTERVAL
# Memory and sockets, flat over the run: a replica's steady level against its end, like with like.
SETTLED = 60.0  # s after a replica's start, and into a term, before its level counts (warm-up, pools filling)
JUDGED_SPAN = 600.0  # s between the steady level and the end before growth is judged
RSS_BOUND = (1.5, 20.0)  # end <= 1.5 x steady + 20 MB
SOCKETS_BOUND = (2.0, 20)  # end <= 2 x steady + 20
# CPU per scaling round, while leading (a standby does no rounds): the first settled window of
# leading against the last. A window gathers CPU_WINDOW s of leading (its terms need not be
# contiguous); a stretch between two samples counts when both are known and settled in one term
# and they are at most CPU_GAP s apart (a longer gap may hide a stand-down and a new term).
CPU_WINDOW = 300.0
CPU_GAP = 30.0
# Judged when both windows hold CPU_MIN_ROUNDS scaling rounds or more and do not overlap. At one
# round per 5 s interval that is 200 s of settled leading in each, 400 s in all: the 240 s soak of
# `make test` (tests/integration/test_soak.py) reports its figures and is not judged on them.
CPU_MIN_ROUNDS = 40
CPU_BOUND = (1.5, 5.0)  # end <= 1.5 x steady + 5 ms per round
ROUND_COUNTS = ("capliquify_scaling_round_duration_seconds_count", "capliquify_evaluation_round_duration_seconds_count")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(f"[soak {time.strftime('%H:%M:%S')}] {message}", flush=True)


# -- the world the operator looks at ---------------------------------------------------------

class Exporter:
    """`soak_cpu{namespace,workload}` = 100 × demand / ready replicas (the load per replica falls
    as the workload scales) and `soak_errors` (percent), the values the harness moves."""

    def __init__(self) -> None:
        self.demand: dict[tuple[str, str], float] = {}
        self.errors: dict[tuple[str, str], float] = {}
        self.latency: dict[tuple[str, str], float] = {}  # p95 ms: over the analysis limit on a failing revision
        self.ready: dict[tuple[str, str], int] = {}
        self.port = cluster_module.free_port()
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                body = exporter.render()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def cpu(self, key: tuple[str, str]) -> float:
        return 100.0 * self.demand.get(key, 1.0) / max(1, self.ready.get(key, 1))

    def render(self) -> bytes:
        lines = []
        for key in list(self.demand):
            labels = f'namespace="{key[0]}",workload="{key[1]}"'
            lines.append(f"soak_cpu{{{labels}}} {self.cpu(key):.3f}")
            lines.append(f"soak_errors{{{labels}}} {self.errors.get(key, 0.0):.3f}")
            lines.append(f"soak_latency{{{labels}}} {self.latency.get(key, GOOD_LATENCY):.3f}")
        return ("\n".join(lines) + "\n").encode()

    def stop(self) -> None:
        self.server.shutdown()


def cpu_seconds(pid: int) -> float | None:
    """The process's CPU time so far, user and system, all its threads (utime + stime of
    /proc/PID/stat); None when it cannot be read (gone, or a line it does not know)."""
    try:
        text = pathlib.Path(f"/proc/{pid}/stat").read_text()
        fields = text[text.rindex(")") + 2:].split()  # after the command name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15, counted from 1
    except (OSError, ValueError, IndexError):
        return None


def term_starts(log_text: str) -> list[float]:
    """When a replica started to lead (epoch seconds), each term, from its log (asctime is the
    machine's local time, to the millisecond)."""
    return [time.mktime(time.strptime(stamp, "%Y-%m-%d %H:%M:%S")) + int(millis) / 1000
            for stamp, millis in TERM_STARTED.findall(log_text)]


@dataclasses.dataclass(frozen=True)
class Sample:
    """One replica's resources at one moment (from /proc) and its role then (its /metrics)."""

    at: float
    rss_mb: float
    sockets: int
    leading: bool | None  # None: not known (SIGSTOPped, or its /metrics did not answer)
    cpu_s: float | None = None  # utime + stime so far (/proc/PID/stat); None: not read
    scaling_rounds: int | None = None  # capliquify_scaling_round_duration_seconds_count; None: not read
    evaluation_rounds: int | None = None  # capliquify_evaluation_round_duration_seconds_count


def resource_growth(samples: typing.Sequence[Sample]) -> dict[str, typing.Any]:
    """One replica's memory and open sockets: its steady level against its end, like with like.

    A leader holds its connection pools (the API client's 32, the status writer's 32, the
    receivers' and Prometheus's); a standby holds its watches and the Lease's. Run 14 compared a
    standby's first sample (12 sockets, 114 MB) with the same process leading at its end (109,
    206 MB). So: a sample counts once the replica has run SETTLED s, and a leader's once it has
    led SETTLED s in that term; the steady level is taken from the first such leading sample on
    (RSS does not come back down after a term, nor do the pools close: a standby that has led is
    compared with standbys that have led), or from the first settled sample of a replica that never
    led. RSS: the steady level's first sample against the last. Sockets: per role, the first
    against the last sample of that role. Judged when they are JUDGED_SPAN s apart or more."""
    settled: list[Sample] = []
    term_began: float | None = None
    born = samples[0].at if samples else 0.0
    for sample in samples:
        term_began = (term_began if term_began is not None else sample.at) if sample.leading else None
        if sample.leading is None or sample.at - born < SETTLED:
            continue
        if sample.leading and term_began is not None and sample.at - term_began < SETTLED:
            continue
        settled.append(sample)
    anchor = next((sample.at for sample in settled if sample.leading), None)
    steady = [sample for sample in settled if anchor is None or sample.at >= anchor]
    found: dict[str, typing.Any] = {"span_s": round(steady[-1].at - steady[0].at) if steady else 0,
                                    "led": anchor is not None, "violations": []}
    if steady:
        first, last = steady[0], steady[-1]
        found["rss_mb"] = (round(first.rss_mb), round(last.rss_mb))
        if last.at - first.at >= JUDGED_SPAN and last.rss_mb > RSS_BOUND[0] * first.rss_mb + RSS_BOUND[1]:
            found["violations"].append(f"RSS grew from {first.rss_mb:.0f} MB to {last.rss_mb:.0f} MB "
                                       f"in {last.at - first.at:.0f} s")
    for role, leading in (("leading", True), ("standby", False)):
        rows = [sample for sample in steady if sample.leading is leading]
        if not rows:
            continue
        found[f"sockets_{role}"] = (rows[0].sockets, rows[-1].sockets)
        found[f"sockets_{role}_span_s"] = round(rows[-1].at - rows[0].at)
        if rows[-1].at - rows[0].at >= JUDGED_SPAN and rows[-1].sockets > SOCKETS_BOUND[0] * rows[0].sockets + SOCKETS_BOUND[1]:
            found["violations"].append(f"open sockets ({role}) grew from {rows[0].sockets} to {rows[-1].sockets} "
                                       f"in {rows[-1].at - rows[0].at:.0f} s")
    return found


def cpu_per_round(samples: typing.Sequence[Sample]) -> dict[str, typing.Any]:
    """One replica's CPU (ms) per scaling round while it leads: the steady figure against the end.

    Only leading counts (a standby does no scaling rounds), and only settled leading, as in
    resource_growth: SETTLED s after the replica's start and into each term. A stretch between
    two consecutive samples counts when both are leading in the same term, settled, known (CPU
    time and round counters read: a failed read is skipped, never guessed) and at most CPU_GAP s
    apart, and the counters did not go back. The steady window gathers such stretches from the
    first on until they cover CPU_WINDOW s; the end window from the last back. Its figure is the
    CPU time over the scaling rounds counted in it. Judged (end <= CPU_BOUND[0] x steady +
    CPU_BOUND[1]) when both windows hold CPU_MIN_ROUNDS scaling rounds or more and do not overlap;
    otherwise the figures are reported, not judged."""
    stretches: list[tuple[float, float, float, int, int]] = []  # (from, to, cpu s, scaling, evaluation rounds)
    term_began: float | None = None
    born = samples[0].at if samples else 0.0
    previous: tuple[float, float, int, int | None] | None = None  # the last settled, known sample
    for sample in samples:
        term_began = (term_began if term_began is not None else sample.at) if sample.leading else None
        known: tuple[float, float, int, int | None] | None = None
        if (sample.leading is True and sample.at - born >= SETTLED and term_began is not None
                and sample.at - term_began >= SETTLED and sample.cpu_s is not None and sample.scaling_rounds is not None):
            known = (sample.at, sample.cpu_s, sample.scaling_rounds, sample.evaluation_rounds)
        if known is not None and previous is not None:
            cpu, rounds = known[1] - previous[1], known[2] - previous[2]
            evaluations = known[3] - previous[3] if known[3] is not None and previous[3] is not None else 0
            if 0 < known[0] - previous[0] <= CPU_GAP and cpu >= 0 and rounds >= 0 and evaluations >= 0:
                stretches.append((previous[0], known[0], cpu, rounds, evaluations))
        previous = known

    def window(rows: typing.Iterable[tuple[float, float, float, int, int]]) -> dict[str, typing.Any]:
        taken: list[tuple[float, float, float, int, int]] = []
        for row in rows:
            taken.append(row)
            if sum(b - a for a, b, *_ in taken) >= CPU_WINDOW:
                break
        rounds = sum(row[3] for row in taken)
        cpu = sum(row[2] for row in taken)
        return {"from": min(row[0] for row in taken), "to": max(row[1] for row in taken),
                "leading_s": round(sum(b - a for a, b, *_ in taken)), "rounds": rounds,
                "evaluation_rounds": sum(row[4] for row in taken), "cpu_s": round(cpu, 3),
                "ms": round(1000 * cpu / rounds, 1) if rounds else None}

    found: dict[str, typing.Any] = {"rounds": sum(row[3] for row in stretches), "judged": False, "violations": []}
    if not stretches:
        return found
    steady, end = window(stretches), window(reversed(stretches))
    found["steady"], found["end"] = steady, end
    found["judged"] = (steady["rounds"] >= CPU_MIN_ROUNDS and end["rounds"] >= CPU_MIN_ROUNDS
                       and end["from"] >= steady["to"])
    if found["judged"] and end["ms"] > CPU_BOUND[0] * steady["ms"] + CPU_BOUND[1]:
        found["violations"].append(
            f"CPU per scaling round rose from {steady['ms']:.1f} ms ({steady['rounds']} rounds) to "
            f"{end['ms']:.1f} ms ({end['rounds']} rounds), {end['to'] - steady['from']:.0f} s apart")
    return found


def changed_at(item: typing.Any, seen: float) -> float:
    """When a Deployment's spec.replicas changed: when the watch saw it or, if it saw it late (a
    watch catching up after an API server restart: run 14 saw two changes 9 s late and counted
    them as double steps), the end of the second the API server stamped on the managedFields
    entry that owns spec.replicas (whole seconds: its end is the latest the write can have been)."""
    try:
        stamps = [entry.time.timestamp() + 1 for entry in item.metadata.managed_fields or []
                  if entry.time is not None and isinstance(entry.fields_v1, dict)
                  and "f:replicas" in (entry.fields_v1.get("f:spec") or {})]
    except (AttributeError, TypeError, ValueError):  # a shape it does not know: the watch's time
        return seen
    return min(seen, max(stamps)) if stamps else seen


class ScaleHistory:
    """Every Deployment's spec.replicas as it changes, from a watch (the admin's, straight to the
    API server); ready replicas for the exporter."""

    def __init__(self, local: cluster_module.LocalCluster, exporter: Exporter, stop: threading.Event) -> None:
        self.api = kubernetes.client.AppsV1Api(kubernetes.config.new_client_from_config(str(local.kubeconfig)))
        self.exporter, self.stop = exporter, stop
        self.replicas: dict[tuple[str, str], int] = {}
        self.changes: list[tuple[float, tuple[str, str], int, int]] = []  # (time, key, from, to)
        self.revisions: dict[tuple[str, str], str] = {}  # the pod template's soak/revision ("" for none)
        self.revision_changes: list[tuple[float, tuple[str, str], str, str]] = []  # (time, key, from, to)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "ScaleHistory":
        self.thread.start()
        return self

    def _seen(self, item: typing.Any) -> None:
        key = (item.metadata.namespace, item.metadata.name)
        now, replicas = time.time(), item.spec.replicas
        before = self.replicas.get(key)
        if before is not None and before != replicas:
            self.changes.append((changed_at(item, now), key, before, replicas))
        self.replicas[key] = replicas
        self.exporter.ready[key] = item.status.ready_replicas or 0
        template = ((item.spec.template.metadata.annotations if item.spec.template.metadata else None) or {})
        revision = template.get(REVISION_ANNOTATION, "")
        earlier = self.revisions.get(key)
        if earlier is not None and earlier != revision:
            self.revision_changes.append((now, key, earlier, revision))
        self.revisions[key] = revision
        self.exporter.latency[key] = BAD_LATENCY if revision.startswith("bad-") else GOOD_LATENCY

    def _run(self) -> None:
        version = None
        while not self.stop.is_set():  # ends with the run
            try:
                if version is None:
                    listing = self.api.list_deployment_for_all_namespaces(label_selector="soak=1", _request_timeout=10)
                    for item in listing.items:
                        self._seen(item)
                    version = listing.metadata.resource_version
                for event in kubernetes.watch.Watch().stream(
                        self.api.list_deployment_for_all_namespaces, label_selector="soak=1",
                        resource_version=version, timeout_seconds=20, _request_timeout=30):
                    self._seen(event["object"])
                    version = event["object"].metadata.resource_version
                    if self.stop.is_set():
                        return
            except kubernetes.client.ApiException as error:
                if error.status == 410:
                    version = None
                time.sleep(1)
            except Exception:  # noqa: BLE001 - the API server restarts under it: watch again
                time.sleep(1)


def objects(namespace: str, index: int, prometheus_url: str, hook_url: str, smtp_secret: str,
            alertmanager_url: str) -> list[dict]:
    name = f"w{index}"
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": name, "namespace": namespace, "labels": {"soak": "1"}},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                           "template": {"metadata": {"labels": {"app": name}},
                                        "spec": {"containers": [{"name": "app", "image": "soak/app:1"}]}}}}
    msvc = {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": name, "namespace": namespace},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": name}},
                     "metrics": {"prometheus": {"url": prometheus_url},
                                 "queries": {"cpu": "soak_cpu", "errorRate": "soak_errors", "latencyP95": "soak_latency"}},
                     # Only a failing revision's latency fails an analysis (errors come in episodes).
                     "rollout": {"autoRollback": True, "progressDeadlineSeconds": 60,
                                 "analysis": {"windowSeconds": 30, "maxErrorRatePercent": 100,
                                              "maxLatencyP95Ms": MAX_LATENCY, "requireHealthyChecks": False}}}}
    policy = scaling_policy(namespace, name)
    alerts = {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": name, "namespace": namespace},
              "spec": {"serviceRef": name,
                       "rules": [{"name": "SoakErrors", "metric": "errorRate", "op": ">", "threshold": THRESHOLD,
                                  "forSeconds": 2, "severity": "critical"}],
                       "channels": [{"name": "hook", "webhook": {"url": hook_url}},
                                    {"name": "mail", "email": {"smtpSecretRef": {"name": smtp_secret, "key": "config"},
                                                               "to": ["ops@example.com"]}},
                                    {"name": "am", "alertmanager": {"url": alertmanager_url}}],
                       "routes": [{"severity": "critical", "channelKinds": ["webhook", "email", "alertmanager"],
                                   "repeatIntervalSeconds": REPEAT}]}}
    return [deployment, msvc, policy, alerts]


def scaling_policy(namespace: str, name: str) -> dict:
    """The soak's ScalingPolicy through the MonitoredService `name`: cpu 70/30, a step of STEP
    pods per STEP_PERIOD each way (what the step-limit invariant checks), holding on stale data."""
    return {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": name, "namespace": namespace},
            "spec": {"targetRef": {"monitoredService": name}, "minReplicas": MIN_REPLICAS,
                     "maxReplicas": MAX_REPLICAS, "evaluationIntervalSeconds": INTERVAL,
                     "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                     "behavior": {
                         "scaleUp": {"cooldownSeconds": 0, "policies": [
                             {"type": "Pods", "value": STEP, "periodSeconds": STEP_PERIOD}]},
                         "scaleDown": {"stabilizationWindowSeconds": 15, "cooldownSeconds": 0, "policies": [
                             {"type": "Pods", "value": STEP, "periodSeconds": STEP_PERIOD}]}},
                     "onMetricsUnavailable": {"action": "Hold", "staleAfterSeconds": STALE_AFTER}}}


def railway_objects(namespace: str, endpoint: str) -> list[dict]:
    """The namespace's Railway service: its token, a MonitoredService and a ScalingPolicy (no
    AlertPolicy: the notification accounting is the Deployments' episodes)."""
    msvc = {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": RAILWAY_NAME, "namespace": namespace},
            "spec": {"target": {"railway": {"projectId": "p-soak", "environmentId": "env-1",
                                            "serviceId": f"svc-{namespace}", "endpoint": endpoint,
                                            "tokenSecretRef": {"name": "railway", "key": "token"}}}}}
    policy = scaling_policy(namespace, RAILWAY_NAME)
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "railway", "namespace": namespace},
             "stringData": {"token": RAILWAY_TOKEN}}, msvc, policy]


@dataclasses.dataclass(frozen=True)
class Episode:
    key: tuple[str, str]
    start: float  # seconds from the run's start
    end: float


def episodes(seed: int, keys: list[tuple[str, str]], start: float, end: float) -> list[Episode]:
    """Seeded error episodes per service, each followed by a quiet gap (QUIET)."""
    rng = random.Random(seed * 7919 + 1)
    found = []
    for key in keys:
        at = start + rng.uniform(0, EPISODE[1])
        while True:
            length = rng.uniform(*EPISODE)
            if at + length > end:
                break
            found.append(Episode(key, round(at, 1), round(at + length, 1)))
            at += length + rng.uniform(*QUIET)
    return found


# -- the run ----------------------------------------------------------------------------------

class Soak:
    def __init__(self, local: cluster_module.LocalCluster, workdir: pathlib.Path, seed: int, duration: float,
                 namespaces: int, per_namespace: int, break_fence: bool = False, mean_gap: float = 8.0) -> None:
        self.local, self.workdir, self.seed, self.duration = local, workdir, seed, duration
        self.namespaces = [f"soak-{seed}-{i}" for i in range(namespaces)]
        self.per_namespace, self.break_fence = per_namespace, break_fence
        self.keys = [(ns, f"w{i}") for ns in self.namespaces for i in range(per_namespace)]
        self.warmup = 30.0
        self.faults_end = max(self.warmup + 10, duration - SETTLE)
        self.schedule = faults_module.schedule(seed, self.warmup, self.faults_end, mean_gap,
                                               only=("stop-leader-slow-wake",) if break_fence else ())
        self.episodes = episodes(seed, self.keys, self.warmup - 20, self.faults_end - 5)
        self.stop = threading.Event()
        self.replicas: dict[str, operator_module.OperatorProcess] = {}
        self.all_replicas: list[operator_module.OperatorProcess] = []
        self.stopped: set[str] = set()  # slots whose process is SIGSTOPped now
        self.injected: list[tuple[float, faults_module.Fault, str]] = []  # (started, fault, what it hit)
        self.no_data: list[tuple[float, float]] = []  # epoch windows when Prometheus answered nothing
        self.control_plane_down: list[tuple[float, float]] = []  # epoch windows of API server / etcd restarts
        self.leader_down: list[tuple[float, float]] = []  # epoch windows of the leader paused or killed
        self.bad_revisions: list[tuple[float, tuple[str, str], str]] = []  # (epoch, workload, revision tag)
        self.railway_keys = [(ns, RAILWAY_NAME) for ns in self.namespaces]
        self.storms: list[tuple[float, float, int]] = []  # railway-429: (epoch start, end, every n-th refused)
        self.monotonic_storms: list[tuple[float, float, int]] = []  # the same on the Railway server's clock
        self.partials: list[tuple[float, float, int, str]] = []  # railway-partial: (epoch start, end, every, kind)
        self.railway_seen = 0  # the local Railway's replica changes taken into the history so far
        self.lease_writes: list[tuple[float, str]] = []  # (epoch, identity) of each successful Lease write
        self.samples: dict[int, list[Sample]] = {}  # pid -> its samples, in order
        self.am_seen: set[tuple[str, str, str]] = set()  # (namespace, service, startsAt)
        self.began = 0.0
        self.last_fault_end = 0.0
        self.errors: list[str] = []
        self.converged: dict[tuple[str, str, str], float] = {}  # object -> seconds after the last fault
        self.wrong: set[tuple[str, str, str]] = set()

    # setup -----------------------------------------------------------------------------------
    def setup(self) -> None:
        self.toxiproxy = toxiproxy_module.Toxiproxy(self.workdir / "toxiproxy").start()
        self.exporter = Exporter()
        for key in self.keys:
            self.exporter.demand[key] = 1.0
        self.prometheus = prometheus_module.Prometheus(self.workdir / "prometheus",
                                                       [f"127.0.0.1:{self.exporter.port}"], scrape_seconds=1)
        self.prometheus.start()
        self.railway = railway_module.RailwaySimulator(token=RAILWAY_TOKEN).start()
        for namespace in self.namespaces:
            self.railway.add_service(f"svc-{namespace}", RAILWAY_NAME, replicas=2, load_vcpu=1.0)
        self.garbage = hostile.HostileServer(hostile.http_reply(b"<html>not json{{{", content_type="text/html"))
        self.hook = receivers.HttpReceiver()
        self.smtp = receivers.SmtpReceiver()
        self.alertmanager = alertmanager_module.Alertmanager(self.workdir / "alertmanager").start()
        tp = self.toxiproxy
        prom = tp.proxy("prometheus", f"127.0.0.1:{self.prometheus.port}")
        hook = tp.proxy("hook", self.hook.url.split("//")[1])
        smtp = tp.proxy("smtp", f"127.0.0.1:{self.smtp.port}")
        am = tp.proxy("alertmanager", self.alertmanager.url.split("//")[1])
        api = f"127.0.0.1:{self.local.apiserver_port}"
        self.api_proxies = {"a": tp.proxy("api-a", api), "b": tp.proxy("api-b", api)}
        self.history = ScaleHistory(self.local, self.exporter, self.stop)
        docs: list[dict] = []
        for namespace in self.namespaces:
            self.local.kubectl("create", "namespace", namespace)
            host, port = smtp.split(":")
            docs.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "smtp", "namespace": namespace},
                         "stringData": {"config": yaml.safe_dump({"host": host, "port": int(port),
                                                                  "from": "soak@example.com"})}})
            docs += railway_objects(namespace, self.railway.url)
            for index in range(self.per_namespace):
                docs += objects(namespace, index, f"http://{prom}", f"http://{hook}/hook", "smtp", f"http://{am}")
        for start in range(0, len(docs), 400):
            self.local.kubectl("apply", "-f", "-", input=yaml.safe_dump({"apiVersion": "v1", "kind": "List",
                                                                         "items": docs[start:start + 400]}))
        self.history.start()
        try:
            self.local.wait_for(lambda: len(self.history.replicas) == len(self.keys) and all(
                self.exporter.ready.get(k, 0) >= 1 for k in self.keys), 180, "the Deployments' pods are ready")
        except TimeoutError as error:
            exited = {name: p.returncode for name, p in self.local.processes.items() if p.poll() is not None}
            unready = [k for k in self.keys if self.exporter.ready.get(k, 0) < 1]
            raise TimeoutError(f"{error}: {len(unready)} not ready (first {unready[:3]}); "
                               f"control-plane processes exited: {exited or 'none'}") from None
        time.sleep(3)  # Prometheus has scraped the exporter
        for slot in ("a", "b"):
            self.start_replica(slot)

    def start_replica(self, slot: str) -> operator_module.OperatorProcess:
        index = len(self.all_replicas)
        for attempt in range(20):  # its token is a TokenRequest: refused while the API server restarts (run 16, 57 s)
            try:
                process = operator_module.OperatorProcess(self.local, self.workdir / f"operator-{index}-{slot}.log", *FLAGS)
                break
            except subprocess.CalledProcessError:
                if attempt == 19:
                    raise
                time.sleep(1)
        config = yaml.safe_load(process.kubeconfig.read_text())
        config["clusters"][0]["cluster"]["server"] = f"https://{self.api_proxies[slot]}"
        own = self.workdir / f"operator-{slot}.kubeconfig"
        own.write_text(yaml.safe_dump(config))
        process.kubeconfig = own
        if self.break_fence:
            os.environ["CAPLIQUIFY_TEST_BREAK_FENCE"] = "1"
        # Tracked before it is started: a replica whose liveness endpoint is late (run 15: 60 s)
        # raised out of start() untracked, and ran on, never stopped, after the run ended.
        self.replicas[slot] = process
        self.all_replicas.append(process)
        try:
            process.start()
        finally:
            os.environ.pop("CAPLIQUIFY_TEST_BREAK_FENCE", None)
        return process

    # observing the replicas --------------------------------------------------------------------
    def is_leader(self, slot: str) -> bool:
        return self.role(slot) is True

    def holder(self) -> str | None:
        """The slot whose replica the Lease names now (the admin's read, straight to the API server)."""
        found = self.local.kubectl("get", "lease", "capliquify-operator", "-n", operator_module.OPERATOR_NAMESPACE,
                                   "-o", "jsonpath={.spec.holderIdentity}", check=False).strip()
        for slot, process in self.replicas.items():
            if found and f"leader election as {found} " in process.log():
                return slot
        return None

    def slot_of(self, role: str) -> str:
        held = self.holder()
        leaders = [held] if held else [slot for slot in ("a", "b") if self.is_leader(slot)]
        if role == "leader":
            return leaders[0] if leaders else "a"
        others = [slot for slot in ("a", "b") if slot not in leaders]
        return others[0] if others else "b"

    def role(self, slot: str) -> bool | None:
        """Whether the replica acts as the leader now (its capliquify_leader), None if not known."""
        return self.observe(slot)[0]

    def observe(self, slot: str) -> tuple[bool | None, int | None, int | None]:
        """The replica's role and its scaling and evaluation rounds so far, from one read of its
        /metrics; each None when not known (stopped, no answer, the line missing or garbled)."""
        process = self.replicas[slot]
        if slot in self.stopped or process.process is None or process.process.poll() is not None:
            return None, None, None
        try:
            text = process.metrics_text("capliquify_leader", *ROUND_COUNTS)
        except (OSError, ValueError):  # no answer, or not text
            return None, None, None
        values: dict[str, float] = {}
        for line in text.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] in ("capliquify_leader", *ROUND_COUNTS):
                with contextlib.suppress(ValueError):
                    values[parts[0]] = float(parts[1])
        leader = values.get("capliquify_leader")
        scaling, evaluation = (int(values[name]) if 0 <= values.get(name, -1) < 1e15 else None  # not NaN nor inf
                               for name in ROUND_COUNTS)
        return leader == 1.0 if leader is not None else None, scaling, evaluation

    def sample(self) -> None:
        for slot, process in list(self.replicas.items()):
            if process.process is None or process.process.poll() is not None:
                continue
            pid = process.process.pid
            leading, scaling_rounds, evaluation_rounds = self.observe(slot)
            now = time.time()
            with contextlib.suppress(OSError):
                status = pathlib.Path(f"/proc/{pid}/status").read_text()
                found = re.search(r"VmRSS:\s+(\d+)", status)
                if found is None:
                    continue  # a process just killed (a zombie) has no VmRSS: the 1,545 s of the first hour's run ended here
                rss = int(found.group(1)) / 1024
                sockets = 0
                for fd in pathlib.Path(f"/proc/{pid}/fd").iterdir():
                    with contextlib.suppress(OSError):  # closed since the listing
                        sockets += os.readlink(fd).startswith("socket:")
                self.samples.setdefault(pid, []).append(Sample(now, rss, sockets, leading, cpu_seconds(pid),
                                                               scaling_rounds, evaluation_rounds))

    def watch_alertmanager(self) -> None:
        with contextlib.suppress(Exception):
            for alert in self.alertmanager.alerts():
                labels = alert.get("labels", {})
                self.am_seen.add((labels.get("namespace", ""), labels.get("service", ""), alert.get("startsAt", "")))

    # faults -------------------------------------------------------------------------------------
    def inject(self, fault: faults_module.Fault) -> None:
        try:
            self._inject(fault)
        except Exception as error:  # noqa: BLE001 - a fault that could not be injected is reported
            self.errors.append(f"{fault}: {type(error).__name__}: {error}")
        self.last_fault_end = max(self.last_fault_end, time.time())

    def _inject(self, fault: faults_module.Fault) -> None:
        tp, kind, seconds = self.toxiproxy, fault.kind, fault.seconds
        started = time.time()
        what = ""
        if kind in ("kill-leader", "kill-standby"):
            slot = self.slot_of(kind.split("-")[1])
            process = self.replicas[slot]
            what = f"replica {slot} pid {process.process.pid}"  # type: ignore[union-attr]
            process.process.kill()  # type: ignore[union-attr]
            process.process.wait(timeout=10)  # type: ignore[union-attr]
            self.injected.append((started, fault, what))
            if kind == "kill-leader":  # until the other takes the Lease (the audit log says when)
                self.leader_down.append((started, started + LEASE_DURATION))
            time.sleep(seconds)
            self.start_replica(slot)
        elif kind in ("stop-leader", "stop-standby"):
            slot = self.slot_of(kind.split("-")[1])
            process = self.replicas[slot]
            what = f"replica {slot} pid {process.process.pid}"  # type: ignore[union-attr]
            self.stopped.add(slot)
            process.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
            self.injected.append((started, fault, what))
            time.sleep(seconds)
            process.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
            self.stopped.discard(slot)
            if kind == "stop-leader":
                self.leader_down.append((started, min(time.time(), started + LEASE_DURATION)))
        elif kind == "stop-leader-slow-wake":
            slot = self.slot_of("leader")
            process = self.replicas[slot]
            what = f"replica {slot} pid {process.process.pid}"  # type: ignore[union-attr]
            self.stopped.add(slot)
            process.process.send_signal(signal.SIGSTOP)  # type: ignore[union-attr]
            self.injected.append((started, fault, what))
            self.leader_down.append((started, started + LEASE_DURATION))
            time.sleep(seconds)
            tp.add_toxic(f"api-{slot}", "wake", "latency", {"latency": 2500})
            process.process.send_signal(signal.SIGCONT)  # type: ignore[union-attr]
            self.stopped.discard(slot)
            time.sleep(3)
            tp.remove_toxic(f"api-{slot}", "wake")
        elif kind in ("apiserver-restart", "etcd-restart"):
            name = "kube-apiserver" if kind == "apiserver-restart" else "etcd"
            self.injected.append((started, fault, name))
            try:
                took = faults_module.restart_component(self.local, name, seconds)
            finally:
                self.control_plane_down.append((started, time.time()))
            what = f"{name} back after {took:.1f}s"
        elif kind == "prometheus-stop":
            self.injected.append((started, fault, "prometheus"))
            self.prometheus.stop()
            time.sleep(seconds)
            self.prometheus.start()
            self.no_data.append((started, time.time()))
        elif kind == "prometheus-slow":
            self.injected.append((started, fault, "prometheus"))
            tp.add_toxic("prometheus", "slow", "latency", {"latency": fault.param("latency_ms")})
            time.sleep(seconds)
            tp.remove_toxic("prometheus", "slow")
        elif kind == "prometheus-garbage":
            self.injected.append((started, fault, "prometheus"))
            tp.set_upstream("prometheus", f"127.0.0.1:{self.garbage.port}")
            tp.enable("prometheus", False)  # closes the connections kept alive to the real one
            tp.enable("prometheus", True)
            time.sleep(seconds)
            tp.set_upstream("prometheus", f"127.0.0.1:{self.prometheus.port}")
            tp.enable("prometheus", False)
            tp.enable("prometheus", True)
            self.no_data.append((started, time.time()))
        elif kind.startswith("receiver-"):
            receiver = str(fault.param("receiver"))
            self.injected.append((started, fault, receiver))
            if kind == "receiver-5xx" and receiver == "hook":
                self.hook.fail["/hook"] = 10**9
                time.sleep(seconds)
                self.hook.fail["/hook"] = 0
            else:
                toxic = {"receiver-timeout": ("timeout", {"timeout": 0}),
                         "receiver-reset": ("reset_peer", {"timeout": 0}),
                         # SMTP and Alertmanager have no 5xx switch: their connections reset at once
                         "receiver-5xx": ("reset_peer", {"timeout": 0})}[kind]
                tp.add_toxic(receiver, "fault", toxic[0], toxic[1])
                time.sleep(seconds)
                tp.remove_toxic(receiver, "fault")
        elif kind == "bad-revision":
            key = self.keys[min(len(self.keys) - 1, int(float(fault.param("pick", 0.0)) * len(self.keys)))]  # type: ignore[arg-type]
            tag = f"bad-{len(self.bad_revisions)}"
            what = f"{key[0]}/{key[1]} {tag}"
            patch = {"spec": {"template": {"metadata": {"annotations": {REVISION_ANNOTATION: tag}}}}}
            for attempt in range(30):  # the API server may be restarting (another fault): retry
                try:
                    self.local.kubectl("patch", "deployment", key[1], "-n", key[0], "--type=merge", "-p", json.dumps(patch))
                    break
                except Exception:  # noqa: BLE001
                    if attempt == 29:
                        raise
                    time.sleep(1)
            self.bad_revisions.append((started, key, tag))
            self.injected.append((started, fault, what))
            time.sleep(seconds)
        elif kind == "railway-429":
            every = int(fault.param("every", 1))  # type: ignore[call-overload]
            self.injected.append((started, fault, f"every {every}. request refused"))
            began = time.monotonic()
            self.railway.refuse_every, self.railway.retry_after = every, 2
            time.sleep(seconds)
            self.railway.refuse_every = 0
            self.storms.append((started, time.time(), every))
            self.monotonic_storms.append((began, time.monotonic(), every))
        elif kind == "railway-partial":
            every, answer = int(fault.param("every", 1)), str(fault.param("kind"))  # type: ignore[call-overload]
            self.injected.append((started, fault, f"every {every}. request answered {answer}"))
            self.railway.partial_kind, self.railway.partial_every = answer, every
            time.sleep(seconds)
            self.railway.partial_every = 0
            self.partials.append((started, time.time(), every, answer))
        elif kind.startswith("api-"):
            proxy = f"api-{fault.param('replica')}"
            self.injected.append((started, fault, proxy))
            toxic = {"api-latency": ("latency", {"latency": fault.param("latency_ms")}),
                     "api-bandwidth": ("bandwidth", {"rate": fault.param("kb_per_s")}),
                     "api-reset": ("reset_peer", {"timeout": 0})}[kind]
            tp.add_toxic(proxy, "fault", toxic[0], toxic[1])
            time.sleep(seconds)
            tp.remove_toxic(proxy, "fault")
        log(f"fault done: {fault}" + (f" ({what})" if what else ""))

    # the load ------------------------------------------------------------------------------------
    def drive(self, rng: random.Random, elapsed: float, settle: bool) -> None:
        for key in self.keys:
            if not settle:  # settling: the demand stays where it is
                self.exporter.demand[key] = min(6.0, max(0.3, self.exporter.demand[key] * rng.uniform(0.7, 1.4)))
        for namespace in self.namespaces if not settle else ():  # Railway's load: vCPU over its replicas
            service = self.railway.services[f"svc-{namespace}"]
            service.load_vcpu = min(6.0, max(0.3, service.load_vcpu * self.railway_rng.uniform(0.7, 1.4)))

    def railway_history(self) -> None:
        """The Railway services' replicas into the scale history: each change at the time the local
        Railway's deploy applied it (its own stamp), not when this loop saw it (run 14's loop, 1 s
        apart at best, saw soak-7-1's step of ~103 s at 109.5 s)."""
        changes = self.railway.changes
        for at, service, before, after in changes[self.railway_seen:]:
            key = (service.removeprefix("svc-"), RAILWAY_NAME)
            if key in self.railway_keys:
                self.history.changes.append((at, key, before, after))
        self.railway_seen = len(changes)
        for namespace in self.namespaces:
            self.history.replicas[(namespace, RAILWAY_NAME)] = self.railway.services[f"svc-{namespace}"].replicas

    def errors_now(self, elapsed: float) -> None:
        erring = {e.key for e in self.episodes if e.start <= elapsed < e.end}
        for key in self.keys:
            self.exporter.errors[key] = 50.0 if key in erring else 0.0

    def run(self) -> dict:
        log(f"seed {self.seed}: {len(self.keys)} objects of each kind in {len(self.namespaces)} namespaces, "
            f"{self.duration:.0f}s, {len(self.schedule)} faults, {len(self.episodes)} error episodes"
            + (", fence BROKEN (CAPLIQUIFY_TEST_BREAK_FENCE=1)" if self.break_fence else ""))
        for fault in self.schedule:
            log(f"  schedule {fault}")
        self.setup()
        self.began = time.time()
        self.audit_from = self.began - 60
        rng = random.Random(self.seed * 104729 + 3)
        self.railway_rng = random.Random(self.seed * 15485863 + 5)  # its own: the Deployments' demand replays as before
        threads: list[threading.Thread] = []
        pending = list(self.schedule)
        next_load = 0.0
        settle_started: float | None = None
        deadline = self.began + self.duration + 120  # bounded even when a fault overruns
        try:
            while time.time() < deadline:
                elapsed = time.time() - self.began
                while pending and pending[0].at <= elapsed:
                    fault = pending.pop(0)
                    log(f"fault: {fault}")
                    thread = threading.Thread(target=self.inject, args=(fault,), daemon=True)
                    thread.start()
                    threads.append(thread)
                faults_over = not pending and not any(t.is_alive() for t in threads)
                if faults_over and settle_started is None and elapsed >= self.faults_end:
                    settle_started = time.time()
                    self.last_fault_end = max(self.last_fault_end, settle_started)
                    log("last fault over: load held still, measuring convergence")
                    self.drive(rng, elapsed, settle=True)
                self.errors_now(elapsed)
                self.railway_history()
                if elapsed >= next_load and settle_started is None:
                    self.drive(rng, elapsed, settle=False)
                    next_load = elapsed + 5
                if int(elapsed) % 5 == 0:
                    self.sample()
                    self.watch_alertmanager()
                if settle_started is not None:
                    self.convergence_poll()
                    if time.time() - settle_started >= SETTLE and time.time() - self.began >= self.duration:
                        break
                time.sleep(1)
            for thread in threads:
                thread.join(timeout=60)
            self.sample()
            with contextlib.suppress(Exception):  # for whoever reads a failed run
                (self.workdir / "objects.yaml").write_text(self.local.kubectl("get", "alp,scp,msvc", "-A", "-o", "yaml"))
            with contextlib.suppress(Exception):  # the receivers' logs and the scale history, in full
                (self.workdir / "webhook.jsonl").write_text("".join(
                    json.dumps({"at": r.at, "answered": r.answered, "body": r.body.decode(errors="replace")}) + "\n"
                    for r in self.hook.requests))
                (self.workdir / "email.jsonl").write_text("".join(
                    json.dumps({"key": m["X-CapLiquify-Key"], "date": m["Date"]}) + "\n" for m in self.smtp.messages))
                (self.workdir / "scale-history.jsonl").write_text("".join(
                    json.dumps([at - self.began, *key, before, after]) + "\n"
                    for at, key, before, after in self.history.changes))
                (self.workdir / "revision-history.jsonl").write_text("".join(
                    json.dumps([at - self.began, *key, before, after]) + "\n"
                    for at, key, before, after in self.history.revision_changes))
                (self.workdir / "episodes.jsonl").write_text("".join(
                    json.dumps([*e.key, e.start, e.end]) + "\n" for e in self.episodes))
            with contextlib.suppress(Exception):  # who asked Railway what, when, and what it changed
                (self.workdir / "railway-requests.jsonl").write_text("".join(
                    json.dumps({**r, "at": round(r["at"] - self.began, 3)}) + "\n" for r in list(self.railway.requests)))
                (self.workdir / "railway-changes.jsonl").write_text("".join(
                    json.dumps([round(at - self.began, 3), service, before, after]) + "\n"
                    for at, service, before, after in list(self.railway.changes)))
            return self.check()
        finally:
            self.teardown()

    # convergence ----------------------------------------------------------------------------------
    def convergence_poll(self) -> None:
        now = time.time() - self.last_fault_end
        try:
            items = json.loads(self.local.kubectl("get", "scp,msvc", "-A", "-o", "json"))["items"]
        except Exception:  # noqa: BLE001 - the next poll
            return
        for item in items:
            meta = item["metadata"]
            key = (meta["namespace"], meta["name"])
            if key not in self.exporter.demand and not (key in self.railway_keys and item["kind"] == "ScalingPolicy"):
                continue
            status = item.get("status", {})
            if item["kind"] == "ScalingPolicy":
                active = any(c["type"] == "ScalingActive" and c["status"] == "True"
                             for c in status.get("conditions", []))
                ok = active and status.get("currentReplicas") == self.history.replicas.get(key)
            else:
                rate = (status.get("metrics") or {}).get("errorRate")
                ok = rate is not None and rate < THRESHOLD
            name = ("scp" if item["kind"] == "ScalingPolicy" else "msvc", *key)
            # Not converged: wrong in two polls running (one poll can fall between a scale and
            # the status write that follows it, and reads the Deployment from a watch).
            if ok:
                self.converged.setdefault(name, max(0.0, now))  # type: ignore[arg-type]
                self.wrong.discard(name)  # type: ignore[arg-type]
            elif name in self.wrong:
                self.converged.pop(name, None)  # type: ignore[arg-type]
            else:
                self.wrong.add(name)  # type: ignore[arg-type]
        sent = [json.loads(r.body) for r in self.hook.delivered("/hook")]
        for key in self.keys:  # every firing's resolution delivered to the webhook (repeats aside)
            mine = [b for b in sent if (b.get("namespace"), b.get("service")) == key]
            fired = {b.get("firedAt") for b in mine if b.get("kind") == "firing"}
            if fired <= {b.get("firedAt") for b in mine if b.get("kind") == "resolved"}:
                self.converged.setdefault(("alp", *key), max(0.0, now))
            else:
                self.converged.pop(("alp", *key), None)

    # invariants ----------------------------------------------------------------------------------
    def identities(self) -> dict[str, str]:
        found = {}
        for index, process in enumerate(self.all_replicas):
            match = re.search(r"leader election as (\S+) on Lease", process.log())
            if match:
                found[match.group(1)] = f"replica {index}"
        return found

    def audit_events(self) -> typing.Iterator[dict]:
        """Every audit event, rotated files included (the API server rotates at 100 MB: the
        hour's run, docs/reliability.md run 14, had two files and the check read the last)."""
        log_path = self.local.audit_log
        for path in sorted(log_path.parent.glob("audit*.log"), key=lambda p: (p == log_path, p.name)):
            with path.open() as lines:
                for line in lines:
                    with contextlib.suppress(json.JSONDecodeError):
                        yield json.loads(line)

    def check_writes(self) -> tuple[list[str], int]:
        holder: str | None = None
        violations, writes = [], 0
        events = []
        for event in self.audit_events():
            if event.get("user", {}).get("username") != operator_module.OPERATOR_USER:
                continue
            if event.get("verb") not in ("create", "update", "patch", "delete"):
                continue
            at = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
            if at < self.audit_from:
                continue
            agent = re.search(r"capliquify-operator \((\S+)\)", event.get("userAgent", ""))
            events.append((at, agent.group(1) if agent else "?", event))
        for at, who, event in sorted(events, key=lambda row: row[0]):
            code = event.get("responseStatus", {}).get("code", 0)
            ref = event.get("objectRef", {})
            if ref.get("resource") == "leases":
                if code < 300:
                    holder = who
                    self.lease_writes.append((at, who))
                continue
            writes += 1
            if who != holder:
                violations.append(f"{datetime.datetime.fromtimestamp(at):%H:%M:%S.%f} {who} wrote "
                                  f"{event['verb']} {event.get('requestURI', '')} ({code}) while {holder} held the Lease")
        return violations, writes

    def blind(self) -> list[tuple[float, float, str]]:
        """Epoch windows in which the operator could not see an error episode begin or go on:
        no replica leading (no successful Lease write within the renew deadline, from the audit
        log), a new leader's start (TAKEOVER_LAG after it took the Lease from another, or after
        it led again once it had stood down: a new term of the same replica), the API server or
        etcd restarting, Prometheus answering nothing (stopped, garbage)."""
        windows = [(a, b, "control plane restarting") for a, b in self.control_plane_down]
        windows += [(a, b, "Prometheus answering nothing") for a, b in self.no_data]
        # Paused or killed, the leader sees nothing from that moment; its Lease runs on (the
        # audit log's renewals below stop only later), until the other replica takes it.
        windows += [(a, b, "the leader paused or killed") for a, b in self.leader_down]
        covered_until, holder = self.began - 60, None
        for at, who in sorted(self.lease_writes):
            if at > covered_until:
                windows.append((covered_until, at, "no leader"))
            if who != holder:
                windows.append((at, at + TAKEOVER_LAG, "a new leader starting"))
                holder = who
            covered_until = max(covered_until, at + RENEW_DEADLINE)
        windows.append((covered_until, float("inf"), "no leader"))
        windows += [(at, at + TAKEOVER_LAG, "a new term of the same replica") for at in self.terms_started()]
        return sorted(windows)

    def terms_started(self) -> list[float]:
        """Every replica's term starts, from their logs (TERM_STARTED)."""
        found: list[float] = []
        for process in self.all_replicas:
            with contextlib.suppress(OSError):
                found += term_starts(process.log())
        return found

    def seen_for(self, episode: Episode, blind: list[tuple[float, float, str]]) -> float:
        """The longest stretch of the episode outside every blind window (seconds)."""
        start, end = self.began + episode.start, self.began + episode.end
        longest, at = 0.0, start
        for a, b, _ in blind:
            if b <= at or a >= end:
                continue
            longest = max(longest, min(a, end) - at)
            at = max(at, b)
            if at >= end:
                break
        return max(longest, end - at)

    def check_notifications(self) -> dict:
        violations: list[str] = []
        deliveries: list[tuple[str, str, str, str, str, float]] = []  # (channel, ns, svc, kind, key, firedAt)
        resends = 0
        seen_keys: set[tuple[str, str]] = set()
        for request in self.hook.delivered("/hook"):
            body = json.loads(request.body)
            fired = datetime.datetime.fromisoformat(body["firedAt"].replace("Z", "+00:00")).timestamp()
            if ("hook", body["key"]) in seen_keys:
                resends += 1
                continue
            seen_keys.add(("hook", body["key"]))
            deliveries.append(("webhook", body["namespace"], body["service"], body["kind"], body["key"], fired))
        for message in self.smtp.messages:
            key = message["X-CapLiquify-Key"]
            text = message.get_payload(decode=True).decode() if not message.is_multipart() else ""
            fields = dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)
            if ("email", key) in seen_keys:
                resends += 1
                continue
            seen_keys.add(("email", key))
            namespace, _, service = fields.get("service", "/").partition("/")
            fired = datetime.datetime.fromisoformat(fields["firing since"].replace("Z", "+00:00")).timestamp()
            deliveries.append(("email", namespace, service, fields.get("kind", ""), key, fired))
        by_episode: dict[tuple[Episode, str, str], list[str]] = {}
        for channel, namespace, service, kind, key, fired in deliveries:
            found = [e for e in self.episodes if e.key == (namespace, service)
                     and self.began + e.start - 2 <= fired <= self.began + e.end + 30]
            if not found:
                violations.append(f"{channel} {kind} for {namespace}/{service} fired at "
                                  f"{fired - self.began:.1f}s: no error episode explains it")
                continue
            by_episode.setdefault((found[0], channel, kind), []).append(key)
        expected = sent = missed = duplicates = blind_episodes = 0
        blind = self.blind()
        # A firing is expected of an episode the operator could see (SEEN_FOR seconds outside
        # every blind window); a resolution of every firing delivered. A blind episode's notices,
        # if any, are counted as sent, never as a fault.
        for episode in self.episodes:
            visible = self.seen_for(episode, blind) >= SEEN_FOR
            blind_episodes += not visible
            for channel in ("webhook", "email"):
                fired = bool(by_episode.get((episode, channel, "firing")))
                for kind in ("firing", "resolved"):
                    keys = by_episode.get((episode, channel, kind), [])
                    sent += len(keys)
                    if not (visible or fired):
                        continue
                    expected += 1
                    if not keys:
                        missed += 1
                        violations.append(f"missed: {channel} {kind} of {episode.key[0]}/{episode.key[1]} "
                                          f"errors {episode.start:.0f}-{episode.end:.0f}s")
                    elif len(keys) > 1:
                        duplicates += len(keys) - 1
                        violations.append(f"duplicate: {channel} {kind} of {episode.key[0]}/{episode.key[1]} "
                                          f"errors {episode.start:.0f}-{episode.end:.0f}s keys {keys}")
        am_missing = 0
        for episode in self.episodes:
            if self.seen_for(episode, blind) < SEEN_FOR:
                continue
            if not any((ns, svc) == episode.key for ns, svc, _ in self.am_seen):
                am_missing += 1
        with contextlib.suppress(OSError):  # for the analysis of a run: what was judged blind, and why
            (self.workdir / "blind.jsonl").write_text("".join(
                json.dumps([a - self.began, None if b == float("inf") else b - self.began, why]) + "\n"
                for a, b, why in blind))
        return {"violations": violations, "expected": expected, "sent": sent, "missed": missed,
                "duplicates": duplicates, "resends": resends, "alertmanager_missing": am_missing,
                "blind_episodes": blind_episodes}

    def check_scaling(self) -> list[str]:
        violations = []
        per_key: dict[tuple[str, str], list[tuple[float, int, int]]] = {}
        for at, key, before, after in self.history.changes:
            per_key.setdefault(key, []).append((at, before, after))
            if not MIN_REPLICAS <= after <= MAX_REPLICAS:
                violations.append(f"{key} scaled to {after} outside [{MIN_REPLICAS}, {MAX_REPLICAS}]")
            if abs(after - before) > STEP:
                violations.append(f"{key} scaled {before} -> {after} at {at - self.began:.1f}s: beyond the step of {STEP}")
            if after < before:  # no data: Prometheus for the Deployments, a 429 storm (or partial answers) for Railway
                blind = [(a, b) for a, b, every in self.storms if every == 1] + [
                    (a, b) for a, b, every, _ in self.partials if every == 1] if key in self.railway_keys else self.no_data
                for start, end in blind:
                    if start + STALE_AFTER + 2 < at <= end:
                        violations.append(f"{key} scaled down {before} -> {after} at {at - self.began:.1f}s with no "
                                          f"data since {start - self.began:.1f}s")
        for key, changes in per_key.items():
            for index, (at, before, after) in enumerate(changes):
                direction = (after > before) - (after < before)
                window = [c for c in changes[:index + 1] if at - c[0] < STEP_PERIOD - 1
                          and ((c[2] > c[1]) - (c[2] < c[1])) == direction]
                if sum(abs(c[2] - c[1]) for c in window) > STEP:
                    violations.append(f"{key} {len(window)} steps the same way within {STEP_PERIOD}s at "
                                      f"{at - self.began:.1f}s: {[(round(c[0] - self.began, 1), c[1], c[2]) for c in window]}")
        return violations

    def check_railway_writes(self) -> list[str]:
        """No double write: a scale whose answer was partial (it may have been executed) is not
        sent again, the same count to the same service, within the step's period (the local
        Railway's request log)."""
        violations = []
        scales = [r for r in list(self.railway.requests) if r["mutation"] and r.get("replicas") is not None
                  and r["answer"] != "429"]
        for index, first in enumerate(scales):
            if first["answer"] not in railway_module.PARTIAL_KINDS:
                continue
            again = [r for r in scales[index + 1:] if r["service"] == first["service"]
                     and r["replicas"] == first["replicas"] and r["at"] - first["at"] < STEP_PERIOD - 1]
            if again:
                violations.append(f"{first['service']} -> {first['replicas']} answered {first['answer']} at "
                                  f"{first['at'] - self.began:.1f}s and sent again at "
                                  f"{[round(r['at'] - self.began, 1) for r in again]}s by {again[0]['agent']}")
        return violations

    def check_rollbacks(self) -> tuple[list[str], int]:
        """Each failing revision rolled back once: its template replaced (by the previous one)
        exactly once, and never put back afterwards (a rollback of a rollback)."""
        violations, rolled_back = [], 0
        for started, key, tag in self.bad_revisions:
            changes = [(at, before, after) for at, k, before, after in self.history.revision_changes
                       if k == key and at >= started - 5]
            away = [at for at, before, after in changes if before == tag]
            back = [at for at, before, after in changes if after == tag and away and at > away[0]]
            rolled_back += bool(away)
            if not away:
                violations.append(f"{key[0]}/{key[1]} revision {tag} (at {started - self.began:.0f}s) never rolled back")
            elif len(away) > 1 or back:
                violations.append(f"{key[0]}/{key[1]} revision {tag} rolled back {len(away)} times"
                                  + (f", made current again at {[round(t - self.began, 1) for t in back]}s" if back else ""))
        return violations, rolled_back

    def all_objects(self) -> list[tuple[str, str, str]]:
        return [(kind, *key) for kind in ("scp", "msvc", "alp") for key in self.keys] + [
            ("scp", *key) for key in self.railway_keys]

    def storm_rates(self) -> list[float]:
        """Requests per second the local Railway received during each 429 storm."""
        return [round(sum(1 for at, _ in self.railway.arrivals if a <= at <= b) / max(1.0, b - a), 2)
                for a, b, _ in self.monotonic_storms]

    def check(self) -> dict:
        writes_violations, writes = self.check_writes()
        notes = self.check_notifications()
        scaling = self.check_scaling() + self.check_railway_writes()
        rollbacks, rolled_back = self.check_rollbacks()
        converged = self.converged
        total = 3 * len(self.keys) + len(self.railway_keys)
        times = sorted(converged.values())
        unconverged = total - len(converged)
        slow = [f"{name} converged {t:.1f}s after the last fault (bound {CONVERGE_BOUND}s)"
                for name, t in converged.items() if t > CONVERGE_BOUND]
        # Flat: each replica's steady level against its end, like with like (resource_growth);
        # reported for the one judged over the longest span.
        growth = {pid: resource_growth(rows) for pid, rows in self.samples.items()}
        longest: tuple[int | None, dict[str, typing.Any]] = max(
            growth.items(), key=lambda item: item[1]["span_s"], default=(None, {}))
        leaks = [f"pid {pid}: {line}" for pid, found in growth.items() for line in found["violations"]]
        sockets_seen = longest[1].get("sockets_leading") or longest[1].get("sockets_standby") or (None, None)
        # CPU per scaling round while leading (cpu_per_round); reported for the replica that led the most rounds.
        cpu = {pid: cpu_per_round(rows) for pid, rows in self.samples.items()}
        most: tuple[int | None, dict[str, typing.Any]] = max(
            cpu.items(), key=lambda item: item[1]["rounds"], default=(None, {}))
        leaks += [f"pid {pid}: {line}" for pid, found in cpu.items() for line in found["violations"]]
        with contextlib.suppress(OSError):  # every sample, for the analysis of a run
            (self.workdir / "resources.jsonl").write_text("".join(
                json.dumps([pid, round(s.at - self.began, 1), round(s.rss_mb, 1), s.sockets, s.leading,
                            None if s.cpu_s is None else round(s.cpu_s, 2), s.scaling_rounds, s.evaluation_rounds]) + "\n"
                for pid, rows in self.samples.items() for s in rows))
        kinds: dict[str, int] = {}
        for _, fault, _ in self.injected:
            kinds[fault.kind] = kinds.get(fault.kind, 0) + 1
        report = {
            "seed": self.seed, "duration_s": round(time.time() - self.began), "objects_per_kind": len(self.keys),
            "namespaces": len(self.namespaces), "break_fence": self.break_fence,
            "faults": kinds, "faults_total": sum(kinds.values()), "fault_errors": self.errors,
            "episodes": len(self.episodes), "notifications_expected": notes["expected"],
            "notifications_sent": notes["sent"], "duplicates": notes["duplicates"], "missed": notes["missed"],
            "resends_same_key": notes["resends"], "alertmanager_missing": notes["alertmanager_missing"],
            "episodes_blind": notes["blind_episodes"],
            "writes": writes, "writes_by_non_leaders": len(writes_violations),
            "scale_changes": len(self.history.changes), "scaling_violations": len(scaling),
            "railway_storms": len(self.storms),
            "railway_scale_changes": sum(1 for _, key, _, _ in self.history.changes if key in self.railway_keys),
            "railway_requests_per_s_in_storms": self.storm_rates(),
            "railway_partial_faults": len(self.partials),
            "railway_partial_answers": sum(1 for r in list(self.railway.requests)
                                           if r["answer"] in railway_module.PARTIAL_KINDS),
            "railway_partial_scales": sum(1 for r in list(self.railway.requests)
                                          if r["mutation"] and r["answer"] in railway_module.PARTIAL_KINDS),
            "failed_revisions": len(self.bad_revisions), "rolled_back": rolled_back, "rollback_violations": len(rollbacks),
            "converged": len(converged), "unconverged": unconverged, "slow_to_converge": len(slow),
            "convergence_p50_s": round(statistics.median(times), 1) if times else None,
            "convergence_p99_s": round(times[min(len(times) - 1, int(len(times) * 0.99))], 1) if times else None,
            "rss_mb_start": longest[1].get("rss_mb", (None, None))[0],
            "rss_mb_end": longest[1].get("rss_mb", (None, None))[1],
            "sockets_start": sockets_seen[0],
            "sockets_end": sockets_seen[1],
            "resources": {"pid": longest[0], **{k: v for k, v in longest[1].items() if k != "violations"}},
            "cpu_ms_per_round_steady": most[1].get("steady", {}).get("ms"),
            "cpu_ms_per_round_end": most[1].get("end", {}).get("ms"),
            "cpu_per_round_judged": most[1].get("judged", False),
            "cpu_per_round": {"pid": most[0], **{k: v for k, v in most[1].items() if k not in ("violations", "steady", "end")},
                              **{name: {**most[1][name], "from": round(most[1][name]["from"] - self.began, 1),
                                        "to": round(most[1][name]["to"] - self.began, 1)}  # s into the run
                                 for name in ("steady", "end") if name in most[1]}},
            "violations": {"writes": writes_violations[:50], "notifications": notes["violations"][:50],
                           "scaling": scaling[:50], "rollbacks": rollbacks[:50], "convergence": slow[:50] + [
                               f"{name} not converged by the end" for name in self.all_objects() if name not in converged],
                           "resources": leaks},
            "workdir": str(self.workdir),
        }
        with contextlib.suppress(OSError):  # every violation, uncut
            (self.workdir / "violations.json").write_text(json.dumps(
                {"writes": writes_violations, "notifications": notes["violations"], "scaling": scaling,
                 "rollbacks": rollbacks}, indent=1))
        report["passed"] = not (writes_violations or notes["violations"] or scaling or rollbacks or unconverged or slow
                                or notes["alertmanager_missing"] or leaks)
        return report

    def teardown(self) -> None:
        self.stop.set()
        for process in self.all_replicas:
            if process.process is not None and process.process.poll() is None:
                with contextlib.suppress(OSError):
                    process.process.send_signal(signal.SIGCONT)
                process.stop()
        for closer in ("hook", "smtp", "alertmanager", "prometheus", "exporter", "toxiproxy", "railway"):
            thing = getattr(self, closer, None)
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.stop()
        if getattr(self, "garbage", None) is not None:
            self.garbage.close()
        for namespace in self.namespaces:
            self.local.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def cpu_cell(report: dict) -> str:
    """CPU ms per scaling round, steady / end; in parentheses when not judged (too few rounds, or
    the windows overlap: cpu_per_round), "-" when no settled leading was sampled."""
    steady, end = report.get("cpu_ms_per_round_steady"), report.get("cpu_ms_per_round_end")
    if steady is None and end is None:
        return "-"
    return f"{steady} / {end}" if report.get("cpu_per_round_judged") else f"({steady} / {end})"


def table(rows: list[dict]) -> str:
    lines = ["| seed | duration s | objects / kind | faults (by kind) | notifications sent / expected | duplicates | "
             "missed | writes by non-leaders / writes | scaling violations | rollbacks / failed revisions | "
             "convergence p50 / p99 s | RSS MB start / end | sockets start / end | CPU/round ms steady / end | passed |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(r["faults"].items()))
        lines.append(f"| {r['seed']} | {r['duration_s']} | {r['objects_per_kind']} | {r['faults_total']}: {kinds} | "
                     f"{r['notifications_sent']} / {r['notifications_expected']} | {r['duplicates']} | {r['missed']} | "
                     f"{r['writes_by_non_leaders']} / {r['writes']} | {r['scaling_violations']} | "
                     f"{r.get('rolled_back', '-')} / {r.get('failed_revisions', '-')} | "
                     f"{r['convergence_p50_s']} / {r['convergence_p99_s']} | {r['rss_mb_start']} / {r['rss_mb_end']} | "
                     f"{r['sockets_start']} / {r['sockets_end']} | {cpu_cell(r)} | {'yes' if r['passed'] else 'NO'} |")
    return "\n".join(lines)


def run(duration: float, seed: int, namespaces: int, per_namespace: int, break_fence: bool = False,
        local: cluster_module.LocalCluster | None = None, workdir: pathlib.Path | None = None,
        mean_gap: float = 8.0) -> dict:
    workdir = workdir or pathlib.Path(tempfile.mkdtemp(prefix="capliquify-soak-"))
    own = local is None
    if local is None:
        local = cluster_module.LocalCluster(workdir / "cluster").start()
        operator_module.install(local)
    try:
        soak = Soak(local, workdir, seed, duration, namespaces, per_namespace, break_fence, mean_gap)
        return soak.run()
    finally:
        if own:
            local.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=300, help="seconds, settle included")
    parser.add_argument("--seed", type=int, default=None, help="replays a run exactly (printed at the start)")
    parser.add_argument("--namespaces", type=int, default=3)
    parser.add_argument("--per-namespace", type=int, default=2, help="objects of each kind per namespace")
    parser.add_argument("--mean-gap", type=float, default=8.0, help="mean seconds between fault starts")
    parser.add_argument("--break-fence", action="store_true", help="the harness's own check: must fail")
    parser.add_argument("--out", default=".bench/soak.json")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 10**6)
    report = run(args.duration, seed, args.namespaces, args.per_namespace, args.break_fence, mean_gap=args.mean_gap)
    out = pathlib.Path(args.out)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(json.dumps({k: v for k, v in report.items() if k != "violations"}, indent=1))
    for name, found in report["violations"].items():
        for line in found:
            print(f"VIOLATION {name}: {line}")
    print("\n" + table([report]))
    print(f"\nseed {seed}: {'PASSED' if report['passed'] else 'FAILED'} (replay: python -m bench.soak "
          f"--seed {seed} --duration {args.duration:.0f} --namespaces {args.namespaces} "
          f"--per-namespace {args.per_namespace} --mean-gap {args.mean_gap}{' --break-fence' if args.break_fence else ''})")
    return 0 if report["passed"] != args.break_fence else 1


if __name__ == "__main__":
    sys.exit(main())
