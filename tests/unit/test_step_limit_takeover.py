"""Found by the soak (issue 26, docs/reliability.md run 9): 11 of 12 steps within a period were a
new leader stepping again a policy its predecessor had stepped right before being paused (SIGSTOP),
the predecessor's status write not yet made. The step limit counts its period's steps from status,
and a step was put in status only after the scale. The house rule is intent first: the scaler
writes the step to status.scaleEvents BEFORE it patches the scale, so a successor counts it
whatever happened to the write after. A leader that wrote the intent and never scaled (fenced,
paused, failed) only makes the limit more conservative: the successor counts a step that did not
happen, never misses one that did.

Each scenario runs the operator's scaler over a fake API server: the scale and the status writes
reach the same "server" (a dict of objects), and a leader's writes after a chosen moment are lost
(the process was paused, then lost the Lease)."""

from __future__ import annotations

import asyncio
import copy
import datetime
import typing

import kubernetes
import pytest

from controller.adapters import actuator
from controller.api import scalingpolicy
from controller.core import election
from controller.core import scaling
from controller.operator import loop
from controller.operator import runtime
from controller.operator import scaler as scaler_module
from controller.operator import view as view_module

T0 = datetime.datetime(2026, 12, 6, 2, 53, 30, tzinfo=datetime.timezone.utc)
NS = "soak-7-4"
KEY = ("ScalingPolicy", NS, "w2")
GROUP = "capliquify.io/v1alpha1"


def objects(replicas: int) -> dict[tuple[str, str, str], dict[str, typing.Any]]:
    """The soak's objects for one workload: 1-8 replicas, one pod per 10 s either way."""
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment",
                  "metadata": {"name": "w2", "namespace": NS, "uid": "uid-deploy", "generation": 1, "resourceVersion": "1"},
                  "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "w2"}},
                           "template": {"metadata": {"labels": {"app": "w2"}}, "spec": {"containers": [{"name": "app"}]}}},
                  "status": {"observedGeneration": 1, "replicas": replicas, "readyReplicas": replicas,
                             "updatedReplicas": replicas, "availableReplicas": replicas}}
    msvc = {"apiVersion": GROUP, "kind": "MonitoredService",
            "metadata": {"name": "w2", "namespace": NS, "uid": "uid-msvc", "generation": 1},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "w2"}},
                     "metrics": {"prometheus": {"url": "http://prometheus.test:9090"}, "queries": {"cpu": "soak_cpu"}}}}
    step = {"type": "Pods", "value": 1, "periodSeconds": 10}
    policy = {"apiVersion": GROUP, "kind": "ScalingPolicy",
              "metadata": {"name": "w2", "namespace": NS, "uid": "uid-policy", "generation": 1},
              "spec": {"targetRef": {"monitoredService": "w2"}, "minReplicas": 1, "maxReplicas": 8,
                       "evaluationIntervalSeconds": 5, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                       "behavior": {"scaleUp": {"cooldownSeconds": 0, "policies": [step]},
                                    "scaleDown": {"cooldownSeconds": 0, "policies": [step]}}}}
    return {("Deployment", NS, "w2"): deployment, ("MonitoredService", NS, "w2"): msvc, KEY: policy}


class Server:
    """What the API server holds; `lose_writes_after_scale`: the leader is paused right after its
    scale call, so nothing it writes afterwards arrives (its successor holds the Lease by then)."""

    def __init__(self, replicas: int) -> None:
        self.objects = objects(replicas)
        self.scales: list[tuple[int, int]] = []
        self.status_writes: list[dict[str, typing.Any]] = []
        self.paused = False
        self.fail_status = False
        self.fail_scale = 0  # the status the scale call is answered with (0: it succeeds)

    def replicas(self) -> int:
        return int(self.objects[("Deployment", NS, "w2")]["spec"]["replicas"])


class Leader:
    """One replica's scaler, its status writes and scale calls going to `server`."""

    def __init__(self, server: Server, now: datetime.datetime, pause_after_scale: bool = False) -> None:
        self.server, self.pause_after_scale, self.now = server, pause_after_scale, now
        self.errors: tuple[type[Exception], ...] = (kubernetes.client.ApiException, election.NotLeader)  # the actuator's
        self.view = view_module.View(clock=lambda: self.now)  # its own clock, as the scaler's
        for obj in server.objects.values():
            self.view.upsert(copy.deepcopy(obj))
        self.evaluator = loop.Evaluator(self.view, self, 60.0, 4, clock=lambda: self.now,  # type: ignore[arg-type]
                                        status_writer=self)
        self.scaler = scaler_module.Scaler(self.view, self.evaluator, self, actuator.Actuators({"kubernetes": self}),  # type: ignore[arg-type,dict-item]
                                           None, clock=lambda: self.now, leading=lambda: not self.server.paused)
        runtime.participate(self.evaluator, self.scaler)

    # -- the fake API (status writer, events, the policy's uid) ---------------------------------
    async def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
        if self.server.paused:
            raise election.NotLeader("not the leader: patch refused")  # the fence of a paused leader
        if self.server.fail_status:
            raise RuntimeError("the API server is down")
        obj = self.server.objects[(kind, namespace, name)]
        obj["status"] = {**(obj.get("status") or {}), **copy.deepcopy(patch)}
        self.server.status_writes.append(copy.deepcopy(patch))
        return copy.deepcopy(obj)

    def create_event(self, *_: typing.Any) -> None:
        pass

    def current_uid(self, kind: str, namespace: str, name: str) -> str:
        return str(self.server.objects[(kind, namespace, name)]["metadata"]["uid"])

    # -- the actuator ----------------------------------------------------------------------------
    async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        if self.server.paused:
            raise election.NotLeader("not the leader: scale refused")
        if self.server.fail_scale:
            raise kubernetes.client.ApiException(status=self.server.fail_scale, reason="refused or lost")
        before = self.server.replicas()
        self.server.objects[(kind, namespace, name)]["spec"]["replicas"] = replicas
        self.server.scales.append((before, replicas))
        if self.pause_after_scale:
            self.server.paused = True  # SIGSTOP: the rest of this round's writes never arrive
        return replicas

    async def decide(self, cpu: float = 95.0) -> None:
        spec = self.view.valid(KEY, scalingpolicy.ScalingPolicySpec)
        assert spec is not None
        target = self.scaler._target(KEY, spec)
        assert not isinstance(target, str), target
        sampled = self.now - datetime.timedelta(seconds=1)
        samples: dict[scaling.MetricKey, scaling.Sample] = {("cpu", None): scaling.Sample(cpu, sampled, source="prometheus")}
        await self.scaler._decide_and_act(KEY, spec, target, samples, {target.workload_key: ["w2"]})
        try:
            await self.evaluator.round([KEY])  # the status write after the scale (lost if paused)
        except election.NotLeader:
            pass


def scale_events(server: Server) -> list[tuple[int, int]]:
    status = server.objects[KEY].get("status") or {}
    return [(e["from"], e["to"]) for e in status.get("scaleEvents") or []]


def test_a_successor_counts_the_step_of_a_leader_paused_before_its_status_write() -> None:
    """Leader A steps 6 -> 7 and is paused before anything else it writes arrives; B takes over
    5 s later, with cpu still high: one pod per 10 s allows no second step yet. A's step has no
    record, so B counts it from its first read of it (5 s: test_step_limit_successor.py)."""
    async def scenario() -> None:
        server = Server(6)
        await Leader(server, T0, pause_after_scale=True).decide()
        assert server.scales == [(6, 7)]
        assert scale_events(server) == [(6, 7)]  # the intent was in status before the scale
        server.paused = False  # B's writes, from here on
        b = Leader(server, T0 + datetime.timedelta(seconds=5))
        await b.decide()
        assert server.scales == [(6, 7)], "B stepped again within the period"
        b.now = T0 + datetime.timedelta(seconds=11)  # 6 s after B first read A's step
        await b.decide()
        assert server.scales == [(6, 7)], "B stepped within the period from its first read"
        b.now = T0 + datetime.timedelta(seconds=15.5)  # the period is over: B may step
        await b.decide()
        assert server.scales == [(6, 7), (7, 8)]
    asyncio.run(scenario())


def test_the_intent_is_written_before_the_scale_and_the_step_is_recorded_once() -> None:
    async def scenario() -> None:
        server = Server(3)
        await Leader(server, T0).decide()
        assert server.scales == [(3, 4)]
        first = server.status_writes[0]
        assert [(e["from"], e["to"]) for e in first["scaleEvents"]] == [(3, 4)]
        assert "lastDecision" not in first  # the intent says only what the step limit counts
        status = server.objects[KEY]["status"]
        assert scale_events(server) == [(3, 4)]  # the record after the scale: the same step, once
        assert status["lastDecision"]["actuated"] is True
    asyncio.run(scenario())


def test_no_scale_without_its_intent_in_status() -> None:
    """The intent could not be written (API server down): the workload is not touched."""
    async def scenario() -> None:
        server = Server(3)
        server.fail_status = True
        await Leader(server, T0).decide()
        assert server.scales == []
    asyncio.run(scenario())


def test_a_scale_that_failed_is_withdrawn_from_the_period() -> None:
    """A refused scale is not a step: its intent leaves status, and the next round retries at
    once instead of waiting out a period for a step that never happened."""
    async def scenario() -> None:
        server = Server(3)
        server.fail_scale = 409  # answered: nothing changed
        leader = Leader(server, T0)
        await leader.decide()
        assert server.scales == []
        assert scale_events(server) == []
        server.fail_scale = 0
        leader.now = T0 + datetime.timedelta(seconds=5)
        await leader.decide()
        assert server.scales == [(3, 4)]
    asyncio.run(scenario())


def test_a_scale_whose_outcome_is_unknown_still_counts() -> None:
    """A 504 (or a reset after the request left) may have scaled: the intent stays, and counts."""
    async def scenario() -> None:
        server = Server(3)
        server.fail_scale = 504
        leader = Leader(server, T0)
        await leader.decide()
        assert scale_events(server) == [(3, 4)]
        server.fail_scale = 0
        leader.now = T0 + datetime.timedelta(seconds=5)
        await leader.decide()
        assert server.scales == []  # within the period of the step that may have happened
        leader.now = T0 + datetime.timedelta(seconds=11)
        await leader.decide()
        assert server.scales == [(3, 4)]
    asyncio.run(scenario())


@pytest.mark.parametrize("moment", ["before", "after"])
def test_a_fenced_leader_only_makes_the_limit_more_conservative(moment: str) -> None:
    """A leader paused after writing its intent but before the scale: its scale is refused by the
    fence when it wakes. Its successor counts a step that did not happen (no step for one
    period from when it first read it), never one less than happened."""
    async def scenario() -> None:
        server = Server(6)
        a = Leader(server, T0)

        async def paused(kind: str, namespace: str, name: str, replicas: int) -> int:
            server.paused = True  # SIGSTOP between the intent and the scale; the Lease is lost
            raise election.NotLeader("not the leader: scale refused")
        a.set_replicas = paused  # type: ignore[method-assign]
        await a.decide()  # the fence's refusal ends the decision in its error boundary
        assert server.scales == [] and scale_events(server) == [(6, 7)]
        server.paused = False
        b = Leader(server, T0 + datetime.timedelta(seconds=5 if moment == "before" else 11))
        await b.decide()
        assert server.scales == []
        b.now += datetime.timedelta(seconds=10.5)  # a period after B first read the intent
        await b.decide()
        assert server.scales == [(6, 7)]
    asyncio.run(scenario())
