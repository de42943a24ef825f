"""A port of the Kubernetes HPA v2 algorithm (pkg/controller/podautoscaler), CPU utilisation only.

Each rule is a function named after its upstream counterpart and tested by name in
tests/unit/test_hpa_port.py:

- `group_pods` (replica_calculator.go groupPods): a pod not yet ready, or ready for less than
  one metric window while inside the CPU initialisation period (300 s), is *unready*; its
  sample is dropped;
- `resource_replicas` (GetResourceReplicas): usage ratio over ready pods; within the tolerance
  (0.1) nothing changes; on a scale-up with unready pods those count as 0 % usage, and when
  that flips the direction the count is kept; otherwise ceil(ratio × pods counted);
- `stabilize` (stabilizeRecommendationWithBehaviors): between the minimum of the up window
  (default 0 s) and the maximum of the down window (default 300 s); the first reconcile
  seeds the down window with the current count (maybeInitScaleDownStabilizationWindow);
- `scale_up_limit` / `scale_down_limit` (calculateScaleUpLimitWithScalingRules,
  calculateScaleDownLimitWithBehaviors): from the replicas at the period's start, every
  change within the period counted; defaults max(4 pods, 100 %) per 15 s up, 100 % per 15 s
  down; `convert_with_rate` (convertDesiredReplicasWithBehaviorRate) applies them and min/max.
"""

from __future__ import annotations

import dataclasses
import math
import typing

from controller.sim import plant as plant_module

Policy = tuple[str, int, int]  # (Pods | Percent, value, periodSeconds)


@dataclasses.dataclass(frozen=True)
class Rules:
    stabilization_seconds: int
    policies: tuple[Policy, ...]
    select: str = "Max"  # Max | Min | Disabled


DEFAULT_UP = Rules(0, (("Pods", 4, 15), ("Percent", 100, 15)))
DEFAULT_DOWN = Rules(300, (("Percent", 100, 15),))


@dataclasses.dataclass
class Hpa:
    min_replicas: int
    max_replicas: int
    target_utilisation: float = 70.0
    tolerance: float = 0.1
    up: Rules = DEFAULT_UP
    down: Rules = DEFAULT_DOWN
    cpu_initialization_period: int = 300
    sync_period: int = 15
    recommendations: list[tuple[int, int]] = dataclasses.field(default_factory=list)
    up_events: list[tuple[int, int]] = dataclasses.field(default_factory=list)  # (time, change)
    down_events: list[tuple[int, int]] = dataclasses.field(default_factory=list)

    def reconcile(self, observation: plant_module.Observation, window: int) -> int:
        """reconcileAutoscaler: the replica count to set."""
        now, current = observation.at, observation.replicas
        if current == 0 and self.min_replicas != 0:
            return current  # scaling is disabled
        if current > self.max_replicas:
            desired = self.max_replicas
        elif current < self.min_replicas:
            desired = self.min_replicas
        else:
            proposed = resource_replicas(observation, window, self.target_utilisation, self.tolerance,
                                         self.cpu_initialization_period)
            desired = self.normalize(now, current, proposed)
        if desired != current:
            (self.up_events if desired > current else self.down_events).append((now, desired - current))
        return desired

    def normalize(self, now: int, current: int, proposed: int) -> int:
        """normalizeDesiredReplicasWithBehaviors."""
        if not self.recommendations:  # maybeInitScaleDownStabilizationWindow
            self.recommendations.append((now, current))
        stabilized = stabilize(self.recommendations, now, current, proposed, self.up, self.down)
        return convert_with_rate(now, current, stabilized, self.min_replicas, self.max_replicas,
                                 self.up_events, self.down_events, self.up, self.down)


def group_pods(observation: plant_module.Observation, window: int, cpu_initialization_period: int
               ) -> tuple[list[float], int]:
    """(samples of ready pods, number of unready pods)."""
    ready, unready = [], 0
    for pod, cpu in zip(observation.pods, observation.pod_cpu, strict=True):
        if pod.ready_at > observation.at or cpu is None:
            unready += 1  # not Ready (Running, readiness not yet passed): no usable sample
            continue
        in_init = pod.created + cpu_initialization_period > observation.at
        if in_init and observation.at < pod.ready_at + window:
            unready += 1  # the sample's window began before the pod was ready
            continue
        ready.append(cpu)
    return ready, unready


def resource_replicas(observation: plant_module.Observation, window: int, target: float, tolerance: float,
                      cpu_initialization_period: int) -> int:
    """GetResourceReplicas for a CPU utilisation target."""
    current = observation.replicas
    samples, unready = group_pods(observation, window, cpu_initialization_period)
    if not samples:
        return current  # "did not receive metrics for targeted pods": the HPA keeps the count
    usage_ratio = (sum(samples) / len(samples)) / target
    scale_up_with_unready = unready > 0 and usage_ratio > 1.0
    if not scale_up_with_unready:
        if abs(1.0 - usage_ratio) <= tolerance:
            return current
        return math.ceil(usage_ratio * len(samples))
    counted = samples + [0.0] * unready  # unready pods at 0 % on the way up
    new_ratio = (sum(counted) / len(counted)) / target
    if abs(1.0 - new_ratio) <= tolerance or (usage_ratio > 1.0 and new_ratio < 1.0):
        return current
    new_replicas = math.ceil(new_ratio * len(counted))
    if new_ratio > 1.0 and new_replicas < current:
        return current
    return new_replicas


def stabilize(recommendations: list[tuple[int, int]], now: int, current: int, proposed: int, up: Rules,
              down: Rules) -> int:
    """stabilizeRecommendationWithBehaviors; records the proposal (reusing an expired slot)."""
    up_cutoff, down_cutoff = now - up.stabilization_seconds, now - down.stabilization_seconds
    up_recommendation = down_recommendation = proposed
    old = None
    for index, (at, replicas) in enumerate(recommendations):
        if at > up_cutoff:
            up_recommendation = min(up_recommendation, replicas)
        if at > down_cutoff:
            down_recommendation = max(down_recommendation, replicas)
        if at < up_cutoff and at < down_cutoff:
            old = index
    recommendation = max(current, up_recommendation)
    recommendation = min(recommendation, down_recommendation)
    if old is not None:
        recommendations[old] = (now, proposed)
    else:
        recommendations.append((now, proposed))
    return recommendation


def _changed_within(events: typing.Sequence[tuple[int, int]], now: int, period: int) -> int:
    """getReplicasChangePerPeriod."""
    return sum(change for at, change in events if at > now - period)


def _period_starts(now: int, current: int, up_events: typing.Sequence[tuple[int, int]],
                   down_events: typing.Sequence[tuple[int, int]], rules: Rules) -> list[tuple[int, str, int]]:
    """(replicas at the period's start, policy type, value) per policy:
    periodStartReplicas = currentReplicas - replicasAdded + replicasDeleted within the period."""
    return [(current - _changed_within(up_events, now, period) - _changed_within(down_events, now, period), kind, value)
            for kind, value, period in rules.policies]


def scale_up_limit(now: int, current: int, up_events: typing.Sequence[tuple[int, int]],
                   down_events: typing.Sequence[tuple[int, int]], rules: Rules) -> int:
    """calculateScaleUpLimitWithScalingRules."""
    if rules.select == "Disabled":
        return current
    starts = _period_starts(now, current, up_events, down_events, rules)
    results = [start + value if kind == "Pods" else math.ceil(start * (1 + value / 100)) for start, kind, value in starts]
    return (min if rules.select == "Min" else max)(results)


def scale_down_limit(now: int, current: int, up_events: typing.Sequence[tuple[int, int]],
                     down_events: typing.Sequence[tuple[int, int]], rules: Rules) -> int:
    """calculateScaleDownLimitWithBehaviors (down events carry negative changes here)."""
    if rules.select == "Disabled":
        return current
    starts = _period_starts(now, current, up_events, down_events, rules)
    results = [start - value if kind == "Pods" else int(start * (1 - value / 100)) for start, kind, value in starts]
    return (max if rules.select == "Min" else min)(results)


def convert_with_rate(now: int, current: int, desired: int, minimum: int, maximum: int,
                      up_events: typing.Sequence[tuple[int, int]], down_events: typing.Sequence[tuple[int, int]],
                      up: Rules, down: Rules) -> int:
    """convertDesiredReplicasWithBehaviorRate: the rate limits and min/max."""
    if desired > current:
        limit = max(scale_up_limit(now, current, up_events, down_events, up), current)
        return min(desired, maximum, limit)
    if desired < current:
        limit = min(scale_down_limit(now, current, up_events, down_events, down), current)
        return max(desired, minimum, limit)
    return desired
