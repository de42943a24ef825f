"""A rollback never lands on a Deployment other than the one it was built from (issue 21): the
JSON patch carries `test` ops on uid and resourceVersion, which the API server checks
atomically before any other op; a failed one is a RollbackError saying so, nothing applied."""

from __future__ import annotations

import copy
import json
import typing

import kubernetes
import pytest

from controller.adapters import kubernetes_rollback as rb

UID = "d-uid"


def replica_set(revision: str, image: str) -> dict[str, typing.Any]:
    return {"metadata": {"name": f"web-{revision}", "ownerReferences": [{"uid": UID}],
                         "annotations": {rb.REVISION: revision}},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": f"h{revision}"}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


def deployment() -> dict[str, typing.Any]:
    return {"metadata": {"name": "web", "namespace": "shop", "uid": UID, "resourceVersion": "5",
                         "annotations": {rb.REVISION: "2"}},
            "spec": {"selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "web:2"}]}}}}


def _pointer(document: typing.Any, path: str) -> tuple[typing.Any, str]:
    parts = path.lstrip("/").split("/")
    for part in parts[:-1]:
        document = document[part]
    return document, parts[-1]


class ApiServer:
    """The apps API over one stored Deployment, applying a JSON patch as the API server does:
    all ops or none, a failed `test` answered with the bare 422 "Invalid" the real one sends
    (tests/integration/test_rollback_precondition.py shows it)."""

    def __init__(self, change_between_read_and_patch: typing.Callable[[dict], None] | None = None) -> None:
        self.stored = deployment()
        self.change = change_between_read_and_patch
        self.patches: list[list[dict[str, typing.Any]]] = []

    def read_namespaced_deployment(self, name: str, namespace: str, **_: typing.Any) -> dict[str, typing.Any]:
        return copy.deepcopy(self.stored)

    def list_namespaced_replica_set(self, namespace: str, **_: typing.Any) -> dict[str, typing.Any]:
        if self.change is not None:
            self.change(self.stored)  # someone acts while the rollback is being prepared
        return {"items": [replica_set("1", "web:1"), replica_set("2", "web:2")]}

    def patch_namespaced_deployment(self, name: str, namespace: str, patch: list[dict[str, typing.Any]],
                                    **_: typing.Any) -> dict[str, typing.Any]:
        self.patches.append(patch)
        result = copy.deepcopy(self.stored)
        for op in patch:
            parent, leaf = _pointer(result, op["path"])
            if op["op"] == "test" and parent.get(leaf) != op["value"]:
                raise _unprocessable(op["path"])
            if op["op"] == "replace":
                parent[leaf] = op["value"]
        self.stored = result
        return result


def _unprocessable(path: str) -> kubernetes.client.ApiException:
    error = kubernetes.client.ApiException(status=422, reason="Unprocessable Entity")
    error.body = json.dumps({"kind": "Status", "status": "Failure", "code": 422, "reason": "Invalid",
                             "message": "the server rejected our request due to an error in our request"})
    return error


def rollback(server: ApiServer) -> str:
    target = rb.KubernetesRollback(kubernetes.client.ApiClient(), on_write=lambda verb: None)
    target._apps = server  # type: ignore[assignment]
    return target.rollback("shop", "web", "2")


def test_the_patch_is_conditional_on_the_object_it_was_built_from() -> None:
    server = ApiServer()
    assert rollback(server) == "1"
    assert server.patches[0][:2] == [{"op": "test", "path": "/metadata/uid", "value": UID},
                                     {"op": "test", "path": "/metadata/resourceVersion", "value": "5"}]
    assert server.stored["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"


def edited(stored: dict) -> None:
    stored["metadata"]["resourceVersion"] = "6"  # e.g. a new rollout started meanwhile
    stored["spec"]["template"]["spec"]["containers"][0]["image"] = "web:3"


def recreated(stored: dict) -> None:
    stored["metadata"].update(uid="another-uid", resourceVersion="5")  # same name, same version text


@pytest.mark.parametrize("change", [edited, recreated], ids=["edited", "recreated"])
def test_a_rollback_never_lands_on_a_changed_deployment(change: typing.Callable[[dict], None]) -> None:
    server = ApiServer(change)
    before = copy.deepcopy(server.stored)
    change(before)
    with pytest.raises(rb.RollbackError, match="changed while its rollback was prepared"):
        rollback(server)
    assert server.stored == before, "nothing of the patch applied"


class Refusing(ApiServer):
    """Refuses the patch although nothing changed (an invalid template, say)."""

    def patch_namespaced_deployment(self, name: str, namespace: str, patch: list[dict[str, typing.Any]],
                                    **_: typing.Any) -> dict[str, typing.Any]:
        raise _unprocessable("/spec/template")


def test_other_refusals_stay_what_they_are() -> None:
    with pytest.raises(kubernetes.client.ApiException) as refused:
        rollback(Refusing())
    assert refused.value.status == 422, "not a changed Deployment: the API's own refusal"
    assert rb.changed(deployment(), {"metadata": {"uid": UID, "resourceVersion": "6"}})
    assert rb.changed(deployment(), {"metadata": {"uid": "other", "resourceVersion": "5"}})
    assert not rb.changed(deployment(), deployment())
