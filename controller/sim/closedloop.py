"""Run a controller against the plant over a trace, second by second, and score it.

Both controllers start from the same count (what a 70 % target gives at the trace's first
load, within the policy's bounds), with all pods ready, and decide on the same grid as
their own intervals say (HPA: every 15 s; a ScalingPolicy: evaluationIntervalSeconds).
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import typing

from controller.api import scalingpolicy
from controller.core import scaling
from controller.core import scaling_status
from controller.sim import hpa as hpa_module
from controller.sim import plant as plant_module
from controller.sim import traces as traces_module

EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
FLAP_SECONDS = 300  # a reversal of direction within this long counts as a flap


class Controller(typing.Protocol):
    name: str
    interval: int

    def decide(self, observation: plant_module.Observation) -> int:
        """The replica count to set now."""


class PolicyController:
    """A ScalingPolicy decided by the operator's own core, with its state carried the way the
    operator carries it (events and scale times as status keeps them; windows in memory)."""

    def __init__(self, spec: scalingpolicy.ScalingPolicySpec, name: str = "policy") -> None:
        self.spec, self.name = spec, name
        self.interval = spec.evaluationIntervalSeconds
        self.state = scaling.State(observing_since=EPOCH)
        self.reasons: list[tuple[int, str]] = []
        self.forecasts: dict[str, int] = {}  # evaluations per seasonal forecast reason (Trusted, Missed, ...)

    def decide(self, observation: plant_module.Observation) -> int:
        now = EPOCH + datetime.timedelta(seconds=observation.at)
        samples = {}
        for key in scaling.read_keys(self.spec):  # the policy's metrics and its activation metric
            value = observation.values.get(scaling.metric_label(key)) if key[0] != "custom" else None
            samples[key] = scaling.Sample(value, now if value is not None else None)
        outcome = scaling.decide(self.spec, observation.replicas, samples, self.state, now, ready=observation.ready)
        # The seasonal history is the simulated demand each evaluation recorded (as the operator
        # records its own between range queries): the same core function forecasts from it.
        state = dataclasses.replace(self.state, recommendations=outcome.recommendations, history=outcome.history,
                                    seasonal=outcome.seasonal, forecast=outcome.forecast, idle_since=outcome.idle_since)
        if outcome.forecast is not None:
            self.forecasts[outcome.forecast.reason] = self.forecasts.get(outcome.forecast.reason, 0) + 1
        if outcome.desired != observation.replicas:
            self.reasons.append((observation.at, f"{outcome.current}->{outcome.desired} {outcome.reason}"))
            event = scaling.ScaleEvent(now, observation.replicas, outcome.desired)
            up = outcome.desired > observation.replicas
            state = dataclasses.replace(state, events=scaling_status.kept_events((event, *state.events), now),
                                        last_scale_up=now if up else state.last_scale_up,
                                        last_scale_down=state.last_scale_down if up else now)
        self.state = state
        return outcome.desired


class HpaController:
    def __init__(self, minimum: int, maximum: int, target: float = 70.0, name: str = "hpa", window: int = 15) -> None:
        self.hpa = hpa_module.Hpa(minimum, maximum, target)
        self.name, self.interval = name, self.hpa.sync_period
        self.window = window  # the metric window: a pod ready for less is unready to HPA

    def decide(self, observation: plant_module.Observation) -> int:
        return self.hpa.reconcile(observation, self.window)


@dataclasses.dataclass
class Run:
    name: str
    load: list[float]
    replicas: list[int]  # pods in existence each second (what is paid for)
    ready: list[int]
    utilisation: list[float]
    violated: list[bool]
    events: list[tuple[int, int, int]]  # (second, from, to)


@dataclasses.dataclass(frozen=True)
class Score:
    name: str
    slo_violation_seconds: int
    replica_hours: float
    oracle_ratio: float
    scale_events: int
    flaps: int


def initial_replicas(trace: traces_module.Trace, model: plant_module.Model, minimum: int, maximum: int) -> int:
    return min(maximum, max(minimum, math.ceil(trace.load(0) / (0.7 * model.capacity))))


def run(controller: Controller, trace: traces_module.Trace, model: plant_module.Model, replicas: int) -> Run:
    plant = plant_module.Plant(model, replicas)
    loads: list[float] = []
    events: list[tuple[int, int, int]] = []
    for at in range(trace.duration):
        if at % controller.interval == 0 and at > 0:
            observation = plant.observe(at)
            desired = controller.decide(observation)
            if desired != plant.replicas:
                events.append((at, plant.replicas, desired))
                plant.scale(at, desired)
        load = trace.load(at)
        loads.append(load)
        plant.advance(at, load)
    return Run(controller.name, loads, plant.pod_counts, plant.ready_counts, plant.utilisation, plant.violated, events)


def oracle(trace: traces_module.Trace, model: plant_module.Model, minimum: int) -> list[int]:
    return [plant_module.oracle_replicas(trace.load(at), model, minimum) for at in range(trace.duration)]


def flaps(events: typing.Sequence[tuple[int, int, int]]) -> int:
    count = 0
    for previous, event in zip(events, events[1:], strict=False):
        reversed_ = (event[2] > event[1]) != (previous[2] > previous[1])
        if reversed_ and event[0] - previous[0] < FLAP_SECONDS:
            count += 1
    return count


def score(result: Run, oracle_replicas: typing.Sequence[int]) -> Score:
    replica_hours = sum(result.replicas) / 3600
    oracle_hours = sum(oracle_replicas) / 3600
    return Score(result.name, sum(result.violated), round(replica_hours, 2),
                 round(replica_hours / oracle_hours, 3) if oracle_hours else 0.0, len(result.events),
                 flaps(result.events))


@dataclasses.dataclass(frozen=True)
class Comparison:
    trace: traces_module.Trace
    model: plant_module.Model
    runs: tuple[Run, ...]
    oracle: tuple[int, ...]
    scores: tuple[Score, ...]


def compare(controllers: typing.Sequence[Controller], trace: traces_module.Trace, model: plant_module.Model,
            minimum: int, maximum: int) -> Comparison:
    start = initial_replicas(trace, model, minimum, maximum)
    best = oracle(trace, model, minimum)
    runs = tuple(run(c, trace, model, start) for c in controllers)
    return Comparison(trace, model, runs, tuple(best), tuple(score(r, best) for r in runs))


def scorecard(comparison: Comparison) -> str:
    lines = [f"trace {comparison.trace.name}: {comparison.trace.description}",
             f"plant: {comparison.model.describe()}",
             f"{'controller':<12} {'SLO-violation s':>16} {'replica-hours':>14} {'÷ oracle':>9} {'scale events':>13} {'flaps':>6}"]
    oracle_hours = sum(comparison.oracle) / 3600
    for s in comparison.scores:
        lines.append(f"{s.name:<12} {s.slo_violation_seconds:>16} {s.replica_hours:>14.2f} {s.oracle_ratio:>9.3f} "
                     f"{s.scale_events:>13} {s.flaps:>6}")
    lines.append(f"{'oracle':<12} {0:>16} {oracle_hours:>14.2f} {1:>9.3f} {'-':>13} {'-':>6}")
    return "\n".join(lines)
