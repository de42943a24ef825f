"""The operator's own list+watch against the real API server, as the operator's ServiceAccount:
events after a listing arrive in order, a too-old resourceVersion lists again."""

from __future__ import annotations

import asyncio
import typing

import pytest
import yaml

from controller.adapters import kubernetes_api
from controller.adapters import kubernetes_watch
from localcluster import operator as operator_module

pytestmark = pytest.mark.integration
GROUP = "ops.capliquify.io/v1alpha1"


def policy(name: str) -> dict:
    return {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": name},
            "spec": {"targetRef": {"kubernetes": {"name": name}}}}


async def _until(predicate: typing.Callable[[], bool], seconds: float) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.1)


def test_watch_lists_again_after_gone_and_then_follows(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    operator_factory().stop()  # installs the operator's RBAC; the watch below runs as its ServiceAccount
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([policy("a"), policy("b")]))
    kubeconfig = cluster.service_account_kubeconfig(operator_module.OPERATOR_NAMESPACE, operator_module.OPERATOR_ACCOUNT)
    client = kubernetes_api.load_config(str(kubeconfig))
    api = kubernetes_api.KubeApi(client, lambda verb: None)
    listings: list[list[str]] = []
    events: list[tuple[str, str]] = []
    restarts: list[str] = []

    async def relist() -> str:
        listed, version = await asyncio.to_thread(api.list_versioned, "ScalingPolicy", namespace)
        listings.append(sorted(o["metadata"]["name"] for o in listed))
        return version

    async def scenario() -> None:
        watcher = kubernetes_watch.Watcher(client.configuration, on_restart=lambda kind, why: restarts.append(why))
        # resourceVersion "1" is older than anything the API server still keeps: 410 Gone.
        task = asyncio.create_task(watcher.watch(
            "ScalingPolicy", namespace, "1", relist,
            on_event=lambda event: events.append((event["type"], event["object"]["metadata"]["name"]))))
        try:
            await _until(lambda: bool(listings), 20)
            assert listings == [["a", "b"]] and restarts == ["gone"]
            await asyncio.sleep(1)  # the watch is open from the listing's version on
            await asyncio.to_thread(cluster.kubectl, "apply", "-n", namespace, "-f", "-",
                                    input=yaml.safe_dump(policy("c")))
            await asyncio.to_thread(cluster.kubectl, "delete", "scp", "a", "-n", namespace)
            await _until(lambda: ("DELETED", "a") in events, 20)
            assert events == [("ADDED", "c"), ("DELETED", "a")], "each change once, in order, nothing listed twice"
            assert restarts == ["gone"]
        finally:
            task.cancel()
            await watcher.close()

    asyncio.run(scenario())
