"""Pre-deploy hooks (core/predeploy.py, the guard's side in operator/guard.py, the restore patch
in adapters/kubernetes_rollback.py): the current template approved on adoption without a Job, a
new template gated until its hooks succeed, then unpaused and paused again once its rollout is
over, a failure restoring the approved template, and never a second Job for one template."""

from __future__ import annotations

import asyncio
import copy
import datetime
import typing

import pytest

from controller.adapters import kubernetes_gate
from controller.adapters import kubernetes_rollback
from controller.api import monitoredservice as api
from controller.core import hooks
from controller.core import predeploy
from controller.operator import view as view_module
from tests.unit import test_guard_hooks as fakes

NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
HOOKS = [api.Hook.model_validate({"name": "migrate", "timeoutSeconds": 120,
                                  "job": {"containers": [{"name": "m", "image": "migrate:1"}]}})]
OLD, NEW = "a" * 64, "b" * 64
WHO = hooks.Observed("web", "svc-uid", "deploy-uid")


def view(digest: str, paused: bool = True, complete: bool = True, settled: bool = True,
         uid: str = "deploy-uid") -> predeploy.GateView:
    return predeploy.GateView(digest, paused, complete, settled, uid)


def job(name: str, state: str) -> hooks.JobView:
    return {"running": hooks.JobView(found=True, owner_uid="svc-uid"),
            "done": hooks.JobView(found=True, owner_uid="svc-uid", succeeded=True),
            "failed": hooks.JobView(found=True, owner_uid="svc-uid", failed="BackoffLimitExceeded: Job has reached "
                                                                          "the specified backoff limit")}[state]


def seen(status: typing.Mapping[str, typing.Any], state: str) -> hooks.Observed:
    return hooks.Observed("web", "svc-uid", "deploy-uid", {e["job"]: job(e["job"], state) for e in status["hooks"]})


def test_a_template_digest_is_canonical_and_a_replica_sets_digests_as_its_deployments() -> None:
    template = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": "w:1"}]}}
    reordered = {"spec": {"containers": [{"image": "w:1", "name": "w"}]}, "metadata": {"labels": {"app": "web"}}}
    of_replica_set = {"metadata": {"labels": {"app": "web", "pod-template-hash": "5d8f"}}, "spec": template["spec"]}
    assert predeploy.template_digest(template) == predeploy.template_digest(reordered)
    assert predeploy.template_digest(template) == predeploy.template_digest(of_replica_set)
    changed = copy.deepcopy(template)
    changed["spec"]["containers"][0]["image"] = "w:2"
    assert predeploy.template_digest(template) != predeploy.template_digest(changed)


def test_on_adoption_the_current_template_is_approved_without_a_job_and_paused_once_settled() -> None:
    rolling = predeploy.decide(HOOKS, None, view(OLD, paused=False, complete=False, settled=False), WHO, NOW)
    assert rolling.status["approved"] == [OLD] and rolling.action is None and not rolling.create
    assert rolling.status["phase"] == predeploy.RELEASING  # its own rollout is not stopped
    later = predeploy.decide(HOOKS, rolling.status, view(OLD, paused=False), WHO, NOW)
    assert later.action == predeploy.PAUSE and not later.create and later.status["phase"] == predeploy.APPROVED


def test_a_new_template_is_gated_its_jobs_decided_and_the_deployment_kept_paused() -> None:
    adopted = predeploy.decide(HOOKS, None, view(OLD), WHO, NOW).status
    gated = predeploy.decide(HOOKS, adopted, view(NEW), WHO, NOW)
    name = hooks.job_name("web", "svc-uid", "deploy-uid", NEW, "migrate")
    assert gated.create == (name,) and gated.action is None and gated.status["phase"] == predeploy.GATING
    assert gated.status["candidate"] == NEW and gated.status["approved"] == [OLD]
    # Not paused (someone unpaused it, or an approved rollout still ran): the gate pauses it.
    assert predeploy.decide(HOOKS, adopted, view(NEW, paused=False), WHO, NOW).action == predeploy.PAUSE
    running = predeploy.decide(HOOKS, gated.status, view(NEW), seen(gated.status, "running"), NOW)
    assert running.action is None and running.create == () and running.status["phase"] == predeploy.GATING


def test_success_approves_and_unpauses_then_pauses_again_once_the_rollout_is_over() -> None:
    gated = predeploy.decide(HOOKS, predeploy.decide(HOOKS, None, view(OLD), WHO, NOW).status, view(NEW), WHO, NOW)
    passed = predeploy.decide(HOOKS, gated.status, view(NEW), seen(gated.status, "done"), NOW)
    assert passed.action == predeploy.UNPAUSE and passed.status["approved"] == [NEW, OLD]
    assert passed.status["phase"] == predeploy.RELEASING and passed.event is None
    rolling = predeploy.decide(HOOKS, passed.status, view(NEW, paused=False, complete=False, settled=False), WHO, NOW)
    assert rolling.action is None and rolling.status["phase"] == predeploy.RELEASING
    analysing = predeploy.decide(HOOKS, passed.status, view(NEW, paused=False, settled=False), WHO, NOW)
    assert analysing.action is None  # paused only once the guard's verdict is final (a rollback needs it unpaused)
    over = predeploy.decide(HOOKS, analysing.status, view(NEW, paused=False), WHO, NOW)
    assert over.action == predeploy.PAUSE and over.status["phase"] == predeploy.APPROVED


def test_a_failure_restores_the_approved_template_with_a_warning_naming_the_hook_and_job() -> None:
    gated = predeploy.decide(HOOKS, predeploy.decide(HOOKS, None, view(OLD), WHO, NOW).status, view(NEW), WHO, NOW)
    failed = predeploy.decide(HOOKS, gated.status, view(NEW), seen(gated.status, "failed"), NOW)
    name = gated.create[0]
    assert failed.action == predeploy.RESTORE and failed.status["phase"] == predeploy.FAILED
    assert failed.event is not None and failed.event[:2] == ("Warning", "RolloutFailed")
    assert f"hook migrate: Job {name} failed: BackoffLimitExceeded" in failed.event[2]
    assert failed.failure == failed.status["reason"] and NEW not in failed.status["approved"]
    again = predeploy.decide(HOOKS, failed.status, view(NEW), WHO, NOW)  # not restored yet: asked again, said once
    assert again.action == predeploy.RESTORE and again.event is None and again.create == ()
    restored = predeploy.decide(HOOKS, again.status, view(OLD), WHO, NOW)
    assert restored.action is None and restored.status["phase"] == predeploy.FAILED and restored.failure
    assert restored.status["candidate"] is None


def test_a_hook_that_does_not_succeed_in_time_fails_the_gate() -> None:
    gated = predeploy.decide(HOOKS, predeploy.decide(HOOKS, None, view(OLD), WHO, NOW).status, view(NEW), WHO, NOW)
    late = NOW + datetime.timedelta(seconds=120)
    timed_out = predeploy.decide(HOOKS, gated.status, view(NEW), seen(gated.status, "running"), late)
    assert timed_out.action == predeploy.RESTORE and "did not succeed within 120s" in timed_out.status["reason"]


def test_after_a_restart_the_same_template_names_the_same_job_and_decides_none_anew() -> None:
    adopted = predeploy.decide(HOOKS, None, view(OLD), WHO, NOW).status
    gated = predeploy.decide(HOOKS, adopted, view(NEW), WHO, NOW)
    # A successor reads status as written (the Job's name, Pending) and the Job as it is.
    successor = predeploy.decide(HOOKS, copy.deepcopy(gated.status), view(NEW), seen(gated.status, "running"),
                                 NOW + datetime.timedelta(seconds=5))
    assert successor.create == () and successor.status["hooks"][0]["job"] == gated.create[0]
    # Even from an empty memory, the name is the same (a create meets AlreadyExists: that Job).
    assert predeploy.decide(HOOKS, adopted, view(NEW), WHO, NOW).create == gated.create


def test_a_template_approved_earlier_passes_without_a_job() -> None:
    status = {"phase": predeploy.APPROVED, "reason": "", "approved": [NEW, OLD], "candidate": None, "hooks": [],
              "deployment": "deploy-uid"}
    back = predeploy.decide(HOOKS, status, view(OLD, paused=False, complete=False, settled=False), WHO, NOW)
    assert back.create == () and back.action is None and back.status["approved"] == [OLD, NEW]


def replica_set(revision: str, image: str, uid: str = "deploy-uid") -> dict[str, typing.Any]:
    return {"metadata": {"name": f"web-{revision}", "ownerReferences": [{"uid": uid}],
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": f"h{revision}"}},
                                  "spec": {"containers": [{"name": "w", "image": image}]}}}}


def deployment(revision: str, image: str) -> dict[str, typing.Any]:
    return {"metadata": {"uid": "deploy-uid", "resourceVersion": "7",
                         "annotations": {"deployment.kubernetes.io/revision": revision}},
            "spec": {"paused": True, "template": {"metadata": {"labels": {"app": "web"}},
                                                  "spec": {"containers": [{"name": "w", "image": image}]}}}}


def test_the_restore_patch_takes_the_approved_templates_replica_set_and_unpauses_only_past_it() -> None:
    approved = predeploy.template_digest(replica_set("3", "w:1")["spec"]["template"])
    sets = [replica_set("2", "w:0"), replica_set("3", "w:1"), replica_set("9", "w:1", uid="another")]
    revision, patch = kubernetes_rollback.build_restore_patch(deployment("3", "w:2"), sets, approved)
    assert revision == "3" and patch[0]["value"]["metadata"]["labels"] == {"app": "web"}
    assert predeploy.template_digest(patch[0]["value"]) == approved
    assert not [op for op in patch if op["path"] == "/spec/paused"]  # paused, no ReplicaSet of the refused one
    # The deployment controller made a ReplicaSet of the refused template (revision 4): unpause to scale it down.
    _, past = kubernetes_rollback.build_restore_patch(deployment("4", "w:2"), [*sets, replica_set("4", "w:2")], approved)
    assert {"op": "add", "path": "/spec/paused", "value": False} in past
    with pytest.raises(kubernetes_rollback.RollbackError, match="no ReplicaSet of the approved template"):
        kubernetes_rollback.build_restore_patch(deployment("3", "w:2"), sets, "c" * 64)


# -- the guard's side: the real evaluator, a recording status writer, fake Jobs and gate ----------

def gated_deployment(image: str, revision: str = "1", paused: bool = True) -> dict[str, typing.Any]:
    obj = fakes.deployment(revision)
    obj["spec"]["paused"] = paused
    obj["spec"]["template"] = {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "w", "image": image}]}}
    if image != "w:1":
        obj["status"]["updatedReplicas"] = 0  # paused: no ReplicaSet for the new template
    return obj


SERVICE = copy.deepcopy(fakes.SERVICE)
SERVICE["spec"]["rollout"]["hooks"] = {"preDeploy": [{"name": "migrate", "timeoutSeconds": 120, "job": {
    "containers": [{"name": "m", "image": "migrate:1"}]}}]}


class Gate:
    errors: tuple[type[Exception], ...] = (kubernetes_gate.GateError,)

    def __init__(self, log: fakes.Log) -> None:
        self.log = log

    async def pause(self, namespace: str, name: str, uid: str, paused: bool, digest: str) -> bool:
        self.log.entries.append(f"{'pause' if paused else 'unpause'} {digest[:8]}")
        return True

    async def restore(self, namespace: str, name: str, uid: str, approved: str) -> str:
        self.log.entries.append(f"restore {approved[:8]}")
        return "1"


def started(log: fakes.Log, jobs: fakes.Jobs, events: fakes.Events | None = None
            ) -> tuple[view_module.View, typing.Any]:
    view = view_module.View()
    view.upsert(gated_deployment("w:1"))
    view.upsert(copy.deepcopy(SERVICE))
    guard = fakes.guard(view, log, jobs, events=events)
    guard.gate = Gate(log)
    asyncio.run(guard.rollout_round())  # adoption: w:1 approved
    asyncio.run(guard.evaluator.reconcile_now(fakes.KEY))
    view.upsert(gated_deployment("w:2"))
    asyncio.run(guard.rollout_round())  # w:2 gated: its Job decided, written, created
    return view, guard


def gate_status(view: view_module.View) -> dict[str, typing.Any]:
    return view.objects[fakes.KEY]["status"]["rollout"]["preDeploy"]


def test_the_guard_writes_the_jobs_name_before_creating_it_and_unpauses_only_after_approving() -> None:
    log, jobs = fakes.Log(), fakes.Jobs(fakes.Log())
    view, guard = started(log, jobs)
    name = gate_status(view)["hooks"][0]["job"]
    assert [e for e in log.entries if "pause" in e] == []  # paused already: nothing to patch
    assert gate_status(view)["phase"] == predeploy.GATING and list(jobs.existing) == [name]
    successor = fakes.guard(view, log, jobs)  # a restart: the name is in status, no second Job
    successor.gate = Gate(log)
    asyncio.run(successor.rollout_round())
    assert list(jobs.existing) == [name]
    jobs.existing[name]["status"] = {"conditions": [{"type": "Complete", "status": "True"}]}
    digest = predeploy.template_digest(gated_deployment("w:2")["spec"]["template"])
    written: list[str] = []
    successor.gate.pause = lambda *args: _record(written, view, args)  # type: ignore[method-assign]
    asyncio.run(successor.rollout_round())
    assert written == [f"unpause {digest[:8]} with {digest[:8]} approved in status"]  # the approval written first


async def _record(written: list[str], view: view_module.View, args: tuple[typing.Any, ...]) -> bool:
    written.append(f"{'pause' if args[3] else 'unpause'} {args[4][:8]} with {gate_status(view)['approved'][0][:8]} "
                   "approved in status")
    return True


def test_the_guard_restores_the_template_and_warns_when_the_job_fails() -> None:
    log, jobs, events = fakes.Log(), fakes.Jobs(fakes.Log()), fakes.Events()
    view, guard = started(log, jobs, events)
    name = gate_status(view)["hooks"][0]["job"]
    jobs.existing[name]["status"] = {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}
    asyncio.run(guard.rollout_round())
    assert log.entries[-1].startswith("restore ") and gate_status(view)["phase"] == predeploy.FAILED
    [(reason, message)] = [e for e in events.events if e[0] == "RolloutFailed"]
    assert f"pre-deploy hook migrate: Job {name} failed: BackoffLimitExceeded" in message
    condition = next(c for c in view.objects[fakes.KEY]["status"]["conditions"] if c["type"] == "RolloutHealthy")
    assert condition["status"] == "False" and "pre-deploy hook migrate" in condition["message"]


def test_removing_the_hooks_unpauses_the_deployment_and_forgets_the_gate() -> None:
    log, jobs = fakes.Log(), fakes.Jobs(fakes.Log())
    view, guard = started(log, jobs)
    unhooked = copy.deepcopy(view.objects[fakes.KEY])
    unhooked["spec"]["rollout"]["hooks"] = {}
    unhooked["metadata"]["generation"] = 2
    unhooked["metadata"]["resourceVersion"] = str(int(unhooked["metadata"]["resourceVersion"]) + 1)
    view.upsert(unhooked)
    asyncio.run(guard.rollout_round())
    asyncio.run(guard.evaluator.reconcile_now(fakes.KEY))
    assert sum(1 for e in log.entries if e.startswith("unpause ")) == 1
    assert not [v for v in gate_status(view).values() if v is not None]  # every field removed
    asyncio.run(guard.rollout_round())
    assert sum(1 for e in log.entries if e.startswith("unpause ")) == 1


def test_a_recreated_or_retargeted_deployment_is_adopted_anew_without_a_job() -> None:
    gated = predeploy.decide(HOOKS, predeploy.decide(HOOKS, None, view(OLD), WHO, NOW).status, view(NEW), WHO, NOW)
    other = predeploy.decide(HOOKS, gated.status, view(NEW, paused=False, uid="another-uid"), WHO, NOW)
    assert other.create == () and other.status["approved"] == [NEW] and other.status["deployment"] == "another-uid"
    assert other.action == predeploy.PAUSE and other.status["phase"] == predeploy.APPROVED
