"""The pre-deploy gate's writes (adapters/kubernetes_gate.py) against a fake apps API that
applies a JSON patch as the API server does (all ops or none, a failed `test` a bare 422): each
write is conditional on the object as read, an unpause only on the template decided on, and a
restore puts the approved ReplicaSet's template back."""

from __future__ import annotations

import copy
import typing

import kubernetes
import pytest

from controller.adapters import kubernetes_gate
from controller.core import predeploy
from tests.unit import test_rollback_precondition as fake


class ApiServer(fake.ApiServer):
    """Also applies `add` ops; `change` acts between the operator's read and its patch."""

    def read_namespaced_deployment(self, name: str, namespace: str, **_: typing.Any) -> dict[str, typing.Any]:
        read = copy.deepcopy(self.stored)
        if self.change is not None:
            self.change(self.stored)
            self.change = None
        return read

    def patch_namespaced_deployment(self, name: str, namespace: str, patch: list[dict[str, typing.Any]],
                                    **_: typing.Any) -> dict[str, typing.Any]:
        self.patches.append(patch)
        result = copy.deepcopy(self.stored)
        for op in patch:
            parent, leaf = fake._pointer(result, op["path"])
            if op["op"] == "test" and parent.get(leaf) != op["value"]:
                raise fake._unprocessable(op["path"])
            if op["op"] in ("replace", "add"):
                parent[leaf] = op["value"]
        self.stored = result
        return result


def gate(server: ApiServer) -> kubernetes_gate.BlockingGate:
    target = kubernetes_gate.BlockingGate(kubernetes.client.ApiClient(), on_write=lambda verb: None)
    target._apps = server  # type: ignore[assignment]
    return target


def digest_of(server: ApiServer) -> str:
    return predeploy.template_digest(server.stored["spec"]["template"])


def test_a_pause_is_one_conditional_patch_and_an_unpause_only_of_the_template_decided_on() -> None:
    server = ApiServer()
    assert gate(server).pause("shop", "web", fake.UID, True, digest_of(server))
    assert server.patches == [[{"op": "test", "path": "/metadata/uid", "value": fake.UID},
                               {"op": "test", "path": "/metadata/resourceVersion", "value": "5"},
                               {"op": "add", "path": "/spec/paused", "value": True}]]
    assert server.stored["spec"]["paused"] is True
    assert gate(server).pause("shop", "web", fake.UID, True, digest_of(server)) and len(server.patches) == 1
    # The template changed since the decision: nothing is unpaused.
    assert not gate(server).pause("shop", "web", fake.UID, False, "0" * 64)
    assert server.stored["spec"]["paused"] is True and len(server.patches) == 1


def test_a_deployment_edited_or_recreated_meanwhile_is_not_patched() -> None:
    server = ApiServer(fake.edited)
    digest = digest_of(server)
    with pytest.raises(kubernetes_gate.GateError, match="changed while its patch was prepared"):
        gate(server).pause("shop", "web", fake.UID, True, digest)
    assert "paused" not in server.stored["spec"], "nothing of the patch applied"
    with pytest.raises(kubernetes_gate.GateError, match="recreated"):
        gate(ApiServer()).pause("shop", "web", "another-uid", True, digest)


def test_a_restore_puts_the_approved_replica_sets_template_back() -> None:
    server = ApiServer()
    approved = predeploy.template_digest(fake.replica_set("1", "web:1")["spec"]["template"])
    assert gate(server).restore("shop", "web", fake.UID, approved) == "1"
    assert server.patches[0][:2] == [{"op": "test", "path": "/metadata/uid", "value": fake.UID},
                                     {"op": "test", "path": "/metadata/resourceVersion", "value": "5"}]
    assert server.stored["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1"
    assert digest_of(server) == approved
    # Revision 2 (the refused template) has a ReplicaSet: unpaused, so the controller scales it down.
    assert server.stored["spec"]["paused"] is False
    assert gate(server).restore("shop", "web", fake.UID, approved) == "" and len(server.patches) == 1
