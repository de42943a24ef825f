"""Golden file of what the operator writes to status (prometheus-operator's habit): representative
scaling, rollout and alert rounds run through the real Evaluator, Scaler, Guard and Alerter with a
fixed clock; every status patch they send is rendered in tests/golden/status-patches.yaml, so a
change to what users and tools read shows up as a diff in review.

`make golden` (CAPLIQUIFY_UPDATE_GOLDEN=1) rewrites it, as it does the other golden files."""

from __future__ import annotations

import asyncio
import datetime
import os
import pathlib
import typing

import yaml

from controller.api import alertpolicy
from controller.api import scalingpolicy
from controller.core import scaling
from controller.core import scaling_status
from controller.operator import alerter as alerter_module
from controller.operator import guard as guard_module
from controller.operator import loop
from controller.operator import runtime
from controller.operator import scaler as scaler_module
from controller.operator import snapshots as snapshots_module
from controller.operator import view as view_module

GOLDEN = pathlib.Path(__file__).resolve().parents[1] / "golden" / "status-patches.yaml"
NAMESPACE = "shop"
T0 = datetime.datetime(2026, 12, 6, 4, 0, tzinfo=datetime.timezone.utc)
CRD = "ops.capliquify.io/v1alpha1"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now

    def at(self, seconds: float) -> datetime.datetime:
        self.now = T0 + datetime.timedelta(seconds=seconds)
        return self.now


class Writer:
    """Answers each status patch as the API server would (merged into the object) and keeps it."""

    def __init__(self, view: view_module.View) -> None:
        self.view = view
        self.patches: list[tuple[str, dict[str, typing.Any]]] = []

    async def patch_status(self, kind: str, namespace: str, name: str,
                           patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
        self.patches.append((f"{kind}/{name}", patch))
        obj = dict(self.view.objects[(kind, namespace, name)])
        obj["status"] = _merged(obj.get("status") or {}, patch)
        obj["metadata"] = {**obj["metadata"], "resourceVersion": str(int(obj["metadata"]["resourceVersion"]) + 1)}
        return obj


def _merged(current: typing.Mapping[str, typing.Any], patch: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
    """A JSON merge patch (RFC 7386), as the API server applies it."""
    out = dict(current)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merged(out[key], value)
        else:
            out[key] = value
    return out


class Events:
    def __init__(self) -> None:
        self.posted: list[str] = []

    def create_event(self, obj: typing.Mapping[str, typing.Any], event: typing.Any, now: typing.Any) -> None:
        self.posted.append(f"{obj['kind']}/{obj['metadata']['name']} {event.type} {event.reason}: {event.message}")


class Harness:
    def __init__(self) -> None:
        self.clock = Clock()
        self.view = view_module.View()
        self.events = Events()
        self.writer = Writer(self.view)
        self.evaluator = loop.Evaluator(self.view, self.events, 60.0, 4, clock=self.clock,  # type: ignore[arg-type]
                                        status_writer=self.writer)
        self.rounds: list[tuple[str, list[tuple[str, dict[str, typing.Any]]], list[str]]] = []

    def upsert(self, obj: dict[str, typing.Any]) -> None:
        old = self.view.objects.get((obj["kind"], NAMESPACE, obj["metadata"]["name"]))
        version = int(old["metadata"]["resourceVersion"]) + 1 if old else 1
        self.view.upsert({**obj, "metadata": {**obj["metadata"], "resourceVersion": str(version)},
                          **({"status": old.get("status")} if old and "status" in old else {})})

    async def write(self, title: str, *keys: view_module.Key) -> None:
        """One round's writes: the objects the round marked, and `keys`, judged and written."""
        for key in sorted({*self.evaluator.dirty, *keys}):
            self.evaluator.dirty.discard(key)
            await self.evaluator.reconcile(key)
        self.rounds.append((title, list(self.writer.patches), list(self.events.posted)))
        self.writer.patches.clear()
        self.events.posted.clear()


def deployment(name: str, replicas: int, revision: str = "1", ready: int | None = None) -> dict[str, typing.Any]:
    ready = replicas if ready is None else ready
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"namespace": NAMESPACE, "name": name, "generation": 1, "uid": f"d-{name}",
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}}},
            "status": {"observedGeneration": 1, "replicas": replicas, "updatedReplicas": ready,
                       "readyReplicas": ready, "availableReplicas": ready}}


def policy(max_replicas: int = 5, generation: int = 1) -> dict[str, typing.Any]:
    return {"apiVersion": CRD, "kind": "ScalingPolicy",
            "metadata": {"namespace": NAMESPACE, "name": "web", "generation": generation, "uid": "p-web"},
            "spec": {"targetRef": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                     "minReplicas": 1, "maxReplicas": max_replicas,
                     "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                     "behavior": {"scaleUp": {"cooldownSeconds": 0}}}}


def service(name: str) -> dict[str, typing.Any]:
    return {"apiVersion": CRD, "kind": "MonitoredService",
            "metadata": {"namespace": NAMESPACE, "name": name, "generation": 1, "uid": f"m-{name}"},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": name}},
                     "rollout": {"autoRollback": True, "progressDeadlineSeconds": 60,
                                 "analysis": {"windowSeconds": 60}}}}


async def scaling_rounds() -> Harness:
    """Up on a hot CPU (acted), hold in the band, metrics lost, pressed at maxReplicas."""
    harness = Harness()
    harness.upsert(deployment("web", 2))
    harness.upsert(policy())
    key = ("ScalingPolicy", NAMESPACE, "web")
    scaler = scaler_module.Scaler(harness.view, harness.evaluator, None, None, None,  # type: ignore[arg-type]
                                  clock=harness.clock)
    scaler.started_at = T0 - datetime.timedelta(minutes=10)
    runtime.participate(harness.evaluator, scaler)
    await harness.write("a new policy, no decision yet", key)
    for seconds, replicas, cpu, title in (
        (0, 2, scaling.Sample(95.0, T0), "cpu 95 % on 2 replicas: scaled up, acted"),
        (30, 3, scaling.Sample(60.0, None), "cpu 60 % on 3: held in the band"),
        (60, 3, scaling.Sample(None, None, error="HTTP 503 from Prometheus"), "the metric is lost: held"),
        (90, 3, scaling.Sample(99.0, None), "cpu 99 % at maxReplicas 3: limited"),
    ):
        now = harness.clock.at(seconds)
        if seconds == 90:
            harness.upsert(policy(max_replicas=3, generation=2))
        harness.upsert(deployment("web", replicas))
        spec = harness.view.valid(key, scalingpolicy.ScalingPolicySpec)
        assert spec is not None
        sample = scaling.Sample(cpu.value, now if cpu.value is not None else None, cpu.error, "prometheus")
        current = harness.view.objects[key].get("status") or {}
        state = scaling_status.state_from_status(current, scaler.started_at, scaler.memory.get(key))
        outcome = scaling.decide(spec, replicas, {("cpu", None): sample}, state, now)
        scaler.records[key] = scaling_status.Record(outcome, now, actuated=outcome.direction != "Hold")
        await harness.write(title, key)
    return harness


class Rollbacks:
    errors = (RuntimeError,)

    def supports(self, kind: str) -> bool:
        return kind == "Deployment"

    async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str:
        return str(int(failed_revision) + 1)  # the Deployment controller's next revision


async def no_metrics(*_: typing.Any) -> dict:
    return {}


async def rollout_rounds() -> Harness:
    """A baseline, a revision rolled out and analysed to Healthy, one that misses its deadline
    and is rolled back (intent written first), and the rollback's own revision."""
    harness = Harness()
    key = ("MonitoredService", NAMESPACE, "api")
    harness.upsert(deployment("api", 2, "1"))
    harness.upsert(service("api"))
    guard = guard_module.Guard(harness.view, harness.evaluator, None, Rollbacks(), no_metrics,  # type: ignore[arg-type]
                               clock=harness.clock)
    runtime.participate(harness.evaluator, guard)
    for seconds, revision, ready, title in (
        (0, "1", 2, "revision 1 available when first seen"),
        (10, "2", 1, "revision 2 rolling out"),
        (20, "2", 2, "revision 2 available: analysing"),
        (90, "2", 2, "revision 2 passed its analysis"),
        (100, "3", 1, "revision 3 rolling out"),
        (170, "3", 1, "revision 3 past its deadline: rolled back"),
        (180, "4", 2, "revision 4, the rollback's, available"),
    ):
        harness.clock.at(seconds)
        harness.upsert(deployment("api", 2, revision, ready))
        await guard.rollout_round()
        await harness.write(title, key)
    return harness


class Snapshots:
    interval_seconds = 30.0

    def __init__(self) -> None:
        self.readings: dict[typing.Any, snapshots_module.Reading] = {}


class Webhook:
    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, channel: alertpolicy.Channel, message: typing.Any, secret: typing.Any) -> None:
        self.sent.append(message.notification.kind)


def alert_policy() -> dict[str, typing.Any]:
    return {"apiVersion": CRD, "kind": "AlertPolicy",
            "metadata": {"namespace": NAMESPACE, "name": "pager", "generation": 1, "uid": "a-pager"},
            "spec": {"serviceRef": "api",
                     "rules": [{"name": "HighErrorRate", "metric": "errorRate", "threshold": 5, "severity": "critical"}],
                     "channels": [{"name": "hook", "webhook": {"url": "https://hooks.example.com/alerts"}}],
                     "routes": [{"severity": "critical", "channels": ["hook"]}]}}


async def alert_rounds() -> Harness:
    """An error rate over its threshold fires (the outbox written before the send), the send is
    recorded, then it resolves."""
    harness = Harness()
    key = ("AlertPolicy", NAMESPACE, "pager")
    harness.upsert(deployment("api", 2))
    harness.upsert(service("api"))
    harness.upsert(alert_policy())
    snapshots = Snapshots()
    alerter = alerter_module.Alerter(harness.view, harness.evaluator, None, snapshots,  # type: ignore[arg-type]
                                     {"webhook": Webhook()}, clock=harness.clock)
    runtime.participate(harness.evaluator, alerter)
    for seconds, error_rate, title in (
        (0, 1.0, "error rate 1 %: nothing fires"),
        (30, 9.0, "error rate 9 %: firing, notified"),
        (60, 9.5, "still firing: nothing new"),
        (90, 0.5, "error rate 0.5 %: resolved, notified"),
    ):
        now = harness.clock.at(seconds)
        snapshots.readings[("MonitoredService", NAMESPACE, "api")] = snapshots_module.Reading(
            now, {("errorRate", None): scaling.Sample(error_rate, now, source="prometheus")})
        await alerter.round()
        await harness.write(title, key)
    return harness


def _rendered() -> str:
    async def run() -> list[tuple[str, Harness]]:
        return [("scaling", await scaling_rounds()), ("rollout", await rollout_rounds()),
                ("alerting", await alert_rounds())]

    documents = []
    for name, harness in asyncio.run(run()):
        for title, patches, events in harness.rounds:
            documents.append({"scenario": name, "round": title,
                              "patches": [{"object": obj, "status": patch} for obj, patch in patches],
                              **({"events": events} if events else {})})
    return yaml.safe_dump_all(documents, sort_keys=True, width=120, allow_unicode=True)


def test_the_status_the_operator_writes_matches_the_golden_file() -> None:
    rendered = _rendered()
    if os.environ.get("CAPLIQUIFY_UPDATE_GOLDEN"):
        GOLDEN.write_text(rendered)
    assert GOLDEN.read_text() == rendered, f"the status patches differ from {GOLDEN.name}; review, then `make golden`"
