"""The guard's side of post-deploy hooks (operator/guard.py), on the real evaluator with a
recording status writer and fake Jobs: a Job's name is in status before the Job is created,
a second guard (a restart, a new leader) creates none again, a refused create fails the hook
and rolls the revision back, and hooks turned off fail rather than pass."""

from __future__ import annotations

import asyncio
import copy
import typing

from controller.adapters import kubernetes_jobs
from controller.core import hooks
from controller.operator import guard as guard_module
from controller.operator import loop
from controller.operator import runtime
from controller.operator import view as view_module

NAMESPACE = "shop"
KEY = ("MonitoredService", NAMESPACE, "web")


def deployment(revision: str) -> dict[str, typing.Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"namespace": NAMESPACE, "name": "web", "generation": 1, "uid": "deploy-uid",
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}}


SERVICE = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
           "metadata": {"namespace": NAMESPACE, "name": "web", "generation": 1, "resourceVersion": "1", "uid": "svc-uid"},
           "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}}, "rollout": {
               "autoRollback": True, "analysis": {"windowSeconds": 60, "requireHealthyChecks": False},
               "hooks": {"postDeploy": [{"name": "smoke", "timeoutSeconds": 60, "job": {
                   "containers": [{"name": "smoke", "image": "smoke:1"}]}}]}}}}


class Log:
    def __init__(self) -> None:
        self.entries: list[str] = []


class Writer:
    """Answers a status patch as the API server would; logs whether it carried hook entries."""

    def __init__(self, view: view_module.View, log: Log) -> None:
        self.view, self.log = view, log

    async def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
        await asyncio.sleep(0)
        jobs = [entry["job"] for entry in (patch.get("rollout") or {}).get("hooks") or []]
        self.log.entries.append(f"status {jobs}")
        obj = copy.deepcopy(dict(self.view.objects[(kind, namespace, name)]))
        obj["status"] = {**(obj.get("status") or {}), **patch}
        obj["metadata"] = {**obj["metadata"], "resourceVersion": str(int(obj["metadata"]["resourceVersion"]) + 1)}
        return obj


class Events:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []

    def create_event(self, obj: typing.Mapping[str, typing.Any], event: typing.Any, now: typing.Any) -> None:
        self.events.append((event.reason, event.message))


class Jobs:
    errors: tuple[type[Exception], ...] = (kubernetes_jobs.JobError,)
    refused: type[Exception] = kubernetes_jobs.JobRefused

    def __init__(self, log: Log, refuse: str | None = None) -> None:
        self.log, self.refuse = log, refuse
        self.existing: dict[str, dict[str, typing.Any]] = {}

    async def read(self, namespace: str, name: str) -> hooks.JobView:
        return hooks.judge_job(self.existing.get(name))

    async def create(self, namespace: str, body: dict[str, typing.Any]) -> bool:
        name = body["metadata"]["name"]
        self.log.entries.append(f"create {name}")
        if self.refuse is not None:
            raise kubernetes_jobs.JobRefused(self.refuse)
        if name in self.existing:
            return False
        self.existing[name] = body
        return True


class Rollbacks:
    errors = (RuntimeError,)

    def __init__(self) -> None:
        self.calls: list[str] = []

    def supports(self, kind: str) -> bool:
        return kind == "Deployment"

    async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str:
        self.calls.append(failed_revision)
        return "1"


async def no_metrics(*_: typing.Any) -> dict:
    return {}


def guard(view: view_module.View, log: Log, jobs: Jobs | None, rollbacks: Rollbacks | None = None,
          events: Events | None = None, own_namespace: str = "capliquify-system") -> guard_module.Guard:
    evaluator = loop.Evaluator(view, events or Events(), 60.0, 4, status_writer=Writer(view, log))  # type: ignore[arg-type]
    guard = guard_module.Guard(view, evaluator, None, rollbacks or Rollbacks(), no_metrics, jobs=jobs,  # type: ignore[arg-type]
                               own_namespace=own_namespace)
    runtime.participate(evaluator, guard)
    return guard


def new_revision(log: Log, jobs: Jobs | None, **kwargs: typing.Any) -> tuple[view_module.View, guard_module.Guard]:
    view = view_module.View()
    view.upsert(deployment("1"))
    view.upsert(copy.deepcopy(SERVICE))
    first = guard(view, log, jobs, **kwargs)
    asyncio.run(first.rollout_round())  # revision 1: the baseline
    asyncio.run(first.evaluator.reconcile_now(KEY))
    view.upsert(deployment("2"))
    asyncio.run(first.rollout_round())  # revision 2, available: its hook is decided
    return view, first


def rollout(view: view_module.View) -> dict[str, typing.Any]:
    return view.objects[KEY]["status"]["rollout"]


def test_the_jobs_name_is_in_status_before_the_job_is_created_and_a_successor_creates_none() -> None:
    log = Log()
    jobs = Jobs(log)
    view, _ = new_revision(log, jobs)
    name = hooks.job_name("web", "svc-uid", "deploy-uid", "2", "smoke")
    assert log.entries[-2:] == [f"status ['{name}']", f"create {name}"], log.entries
    assert rollout(view)["hooks"][0]["job"] == name

    successor = guard(view, log, jobs)  # a restart, or a new leader: memory empty, status as written
    asyncio.run(successor.rollout_round())
    asyncio.run(successor.evaluator.reconcile_now(KEY))
    assert [e for e in log.entries if e.startswith("create")] == [f"create {name}"]
    assert rollout(view)["hooks"][0]["phase"] == "Running"


def test_a_refused_create_fails_the_hook_and_rolls_the_revision_back() -> None:
    log, rollbacks, events = Log(), Rollbacks(), Events()
    view, first = new_revision(log, Jobs(log, refuse="403 Forbidden: jobs.batch is forbidden"),
                               rollbacks=rollbacks, events=events)
    asyncio.run(first.rollout_round())
    assert rollbacks.calls == ["2"]
    [(reason, message)] = [e for e in events.events if e[0] == "RolledBack"]
    assert "hook smoke: Job web-smoke-" in message and "could not be created: 403 Forbidden" in message


def test_hooks_turned_off_fail_saying_so_and_create_nothing() -> None:
    log, rollbacks, events = Log(), Rollbacks(), Events()
    view, first = new_revision(log, None, rollbacks=rollbacks, events=events)
    asyncio.run(first.rollout_round())
    assert not [e for e in log.entries if e.startswith("create")]
    assert rollbacks.calls == ["2"]
    assert any(guard_module.HOOKS_DISABLED in message for reason, message in events.events if reason == "RolledBack")


def test_hooks_are_refused_in_the_operators_own_namespace() -> None:
    """There a hook could name the operator's ServiceAccount: no Job is created, the hook fails."""
    log, rollbacks, events = Log(), Rollbacks(), Events()
    view, first = new_revision(log, Jobs(log), rollbacks=rollbacks, events=events, own_namespace=NAMESPACE)
    asyncio.run(first.rollout_round())
    assert not [e for e in log.entries if e.startswith("create")]
    assert rollbacks.calls == ["2"]
    assert any(guard_module.OWN_NAMESPACE in message for reason, message in events.events if reason == "RolledBack")
