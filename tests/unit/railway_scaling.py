"""The operator's real Railway path for scaling tests: the Railway watcher (its poll, its
client, its rate limiter), the Railway actuator and the scaler, against the local Railway on
loopback. The API server is a fake (status writes, Events, the policy's uid, the token Secret),
and time is a test clock: the rate limiter's waits pass on it, so a wait costs no real time.

`Leader.decide(cpu)` is one scaling decision on that cpu (and the status write after it);
`Leader.poll()` one poll of Railway into the world."""

from __future__ import annotations

import asyncio
import copy
import datetime
import typing

import kubernetes

from controller.adapters import actuator
from controller.adapters import railway as railway_adapter
from controller.api import scalingpolicy
from controller.core import election
from controller.core import scaling
from controller.operator import loop
from controller.operator import railway as railway_operator
from controller.operator import runtime
from controller.operator import scaler as scaler_module
from controller.operator import view as view_module
from localcluster import railway as railway_sim

T0 = datetime.datetime(2026, 12, 6, 5, 32, 0, tzinfo=datetime.timezone.utc)
NS = "soak-7-1"
KEY = ("ScalingPolicy", NS, "rw")
MSVC = ("MonitoredService", NS, "rw")
GROUP = "capliquify.io/v1alpha1"
TOKEN = "t0ken"
SERVICE = "svc-1"


def objects(endpoint: str) -> dict[tuple[str, str, str], dict[str, typing.Any]]:
    """The soak's Railway objects: a MonitoredService on the service, 1-8 replicas, one pod per 10 s
    either way."""
    msvc = {"apiVersion": GROUP, "kind": "MonitoredService",
            "metadata": {"name": "rw", "namespace": NS, "uid": "uid-msvc", "generation": 1},
            "spec": {"target": {"railway": {"projectId": "p-soak", "environmentId": "env-1", "serviceId": SERVICE,
                                            "endpoint": endpoint,
                                            "tokenSecretRef": {"name": "railway", "key": "token"}}}}}
    step = {"type": "Pods", "value": 1, "periodSeconds": 10}
    policy = {"apiVersion": GROUP, "kind": "ScalingPolicy",
              "metadata": {"name": "rw", "namespace": NS, "uid": "uid-policy", "generation": 1},
              "spec": {"targetRef": {"monitoredService": "rw"}, "minReplicas": 1, "maxReplicas": 8,
                       "evaluationIntervalSeconds": 5, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                       "behavior": {"scaleUp": {"cooldownSeconds": 0, "policies": [step]},
                                    # (the soak's waits 15 s; 0 here: a step down needs no history)
                                    "scaleDown": {"stabilizationWindowSeconds": 0, "cooldownSeconds": 0,
                                                  "policies": [step]}}}}
    return {MSVC: msvc, KEY: policy}


class Clock:
    """The test's time: the scaler's, the poll's and the rate limiter's; `sleep` moves it."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def now(self) -> datetime.datetime:
        return T0 + datetime.timedelta(seconds=self.seconds)

    def monotonic(self) -> float:
        return 1000.0 + self.seconds

    def wall(self) -> float:
        return T0.timestamp() + self.seconds

    async def sleep(self, seconds: float) -> None:
        self.seconds += seconds
        await asyncio.sleep(0)


class Leader:
    """One replica: its view, evaluator, Railway watcher and scaler; a fake API server."""

    def __init__(self, simulator: railway_sim.RailwaySimulator, clock: Clock,
                 objects_: dict[tuple[str, str, str], dict[str, typing.Any]] | None = None,
                 scale_seconds: float = 0.0) -> None:
        self.simulator, self.clock = simulator, clock
        self.objects = objects_ if objects_ is not None else objects(simulator.url)
        self.events: list[tuple[str, str]] = []  # (reason, message) of each Event posted
        self.view = view_module.View()
        for obj in self.objects.values():
            self.view.upsert(copy.deepcopy(obj))
        self.evaluator = loop.Evaluator(self.view, self, 60.0, 4, clock=clock.now,  # type: ignore[arg-type]
                                        status_writer=self)
        self.watcher = railway_operator.RailwayWatcher(
            self.view, self.evaluator, self, simulator.url, allow_loopback=True,  # type: ignore[arg-type]
            clock=clock.now, monotonic=clock.monotonic, user_agent="capliquify-operator (test-leader)")
        self.watcher.limiter = railway_adapter.RateLimiter(clock=clock.monotonic, wall=clock.wall, sleep=clock.sleep)
        self.scale_seconds = scale_seconds  # how long each scale call takes on the test's clock
        # Stopped right after its next scale call: nothing it writes afterwards arrives.
        self.pause_after_scale, self.paused = False, False
        self.scaler = scaler_module.Scaler(self.view, self.evaluator, self, actuator.Actuators(  # type: ignore[arg-type]
            {"railway": _Timed(self)}), None, clock=clock.now)
        runtime.participate(self.evaluator, self.scaler, self.watcher)

    # -- the fake API server ----------------------------------------------------------------
    async def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
        if self.paused:
            raise election.NotLeader("not the leader: patch refused")
        obj = self.objects[(kind, namespace, name)]
        obj["status"] = {**(obj.get("status") or {}), **copy.deepcopy(patch)}
        return copy.deepcopy(obj)

    def create_event(self, obj: typing.Any, event: typing.Any, now: typing.Any) -> None:
        self.events.append((event.reason, event.message))

    def current_uid(self, kind: str, namespace: str, name: str) -> str:
        return str(self.objects[(kind, namespace, name)]["metadata"]["uid"])

    def secret_value(self, namespace: str, name: str, key: str) -> str:
        return TOKEN

    def secret_keys(self, namespace: str, name: str) -> frozenset[str]:
        return frozenset({"token"})

    async def close(self) -> None:
        await self.watcher.close()

    # -- what a test does ---------------------------------------------------------------------
    async def poll(self) -> None:
        await self.watcher.poll()
        await self.evaluator.round(list(self.view.objects))

    async def decide(self, cpu: float = 95.0) -> None:
        spec = self.view.valid(KEY, scalingpolicy.ScalingPolicySpec)
        assert spec is not None
        target = self.scaler._target(KEY, spec)
        assert not isinstance(target, str), target
        sampled = self.clock.now() - datetime.timedelta(seconds=1)
        samples = {("cpu", None): scaling.Sample(cpu, sampled, source="railway")}
        await self.scaler._decide_and_act(KEY, spec, target, samples, {target.workload_key: ["rw"]})
        try:
            await self.evaluator.round([KEY, MSVC])  # the status write after the scale (lost if paused)
        except election.NotLeader:
            pass

    def status(self, key: tuple[str, str, str] = KEY) -> dict[str, typing.Any]:
        return self.objects[key].get("status") or {}

    def condition(self, kind: str, key: tuple[str, str, str] = KEY) -> dict[str, typing.Any]:
        return next((c for c in self.status(key).get("conditions") or [] if c["type"] == kind), {})

    def scale_events(self) -> list[tuple[int, int]]:
        return [(e["from"], e["to"]) for e in self.status().get("scaleEvents") or []]


class _Timed(railway_operator.RailwayActuator):
    """The Railway actuator, each scale call taking `scale_seconds` of the test's clock (answered or not)."""

    def __init__(self, leader: Leader) -> None:
        super().__init__(leader.watcher)
        self.leader = leader
        self.errors = (railway_adapter.RailwayError, election.NotLeader, kubernetes.client.ApiException)

    async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        try:
            return await super().set_replicas(kind, namespace, name, replicas)
        finally:
            await self.leader.clock.sleep(self.leader.scale_seconds)
            self.leader.paused = self.leader.paused or self.leader.pause_after_scale


def run(simulator: railway_sim.RailwaySimulator, scenario: typing.Callable[[Leader, Clock], typing.Awaitable[None]],
        scale_seconds: float = 0.0) -> None:
    """`scenario(leader, clock)` with a new leader on a new clock; its connections closed after."""
    async def go() -> None:
        clock = Clock()
        leader = Leader(simulator, clock, scale_seconds=scale_seconds)
        try:
            await scenario(leader, clock)
        finally:
            await leader.close()
    asyncio.run(go())


def mutations(simulator: railway_sim.RailwaySimulator) -> list[dict[str, typing.Any]]:
    """The scale requests the local Railway received (the request log), refused ones included."""
    return [r for r in simulator.requests if r["mutation"]]
