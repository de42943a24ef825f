"""The evaluation loop's write order: a verdict that announces a problem is written before
"all is well" verdicts judged earlier (issue 10: at 10,000 objects a start-up writes for a
minute, and a broken object's Warning must not wait behind it)."""

from __future__ import annotations

import asyncio
import typing

from controller import reasons
from controller.operator import guard as guard_module
from controller.operator import loop
from controller.operator import runtime
from controller.operator import view as view_module

NAMESPACE = "shop"


def policy(name: str) -> dict[str, typing.Any]:
    return {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy",
            "metadata": {"namespace": NAMESPACE, "name": name, "generation": 1, "resourceVersion": "1"},
            "spec": {"targetRef": {"kubernetes": {"kind": "Deployment", "name": name}},
                     "minReplicas": 1, "maxReplicas": 5, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]}}


def deployment(name: str) -> dict[str, typing.Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"namespace": NAMESPACE, "name": name, "generation": 1, "uid": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}}}


class RecordingWriter:
    """Answers each status patch as the API server would (the object with the patch merged)."""

    def __init__(self, view: view_module.View) -> None:
        self.view = view
        self.written: list[str] = []

    async def patch_status(self, kind: str, namespace: str, name: str,
                           patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
        await asyncio.sleep(0)
        self.written.append(name)
        obj = dict(self.view.objects[(kind, namespace, name)])
        obj["status"] = {**(obj.get("status") or {}), **patch}
        obj["metadata"] = {**obj["metadata"], "resourceVersion": "2"}
        return obj


class NoEvents:
    def __init__(self) -> None:
        self.events: list[str] = []

    def create_event(self, obj: typing.Mapping[str, typing.Any], event: typing.Any, now: typing.Any) -> None:
        self.events.append(event.reason)


def evaluator(fine: int, broken: int, concurrency: int) -> tuple[loop.Evaluator, RecordingWriter, NoEvents]:
    view = view_module.View()
    for index in range(fine):
        view.upsert(deployment(f"fine-{index}"))
        view.upsert(policy(f"fine-{index}"))
    for index in range(broken):  # judged last: their Deployments do not exist
        view.upsert(policy(f"zz-broken-{index}"))
    api = NoEvents()
    writer = RecordingWriter(view)
    return loop.Evaluator(view, api, 60.0, concurrency, status_writer=writer), writer, api  # type: ignore[arg-type]


def test_problems_are_written_first_whatever_order_they_are_judged_in() -> None:
    fine, broken = 1000, 5
    judged, writer, api = evaluator(fine, broken, concurrency=4)
    keys = sorted(judged.view.objects)
    assert keys[-1][2].startswith("zz-broken"), "the broken ones are judged last"
    asyncio.run(judged.round(keys))
    assert len(writer.written) == fine + broken, "every object written once"
    positions = [writer.written.index(f"zz-broken-{index}") for index in range(broken)]
    assert max(positions) < 50, positions  # in judging order they would be the last five
    assert api.events == [reasons.TARGET_NOT_FOUND] * broken, "a Warning each; no Event for all is well"


def test_write_priority_follows_the_warning_it_announces() -> None:
    ready = {"type": reasons.READY, "status": "True", "reason": "Ready", "message": ""}
    not_ready = {"type": reasons.READY, "status": "False", "reason": reasons.TARGET_NOT_FOUND, "message": "gone"}
    fresh: dict[str, typing.Any] = {"metadata": {}}
    assert loop.write_priority(fresh, {"conditions": [not_ready]}) == 0
    assert loop.write_priority(fresh, {"conditions": [ready]}) == 1
    assert loop.write_priority({"status": {"conditions": [not_ready]}}, {"conditions": [ready]}) == 1
    assert loop.write_priority({"status": {"conditions": [ready]}}, {"conditions": [not_ready]}) == 0
    assert loop.write_priority({"status": {"conditions": [ready]}}, {"currentReplicas": 3}) == 1


class DeploymentsOnly:
    errors = (RuntimeError,)

    def supports(self, kind: str) -> bool:
        return kind == "Deployment"

    async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str:
        raise AssertionError("nothing fails here")


def test_a_services_first_verdict_carries_its_rollout() -> None:
    """The guard judges rollouts of services not yet written Ready (as readiness would judge
    them), so the first status write has the rollout too: one write per object at start-up."""
    view = view_module.View()
    settled = deployment("web")
    settled["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "3"}
    settled["status"] = {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}
    view.upsert(settled)
    view.upsert({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
                 "metadata": {"namespace": NAMESPACE, "name": "web", "generation": 1, "resourceVersion": "1"},
                 "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}}}})
    evaluator = loop.Evaluator(view, NoEvents(), 60.0, 4)  # type: ignore[arg-type]

    async def no_metrics(*_: typing.Any) -> dict:
        return {}

    guard = guard_module.Guard(view, evaluator, None, DeploymentsOnly(), no_metrics)  # type: ignore[arg-type]
    runtime.participate(evaluator, guard)
    asyncio.run(guard.rollout_round())
    patch = evaluator.judge(("MonitoredService", NAMESPACE, "web"))
    assert patch["rollout"]["phase"] == "Healthy" and patch["rollout"]["revision"] == "3"
    assert next(c for c in patch["conditions"] if c["type"] == reasons.READY)["status"] == "True"
