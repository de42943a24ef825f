"""The plant: a service whose pods each serve `capacity` requests/s at 100 % CPU.

Per simulated second, load (requests/s) is spread evenly over the *ready* pods:

- utilisation u = min(1, (load + backlog) / ready capacity); CPU is u × 100 % of request
  and saturates at 100 % (what a CPU-limited pod shows);
- what capacity cannot serve waits in a backlog; a request that would wait longer than
  `queue_timeout_seconds` is rejected (HTTP 503): the error rate;
- p95 latency is an M/M/1 queue's, 3 × service time / (1 − ρ) with ρ capped at 0.99,
  plus the backlog's wait;
- memory does not follow load here: a constant `memory_percent` of request;
- a new pod is ready `startup_seconds` after it is created and serves nothing before;
  a scale-down removes pods not yet ready first, then the newest (as a ReplicaSet does).

A controller reads metrics averaged over the last `metric_window_seconds`, `metric_lag_seconds`
old: each ready pod's CPU over the part of that window it was ready (cAdvisor's rate), averaged
over pods; request and error rates as totals over the window; p95 as the window's mean; the
queue as the gauge at the end of the window.

The SLO is violated in every second where load exceeds `slo_utilisation` of ready capacity.
"""

from __future__ import annotations

import dataclasses
import math


@dataclasses.dataclass(frozen=True)
class Model:
    capacity: float = 50.0  # requests/s one pod serves at 100 % CPU
    startup_seconds: int = 30
    metric_window_seconds: int = 15
    metric_lag_seconds: int = 0
    slo_utilisation: float = 0.9
    service_ms: float = 50.0
    memory_percent: float = 40.0
    queue_timeout_seconds: float = 10.0

    def describe(self) -> str:
        return (f"{self.capacity:g} req/s per replica at 100 % CPU, ready {self.startup_seconds} s after the scale, "
                f"metrics over {self.metric_window_seconds} s (lag {self.metric_lag_seconds} s), "
                f"SLO violated above {self.slo_utilisation:.0%} of ready capacity")


@dataclasses.dataclass(frozen=True)
class Pod:
    created: int
    ready_at: int


@dataclasses.dataclass(frozen=True)
class Observation:
    """What a controller sees at a decision time."""

    at: int
    replicas: int  # the workload's spec.replicas
    ready: int
    pods: tuple[Pod, ...]
    values: dict[str, float | None]  # cpu, memory, latencyP95, errorRate, requestRate, requestQueue
    pod_cpu: tuple[float | None, ...]  # per pod, in the order of `pods`; None before it is ready


class Plant:
    def __init__(self, model: Model, replicas: int, start: int = 0) -> None:
        self.model = model
        self.pods: list[Pod] = [Pod(start - 10 * model.startup_seconds - 600, start - 600) for _ in range(replicas)]
        self.backlog = 0.0
        # Per-second records, indexed by second since `start`.
        self.start = start
        self.utilisation: list[float] = []
        self.served_load: list[float] = []
        self.errors: list[float] = []
        self.latency: list[float] = []
        self.ready_counts: list[int] = []
        self.pod_counts: list[int] = []
        self.violated: list[bool] = []

    @property
    def replicas(self) -> int:
        return len(self.pods)

    def ready_at(self, at: int) -> int:
        return sum(1 for p in self.pods if p.ready_at <= at)

    def scale(self, at: int, replicas: int) -> None:
        if replicas > len(self.pods):
            self.pods += [Pod(at, at + self.model.startup_seconds) for _ in range(replicas - len(self.pods))]
        elif replicas < len(self.pods):
            # Not-ready pods go first, then the newest: ReplicaSet's deletion order.
            order = sorted(self.pods, key=lambda p: (p.ready_at <= at, -p.created))
            doomed = order[: len(self.pods) - replicas]
            for pod in doomed:
                self.pods.remove(pod)

    def advance(self, at: int, load: float) -> None:
        """One second of traffic at `load` requests/s."""
        model = self.model
        ready = self.ready_at(at)
        capacity = ready * model.capacity
        demand = load + self.backlog
        served = min(demand, capacity)
        backlog = demand - served
        limit = capacity * model.queue_timeout_seconds
        rejected = max(0.0, backlog - limit) if capacity > 0 else backlog
        self.backlog = backlog - rejected
        u = 1.0 if capacity <= 0 else min(1.0, demand / capacity)
        rho = min(u, 0.99)
        wait_ms = 1000 * self.backlog / capacity if capacity > 0 else 1000 * model.queue_timeout_seconds
        self.utilisation.append(u)
        self.served_load.append(load)
        self.errors.append(rejected)
        self.latency.append(3 * model.service_ms / (1 - rho) + wait_ms)
        self.ready_counts.append(ready)
        self.pod_counts.append(len(self.pods))
        self.violated.append(load > model.slo_utilisation * capacity)

    def observe(self, at: int) -> Observation:
        """Metrics as a controller reads them at `at` (after second at-1 was simulated)."""
        model = self.model
        end = at - self.start - model.metric_lag_seconds
        begin = max(0, end - model.metric_window_seconds)
        pod_cpu: list[float | None] = []
        for pod in self.pods:
            since = max(begin, pod.ready_at - self.start)
            if pod.ready_at > at or since >= end:
                pod_cpu.append(None)
                continue
            window = self.utilisation[since:end]
            pod_cpu.append(100 * sum(window) / len(window) if window else None)
        measured = [v for v in pod_cpu if v is not None]
        span = range(begin, end)
        values: dict[str, float | None] = {"memory": model.memory_percent if measured else None}
        values["cpu"] = sum(measured) / len(measured) if measured else None
        if span:
            arrivals = sum(self.served_load[i] for i in span)
            values["requestRate"] = arrivals / len(span)
            values["errorRate"] = 100 * sum(self.errors[i] for i in span) / arrivals if arrivals > 0 else 0.0
            values["latencyP95"] = sum(self.latency[i] for i in span) / len(span)
            values["requestQueue"] = self.backlog  # a gauge: its current value
        else:
            values.update(requestRate=None, errorRate=None, latencyP95=None, requestQueue=None)
        return Observation(at, len(self.pods), self.ready_at(at), tuple(self.pods), values, tuple(pod_cpu))


def oracle_replicas(load: float, model: Model, minimum: int) -> int:
    """The least replicas meeting the SLO at this load, knowing it: a lower bound."""
    return max(minimum, math.ceil(load / (model.slo_utilisation * model.capacity) - 1e-9))
