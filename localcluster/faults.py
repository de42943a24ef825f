"""Faults for the soak (bench/soak.py): a seeded random schedule of overlapping faults, printed
so that a run can be replayed exactly, and the means of injecting each one into the local
control plane, the operator's replicas, Prometheus and the receivers.

A schedule is a list of `Fault(at, kind, seconds, params)`; the same seed, duration and settle
give the same list. Which process "leader" or "standby" names is decided when the fault starts
(it is whoever holds the Lease then)."""

from __future__ import annotations

import dataclasses
import random
import signal
import subprocess
import time

from localcluster import cluster as cluster_module
from localcluster import railway

# kind -> (weight, target class, seconds range). One fault per target class at a time; faults of
# different classes overlap freely. Replica faults never overlap each other (one replica is
# always left to lead: a run where both are down for a whole alert episode could not tell a
# missed notification from a correct silence).
KINDS: dict[str, tuple[int, str, tuple[float, float]]] = {
    "kill-leader": (3, "replica", (3, 15)),       # kill -9, a new replica started after `seconds`
    "kill-standby": (2, "replica", (3, 15)),
    "stop-leader": (3, "replica", (2, 20)),       # SIGSTOP for `seconds`, then SIGCONT
    "stop-standby": (2, "replica", (2, 20)),
    # SIGSTOP past the lease, then a wake onto a slow network: its API answers (the Lease read
    # that would make it stand down) 2.5 s late (its wait gives up at 2 s) while its loops fire
    # at once. Only the fence stops their writes: the soak's own check (--break-fence) runs it alone.
    "stop-leader-slow-wake": (2, "replica", (8, 16)),
    "apiserver-restart": (2, "control-plane", (0, 4)),  # down for `seconds`, then started again
    "etcd-restart": (1, "control-plane", (0, 3)),
    "prometheus-stop": (2, "prometheus", (4, 20)),
    "prometheus-slow": (2, "prometheus", (5, 25)),      # 1.5-4 s of latency on every answer
    "prometheus-garbage": (2, "prometheus", (4, 20)),   # 200 OK with bytes that are not JSON
    "receiver-5xx": (3, "receivers", (5, 25)),
    "receiver-timeout": (2, "receivers", (5, 20)),      # accepts, never answers
    "receiver-reset": (2, "receivers", (5, 20)),        # receives, then resets the connection
    "api-latency": (2, "api-a", (5, 25)),               # toxics on one replica's API connection
    "api-bandwidth": (1, "api-b", (5, 25)),
    "api-reset": (1, "api-a", (2, 8)),
    # A failing revision of one workload (its p95 latency over the analysis limit while it runs):
    # the rollout guard must roll it back once. `seconds`: how long before the next may start.
    "bad-revision": (2, "revision", (40, 60)),
    # The local Railway answers 429 (Retry-After 2 s) to every request, or every second one.
    "railway-429": (2, "railway", (10, 30)),
    # The local Railway answers every n-th request partially (`kind`, localcluster/railway.py
    # PARTIAL_KINDS): cut off mid-body or reset after the headers (executed), JSON cut short,
    # `errors` alone, or `data` with its last field null.
    "railway-partial": (2, "railway", (10, 30)),
}
RAILWAY_PARTIAL_KINDS = railway.PARTIAL_KINDS
NO_DATA = ("prometheus-stop", "prometheus-garbage")


@dataclasses.dataclass(frozen=True)
class Fault:
    at: float
    kind: str
    seconds: float
    params: tuple[tuple[str, object], ...] = ()

    @property
    def end(self) -> float:
        return self.at + self.seconds

    def param(self, name: str, default: object = None) -> object:
        return dict(self.params).get(name, default)

    def __str__(self) -> str:
        extra = " ".join(f"{k}={v}" for k, v in self.params)
        return f"t={self.at:7.1f}s {self.kind:<18} {self.seconds:5.1f}s {extra}".rstrip()


def schedule(seed: int, start: float, end: float, mean_gap: float,
             only: tuple[str, ...] = ()) -> list[Fault]:
    """Faults starting in [start, end) and ending by `end`, about one every `mean_gap` seconds
    (of the kinds `only` when given)."""
    rng = random.Random(seed)
    kinds = sorted(only or KINDS)
    weights = [KINDS[k][0] for k in kinds]
    busy: dict[str, float] = {}  # target class -> when its current fault ends
    faults: list[Fault] = []
    at = start
    for _ in range(100_000):  # bounded: the schedule ends at `end`
        at += rng.expovariate(1 / mean_gap)
        if at >= end:
            break
        kind = rng.choices(kinds, weights)[0]
        _, target, (low, high) = KINDS[kind]
        seconds = round(min(rng.uniform(low, high), end - at), 1)
        if target == "api-a" or target == "api-b":
            target = rng.choice(["api-a", "api-b"])
        # Restarts and a killed replica's start take a few seconds: leave a gap after them.
        if busy.get(target, -1.0) > at or seconds < 0:
            continue
        params: list[tuple[str, object]] = []
        if kind.startswith("api-"):
            params.append(("replica", target[-1]))
        if kind == "prometheus-slow":
            params.append(("latency_ms", rng.randint(1500, 4000)))
        if kind == "api-latency":
            params.append(("latency_ms", rng.randint(200, 1500)))
        if kind == "api-bandwidth":
            params.append(("kb_per_s", rng.randint(8, 64)))
        if kind.startswith("receiver-"):
            params.append(("receiver", rng.choice(["hook", "smtp", "alertmanager"])))
        if kind == "railway-429":
            params.append(("every", rng.choice([1, 2])))
        if kind == "railway-partial":
            params += [("kind", rng.choice(RAILWAY_PARTIAL_KINDS)), ("every", rng.choice([1, 2, 3]))]
        if kind == "bad-revision":
            params.append(("pick", round(rng.random(), 4)))  # which workload: a share of the run's list
        faults.append(Fault(round(at, 1), kind, seconds, tuple(params)))
        # A gap after each: a restart or a new replica takes seconds; Prometheus gets 30 s of
        # answers between two faults, so an alert has data to resolve on between two episodes.
        busy[target] = at + seconds + {"replica": 12, "control-plane": 12, "prometheus": 30}.get(target, 1)
    return faults


def restart_component(local: cluster_module.LocalCluster, name: str, down_seconds: float) -> float:
    """Stops a control-plane process (SIGTERM, SIGKILL after 5 s: the API server otherwise waits
    up to a minute for its watches), waits `down_seconds` and starts it again with the same command line; returns when the API server is ready
    again (seconds it took from the stop)."""
    began = time.monotonic()
    process = local.processes[name]
    argv = [str(arg) for arg in process.args]  # type: ignore[union-attr]
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    time.sleep(down_seconds)
    local._spawn(name, argv)  # noqa: SLF001 - the same command line, the same log file
    local._wait_ready(120)  # noqa: SLF001
    return time.monotonic() - began
