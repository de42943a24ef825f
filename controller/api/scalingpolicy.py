"""ScalingPolicy: replica bounds and per-metric hysteresis thresholds for one workload."""

from __future__ import annotations

import datetime
import enum
import typing

import pydantic

from controller.api import common

SECONDS_PER_DAY = 86400
PERIOD_MAX_SECONDS = 1800  # the longest step-limit period
INTERVAL_MIN_SECONDS = 5  # the shortest evaluation interval
# Scale events the step limit may need: every one within the longest period, at most one per round.
SCALE_EVENTS_KEPT = PERIOD_MAX_SECONDS // INTERVAL_MIN_SECONDS


class MetricType(str, enum.Enum):
    """Metrics a policy can scale on; names match MonitoredService.spec.metrics.queries."""

    CPU = "cpu"
    MEMORY = "memory"
    LATENCY_P95 = "latencyP95"
    ERROR_RATE = "errorRate"
    REQUEST_RATE = "requestRate"
    REQUEST_QUEUE = "requestQueue"
    CUSTOM = "custom"


class KubernetesWorkloadRef(common.ApiModel):
    kind: typing.Literal["Deployment", "StatefulSet"] = common.field(
        "Kind of the workload.", default="Deployment"
    )
    name: str = common.field("Name of the workload in the policy's namespace.", min_length=1, max_length=253,
                             pattern=common.OBJECT_NAME)


class ScaleTargetRef(common.ApiModel):
    """Any object with a `scale` subresource (what a HorizontalPodAutoscaler can scale)."""

    apiGroup: str = common.field("API group of the resource, e.g. argoproj.io; its preferred version is used.",
                                 min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
    resource: str = common.field("Plural resource name, e.g. rollouts; it must serve a scale subresource.",
                                 min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    name: str = common.field("Name of the object in the policy's namespace.", min_length=1, max_length=253,
                             pattern=common.OBJECT_NAME)


class TargetRef(common.ApiModel):
    """Exactly one of monitoredService / kubernetes / scale."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel(
                    "[has(self.monitoredService), has(self.kubernetes), has(self.scale)].filter(x, x).size() == 1",
                    "targetRef needs exactly one of monitoredService, kubernetes or scale",
                )
            ]
        }
    )

    monitoredService: str | None = common.field(
        "Name of a MonitoredService in the same namespace; its target is scaled and its metric queries are used.",
        default=None,
        min_length=1,
        max_length=253,
        pattern=common.OBJECT_NAME,
    )
    kubernetes: KubernetesWorkloadRef | None = common.field(
        "A Deployment or StatefulSet scaled directly; metrics then come from default queries.", default=None
    )
    scale: ScaleTargetRef | None = common.field(
        "Any object with a scale subresource (Argo Rollouts, KServe, a custom resource), scaled through it; its "
        "pods are the scale's selector. The operator needs RBAC for it (docs/platforms.md).", default=None
    )

    @pydantic.model_validator(mode="after")
    def _one_target(self) -> "TargetRef":
        common.require_exactly_one(self, "monitoredService", "kubernetes", "scale")
        return self


class MetricThreshold(common.ApiModel):
    """Scale up when the value is above scaleUp; scale down only when below scaleDown."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel(
                    "self.scaleDown < self.scaleUp",
                    "scaleDown must be lower than scaleUp (the gap between them is the hold band)",
                    ".scaleDown",
                ),
                common.cel(
                    "!has(self.target) || (self.scaleDown <= self.target && self.target <= self.scaleUp)",
                    "target must lie within scaleDown..scaleUp",
                    ".target",
                ),
                common.cel(
                    "(self.type == 'custom') == has(self.name)",
                    "name is required for type custom and not allowed for other types",
                    ".name",
                ),
            ]
        }
    )

    type: MetricType = common.field(
        "cpu and memory in percent of request, latencyP95 in ms, errorRate in percent of requests, "
        "requestRate in requests/s, requestQueue in requests, custom as the named MonitoredService query."
    )
    name: str | None = common.field(
        "For type custom: the name of a custom query of the MonitoredService.",
        default=None,
        min_length=1,
        max_length=63,
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
    )
    scaleUp: float = common.field("Scale up when the metric is above this value.", ge=0)
    scaleDown: float = common.field("Scale down only when every metric is below its scaleDown.", ge=0)
    target: float | None = common.field(
        "Where a scale lands: replicas are sized so that the metric would read this value (like an HPA "
        "target). Unset: a scale-up sizes for scaleUp, a scale-down for 70 % of the way up the hold band (70/30: 58).",
        default=None, ge=0,
    )

    @pydantic.model_validator(mode="after")
    def _hold_band(self) -> "MetricThreshold":
        if self.scaleDown >= self.scaleUp:
            raise ValueError("scaleDown must be lower than scaleUp")
        if self.target is not None and not self.scaleDown <= self.target <= self.scaleUp:
            raise ValueError("target must lie within scaleDown..scaleUp")
        if (self.type == MetricType.CUSTOM) != (self.name is not None):
            raise ValueError("name is required for type custom and not allowed for other types")
        return self


def _seed_metrics() -> list[MetricThreshold]:
    return [
        MetricThreshold(type=MetricType.CPU, scaleUp=70, scaleDown=30),
        MetricThreshold(type=MetricType.MEMORY, scaleUp=80, scaleDown=50),
        MetricThreshold(type=MetricType.LATENCY_P95, scaleUp=2000, scaleDown=500),
        MetricThreshold(type=MetricType.REQUEST_QUEUE, scaleUp=100, scaleDown=10),
        MetricThreshold(type=MetricType.ERROR_RATE, scaleUp=5, scaleDown=1),
    ]


class PolicyType(str, enum.Enum):
    PODS = "Pods"
    PERCENT = "Percent"


class ScalingStepPolicy(common.ApiModel):
    type: PolicyType = common.field("Pods: a number of replicas; Percent: a percentage of current replicas.")
    value: int = common.field("How many replicas (Pods) or percent (Percent) may change per period.", ge=1)
    periodSeconds: int = common.field("Length of the period the value applies to.", ge=1, le=PERIOD_MAX_SECONDS)


class SelectPolicy(str, enum.Enum):
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


def _window_field(default: int) -> typing.Any:
    return common.field(
        "Act on the most conservative recommendation of this trailing window (up: its minimum; down: its maximum).",
        default=default, ge=0, le=3600,
    )


def _cooldown_field(default: int, after: str) -> typing.Any:
    return common.field(
        f"Minimum time after {after} before the next scale in this direction.",
        default=default, ge=0, le=SECONDS_PER_DAY,
    )


def _policies_field(factory: typing.Callable[[], list[ScalingStepPolicy]]) -> typing.Any:
    return common.field(
        "Step limits per period; selectPolicy picks among them. Omitted: this direction's defaults; [] for no limit.",
        default_factory=factory, max_length=10,
    )


def _select_field() -> typing.Any:
    return common.field(
        "Max: the policy allowing the largest change; Min: the smallest; Disabled: never scale in this direction.",
        default=SelectPolicy.MAX,
    )


# Every omitted field takes its own direction's default, as HPA fills each direction
# separately: one class per direction, so the CRD carries the right defaults for each.
class ScaleUpRules(common.ApiModel):
    """Defaults (HPA's): no window, no timer; +100 % or +4 pods per 15 s, whichever is more.

    A scale-up does not wait for a timer: it waits for the pods it added to become ready,
    because pods not yet ready never count toward a proposal.
    """

    stabilizationWindowSeconds: int = _window_field(0)
    cooldownSeconds: int = _cooldown_field(0, "the last scale-up")
    policies: list[ScalingStepPolicy] = _policies_field(lambda: [
        ScalingStepPolicy(type=PolicyType.PERCENT, value=100, periodSeconds=15),
        ScalingStepPolicy(type=PolicyType.PODS, value=4, periodSeconds=15),
    ])
    selectPolicy: SelectPolicy = _select_field()


class ScaleDownRules(common.ApiModel):
    """Defaults: the platform's "cooldown 5 minutes" is this 300 s window (HPA's too): a
    scale-down goes only as low as the highest recommendation of the last 5 minutes, so it
    never follows a scale-up within 5 minutes; then at most −50 % per 60 s."""

    stabilizationWindowSeconds: int = _window_field(300)
    cooldownSeconds: int = _cooldown_field(0, "the last scale in either direction")
    policies: list[ScalingStepPolicy] = _policies_field(lambda: [
        ScalingStepPolicy(type=PolicyType.PERCENT, value=50, periodSeconds=60),
    ])
    selectPolicy: SelectPolicy = _select_field()


ScalingRules = ScaleUpRules | ScaleDownRules


class Behavior(common.ApiModel):
    scaleUp: ScaleUpRules = common.field("How fast replicas may be added.", default_factory=ScaleUpRules)
    scaleDown: ScaleDownRules = common.field("How fast replicas may be removed.", default_factory=ScaleDownRules)


class UnavailableAction(str, enum.Enum):
    HOLD = "Hold"
    FALLBACK = "Fallback"


class OnMetricsUnavailable(common.ApiModel):
    """Missing or stale metrics never cause a scale-down."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel(
                    "self.action != 'Fallback' || has(self.replicas)",
                    "replicas is required when action is Fallback",
                    ".replicas",
                )
            ]
        }
    )

    action: UnavailableAction = common.field(
        "Hold: keep the current replicas; Fallback: go to `replicas` (never below current).", default=UnavailableAction.HOLD
    )
    replicas: int | None = common.field("Replica count for action Fallback.", default=None, ge=0)
    staleAfterSeconds: int = common.field(
        "A sample older than this counts as unavailable.", default=120, ge=1, le=SECONDS_PER_DAY
    )


class Mode(str, enum.Enum):
    ACTIVE = "Active"
    DRY_RUN = "DryRun"


SEASONAL_POINTS_MAX = 4032  # history kept per policy: 14 days at 300 s (32 KiB of float64)


class Seasonal(common.ApiModel):
    """Scale up ahead of a recurring ramp (the daily cycle) from the workload's own history.

    The demand of `metric` (value × ready replicas) is kept in `stepSeconds` buckets over
    `lookbackPeriods` periods: read from Prometheus (a range query, refreshed at most once
    per `refreshSeconds`) and from every evaluation. The forecast for the next `leadSeconds`
    is the median of the same buckets in the previous periods, scaled by how today compares
    with them over `trustWindowSeconds`. It is trusted only while the forecasts it would have
    made for that window were within `tolerance` of what happened: a forecast that was wrong
    recently is ignored until it is right again. A trusted forecast may scale up early and
    may hold a scale-down that the next minutes would undo; it never scales down. Without
    Prometheus (the metrics API keeps no history) it is reported unavailable."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel("self.periodSeconds % self.stepSeconds == 0",
                           "periodSeconds must be a multiple of stepSeconds", ".periodSeconds"),
                common.cel(f"self.lookbackPeriods * (self.periodSeconds / self.stepSeconds) <= {SEASONAL_POINTS_MAX}",
                           f"lookbackPeriods × periodSeconds / stepSeconds must be at most {SEASONAL_POINTS_MAX} "
                           "points", ".lookbackPeriods"),
                common.cel("self.trustWindowSeconds >= 2 * self.stepSeconds",
                           "trustWindowSeconds must cover at least two steps", ".trustWindowSeconds"),
                common.cel("(self.metric == 'custom') == has(self.name)",
                           "name is required for metric custom and not allowed for other metrics", ".name"),
            ]
        }
    )

    enabled: bool = common.field("Scale up ahead of recurring ramps; never scales down earlier.", default=False)
    metric: MetricType = common.field("The metric whose demand is forecast; one of spec.metrics.",
                                      default=MetricType.CPU)
    name: str | None = common.field("The custom metric's name (metric custom).", default=None, max_length=63)
    periodSeconds: int = common.field("The cycle's length (86400: daily).", default=SECONDS_PER_DAY,
                                      ge=3600, le=7 * SECONDS_PER_DAY)
    lookbackPeriods: int = common.field("How many past periods the forecast is made from.", default=4, ge=2, le=14)
    stepSeconds: int = common.field("The history's resolution (a range query's step).", default=300, ge=60, le=3600)
    leadSeconds: int = common.field(
        "How far ahead demand is forecast: about the time a new replica takes to become ready plus one evaluation.",
        default=120, ge=15, le=3600)
    tolerance: float = common.field(
        "Relative error (|forecast - actual| summed over the trust window ÷ actual demand) above which the "
        "forecast is not trusted.", default=0.2, ge=0.01, le=2)
    trustWindowSeconds: int = common.field(
        "The recent window the forecast is judged on (and today's level taken from).", default=3600,
        ge=120, le=SECONDS_PER_DAY)
    refreshSeconds: int = common.field("How often the history is read again from Prometheus.", default=3600,
                                       ge=300, le=SECONDS_PER_DAY)

    @pydantic.model_validator(mode="after")
    def _points(self) -> "Seasonal":
        if self.periodSeconds % self.stepSeconds:
            raise ValueError("periodSeconds must be a multiple of stepSeconds")
        if self.lookbackPeriods * (self.periodSeconds // self.stepSeconds) > SEASONAL_POINTS_MAX:
            raise ValueError(f"lookbackPeriods × periodSeconds / stepSeconds must be at most {SEASONAL_POINTS_MAX} points")
        if self.trustWindowSeconds < 2 * self.stepSeconds:
            raise ValueError("trustWindowSeconds must cover at least two steps")
        if (self.metric == MetricType.CUSTOM) != (self.name is not None):
            raise ValueError("name is required for metric custom and not allowed for other metrics")
        return self


class Predictive(common.ApiModel):
    """Demand (each metric × ready replicas) is fitted over the last 3 × horizonSeconds; a fit
    needs 6 points and a history at least one horizon long, so our own scaling and a few
    noisy samples are never read as a trend. `seasonal` works apart from the trend (either
    may be on alone)."""

    enabled: bool = common.field("Scale up ahead of a rising demand trend; never scales down earlier.", default=False)
    horizonSeconds: int = common.field(
        "How far ahead demand is projected: about the time a new replica takes to become ready plus one evaluation.",
        default=60, ge=30, le=3600,
    )
    seasonal: Seasonal = common.field("Optional: scale up ahead of recurring ramps (the daily cycle).",
                                      default_factory=Seasonal)


class Saturation(common.ApiModel):
    """A saturated pod's CPU cannot read above 100 %: it shows the demand served, not the demand
    offered. The requests turned away show in the error rate; with this on, a CPU reading at or
    above `cpuAbove` is divided by the share of requests served (1 - errorRate), so a scale-up
    under overload is sized for the demand offered in one step instead of climbing by ×1.4 per
    pod start-up (or jumping to maxReplicas on a latency reading). Needs an errorRate metric."""

    enabled: bool = common.field("Size scale-ups under overload for the demand offered.", default=False)
    cpuAbove: float = common.field("CPU (percent) from which pods count as saturated.", default=90, ge=50, le=100)


class Staffing(common.ApiModel):
    """Square-root staffing on cpu (queueing theory's Halfin-Whitt rule): spare capacity grows
    with the square root of the busy capacity, not in proportion to it. At 2-4 replicas one
    replica is a large share, and a 20 % rise within a pod's start-up is common in real traffic;
    at 15, the same spare percentage is replicas idle. With this on, cpu's scaleUp, target and
    scaleDown become, at each count, the utilisation at which `busy + spare × √busy` replicas
    are ready, each capped at the metric's own value: cooler at a few replicas, as hot as the
    metric says at many.

    `serverRate` counts the traffic in servers of that many requests/s instead of in replicas
    (busy servers = requestRate ÷ serverRate): the spare then depends on the traffic, not on how
    it is cut into pods. A replica serving k times serverRate at 100 % CPU is k servers, and
    its spares in replicas shrink by √k; never below one server per replica, and without a fresh
    requestRate a replica is one server."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel(
                    "!self.enabled || (self.scaleUpSpare <= self.targetSpare && self.targetSpare <= self.scaleDownSpare)",
                    "spares must be ordered: scaleUpSpare <= targetSpare <= scaleDownSpare",
                ),
            ]
        }
    )

    enabled: bool = common.field("Square-root staffing on cpu.", default=False)
    scaleUpSpare: float = common.field("Scale up when the spare replicas fall below this × √busy.", default=0.4,
                                       ge=0, le=10)
    targetSpare: float = common.field("A scale sizes for this × √busy spare replicas.", default=0.6, ge=0, le=10)
    scaleDownSpare: float = common.field("Scale down when the spare replicas exceed this × √busy.", default=1.3,
                                         ge=0, le=10)
    serverRate: float | None = common.field(
        "Requests per second one server of the square root serves: busy servers are the workload's requestRate "
        "÷ this, at least one per busy replica (read with the policy's metrics). Unset: one replica is one server.",
        default=None, gt=0, le=1e9,
    )

    @pydantic.model_validator(mode="after")
    def _ordered(self) -> "Staffing":
        if self.enabled and not self.scaleUpSpare <= self.targetSpare <= self.scaleDownSpare:
            raise ValueError("spares must be ordered: scaleUpSpare <= targetSpare <= scaleDownSpare")
        return self


class Headroom(common.ApiModel):
    """Spare capacity from the demand's own trend and noise, on cpu. Demand (cpu × the ready pods
    it averages over) is fitted over the last `windowSeconds`; cpu is read as the demand
    projected `leadSeconds` ahead on a rising trend (never a falling one) plus `noiseBands`
    standard deviations of its scatter around the fit, so a scale-up starts before a ramp
    reaches the threshold and is sized for where it is going, and a scale-down waits until even
    the upper band fits. A scale-down lands `downLanding` of the way from the target to the
    scale-down threshold (cooler than a scale-up sizes: a small rise after it does not reverse
    it)."""

    enabled: bool = common.field("Read cpu as its projected demand plus a noise band.", default=False)
    leadSeconds: int = common.field(
        "How far ahead a rising demand is projected: about one evaluation plus a pod's start-up.",
        default=45, ge=0, le=600)
    windowSeconds: int = common.field("The demand history the trend and the noise are fitted over.",
                                      default=180, ge=60, le=1800)
    noiseBands: float = common.field("Spare for this many standard deviations of the demand's noise.",
                                     default=1.0, ge=0, le=5)
    downLanding: float = common.field(
        "Where a scale-down lands: 0 at the target, 1 at the scale-down threshold.", default=0.5, ge=0, le=1)


IDLE_DEFAULT_SECONDS = 300  # KEDA's cooldownPeriod
MIN_ZERO_NEEDS_ACTIVATION = ("minReplicas 0 needs activation: the metric that wakes the workload at zero replicas "
                             "(cpu and memory have no pods to read there)")
ACTIVATION_NEEDS_MIN_ZERO = "activation applies only with minReplicas 0"


class Activation(common.ApiModel):
    """Scale to zero (`minReplicas: 0`): the metric that wakes a workload at zero replicas, and
    how long it must stay idle before the workload goes to zero.

    At zero no pod runs, so cpu, memory and every per-pod series have no value: the activation
    metric alone decides there (above `above`: 0 -> 1, then the policy's metrics scale as
    usual). It must have a value with no pod running — a queue length at the broker, a
    gateway's request count (a MonitoredService query override, or a custom query with
    `or vector(0)`): missing activation data never wakes and never sleeps. From one replica the
    workload goes to zero only after the activation metric stayed at or below `above`, the
    policy held at one replica and every metric was available, for `idleSeconds` without a break."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel(
                    "(self.type == 'custom') == has(self.name)",
                    "name is required for type custom and not allowed for other types",
                    ".name",
                ),
                common.cel(
                    "self.type != 'cpu' && self.type != 'memory'",
                    "cpu and memory have no value with no pod running: they cannot wake a workload at zero",
                    ".type",
                ),
            ]
        }
    )

    type: MetricType = common.field(
        "The metric that wakes the workload: a metric type (the MonitoredService's query for it, or the default "
        "query) or custom (a named custom query of the MonitoredService). It need not be one of spec.metrics.")
    name: str | None = common.field(
        "For type custom: the name of a custom query of the MonitoredService.",
        default=None, min_length=1, max_length=63, pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
    )
    above: float = common.field(
        "Wake (0 -> 1) when the value is above this; at or below it the workload counts as idle.", default=0, ge=0)
    idleSeconds: int = common.field(
        "How long the workload must be idle at one replica (activation at or below `above`, every metric "
        "available) before it is scaled to zero.", default=IDLE_DEFAULT_SECONDS, ge=0, le=SECONDS_PER_DAY)

    @pydantic.model_validator(mode="after")
    def _usable(self) -> "Activation":
        if (self.type == MetricType.CUSTOM) != (self.name is not None):
            raise ValueError("name is required for type custom and not allowed for other types")
        if self.type in (MetricType.CPU, MetricType.MEMORY):
            raise ValueError("cpu and memory have no value with no pod running: they cannot wake a workload at zero")
        return self


class ScalingPolicySpec(common.ApiModel):
    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel(
                    "self.minReplicas <= self.maxReplicas",
                    "minReplicas must be <= maxReplicas",
                    ".minReplicas",
                ),
                common.cel(
                    "!has(self.onMetricsUnavailable) || !has(self.onMetricsUnavailable.replicas) || "
                    "(self.onMetricsUnavailable.replicas >= self.minReplicas && "
                    "self.onMetricsUnavailable.replicas <= self.maxReplicas)",
                    "onMetricsUnavailable.replicas must lie within minReplicas..maxReplicas",
                    ".onMetricsUnavailable.replicas",
                ),
                common.cel(
                    "self.metrics.all(m, self.metrics.exists_one(n, n.type == m.type && "
                    "(has(n.name) ? n.name : '') == (has(m.name) ? m.name : '')))",
                    "each metric type (and custom name) may appear only once",
                    ".metrics",
                ),
                common.cel(
                    "!has(self.predictive) || !has(self.predictive.seasonal) || !self.predictive.seasonal.enabled || "
                    "self.metrics.exists(m, m.type == self.predictive.seasonal.metric && (has(m.name) ? m.name : '') "
                    "== (has(self.predictive.seasonal.name) ? self.predictive.seasonal.name : ''))",
                    "predictive.seasonal.metric must be one of spec.metrics",
                    ".predictive.seasonal.metric",
                ),
                common.cel(
                    "self.minReplicas != 0 || has(self.activation)",
                    MIN_ZERO_NEEDS_ACTIVATION,
                    ".minReplicas",
                ),
                common.cel(
                    "!has(self.activation) || self.minReplicas == 0",
                    ACTIVATION_NEEDS_MIN_ZERO,
                    ".activation",
                ),
            ]
        }
    )

    targetRef: TargetRef = common.field("What is scaled.")
    minReplicas: int = common.field("Never scale below this.", default=2, ge=0, le=10000)
    maxReplicas: int = common.field("Never scale above this.", default=20, ge=1, le=10000)
    metrics: list[MetricThreshold] = common.field(
        "Scale up when ANY metric is above scaleUp; scale down only when ALL are below scaleDown; otherwise hold.",
        default_factory=_seed_metrics,
        min_length=1,
        max_length=16,
    )
    behavior: Behavior = common.field("Stabilization, cooldowns and step limits.", default_factory=Behavior)
    evaluationIntervalSeconds: int = common.field(
        "How often the policy is evaluated (15 s: HPA's sync period).", default=15, ge=INTERVAL_MIN_SECONDS, le=3600
    )
    onMetricsUnavailable: OnMetricsUnavailable = common.field(
        "What to do when a metric has no fresh sample.", default_factory=OnMetricsUnavailable
    )
    mode: Mode = common.field("DryRun decides, records and emits but does not actuate.", default=Mode.ACTIVE)
    predictive: Predictive = common.field("Optional trend-based early scale-up.", default_factory=Predictive)
    saturation: Saturation = common.field(
        "Optional: under overload, CPU corrected by the error rate (the demand turned away).", default_factory=Saturation)
    staffing: Staffing = common.field(
        "Optional: cpu thresholds by square-root staffing (cooler at a few replicas).", default_factory=Staffing)
    headroom: Headroom = common.field(
        "Optional: cpu read ahead on its demand trend plus a noise band; scale-downs land cooler.",
        default_factory=Headroom)
    activation: Activation | None = common.field(
        "Scale to zero: required with minReplicas 0 (and only then). The metric that wakes the workload at zero "
        "replicas, and how long it must be idle before it goes to zero.", default=None)

    @pydantic.model_validator(mode="after")
    def _bounds(self) -> "ScalingPolicySpec":
        if self.minReplicas > self.maxReplicas:
            raise ValueError("minReplicas must be <= maxReplicas")
        if self.minReplicas == 0 and self.activation is None:
            raise ValueError(MIN_ZERO_NEEDS_ACTIVATION)
        if self.activation is not None and self.minReplicas != 0:
            raise ValueError(ACTIVATION_NEEDS_MIN_ZERO)
        seasonal = self.predictive.seasonal
        if seasonal.enabled and not any((m.type, m.name) == (seasonal.metric, seasonal.name) for m in self.metrics):
            raise ValueError("predictive.seasonal.metric must be one of spec.metrics")
        return self


class Direction(str, enum.Enum):
    UP = "Up"
    DOWN = "Down"
    HOLD = "Hold"


class MetricObservation(common.ApiModel):
    type: MetricType = common.field("Metric type.")
    name: str | None = common.field("Custom metric name.", default=None)
    value: float | None = common.field("Latest value; absent when unavailable.", default=None)
    scaleUp: float = common.field("Scale-up threshold in force.")
    scaleDown: float = common.field("Scale-down threshold in force.")
    sampledAt: datetime.datetime | None = common.field(
        "When the value was sampled (absent value: when it was last seen).", default=None)
    source: str | None = common.field("The source that answered: prometheus, metrics-api or railway.",
                                      default=None, max_length=32)


class Decision(common.ApiModel):
    direction: Direction = common.field("Up, Down or Hold.")
    fromReplicas: int = common.field("Replicas before the decision.", alias="from", ge=0)
    toReplicas: int = common.field("Replicas after the decision.", alias="to", ge=0)
    reason: str = common.field("Why, in words, including the rule that limited the result.", max_length=1024)
    limitedBy: str | None = common.field("The rule that limited the result, if any.", default=None)
    actuated: bool = common.field("False in DryRun or while paused.", default=True)
    time: datetime.datetime = common.field("When the decision was made.")


class ScaleChange(common.ApiModel):
    fromReplicas: int = common.field("Replicas before the change.", alias="from", ge=0)
    toReplicas: int = common.field("Replicas after the change.", alias="to", ge=0)
    time: datetime.datetime = common.field("When the change was made.")


class SeasonalForecast(common.ApiModel):
    trusted: bool = common.field("Whether the seasonal forecast is acted on now.")
    reason: str = common.field("Trusted, Missed, WarmingUp or Unavailable.", max_length=32)
    message: str = common.field("Why, in words (the recent error against the tolerance).", max_length=512)
    demand: float | None = common.field("The demand forecast for the lead time (metric × replicas).", default=None)
    error: float | None = common.field("The recent relative error of the forecast.", default=None)


class ScalingPolicyStatus(common.BaseStatus):
    target: str | None = common.field("The scaled workload, e.g. Deployment/web.", default=None)
    currentReplicas: int | None = common.field("Replicas the workload has.", default=None, ge=0)
    desiredReplicas: int | None = common.field("Replicas last decided.", default=None, ge=0)
    lastScaleTime: datetime.datetime | None = common.field("When replicas were last changed.", default=None)
    lastScaleUpTime: datetime.datetime | None = common.field("Last scale-up (cooldown).", default=None)
    lastScaleDownTime: datetime.datetime | None = common.field("Last scale-down (cooldown).", default=None)
    metrics: list[MetricObservation] = common.field("Latest observations.", default_factory=list, max_length=16)
    lastDecision: Decision | None = common.field("The latest decision.", default=None)
    recentDecisions: list[Decision] = common.field(
        "The last decisions that changed or would change replicas, newest first.", default_factory=list, max_length=10
    )
    recommendation: str | None = common.field(
        "Advice when the policy is stuck at a bound.", default=None, max_length=1024
    )
    scaleEvents: list[ScaleChange] = common.field(
        "Every change of replicas made within the longest step-limit period (1800 s), newest first: what the "
        "step limit counts, however many there were. Written before the scale call (a step that may not have "
        "happened counts; one refused is removed).", default_factory=list, max_length=SCALE_EVENTS_KEPT
    )
    seasonalForecast: SeasonalForecast | None = common.field(
        "The seasonal forecast (spec.predictive.seasonal): whether it is trusted, and why.", default=None)


class ScalingPolicy(common.ApiModel):
    """Top-level object as the operator reads it (metadata is kept opaque)."""

    spec: ScalingPolicySpec = common.field("Desired scaling behaviour.")
    status: ScalingPolicyStatus = common.field("Observed state.", default_factory=ScalingPolicyStatus)


KIND = common.KindInfo(
    kind="ScalingPolicy",
    plural="scalingpolicies",
    short_names=("scp",),
    description="Replica bounds and per-metric hysteresis thresholds for one workload.",
    printer_columns=(
        common.PrinterColumn("Target", "string", ".status.target", "The scaled workload."),
        common.PrinterColumn("Min", "integer", ".spec.minReplicas", "minReplicas."),
        common.PrinterColumn("Max", "integer", ".spec.maxReplicas", "maxReplicas."),
        common.PrinterColumn("Current", "integer", ".status.currentReplicas", "Replicas the workload has."),
        common.PrinterColumn("Desired", "integer", ".status.desiredReplicas", "Replicas last decided."),
        common.PrinterColumn("Last Scale", "date", ".status.lastScaleTime", "When replicas last changed."),
        common.ready_column(),
        common.age_column(),
    ),
)
MODEL = ScalingPolicy
