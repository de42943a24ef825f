"""The real API server refuses a rollback patch built from a Deployment that changed since
(issue 21): the JSON patch's `test` ops on uid and resourceVersion fail atomically (a bare 422
"Invalid": the adapter then reads the Deployment to tell a change from an invalid patch), and
the Deployment is left as it was."""

from __future__ import annotations

import json

import kubernetes
import pytest
import yaml

from controller.adapters import kubernetes_rollback as rb

pytestmark = pytest.mark.integration


def deployment(image: str) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": image}]}}}}


def test_a_stale_rollback_patch_is_refused_by_the_api_server(cluster, namespace) -> None:  # noqa: ANN001
    def read() -> dict:
        return json.loads(cluster.kubectl("get", "deployment", "web", "-n", namespace, "-o", "json"))

    def revision() -> str:
        return (read()["metadata"].get("annotations") or {}).get(rb.REVISION, "")

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(deployment("web:1")))
    cluster.wait_for(lambda: revision() == "1", 60, "revision 1")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(deployment("web:2")))
    cluster.wait_for(lambda: revision() == "2", 60, "revision 2")

    client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    apps = kubernetes.client.AppsV1Api(client)
    try:
        as_read = read()
        replica_sets = json.loads(cluster.kubectl("get", "replicasets", "-n", namespace, "-o", "json"))["items"]
        _, patch = rb.build_rollback_patch(as_read, replica_sets, "2")
        # Someone edits the Deployment after it was read: the patch must not land.
        cluster.kubectl("annotate", "deployment", "web", "-n", namespace, "edited-by=someone")
        with pytest.raises(kubernetes.client.ApiException) as refused:
            apps.patch_namespaced_deployment("web", namespace, rb.guarded(as_read, patch))
        assert refused.value.status == 422, (refused.value.status, refused.value.body)
        assert rb.changed(as_read, read()), "what the adapter checks before calling it a changed Deployment"
        assert read()["spec"]["template"]["spec"]["containers"][0]["image"] == "web:2", "nothing applied"

        fresh = read()
        _, patch = rb.build_rollback_patch(fresh, replica_sets, "2")
        apps.patch_namespaced_deployment("web", namespace, rb.guarded(fresh, patch))
        assert read()["spec"]["template"]["spec"]["containers"][0]["image"] == "web:1", "a current patch lands"
    finally:
        client.close()
