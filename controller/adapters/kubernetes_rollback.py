"""Roll a Deployment back exactly as `kubectl rollout undo` does.

The previous ReplicaSet (by the `deployment.kubernetes.io/revision` annotation) gives the
pod template; its `pod-template-hash` label is removed; one JSON patch replaces the
Deployment's template and annotations (kubectl's annotation skip list applies).
"""

from __future__ import annotations

import copy
import typing

import kubernetes

from controller.adapters import boundary
from controller.core import numbers
from controller.core import predeploy

TIMEOUT_SECONDS = (5, 20)
REVISION = "deployment.kubernetes.io/revision"
MAX_REVISION = 2**63 - 1  # the deployment controller's revision is an int64
# kubectl's annotationsToSkip: never copied from the ReplicaSet, never dropped from the Deployment.
SKIPPED_ANNOTATIONS = frozenset({
    "kubectl.kubernetes.io/last-applied-configuration", REVISION, "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas",
    "deprecated.deployment.rollback.to",
})


class RollbackError(Exception):
    """No revision to roll back to, or the API refused."""


def build_rollback_patch(
    deployment: typing.Mapping[str, typing.Any], replica_sets: typing.Sequence[typing.Mapping[str, typing.Any]],
    bad_revision: str,
) -> tuple[str, list[dict[str, typing.Any]]]:
    """(revision rolled back to, JSON patch) — pure, tested against kubectl's behaviour."""
    uid = deployment["metadata"]["uid"]
    owned = [rs for rs in replica_sets
             if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])]
    try:
        bad = numbers.integer(bad_revision, 1, MAX_REVISION, "revision")
    except numbers.NumberError as error:
        raise RollbackError(f"{error}: nothing to roll back from") from None
    # A ReplicaSet whose revision annotation is not a revision (anyone who may edit the
    # namespace's ReplicaSets can write one) is no candidate; it must not stop the rollback,
    # nor the guard's round for other services (it once raised ValueError there every 2 s).
    older = [(revision, rs) for rs in owned if (revision := _revision(rs)) is not None and 0 < revision < bad]
    if not older:
        raise RollbackError(f"no revision older than {bad_revision} to roll back to")
    revision, previous = max(older, key=lambda pair: pair[0])
    return str(revision), _template_patch(deployment, previous)


def runs_revision(deployment: typing.Mapping[str, typing.Any],
                  replica_sets: typing.Sequence[typing.Mapping[str, typing.Any]], revision: str) -> bool:
    """Whether the Deployment's template is still its ReplicaSet's of `revision` (compared as the
    deployment controller and kubectl compare them: without the pod-template-hash label). Its
    revision annotation alone does not say: the deployment controller updates it after the
    template changed, seconds later when it is slow (run 15, docs/reliability.md §18), and
    renumbers the restored ReplicaSet first. True when no owned ReplicaSet has that revision."""
    uid = deployment["metadata"]["uid"]
    templates = [_without_hash((rs.get("spec") or {}).get("template")) for rs in replica_sets
                 if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])
                 and str(_revision(rs)) == revision]
    return not templates or _without_hash((deployment.get("spec") or {}).get("template")) in templates


def _without_hash(template: typing.Any) -> typing.Any:
    template = copy.deepcopy(template) if isinstance(template, dict) else {}
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop("pod-template-hash", None)
    return template


def build_restore_patch(
    deployment: typing.Mapping[str, typing.Any], replica_sets: typing.Sequence[typing.Mapping[str, typing.Any]],
    approved_digest: str,
) -> tuple[str, list[dict[str, typing.Any]]]:
    """(revision restored, JSON patch) putting a gated Deployment back on its approved template
    (core/predeploy.py): the newest owned ReplicaSet whose template has that digest, taken as
    `kubectl rollout undo` takes one. When the deployment controller has already made a
    ReplicaSet for the refused template (the Deployment's revision is not that ReplicaSet's),
    the patch also unpauses it, so the controller scales the refused one down again."""
    uid = deployment["metadata"]["uid"]
    matching = [(revision, rs) for rs in replica_sets
                if any(ref.get("uid") == uid for ref in rs["metadata"].get("ownerReferences") or [])
                and predeploy.template_digest((rs.get("spec") or {}).get("template")) == approved_digest
                and (revision := _revision(rs)) is not None]
    if not matching:
        raise RollbackError(f"no ReplicaSet of the approved template {approved_digest[:12]} to restore")
    revision, approved = max(matching, key=lambda pair: pair[0])
    patch = _template_patch(deployment, approved)
    current = _revision(deployment)
    if current != revision:
        patch.append({"op": "add", "path": "/spec/paused", "value": False})
    return str(revision), patch


def _template_patch(deployment: typing.Mapping[str, typing.Any],
                    previous: typing.Mapping[str, typing.Any]) -> list[dict[str, typing.Any]]:
    template = copy.deepcopy(previous["spec"]["template"])
    template.setdefault("metadata", {}).setdefault("labels", {}).pop("pod-template-hash", None)
    annotations = {k: v for k, v in (deployment["metadata"].get("annotations") or {}).items()
                   if k in SKIPPED_ANNOTATIONS}
    annotations.update({k: v for k, v in (previous["metadata"].get("annotations") or {}).items()
                        if k not in SKIPPED_ANNOTATIONS})
    return [
        {"op": "replace", "path": "/spec/template", "value": template},
        {"op": "replace", "path": "/metadata/annotations", "value": annotations},
    ]


def _revision(replica_set: typing.Mapping[str, typing.Any]) -> int | None:
    annotations = (replica_set.get("metadata") or {}).get("annotations") or {}
    try:
        return numbers.integer(annotations.get(REVISION, "0"), 0, MAX_REVISION, "revision")
    except numbers.NumberError:
        return None


def _typed(error: Exception) -> typing.NoReturn:
    """This rollback's failure as one of the errors its caller expects (ApiException and
    RollbackError pass as they are): a malformed object is this service's failed rollback,
    never the guard's."""
    raise RollbackError(boundary.describe(error)) from None


def guarded(deployment: typing.Mapping[str, typing.Any], patch: list[dict[str, typing.Any]]) -> list[dict[str, typing.Any]]:
    """The patch, applied only to the very object it was built from: JSON patch `test` ops on
    its uid (not a Deployment recreated under the name) and resourceVersion (not one changed
    since: a new rollout, someone's edit, our own earlier rollback). The API server applies a
    JSON patch atomically, so a failed test leaves the Deployment untouched."""
    meta = deployment["metadata"]
    return [{"op": "test", "path": "/metadata/uid", "value": meta["uid"]},
            {"op": "test", "path": "/metadata/resourceVersion", "value": meta["resourceVersion"]}, *patch]


def changed(before: typing.Mapping[str, typing.Any], now: typing.Mapping[str, typing.Any]) -> bool:
    """Whether `now` is another object, or another version of it, than `before` (the API server
    answers a failed `test` op with a bare 422 "Invalid", as it answers an invalid patch: so
    a refusal is read as a failed precondition only when the object did change)."""
    return any(before["metadata"].get(field) != (now.get("metadata") or {}).get(field)
               for field in ("uid", "resourceVersion"))


class KubernetesRollback:
    def __init__(self, api_client: kubernetes.client.ApiClient, on_write: typing.Callable[[str], None]) -> None:
        self._apps = kubernetes.client.AppsV1Api(api_client)
        self._client = api_client
        self._on_write = on_write

    @boundary.contained("a rollback", _typed, (kubernetes.client.ApiException, RollbackError))
    def rollback(self, namespace: str, name: str, bad_revision: str) -> str:
        deployment = self._client.sanitize_for_serialization(
            self._apps.read_namespaced_deployment(name, namespace, _request_timeout=TIMEOUT_SECONDS))
        if str((deployment["metadata"].get("annotations") or {}).get(REVISION)) != bad_revision:
            return ""  # already moved on (our earlier patch took effect): nothing to do
        selector = ",".join(f"{k}={v}" for k, v in deployment["spec"]["selector"].get("matchLabels", {}).items())
        replica_sets = self._client.sanitize_for_serialization(self._apps.list_namespaced_replica_set(
            namespace, label_selector=selector, _request_timeout=TIMEOUT_SECONDS)).get("items", [])
        if not runs_revision(deployment, replica_sets, bad_revision):
            # Our earlier patch took effect, the annotation not yet: issued again (the guard does
            # until the revision changes), the newest older revision could be an older failed one.
            return ""
        revision, patch = build_rollback_patch(deployment, replica_sets, bad_revision)
        self._on_write("patch")
        # A list body is sent as application/json-patch+json, as kubectl sends it.
        try:
            self._apps.patch_namespaced_deployment(name, namespace, guarded(deployment, patch),
                                                   _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException as error:
            if error.status in (409, 422) and changed(deployment, self._client.sanitize_for_serialization(
                    self._apps.read_namespaced_deployment(name, namespace, _request_timeout=TIMEOUT_SECONDS))):
                # Nothing was applied; the guard judges the Deployment afresh on its next tick.
                raise RollbackError(f"Deployment {name} changed while its rollback was prepared; not applied") from None
            raise
        return revision
