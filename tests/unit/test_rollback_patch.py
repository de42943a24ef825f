"""The rollback patch is the one `kubectl rollout undo` sends."""

from __future__ import annotations

import pytest

from controller.adapters import kubernetes_rollback as rb

UID = "d-uid"


def rs(revision: str, image: str, owner: str = UID, **annotations: str) -> dict:
    return {"metadata": {"name": f"web-{revision}", "ownerReferences": [{"uid": owner}],
                         "annotations": {rb.REVISION: revision, **annotations}},
            "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": f"h{revision}"}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


DEPLOYMENT = {"metadata": {"uid": UID, "annotations": {rb.REVISION: "3", "team": "shop",
                                                       "kubectl.kubernetes.io/last-applied-configuration": "{}"}}}


def test_previous_revision_template_without_hash_label() -> None:
    revision, patch = rb.build_rollback_patch(
        DEPLOYMENT, [rs("1", "web:1"), rs("2", "web:2", note="from-rs"), rs("3", "web:3"), rs("9", "other", owner="x")], "3")
    assert revision == "2"
    assert patch[0] == {"op": "replace", "path": "/spec/template", "value": {
        "metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "web:2"}]}}}
    # kubectl keeps the skip-listed annotations of the Deployment and takes the rest from the ReplicaSet.
    assert patch[1] == {"op": "replace", "path": "/metadata/annotations", "value": {
        rb.REVISION: "3", "kubectl.kubernetes.io/last-applied-configuration": "{}", "note": "from-rs"}}


def test_nothing_older_is_an_error() -> None:
    with pytest.raises(rb.RollbackError, match="no revision older than 1"):
        rb.build_rollback_patch(DEPLOYMENT, [rs("1", "web:1")], "1")
