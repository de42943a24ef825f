"""Post-deploy hooks: a Job per new revision per hook, and its status as a verdict (pure).

A hook is decided the first time its revision is judged under analysis: an entry with the
Job's fixed name goes into `status.rollout.hooks` (the operator writes it before it creates
the Job, so a restart or a new leader finds the name and never creates a second one; a create
that meets AlreadyExists is that Job). Each tick the operator reads the entries' Jobs and
`advance` turns what it read into phases: Pending (decided, not seen created), Running,
Succeeded, Failed (the Job failed, was refused, was deleted before it finished, or did not
succeed within timeoutSeconds). A required hook's failure fails the revision.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import re
import typing

import controller
from controller.api import monitoredservice as api
from controller.core import timestamps

PENDING, RUNNING, SUCCEEDED, FAILED = (p.value for p in api.HookPhase)
TERMINAL = (SUCCEEDED, FAILED)
JOB_NAME_MAX = 63  # the Job controller copies the name into a label value
DIGEST = 10
TTL_SECONDS = 86400  # a finished hook Job stays a day for `kubectl logs`, then the TTL controller deletes it
MESSAGE_MAX = 300  # of a Job's own failure message, in a reason
MANAGED_BY = "capliquify-operator"
LABEL_SERVICE_UID = "ops.capliquify.io/monitoredservice-uid"
LABEL_HOOK = "ops.capliquify.io/hook"
LABEL_REVISION = "ops.capliquify.io/revision"


@dataclasses.dataclass(frozen=True)
class JobView:
    """A hook's Job as the operator last read it (or failed to create it)."""

    found: bool
    owner_uid: str | None = None  # the MonitoredService uid its ownerReference names
    succeeded: bool = False  # condition Complete=True
    failed: str | None = None  # condition Failed=True: "reason: message"
    refused: str | None = None  # the API server refused to create it (a permanent answer)


@dataclasses.dataclass(frozen=True)
class Observed:
    """What the hooks of one service are judged on: who they belong to and their Jobs, by name
    (a Job absent from `jobs` was not read this tick and keeps its phase)."""

    service_name: str
    service_uid: str
    workload_uid: str
    jobs: typing.Mapping[str, JobView] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Progress:
    entries: list[dict[str, typing.Any]]
    failure: str | None  # the first required hook that failed, as the revision's reason
    done: bool  # every hook is Succeeded or Failed
    create: list[str]  # Jobs decided and not seen yet: the operator creates them (intent first)
    notes: list[str]  # hooks that failed without failing the rollout (failRollout: false)


def _label(text: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", text.lower()).strip("-")


def job_name(service_name: str, service_uid: str, workload_uid: str, revision: str, hook: str) -> str:
    """The Job's fixed name: the service's (cut), the hook's, and a digest of who and which
    revision, so another revision, a recreated workload or a recreated service never meets an
    earlier Job, and the same decision always names the same one."""
    digest = hashlib.sha256(f"{service_uid}/{workload_uid}/{revision}/{hook}".encode()).hexdigest()[:DIGEST]
    room = JOB_NAME_MAX - len(hook) - DIGEST - 2
    prefix = _label(service_name)[:room].strip("-") or "hook"
    return f"{prefix}-{hook}-{digest}"


def advance(
    hooks: typing.Sequence[api.Hook], entries: typing.Sequence[typing.Mapping[str, typing.Any]], revision: str,
    observed: Observed, now: datetime.datetime,
) -> Progress:
    by_name = {entry.get("name"): entry for entry in entries}
    result: list[dict[str, typing.Any]] = []
    create: list[str] = []
    failure: str | None = None
    notes: list[str] = []
    for hook in hooks:
        entry = dict(by_name.get(hook.name) or {})
        if not entry:
            job = job_name(observed.service_name, observed.service_uid, observed.workload_uid, revision, hook.name)
            entry = {"name": hook.name, "job": job, "phase": PENDING, "reason": f"Job {job} decided",
                     "startedAt": timestamps.to_status(now)}
        job = entry["job"]
        view = observed.jobs.get(job)
        phase = entry.get("phase")
        if phase in (PENDING, RUNNING) and view is not None:
            if view.refused is not None:
                entry.update(phase=FAILED, reason=f"Job {job} could not be created: {view.refused}"[:1024])
            elif view.found and view.owner_uid != observed.service_uid:
                entry.update(phase=FAILED, reason=f"a Job {job} exists that this service did not create")
            elif view.found and view.succeeded:
                entry.update(phase=SUCCEEDED, reason=f"Job {job} succeeded")
            elif view.found and view.failed is not None:
                entry.update(phase=FAILED, reason=f"Job {job} failed: {view.failed[:MESSAGE_MAX]}")
            elif view.found:
                entry.update(phase=RUNNING, reason=f"Job {job} running")
            elif phase == RUNNING:
                entry.update(phase=FAILED, reason=f"Job {job} was deleted before it finished")
        if entry["phase"] not in TERMINAL:
            started = timestamps.or_none(entry.get("startedAt")) or now
            if (now - started).total_seconds() >= hook.timeoutSeconds:
                entry.update(phase=FAILED, reason=f"Job {job} did not succeed within {hook.timeoutSeconds}s")
            elif entry["phase"] == PENDING:
                create.append(job)
        if entry["phase"] == FAILED:
            if hook.failRollout:
                failure = failure or f"hook {hook.name}: {entry['reason']}"
            else:
                notes.append(f"hook {hook.name} failed, not required")
        result.append(entry)
    done = all(entry["phase"] in TERMINAL for entry in result)
    return Progress(result, failure, done, create, notes)


def job_manifest(hook: api.Hook, name: str, namespace: str, service_name: str, service_uid: str,
                 revision: str) -> dict[str, typing.Any]:
    """The Job the operator creates for `hook`: the spec's subset and what the operator adds
    (restartPolicy Never, its deadline, a TTL, its labels, the service as owner). The pod runs
    as the hook's ServiceAccount or the namespace's default, never as the operator."""
    ours = {"app.kubernetes.io/managed-by": MANAGED_BY, LABEL_SERVICE_UID: service_uid, LABEL_HOOK: hook.name,
            LABEL_REVISION: _label(revision)[:63] or "none"}
    pod_spec: dict[str, typing.Any] = {"restartPolicy": "Never", "containers": [_container(c) for c in hook.job.containers]}
    if hook.job.serviceAccountName:
        pod_spec["serviceAccountName"] = hook.job.serviceAccountName
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(ours),
                     "annotations": {"ops.capliquify.io/monitoredservice": service_name},
                     "ownerReferences": [{"apiVersion": f"{controller.API_GROUP}/{controller.API_VERSION}", "kind": "MonitoredService",
                                          "name": service_name, "uid": service_uid}]},
        "spec": {
            "backoffLimit": hook.job.backoffLimit, "activeDeadlineSeconds": hook.timeoutSeconds,
            "ttlSecondsAfterFinished": TTL_SECONDS,
            "template": {"metadata": {"labels": {**hook.job.podLabels, **ours},
                                      "annotations": dict(hook.job.podAnnotations)},
                         "spec": pod_spec},
        },
    }


def _container(container: api.HookContainer) -> dict[str, typing.Any]:
    out: dict[str, typing.Any] = {"name": container.name, "image": container.image}
    if container.command:
        out["command"] = list(container.command)
    if container.args:
        out["args"] = list(container.args)
    if container.env:
        out["env"] = [{"name": e.name, "value": e.value} if e.secretKeyRef is None else
                      {"name": e.name, "valueFrom": {"secretKeyRef": {"name": e.secretKeyRef.name,
                                                                      "key": e.secretKeyRef.key}}}
                      for e in container.env]
    if container.workingDir:
        out["workingDir"] = container.workingDir
    resources = {k: dict(v) for k, v in (("requests", container.resources.requests),
                                          ("limits", container.resources.limits)) if v}
    if resources:
        out["resources"] = resources
    return out


def judge_job(job: typing.Mapping[str, typing.Any] | None) -> JobView:
    """A Job object as read (None: not found) as a JobView: its owner and its terminal condition."""
    if job is None:
        return JobView(found=False)
    meta = job.get("metadata") or {}
    owners = [ref.get("uid") for ref in meta.get("ownerReferences") or [] if isinstance(ref, dict)
              and ref.get("kind") == "MonitoredService"]
    conditions = [c for c in ((job.get("status") or {}).get("conditions") or []) if isinstance(c, dict)]

    def true(kind: str) -> dict[str, typing.Any] | None:
        return next((c for c in conditions if c.get("type") == kind and c.get("status") == "True"), None)

    failed = true("Failed")
    return JobView(found=True, owner_uid=owners[0] if owners else None, succeeded=true("Complete") is not None,
                   failed=None if failed is None else
                   f"{failed.get('reason') or 'Failed'}: {failed.get('message') or ''}".rstrip(": "))
