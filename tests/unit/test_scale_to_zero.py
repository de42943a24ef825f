"""Scale to zero (ScalingPolicy `minReplicas: 0` with `activation`): the API's rules in CEL, in
pydantic and in `capliquify validate`; the pure decision (to zero only after the idle period,
woken by the activation metric alone, never on missing data); the simulator at zero replicas."""

from __future__ import annotations

import datetime

import pydantic
import pytest

from controller import celcheck
from controller import reasons
from controller import validation
from controller.api import scalingpolicy as api
from controller.core import railway_regions
from controller.core import scaling
from controller.core import scaling_status
from controller.core import world
from controller.sim import closedloop
from controller.sim import plant as plant_module
from controller.sim import traces

T0 = datetime.datetime(2026, 12, 6, 5, 0, tzinfo=datetime.timezone.utc)
IDLE = 60
INTERVAL = 15
CPU = ("cpu", None)
QUEUE = ("requestQueue", None)


def spec(**overrides: object) -> api.ScalingPolicySpec:
    raw: dict[str, object] = {
        "targetRef": {"kubernetes": {"name": "web"}}, "minReplicas": 0, "maxReplicas": 5,
        "evaluationIntervalSeconds": INTERVAL, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
        "activation": {"type": "requestQueue", "above": 0, "idleSeconds": IDLE},
    }
    raw.update(overrides)
    return api.ScalingPolicySpec.model_validate(raw)


def samples(now: datetime.datetime, cpu: float | None = 10.0, queue: float | None = 0.0) -> dict:
    got = {}
    if cpu is not None:
        got[CPU] = scaling.Sample(cpu, now)
    if queue is not None:
        got[QUEUE] = scaling.Sample(queue, now)
    return got


class Loop:
    """Decides round after round carrying state as the scaler does (idle_since in memory)."""

    def __init__(self, policy: api.ScalingPolicySpec, replicas: int, limits: world.ReplicaLimits | None = None) -> None:
        self.policy, self.replicas, self.limits = policy, replicas, limits
        self.state = scaling.State(observing_since=T0 - datetime.timedelta(hours=1), seen={CPU: T0})
        self.at = T0
        self.outcomes: list[scaling.Outcome] = []

    def step(self, **values: float | None) -> scaling.Outcome:
        outcome = scaling.decide(self.policy, self.replicas, samples(self.at, **values), self.state, self.at,
                                 limits=self.limits)
        self.state = scaling.State(
            observing_since=self.state.observing_since, recommendations=outcome.recommendations,
            history=outcome.history, seen=scaling.seen_after(self.state, outcome.metrics), idle_since=outcome.idle_since,
            events=self.state.events)
        self.replicas = outcome.desired
        self.outcomes.append(outcome)
        self.at += datetime.timedelta(seconds=INTERVAL)
        return outcome


# -- the API ------------------------------------------------------------------------------

BASE = {"targetRef": {"monitoredService": "web"}, "minReplicas": 0, "maxReplicas": 4,
        "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]}


@pytest.mark.parametrize("overrides,message", [
    ({}, api.MIN_ZERO_NEEDS_ACTIVATION),
    ({"minReplicas": 1, "activation": {"type": "requestQueue"}}, api.ACTIVATION_NEEDS_MIN_ZERO),
    ({"activation": {"type": "cpu"}}, "cpu and memory have no value with no pod running"),
    ({"activation": {"type": "memory"}}, "cpu and memory have no value with no pod running"),
    ({"activation": {"type": "custom"}}, "name is required for type custom"),
    ({"activation": {"type": "requestRate", "name": "queued"}}, "name is required for type custom"),
])
def test_cel_pydantic_and_validate_refuse_the_same_scale_to_zero_mistakes(overrides: dict, message: str) -> None:
    raw = {**BASE, **overrides}
    assert any(message in v for v in celcheck.spec_violations("ScalingPolicy", raw)), "the CRD's CEL rule"
    with pytest.raises(pydantic.ValidationError, match=message.split(":")[0][:40]):
        api.ScalingPolicySpec.model_validate(raw)
    document = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": "web"},
                "spec": raw}
    found = validation.check(0, document).problems
    assert any(message in p for p in found), found


def test_a_well_formed_scale_to_zero_policy_passes_everywhere() -> None:
    raw = {**BASE, "activation": {"type": "custom", "name": "frontdoor", "above": 0.5, "idleSeconds": 30}}
    assert celcheck.spec_violations("ScalingPolicy", raw) == []
    assert api.ScalingPolicySpec.model_validate(raw).activation.idleSeconds == 30  # type: ignore[union-attr]
    document = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy", "metadata": {"name": "web"},
                "spec": raw}
    assert validation.check(0, document) == (True, [])
    # Defaults: activation above 0, idle 300 s (KEDA's cooldownPeriod).
    defaulted = api.ScalingPolicySpec.model_validate({**BASE, "activation": {"type": "requestQueue"}}).activation
    assert (defaulted.above, defaulted.idleSeconds) == (0, 300)  # type: ignore[union-attr]


def test_the_activation_metric_is_read_with_the_policys_own() -> None:
    assert scaling.read_keys(spec()) == [CPU, QUEUE]
    both = spec(metrics=[{"type": "requestQueue", "scaleUp": 100, "scaleDown": 10}])
    assert scaling.read_keys(both) == [QUEUE]  # read once
    assert scaling.read_keys(spec(minReplicas=1, activation=None)) == [CPU]


# -- the decision ----------------------------------------------------------------------------

def test_scales_to_zero_after_the_idle_period_not_before() -> None:
    loop = Loop(spec(), 1)
    rounds_before = IDLE // INTERVAL  # idle from the first round: at IDLE seconds it may sleep
    for _ in range(rounds_before):
        outcome = loop.step()
        assert (outcome.direction, outcome.desired) == ("Hold", 1), outcome.reason
        assert outcome.idle_since == T0 and "to zero at 2026-12-06T05:01:00Z" in outcome.reason
        # Where a person looks, in absolute times (the same text every round: one status write).
        assert outcome.scaling_active == ("True", "ValidMetricFound", "1 metric(s) fresh; idle at one replica since "
                                          "2026-12-06T05:00:00Z: to zero at 2026-12-06T05:01:00Z unless requestQueue "
                                          "rises above 0")
    outcome = loop.step()
    assert (outcome.direction, outcome.current, outcome.desired) == ("Down", 1, 0)
    assert outcome.reason == ("requestQueue 0 <= 0 (activation threshold) at 1 replica for 60s "
                              "(idle since 2026-12-06T05:00:00Z)")
    assert outcome.stages[-1] == scaling.Stage("scale to zero", 0)


def test_a_rise_restarts_the_idle_period() -> None:
    loop = Loop(spec(), 1)
    loop.step()
    loop.step()
    assert loop.step(queue=2).idle_since is None  # 2 > 0: not idle (the count holds at one: cpu decides)
    restarted = loop.at
    for _ in range(IDLE // INTERVAL):
        assert loop.step().desired == 1
    assert loop.outcomes[-1].idle_since == restarted
    assert loop.step().desired == 0


def test_at_zero_the_activation_metric_alone_wakes_to_one() -> None:
    loop = Loop(spec(), 0)
    idle = loop.step(cpu=None, queue=0)  # no pod: cpu has nothing to read
    assert (idle.direction, idle.desired) == ("Hold", 0)
    assert idle.scaling_active[:2] == ("True", reasons.IDLE_AT_ZERO)
    assert "requestQueue 0 <= 0 (activation threshold)" in idle.scaling_active[2]
    woken = loop.step(cpu=None, queue=3)
    assert (woken.direction, woken.current, woken.desired) == ("Up", 0, 1)
    assert woken.reason == "requestQueue 3 > 0 (activation threshold)"
    assert woken.scaling_active[:2] == ("True", "ValidMetricFound")
    # From one replica the policy's metrics decide again, as for any count.
    busy = loop.step(cpu=300.0, queue=3)
    assert (busy.direction, busy.desired) == ("Up", 5)


def test_waking_respects_maxreplicas_and_the_platform_floor() -> None:
    outcome = Loop(spec(), 0, world.ReplicaLimits(floor=2, floor_why="one per region")).step(cpu=None, queue=9)
    assert outcome.desired == 2


@pytest.mark.parametrize("broken", [
    {"queue": None},  # no sample at all
    {"queue": float("nan")},  # NaN is no data
    {"queue": float("-inf")},
])
def test_missing_activation_data_never_sleeps(broken: dict) -> None:
    loop = Loop(spec(), 1)
    for _ in range(4 * IDLE // INTERVAL):
        outcome = loop.step(**broken)
        assert outcome.desired == 1 and outcome.idle_since is None, outcome.reason
    # Data back: the idle period starts then, not before.
    for _ in range(IDLE // INTERVAL):
        assert loop.step().desired == 1
    assert loop.step().desired == 0


def test_missing_activation_data_at_one_replica_is_said_in_scaling_active() -> None:
    outcome = Loop(spec(), 1).step(queue=None)
    assert outcome.scaling_active[:2] == ("False", reasons.METRICS_UNAVAILABLE)
    assert outcome.scaling_active[2].startswith("no fresh value for activation metric requestQueue (no data): never "
                                                "scaled to zero blind; ")
    assert Loop(spec(), 1).step().scaling_active[:2] == ("True", "ValidMetricFound")


def test_missing_activation_data_at_zero_holds_at_zero_and_says_why() -> None:
    loop = Loop(spec(), 0)
    outcome = loop.step(cpu=None, queue=None)
    assert (outcome.direction, outcome.desired) == ("Hold", 0)
    assert outcome.scaling_active[:2] == ("False", reasons.METRICS_UNAVAILABLE)
    assert "activation metric requestQueue (no data): holding at zero" in outcome.scaling_active[2]


def test_a_stale_or_failed_activation_sample_is_missing_data() -> None:
    policy = spec()
    state = scaling.State(observing_since=T0, seen={CPU: T0}, idle_since=T0 - datetime.timedelta(hours=1))
    stale = {CPU: scaling.Sample(10.0, T0), QUEUE: scaling.Sample(0.0, T0 - datetime.timedelta(hours=1))}
    failed = {CPU: scaling.Sample(10.0, T0), QUEUE: scaling.Sample(None, None, "invalid query: parse error")}
    for got in (stale, failed):
        outcome = scaling.decide(policy, 1, got, state, T0)
        assert outcome.desired == 1 and outcome.idle_since is None


def test_a_lost_policy_metric_holds_at_one_replica() -> None:
    loop = Loop(spec(), 1)
    for _ in range(3 * IDLE // INTERVAL):
        outcome = loop.step(cpu=None)  # cpu had data (seen) and lost it: missing, not "no series"
        assert outcome.desired == 1 and outcome.idle_since is None


def test_the_lowest_count_first_then_zero() -> None:
    loop = Loop(spec(behavior={"scaleDown": {"stabilizationWindowSeconds": 0}}), 3)
    first = loop.step(cpu=5.0)
    assert (first.direction, first.desired) == ("Down", 1)  # never from 3 to 0 in one step
    assert first.idle_since is None
    for _ in range(IDLE // INTERVAL):
        assert loop.step(cpu=5.0).desired == 1
    assert loop.step(cpu=5.0).desired == 0


def test_a_platform_that_keeps_a_replica_is_never_scaled_to_zero_and_says_so_once_idle() -> None:
    loop = Loop(spec(), 1, railway_regions.limits({"us-west2": 1}))
    for _ in range(IDLE // INTERVAL):
        outcome = loop.step()
        assert outcome.desired == 1 and outcome.scaling_limited[0] == "False"
    for _ in range(3 * IDLE // INTERVAL):
        outcome = loop.step()
        assert outcome.desired == 1
        assert outcome.scaling_limited == ("True", "TooFewReplicas", f"the platform binds: {railway_regions.NO_ZERO_WHY}")


def test_scale_down_disabled_never_goes_to_zero() -> None:
    loop = Loop(spec(behavior={"scaleDown": {"selectPolicy": "Disabled"}}), 1)
    for _ in range(4 * IDLE // INTERVAL):
        outcome = loop.step()
        assert outcome.desired == 1
    assert "held at one replica: scale-down disabled" in outcome.reason


def test_a_restart_waits_a_whole_idle_period_again() -> None:
    loop = Loop(spec(), 1)
    for _ in range(IDLE // INTERVAL):
        loop.step()
    loop.state = scaling.State(observing_since=loop.at, seen={CPU: T0})  # memory lost: idle_since too
    assert loop.step().desired == 1
    assert loop.outcomes[-1].idle_since == loop.at - datetime.timedelta(seconds=INTERVAL)


def test_the_operator_carries_the_idle_period_from_round_to_round() -> None:
    """The scaler rebuilds State from status and its memory each round: the idle period must
    survive that (it did not, and the integration test never slept)."""
    memory = scaling.State(observing_since=T0, idle_since=T0 - datetime.timedelta(seconds=40))
    assert scaling_status.state_from_status({}, T0, memory).idle_since == memory.idle_since
    assert scaling_status.state_from_status({}, T0, None).idle_since is None


# -- the simulator at zero replicas --------------------------------------------------------

def test_the_closed_loop_simulator_sleeps_and_wakes_without_dividing_by_zero() -> None:
    policy = spec(activation={"type": "requestRate", "above": 0, "idleSeconds": 120},
                  onMetricsUnavailable={"staleAfterSeconds": 120})
    quiet = traces.Trace("quiet-then-busy", 1800, lambda t: 0.0 if t < 900 else 40.0, "0 req/s, then 40 from 15 min")
    run = closedloop.run(closedloop.PolicyController(policy), quiet, plant_module.Model(), 1)
    assert 0 in run.replicas[:900], "idle: scaled to zero"
    at_zero = run.replicas.index(0)
    assert all(r == 0 for r in run.replicas[at_zero:900])
    assert run.replicas[-1] >= 1, "woken by the request rate"
    woke = next(at for at, before, after in run.events if before == 0 and after >= 1)
    assert 900 <= woke <= 900 + 2 * INTERVAL


def test_simulate_series_reads_the_activation_column_sleeps_and_wakes() -> None:
    from controller.core import simulate

    policy = spec(activation={"type": "requestRate", "above": 0, "idleSeconds": 120})
    series = [simulate.Point(0, {"requestRate": 0.0, "cpu": 10.0}), simulate.Point(600, {"requestRate": 5.0, "cpu": 40.0})]
    rows = simulate.scaling_run(policy, series, replicas=1, until=900)
    slept = next(row for row in rows if row.replicas == 0)
    assert 120 <= slept.at < 600 and slept.event.startswith("Down 1->0: requestRate 0/s <= 0/s (activation threshold)")
    woke = next(row for row in rows if row.at >= 600 and row.replicas == 1)
    assert woke.at == 600 and woke.event == "Up 0->1: requestRate 5/s > 0/s (activation threshold)"


# -- the adapters at zero: a Scale's spec.replicas is omitted when 0 (omitempty) ---------------

def test_a_scale_subresource_at_zero_reads_as_zero_replicas_not_unknown() -> None:
    import kubernetes

    from controller.adapters import actuator_scale
    from controller.core import platform_scale

    client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host="http://127.0.0.1:9"))
    try:
        actuator = actuator_scale.ScaleActuator(client, lambda _: None, lambda call, *args: call(*args))
        actuator.version = lambda group, resource: "v1alpha1"  # type: ignore[method-assign]
        answer = {"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "web", "uid": "u"},
                  "spec": {}, "status": {"replicas": 0, "selector": "app=web"}}
        actuator._custom.get_namespaced_custom_object_scale = lambda *args, **kwargs: answer
        actuator._ready_pods = lambda namespace, selector: 0  # type: ignore[method-assign]
        read = actuator.read("shop", platform_scale.kind_of("argoproj.io", "rollouts"), "web")
    finally:
        client.close()
    assert read.replicas == 0  # None would drop the target from scaling: it could never be woken


def test_patching_a_deployment_scale_to_zero_answers_zero() -> None:
    import types

    from controller.adapters import kubernetes_scale

    scaler = kubernetes_scale.KubernetesScale.__new__(kubernetes_scale.KubernetesScale)
    scaler._on_write = lambda verb: None
    answered = types.SimpleNamespace(spec=types.SimpleNamespace(replicas=None))  # the client's V1Scale at 0
    scaler._apps = types.SimpleNamespace(patch_namespaced_deployment_scale=lambda *args, **kwargs: answered,
                                         patch_namespaced_stateful_set_scale=lambda *args, **kwargs: answered)
    assert scaler.set_replicas("Deployment", "shop", "web", 0) == 0


# -- Railway's own scale to zero: Serverless (the instance's sleepApplication) ----------------

def test_railway_serverless_is_set_through_the_local_railway_and_read_back(railway) -> None:  # noqa: ANN001
    from controller.adapters import railway as railway_adapter
    from controller.api import monitoredservice
    from controller.core import railway_config
    from tests.unit.test_railway import ask

    spec = monitoredservice.RailwayTarget.model_validate({
        "projectId": "p", "environmentId": "env-1", "serviceId": "svc-1", "tokenSecretRef": {"name": "r", "key": "t"},
        "sleepApplication": True})
    assert railway_config.managed(spec) and railway_config.desired(spec) == {"sleepApplication": True}

    async def scenario(client: railway_adapter.RailwayClient) -> tuple:
        before = await client.config("env-1", "svc-1", False)
        change = railway_config.changes(spec, before)
        await client.configure("env-1", "svc-1", change.instance, change.limits)
        after = await client.config("env-1", "svc-1", False)
        return before, change, after, railway_config.changes(spec, after)

    before, change, after, left = ask(railway.url, "t0ken", scenario)
    assert before.sleep_application is False and after.sleep_application is True
    assert change.instance == {"sleepApplication": True} and change.summary == ("sleepApplication False -> True",)
    assert not left, "in sync: nothing sent again"
    assert railway.services["svc-1"].sleep_application is True and railway.invalid == []
    assert railway.services["svc-1"].replicas == 1 and len(railway.services["svc-1"].deployments) == 1  # no deploy
    # Unset: not managed, whatever Railway says.
    unmanaged = spec.model_copy(update={"sleepApplication": None})
    assert not railway_config.managed(unmanaged) and not railway_config.changes(unmanaged, after)


def test_a_malformed_serverless_answer_reads_as_unset() -> None:
    from controller.adapters import railway as railway_adapter

    for value, read in ((True, True), (False, False), ("yes", None), (1, None), (None, None)):
        observed = railway_adapter._config_of({"serviceInstance": {"sleepApplication": value}}, "svc-1", False)
        assert observed.sleep_application is read, value


def test_a_workload_scaled_to_zero_by_hand_is_left_there_as_hpa_does() -> None:
    """No activation rule and zero replicas: someone scaled it to zero (HPA's shouldDisable at
    v1.36: ScalingActive False ScalingDisabled). The operator neither wakes it to minReplicas
    nor reads its metrics; from one replica it scales as usual again."""
    import datetime

    from controller.api import scalingpolicy as api
    from controller.core import scaling

    spec = api.ScalingPolicySpec.model_validate({
        "targetRef": {"kubernetes": {"kind": "Deployment", "name": "web"}}, "minReplicas": 2, "maxReplicas": 10,
        "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]})
    now = datetime.datetime(2026, 6, 1, 12, tzinfo=datetime.timezone.utc)
    state = scaling.State(now - datetime.timedelta(hours=1))
    hot = {("cpu", None): scaling.Sample(95.0, now)}
    at_zero = scaling.decide(spec, 0, hot, state, now, ready=0)
    assert (at_zero.direction, at_zero.desired) == ("Hold", 0)
    assert at_zero.scaling_active == ("False", "ScalingDisabled",
                                      "scaling is disabled since the replica count of the target is zero")
    at_one = scaling.decide(spec, 1, hot, state, now, ready=1)
    assert at_one.direction == "Up" and at_one.desired >= 2
