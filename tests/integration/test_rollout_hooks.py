"""Post-deploy hooks on a real Deployment's rollout (issue 24): for a new revision the operator
creates one Job per hook, the real job controller follows its pod, and the Job's outcome is
the revision's. kwok plays the pods: a Job's pod is made Running and then Succeeded by kwok's
default stages (pod-ready, pod-complete); a pod annotated `kwok.x-k8s.io/status: custom` is left
alone, and the test sets its phase to Failed through the status subresource, as a kubelet would
for a container that exited 1."""

from __future__ import annotations

import json

import pytest
import yaml

from tests.integration import test_monitoredservice as ms

pytestmark = pytest.mark.integration
CUSTOM = {"kwok.x-k8s.io/status": "custom"}  # kwok leaves such pods to the test


def guarded(pod_annotations: dict | None = None) -> dict:
    rollout = {"autoRollback": True, "progressDeadlineSeconds": 60, "analysis": {
        "windowSeconds": 20, "maxErrorRatePercent": 100, "requireHealthyChecks": False}, "hooks": {"postDeploy": [
            {"name": "smoke", "timeoutSeconds": 20, "job": {
                "containers": [{"name": "smoke", "image": "smoke:1", "command": ["/smoke", "--against", "web"]}],
                "podAnnotations": pod_annotations or {}}}]}}
    return ms.msvc(rollout)


def jobs(cluster, namespace) -> list[dict]:  # noqa: ANN001
    return json.loads(cluster.kubectl("get", "jobs", "-n", namespace, "-o", "json"))["items"]


def hook_entry(cluster, namespace) -> dict:  # noqa: ANN001
    entries = ms.rollout_status(cluster, namespace).get("hooks") or []
    return entries[0] if entries else {}


def fail_job_pod(cluster, namespace: str, job: str, container: str, what: str) -> None:  # noqa: ANN001
    """The Job's pod fails (kwok leaves an annotated pod alone; the real job controller then
    marks the Job failed)."""
    def pod() -> str:
        return cluster.kubectl("get", "pods", "-n", namespace, "-l", f"job-name={job}",
                               "-o", "jsonpath={.items[0].metadata.name}", check=False).strip()

    cluster.wait_for(pod, 30, f"the {what}'s pod")
    cluster.kubectl("patch", "pod", pod(), "-n", namespace, "--subresource=status", "--type=merge", "-p", json.dumps(
        {"status": {"phase": "Failed", "containerStatuses": [{
            "name": container, "image": f"{container}:1", "imageID": "", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}}))


def test_a_post_deploy_job_that_succeeds_keeps_the_revision_and_is_created_once(
        cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([ms.deployment(), guarded()]))
    first = operator_factory()
    ms.wait_phase(cluster, namespace, "Healthy")
    assert jobs(cluster, namespace) == [], "a revision seen already available runs no hook"

    ms.roll_to(cluster, namespace, "web:2")
    cluster.wait_for(lambda: hook_entry(cluster, namespace).get("job") and jobs(cluster, namespace), 60, "hook Job")
    [job] = jobs(cluster, namespace)
    name = hook_entry(cluster, namespace)["job"]
    assert job["metadata"]["name"] == name
    service = ms.get(cluster, "msvc", namespace)
    assert job["metadata"]["ownerReferences"] == [{"apiVersion": "ops.capliquify.io/v1alpha1",
                                                   "kind": "MonitoredService", "name": "web",
                                                   "uid": service["metadata"]["uid"]}]
    assert job["metadata"]["labels"]["ops.capliquify.io/revision"] == "2"
    pod_spec = job["spec"]["template"]["spec"]
    # The namespace's default ServiceAccount (the API server fills it in), never the operator's.
    assert pod_spec.get("serviceAccountName", "default") == "default" and pod_spec["restartPolicy"] == "Never"

    # A restart in the middle: the successor finds the Job's name in status and creates no other.
    first.stop()
    operator_factory()
    status = ms.wait_phase(cluster, namespace, "Healthy", 90)
    assert status["revision"] == "2" and status["hooks"][0]["phase"] == "Succeeded", status
    assert status["hooks"][0]["reason"] == f"Job {name} succeeded"
    assert [j["metadata"]["name"] for j in jobs(cluster, namespace)] == [name]
    assert ms.image(cluster, namespace) == "web:2"
    assert not ms.events(cluster, namespace, "RolledBack")


def test_a_post_deploy_job_that_fails_rolls_the_revision_back(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([ms.deployment(), guarded(CUSTOM)]))
    operator_factory()
    ms.wait_phase(cluster, namespace, "Healthy")

    ms.roll_to(cluster, namespace, "web:2")
    cluster.wait_for(lambda: hook_entry(cluster, namespace).get("phase") == "Running", 60, "hook Job running")
    name = hook_entry(cluster, namespace)["job"]
    fail_job_pod(cluster, namespace, name, "smoke", "hook Job")

    cluster.wait_for(lambda: ms.image(cluster, namespace) == "web:1", 60, "template rolled back to web:1")
    status = ms.rollout_status(cluster, namespace)
    record = next(r for r in status["history"] if r["revision"] == "2")
    assert record["phase"] == "RolledBack", status
    assert f"hook smoke: Job {name} failed: BackoffLimitExceeded" in record["reason"], record
    assert status["rolledBackRevisions"] == ["2"]
    rolled = ms.events(cluster, namespace, "RolledBack")
    assert len(rolled) == 1 and rolled[0]["type"] == "Warning"
    assert "hook smoke" in rolled[0]["message"] and name in rolled[0]["message"]


def gated(pod_annotations: dict | None = None) -> dict:
    """A service whose Deployment rolls out only what its pre-deploy hook approved."""
    rollout = {"progressDeadlineSeconds": 60, "analysis": {"windowSeconds": 0, "requireHealthyChecks": False},
               "hooks": {"preDeploy": [{"name": "migrate", "timeoutSeconds": 30, "job": {
                   "containers": [{"name": "migrate", "image": "migrate:1", "command": ["/migrate"]}],
                   "podAnnotations": pod_annotations or {}}}]}}
    return ms.msvc(rollout)


def gate(cluster, namespace) -> dict:  # noqa: ANN001
    return ms.rollout_status(cluster, namespace).get("preDeploy") or {}


def replica_sets(cluster, namespace, image: str) -> list[dict]:  # noqa: ANN001
    items = json.loads(cluster.kubectl("get", "replicasets", "-n", namespace, "-o", "json"))["items"]
    return [rs for rs in items if rs["spec"]["template"]["spec"]["containers"][0]["image"] == image]


def paused_on(cluster, namespace, image: str) -> bool:  # noqa: ANN001
    deployment = ms.get(cluster, "deployment", namespace)
    return bool(deployment["spec"].get("paused")) and ms.image(cluster, namespace) == image


def test_a_template_change_rolls_out_only_once_its_pre_deploy_job_succeeded(
        cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([ms.deployment(), gated()]))
    operator_factory()
    cluster.wait_for(lambda: paused_on(cluster, namespace, "web:1"), 60, "the Deployment paused on web:1")
    adopted = gate(cluster, namespace)
    assert len(adopted["approved"]) == 1 and jobs(cluster, namespace) == [], "adoption approves without a Job"

    ms.roll_to(cluster, namespace, "web:2")
    cluster.wait_for(lambda: jobs(cluster, namespace), 30, "the pre-deploy Job")
    [job] = jobs(cluster, namespace)
    assert job["metadata"]["name"] == gate(cluster, namespace)["hooks"][0]["job"]
    cluster.wait_for(lambda: paused_on(cluster, namespace, "web:2") and ms.get(cluster, "deployment", namespace)
                     ["status"].get("updatedReplicas") == 2 and gate(cluster, namespace).get("phase") == "Approved",
                     60, "web:2 rolled out and the Deployment paused again")
    [job] = jobs(cluster, namespace)
    assert job["status"].get("succeeded") == 1
    [new] = replica_sets(cluster, namespace, "web:2")
    # Its ReplicaSet was made only after the Job had finished (whole seconds, both).
    assert new["metadata"]["creationTimestamp"] >= job["status"]["completionTime"], (new["metadata"], job["status"])
    status = gate(cluster, namespace)
    assert status["approved"][1] == adopted["approved"][0] and status["hooks"][0]["phase"] == "Succeeded", status


def test_a_failing_pre_deploy_job_keeps_the_deployment_on_the_approved_template(
        cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([ms.deployment(), gated(CUSTOM)]))
    operator_factory()
    cluster.wait_for(lambda: paused_on(cluster, namespace, "web:1"), 60, "the Deployment paused on web:1")

    ms.roll_to(cluster, namespace, "web:2")
    cluster.wait_for(lambda: (gate(cluster, namespace).get("hooks") or [{}])[0].get("phase") == "Running", 30,
                     "the pre-deploy Job running")
    name = gate(cluster, namespace)["hooks"][0]["job"]
    fail_job_pod(cluster, namespace, name, "migrate", "pre-deploy Job")

    cluster.wait_for(lambda: paused_on(cluster, namespace, "web:1"), 60, "the template restored to web:1")
    assert replica_sets(cluster, namespace, "web:2") == [], "no ReplicaSet of the refused template"
    status = gate(cluster, namespace)
    assert status["phase"] == "Failed" and f"hook migrate: Job {name} failed" in status["reason"], status
    [failed] = ms.events(cluster, namespace, "RolloutFailed")
    assert failed["type"] == "Warning" and "hook migrate" in failed["message"] and name in failed["message"]
    deployment = ms.get(cluster, "deployment", namespace)
    assert deployment["status"].get("updatedReplicas") == 2 and deployment["status"].get("availableReplicas") == 2
