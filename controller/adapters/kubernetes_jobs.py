"""Hook Jobs (spec.rollout.hooks): create one under its fixed name, read it back.

A create that meets AlreadyExists is the Job an earlier decision (this process before a
restart, another leader) created: the name is fixed per service, workload, revision and hook
(core/hooks.job_name), so there is never a second one. A refusal that asking again will not
change (403: the operator was not granted Jobs; 400/404/422: a namespace gone, a template the
API server refuses) is `JobRefused`, the hook's failure; anything else is retried on the next
tick until the hook's timeout.
"""

from __future__ import annotations

import json
import typing

import kubernetes

from controller.adapters import boundary
from controller.core import hooks

TIMEOUT_SECONDS = (5, 20)
MESSAGE_MAX = 300
Run = typing.Callable[..., typing.Awaitable[typing.Any]]


class JobError(Exception):
    """Reading or creating a hook Job failed; the next tick tries again."""


class JobRefused(Exception):
    """The API server refused to create the Job, and will again: the hook has failed."""


def _typed(error: Exception) -> typing.NoReturn:
    raise JobError(boundary.describe(error)) from None


def refusal(error: kubernetes.client.ApiException) -> str:
    """`status reason: message` of a refused create, its message as the API server wrote it
    (which field, which rule), cut; never the request body."""
    message = ""
    try:
        body = json.loads(error.body) if error.body else {}
        message = str(body.get("message", "")) if isinstance(body, dict) else ""
    except ValueError:
        pass
    return f"{error.status} {error.reason}" + (f": {message[:MESSAGE_MAX]}" if message else "")


PERMANENT = (400, 403, 404, 422)  # 409 is AlreadyExists (the Job itself), 408/429/5xx pass


class BlockingJobs:
    def __init__(self, api_client: kubernetes.client.ApiClient, on_write: typing.Callable[[str], None]) -> None:
        self._batch = kubernetes.client.BatchV1Api(api_client)
        self._client = api_client
        self._on_write = on_write

    @boundary.contained("a hook Job read", _typed, (kubernetes.client.ApiException, JobError))
    def read(self, namespace: str, name: str) -> hooks.JobView:
        try:
            job = self._batch.read_namespaced_job(name, namespace, _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return hooks.judge_job(None)
            raise JobError(f"{error.status} {error.reason}") from None
        return hooks.judge_job(self._client.sanitize_for_serialization(job))

    @boundary.contained("a hook Job create", _typed, (JobError, JobRefused))
    def create(self, namespace: str, body: dict[str, typing.Any]) -> bool:
        """True when this call created it, False when it existed already."""
        self._on_write("create")
        try:
            self._batch.create_namespaced_job(namespace, typing.cast(typing.Any, body), _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException as error:
            if error.status == 409:
                return False
            if error.status in PERMANENT:
                raise JobRefused(refusal(error)) from None
            raise JobError(f"{error.status} {error.reason}") from None
        return True


class KubernetesJobs:
    """The guard's hook Jobs (operator/guard.py HookJobs): the blocking calls in a pool."""

    errors: tuple[type[Exception], ...] = (JobError,)
    refused: type[Exception] = JobRefused

    def __init__(self, blocking: BlockingJobs, run: Run) -> None:
        self.blocking, self.run = blocking, run

    @classmethod
    def of_client(cls, api_client: kubernetes.client.ApiClient, on_write: typing.Callable[[str], None],
                  run: Run) -> "KubernetesJobs":
        return cls(BlockingJobs(api_client, on_write), run)

    async def read(self, namespace: str, name: str) -> hooks.JobView:
        view: hooks.JobView = await self.run(self.blocking.read, namespace, name)
        return view

    async def create(self, namespace: str, body: dict[str, typing.Any]) -> bool:
        created: bool = await self.run(self.blocking.create, namespace, body)
        return created
