"""Post-deploy hooks (core/hooks.py, judged by core/rollout.py): one Job per revision per hook,
named the same whoever decides it, its status turned into the revision's verdict."""

from __future__ import annotations

import datetime

import pydantic
import pytest

from controller.api import monitoredservice as api
from controller.core import hooks
from controller.core import rollout

T0 = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
SERVICE_UID, WORKLOAD_UID = "11111111-2222-3333-4444-555555555555", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
JOB = {"containers": [{"name": "smoke", "image": "curlimages/curl:8", "command": ["curl", "-f", "http://web/health"]}]}


def spec(*extra: dict, auto_rollback: bool = True, window: int = 120) -> api.Rollout:
    return api.Rollout(autoRollback=auto_rollback, progressDeadlineSeconds=60,
                       analysis={"windowSeconds": window, "requireHealthyChecks": False},
                       hooks={"postDeploy": [{"name": "smoke", "job": JOB, "timeoutSeconds": 60}, *extra]})


def deploy(revision: str) -> rollout.DeploymentView:
    return rollout.DeploymentView(revision=revision, replicas=2, updated=2, available=2, generation=3,
                                  observed_generation=3, paused=False, deadline_exceeded=False)


def seen(jobs: dict[str, hooks.JobView] | None = None) -> rollout.Analysis:
    return rollout.Analysis(error_rate=None, latency_p95=None, health="Healthy",
                            hooks=hooks.Observed("web", SERVICE_UID, WORKLOAD_UID, jobs or {}))


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def analysing(rollout_spec: api.Rollout) -> rollout.Verdict:
    """Revision 1 healthy at first sight, revision 2 available at t=10: the hooks are decided."""
    state = rollout.judge(rollout_spec, deploy("1"), {}, seen(), T0).status
    assert "hooks" not in state, "a revision seen already available runs no hook"
    verdict = rollout.judge(rollout_spec, deploy("2"), state, seen(), at(10))
    assert verdict.status["phase"] == "Analyzing"
    return verdict


def ours(**fields: object) -> hooks.JobView:
    return hooks.JobView(found=True, owner_uid=SERVICE_UID, **fields)  # type: ignore[arg-type]


def test_a_new_revision_decides_one_job_per_hook_with_a_fixed_name() -> None:
    verdict = analysing(spec())
    [entry] = verdict.status["hooks"]
    name = hooks.job_name("web", SERVICE_UID, WORKLOAD_UID, "2", "smoke")
    assert entry == {"name": "smoke", "job": name, "phase": "Pending", "reason": f"Job {name} decided",
                     "startedAt": "2026-12-01T12:00:10Z"}
    assert verdict.create_jobs == (name,)
    # Judged again (a restart reads the entry from status; a new leader too): the same name, one Job.
    again = rollout.judge(spec(), deploy("2"), verdict.status, seen(), at(12))
    assert again.status["hooks"][0]["job"] == name and again.create_jobs == (name,)


def test_job_names_differ_by_revision_workload_service_and_hook_and_fit_a_label() -> None:
    base = hooks.job_name("web", SERVICE_UID, WORKLOAD_UID, "2", "smoke")
    others = {hooks.job_name("web", SERVICE_UID, WORKLOAD_UID, "3", "smoke"),
              hooks.job_name("web", SERVICE_UID, "another-workload", "2", "smoke"),
              hooks.job_name("web", "another-service", WORKLOAD_UID, "2", "smoke"),
              hooks.job_name("web", SERVICE_UID, WORKLOAD_UID, "2", "migrate")}
    assert base not in others and len(others) == 4
    long = hooks.job_name("a." + "b" * 250, SERVICE_UID, WORKLOAD_UID, "2", "x" * api.HOOK_NAME_MAX)
    assert len(long) <= 63 and long[0].isalnum() and "." not in long


def test_a_succeeded_job_lets_the_analysis_pass_at_the_window_end() -> None:
    verdict = analysing(spec())
    name = verdict.create_jobs[0]
    state = rollout.judge(spec(), deploy("2"), verdict.status, seen({name: ours()}), at(12)).status
    assert state["hooks"][0]["phase"] == "Running"
    state = rollout.judge(spec(), deploy("2"), state, seen({name: ours(succeeded=True)}), at(40)).status
    assert state["hooks"][0]["phase"] == "Succeeded" and state["phase"] == "Analyzing"
    final = rollout.judge(spec(), deploy("2"), state, seen(), at(131))
    assert final.status["phase"] == "Healthy" and final.rollback is None and final.create_jobs == ()


def test_a_failed_job_fails_the_revision_and_rolls_it_back_naming_hook_and_job() -> None:
    verdict = analysing(spec())
    name = verdict.create_jobs[0]
    state = rollout.judge(spec(), deploy("2"), verdict.status, seen({name: ours()}), at(12)).status
    failed = ours(failed="BackoffLimitExceeded: Job has reached the specified backoff limit")
    final = rollout.judge(spec(), deploy("2"), state, seen({name: failed}), at(20))
    assert final.rollback == "2" and final.status["phase"] == "RolledBack"
    assert final.event is not None and final.event[:2] == ("Warning", "RolledBack")
    assert f"hook smoke: Job {name} failed: BackoffLimitExceeded" in final.event[2]
    assert final.status["history"][0]["phase"] == "RolledBack"


def test_without_auto_rollback_a_failed_hook_is_reported() -> None:
    verdict = analysing(spec(auto_rollback=False))
    name = verdict.create_jobs[0]
    final = rollout.judge(spec(auto_rollback=False), deploy("2"), verdict.status,
                          seen({name: ours(failed="DeadlineExceeded")}), at(20))
    assert final.rollback is None and final.status["phase"] == "Failed"
    assert final.event == ("Warning", "RolloutFailed", f"analysis of revision 2: hook smoke: Job {name} failed: "
                                                       "DeadlineExceeded")


@pytest.mark.parametrize("view, why", [
    (None, "did not succeed within 60s"),  # never seen (creation kept failing, or the Job hangs)
    (ours(), "did not succeed within 60s"),  # running past its timeout
    (hooks.JobView(found=False, refused="403 Forbidden"), "could not be created: 403 Forbidden"),
    (hooks.JobView(found=True, owner_uid="someone-else", succeeded=True), "exists that this service did not create"),
])
def test_timeouts_refusals_and_foreign_jobs_fail_the_hook(view: hooks.JobView | None, why: str) -> None:
    verdict = analysing(spec())
    name = verdict.create_jobs[0]
    jobs = {} if view is None else {name: view}
    state = verdict.status
    for seconds in (30, 71):
        state = rollout.judge(spec(), deploy("2"), state, seen(jobs), at(seconds)).status
        if state["phase"] != "Analyzing":
            break
    assert state["phase"] == "RolledBack" and why in state["history"][0]["reason"], state


def test_a_running_job_deleted_before_it_finished_fails() -> None:
    verdict = analysing(spec())
    name = verdict.create_jobs[0]
    state = rollout.judge(spec(), deploy("2"), verdict.status, seen({name: ours()}), at(12)).status
    final = rollout.judge(spec(), deploy("2"), state, seen({name: hooks.JobView(found=False)}), at(14))
    assert final.rollback == "2" and "was deleted before it finished" in final.status["history"][0]["reason"]


def test_a_pending_job_not_found_is_created_again_never_failed() -> None:
    """Decided but the create not seen (a crash between the status write and the create): the
    next judge asks to create the same name again; AlreadyExists is then that Job."""
    verdict = analysing(spec())
    name = verdict.create_jobs[0]
    again = rollout.judge(spec(), deploy("2"), verdict.status, seen({name: hooks.JobView(found=False)}), at(15))
    assert again.status["hooks"][0]["phase"] == "Pending" and again.create_jobs == (name,)


def test_an_optional_hook_that_fails_is_noted_and_does_not_fail_the_revision() -> None:
    optional = {"name": "report", "job": JOB, "timeoutSeconds": 60, "failRollout": False}
    verdict = analysing(spec(optional))
    smoke, report = verdict.create_jobs
    state = rollout.judge(spec(optional), deploy("2"), verdict.status,
                          seen({smoke: ours(succeeded=True), report: ours(failed="BackoffLimitExceeded")}), at(20)).status
    assert state["phase"] == "Analyzing"
    final = rollout.judge(spec(optional), deploy("2"), state, seen(), at(131)).status
    assert final["phase"] == "Healthy" and "hook report failed, not required" in final["reason"]


def test_the_window_waits_for_a_hook_still_running() -> None:
    """A hook decided late (added to the spec during analysis) holds the verdict until it ends."""
    plain = api.Rollout(autoRollback=True, progressDeadlineSeconds=60, analysis={"windowSeconds": 120,
                                                                                 "requireHealthyChecks": False})
    state = rollout.judge(plain, deploy("1"), {}, seen(), T0).status
    state = rollout.judge(plain, deploy("2"), state, seen(), at(10)).status
    state = rollout.judge(spec(), deploy("2"), state, seen(), at(100)).status  # hooks added at t=100
    name = state["hooks"][0]["job"]
    state = rollout.judge(spec(), deploy("2"), state, seen({name: ours()}), at(131)).status
    assert state["phase"] == "Analyzing"
    state = rollout.judge(spec(), deploy("2"), state, seen({name: ours(succeeded=True)}), at(140)).status
    assert state["phase"] == "Healthy"


def test_a_new_revision_empties_the_previous_ones_hooks() -> None:
    verdict = analysing(spec())
    name = verdict.create_jobs[0]
    state = rollout.judge(spec(), deploy("2"), verdict.status, seen({name: ours(succeeded=True)}), at(20)).status
    rolling = rollout.DeploymentView(revision="3", replicas=2, updated=1, available=1, generation=4,
                                     observed_generation=4, paused=False, deadline_exceeded=False)
    state = rollout.judge(spec(), rolling, state, seen(), at(30)).status
    assert state["phase"] == "Progressing" and state["hooks"] == []
    state = rollout.judge(spec(), deploy("3"), state, seen(), at(40)).status
    assert [(e["job"], e["phase"]) for e in state["hooks"]] == [
        (hooks.job_name("web", SERVICE_UID, WORKLOAD_UID, "3", "smoke"), "Pending")]


def test_judge_job_reads_the_terminal_conditions_and_the_owner() -> None:
    owner = {"ownerReferences": [{"kind": "MonitoredService", "uid": SERVICE_UID}]}
    assert hooks.judge_job(None) == hooks.JobView(found=False)
    assert hooks.judge_job({"metadata": owner, "status": {"active": 1}}) == ours()
    complete = {"metadata": owner, "status": {"conditions": [
        {"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}}
    assert hooks.judge_job(complete) == ours(succeeded=True)
    failed = {"metadata": owner, "status": {"conditions": [
        {"type": "FailureTarget", "status": "True"},
        {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the limit"}]}}
    assert hooks.judge_job(failed) == ours(failed="BackoffLimitExceeded: Job has reached the limit")
    assert hooks.judge_job({"metadata": {}, "status": {}}).owner_uid is None


def test_the_job_runs_the_spec_subset_never_the_operator_and_is_owned_by_the_service() -> None:
    hook = api.Hook.model_validate({"name": "smoke", "timeoutSeconds": 90, "job": {
        "containers": [{"name": "t", "image": "busybox", "args": ["true"],
                        "env": [{"name": "A", "value": "1"}, {"name": "TOKEN", "secretKeyRef": {"name": "s", "key": "k"}}],
                        "resources": {"requests": {"cpu": "100m"}}}],
        "serviceAccountName": "migrator", "podLabels": {"team": "web", hooks.LABEL_HOOK: "spoofed"}}})
    job = hooks.job_manifest(hook, "web-smoke-0123456789", "shop", "web", SERVICE_UID, "2")
    assert job["metadata"]["ownerReferences"] == [{"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
                                                   "name": "web", "uid": SERVICE_UID}]
    assert job["spec"]["activeDeadlineSeconds"] == 90 and job["spec"]["backoffLimit"] == 0
    pod = job["spec"]["template"]
    assert pod["metadata"]["labels"] == {"team": "web", "app.kubernetes.io/managed-by": "capliquify-operator",
                                         hooks.LABEL_SERVICE_UID: SERVICE_UID, hooks.LABEL_HOOK: "smoke",
                                         hooks.LABEL_REVISION: "2"}
    assert pod["spec"]["restartPolicy"] == "Never" and pod["spec"]["serviceAccountName"] == "migrator"
    assert pod["spec"]["containers"][0]["env"] == [
        {"name": "A", "value": "1"}, {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    unnamed = hooks.job_manifest(api.Hook.model_validate({"name": "s", "job": JOB}), "n", "shop", "web", SERVICE_UID, "2")
    assert "serviceAccountName" not in unnamed["spec"]["template"]["spec"]  # the namespace's default


@pytest.mark.parametrize("document, message", [
    ({"target": {"railway": {"projectId": "p", "environmentId": "e", "serviceId": "s",
                             "tokenSecretRef": {"name": "t", "key": "k"}}},
      "rollout": {"hooks": {"postDeploy": [{"name": "s", "job": JOB}]}}}, "they need a kubernetes Deployment target"),
    ({"target": {"kubernetes": {"kind": "StatefulSet", "name": "db"}},  # the guard judges no StatefulSet revision
      "rollout": {"hooks": {"postDeploy": [{"name": "s", "job": JOB}]}}}, "they need a kubernetes Deployment target"),
    ({"target": {"kubernetes": {"name": "web"}},
      "rollout": {"analysis": {"windowSeconds": 30}, "hooks": {"postDeploy": [{"name": "s", "job": JOB}]}}},
     "must not exceed analysis.windowSeconds"),
    ({"target": {"kubernetes": {"name": "web"}},
      "rollout": {"hooks": {"postDeploy": [{"name": "s", "job": {"containers": []}}]}}}, "at least 1 item"),
    ({"target": {"kubernetes": {"name": "web"}}, "rollout": {"hooks": {"postDeploy": [
        {"name": "s", "job": {"containers": [{"name": "c", "image": "i", "env": [{"name": "A"}]}]}}]}}},
     "exactly one of"),
    ({"target": {"kubernetes": {"name": "web"}}, "rollout": {"hooks": {"postDeploy": [
        {"name": "s", "job": {"containers": [{"name": "c", "image": "i"}], "podLabels": {"Bad Key": "x"}}}]}}},
     "a pod label key is"),
])
def test_the_model_refuses_what_the_crd_refuses(document: dict, message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        api.MonitoredServiceSpec.model_validate(document)
