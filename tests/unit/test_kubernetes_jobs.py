"""The hook Jobs adapter (adapters/kubernetes_jobs.py): AlreadyExists is the Job itself, a
refusal that asking again will not change fails the hook, anything else is tried again; a
malformed answer stays this service's error."""

from __future__ import annotations

import json

import kubernetes
import pytest

from controller.adapters import kubernetes_jobs
from controller.core import hooks


def api_error(status: int, reason: str, message: str = "") -> kubernetes.client.ApiException:
    error = kubernetes.client.ApiException(status=status, reason=reason)
    error.body = json.dumps({"kind": "Status", "message": message}) if message else None
    return error


class Batch:
    def __init__(self, create_error: Exception | None = None, job: object = None,
                 read_error: Exception | None = None) -> None:
        self.create_error, self.job, self.read_error = create_error, job, read_error
        self.created: list[tuple[str, dict]] = []

    def create_namespaced_job(self, namespace: str, body: dict, **_: object) -> None:
        if self.create_error is not None:
            raise self.create_error
        self.created.append((namespace, body))

    def read_namespaced_job(self, name: str, namespace: str, **_: object) -> object:
        if self.read_error is not None:
            raise self.read_error
        return self.job


def jobs(batch: Batch, writes: list[str] | None = None) -> kubernetes_jobs.BlockingJobs:
    adapter = kubernetes_jobs.BlockingJobs(kubernetes.client.ApiClient(), (writes if writes is not None else []).append)
    adapter._batch = batch  # type: ignore[assignment]
    return adapter


def test_create_is_fenced_and_already_exists_is_the_job_itself() -> None:
    writes: list[str] = []
    batch = Batch()
    assert jobs(batch, writes).create("shop", {"metadata": {"name": "web-smoke-1"}}) is True
    assert writes == ["create"] and batch.created == [("shop", {"metadata": {"name": "web-smoke-1"}})]
    assert jobs(Batch(create_error=api_error(409, "Conflict"))).create("shop", {}) is False


@pytest.mark.parametrize("status", [400, 403, 404, 422])
def test_a_refusal_that_will_not_change_is_job_refused_with_the_servers_message(status: int) -> None:
    batch = Batch(create_error=api_error(status, "Forbidden", 'jobs.batch is forbidden: User "x" cannot create'))
    with pytest.raises(kubernetes_jobs.JobRefused, match=f'^{status} Forbidden: jobs.batch is forbidden: User "x"'):
        jobs(batch).create("shop", {})


@pytest.mark.parametrize("error", [api_error(500, "Internal"), api_error(429, "TooManyRequests"), OSError("reset")])
def test_anything_else_is_tried_again(error: Exception) -> None:
    with pytest.raises(kubernetes_jobs.JobError):
        jobs(Batch(create_error=error)).create("shop", {})


def test_the_fence_refusing_is_tried_again_and_nothing_is_sent() -> None:
    batch = Batch()
    adapter = kubernetes_jobs.BlockingJobs(kubernetes.client.ApiClient(), lambda _: (_ for _ in ()).throw(
        RuntimeError("not the leader")))
    adapter._batch = batch  # type: ignore[assignment]
    with pytest.raises(kubernetes_jobs.JobError):
        adapter.create("shop", {})
    assert batch.created == []


def test_read_not_found_and_found() -> None:
    assert jobs(Batch(read_error=api_error(404, "Not Found"))).read("shop", "j") == hooks.JobView(found=False)
    with pytest.raises(kubernetes_jobs.JobError):
        jobs(Batch(read_error=api_error(503, "Unavailable"))).read("shop", "j")
    job = kubernetes.client.V1Job(
        metadata=kubernetes.client.V1ObjectMeta(name="j", owner_references=[kubernetes.client.V1OwnerReference(
            api_version="ops.capliquify.io/v1alpha1", kind="MonitoredService", name="web", uid="u-1")]),
        status=kubernetes.client.V1JobStatus(conditions=[kubernetes.client.V1JobCondition(
            type="Complete", status="True")]))
    assert jobs(Batch(job=job)).read("shop", "j") == hooks.JobView(found=True, owner_uid="u-1", succeeded=True)


def test_a_malformed_answer_is_this_services_error() -> None:
    with pytest.raises(kubernetes_jobs.JobError):
        jobs(Batch(job=object())).read("shop", "j")
