"""Real pods (issue 27): the operator's image (`make image`) run by a real kubelet and containerd
on two real nodes beside kwok's (localcluster/node.py), installed from manifests/ with a kustomize
image override as a user installs it: two replicas with leader election, their logs read with
`kubectl logs`, the leader's pod deleted, a probe the operator manages executed by the kubelet,
and a rollout whose readiness really fails rolled back on real pods.

A cluster of its own (the session cluster's operator Deployment is run by kwok, and pods of a
real leader would act on every other test's objects). Needs root (containerd, runc, buildah).
"""

from __future__ import annotations

import json
import os
import re
import time
import typing
import urllib.request

import pytest
import yaml

from localcluster import cluster as cluster_module
from localcluster import node as node_module
from localcluster import operator as operator_module
from localcluster import pods

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="real nodes need root (containerd, runc, buildah)")]
GROUP = "ops.capliquify.io/v1alpha1"
SYSTEM = "capliquify-system"
APPS = "apps"


class Real(typing.NamedTuple):
    local: cluster_module.LocalCluster
    nodes: list[node_module.RealNode]
    health_port: int
    demo_image: str


@pytest.fixture(scope="module")
def real(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[Real]:
    archive = pods.build_image()
    demo = pods.demo_archive(archive)
    local = cluster_module.LocalCluster(tmp_path_factory.mktemp("real-cluster"))
    nodes: list[node_module.RealNode] = []
    try:
        local.start()
        for index in range(2):
            nodes.append(node_module.RealNode(local, index, [archive, demo]))
            nodes[-1].start()
        metrics_port, health_port = cluster_module.free_port(), cluster_module.free_port()
        overlay = pods.operator_overlay(tmp_path_factory.mktemp("overlay"), local, pods.image_name(archive),
                                        metrics_port, health_port, ["--allow-loopback-checks"])
        pods.install(local, overlay)
        local.wait_for(lambda: len([p for p in pods.operator_pods(local) if pods.ready(p)]) == 2, 180,
                       "two operator pods Ready (the kubelet's readiness probe on /healthz)")
        yield Real(local, nodes, health_port, pods.image_name(demo))
    finally:
        for real_node in nodes:
            real_node.stop()
        local.stop()
        local.remove()


def lease_holder(local: cluster_module.LocalCluster) -> str:
    lease = json.loads(local.kubectl("get", "lease", "capliquify-operator", "-n", SYSTEM, "-o", "json", check=False) or "{}")
    return lease.get("spec", {}).get("holderIdentity") or ""


def leader_pod(local: cluster_module.LocalCluster) -> str:
    """The pod whose name starts the Lease holder's identity (`<HOSTNAME>_<suffix>`)."""
    holder = lease_holder(local)
    return next((p["metadata"]["name"] for p in pods.operator_pods(local) if holder.startswith(p["metadata"]["name"] + "_")), "")


def test_the_operator_runs_as_two_pods_from_the_image_and_logs_json(real: Real) -> None:
    running = pods.operator_pods(real.local)
    assert len(running) == 2 and all(pods.ready(p) for p in running)
    # One per real node (the manifests' anti-affinity), each on its node's loopback address.
    assert sorted(p["spec"]["nodeName"] for p in running) == [n.name for n in real.nodes]
    assert sorted(p["status"]["podIP"] for p in running) == [n.address for n in real.nodes]
    assert {p["spec"]["containers"][0]["image"] for p in running} == {"localhost/capliquify-operator:0.1.0"}
    # The kubelet ran the image as the manifests say: uid 10001, and its probe passed on /healthz.
    for pod in running:
        assert pod["status"]["containerStatuses"][0]["ready"] is True
        with urllib.request.urlopen(f"http://{pod['status']['podIP']}:{real.health_port}/healthz", timeout=5) as answer:
            assert answer.status == 200
    for pod in running:
        lines = [line for line in real.local.kubectl("logs", "-n", SYSTEM, pod["metadata"]["name"]).splitlines() if line]
        records = [json.loads(line) for line in lines]  # every line is JSON: a line that is not fails here
        assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
        assert any(r["message"].startswith("leader election as " + pod["metadata"]["name"] + "_") for r in records)
    real.local.wait_for(lambda: leader_pod(real.local) != "", 30, "a lease holder among the pods")


def test_the_leader_pod_deleted_the_other_takes_over_and_acts(real: Real) -> None:
    real.local.wait_for(lambda: leader_pod(real.local) != "", 30, "a lease holder among the pods")
    old = leader_pod(real.local)
    other = next(p["metadata"]["name"] for p in pods.operator_pods(real.local) if p["metadata"]["name"] != old)
    real.local.kubectl("delete", "pod", old, "-n", SYSTEM, "--wait=false")
    started = time.monotonic()
    real.local.wait_for(lambda: leader_pod(real.local) == other, 60, f"{other} holding the Lease")
    took = time.monotonic() - started
    # The new leader acts: a MonitoredService gets its verdict written.
    real.local.kubectl("create", "namespace", "takeover")
    service = {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "nothing", "namespace": "takeover"},
               "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "missing"}}}}
    real.local.kubectl_apply(service)
    real.local.wait_for(lambda: real.local.kubectl(
        "get", "msvc", "nothing", "-n", "takeover", "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].reason}")
        == "TargetNotFound", 60, "the new leader's verdict written")
    # The Deployment replaces the deleted pod; both Ready again.
    real.local.wait_for(lambda: len([p for p in pods.operator_pods(real.local) if pods.ready(p)]) == 2, 120, "two Ready again")
    print(f"handover after the leader pod's deletion: {took:.1f} s")


def web_deployment(image: str, port: int) -> dict[str, typing.Any]:
    """The workload on real node 0 (its address is the health check's host), Recreate: one
    host port, so a new revision's pod replaces the old one on the same node."""
    env = [{"name": "PORT", "value": str(port)},
           {"name": "BIND_ADDRESS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": APPS},
        "spec": {"replicas": 1, "strategy": {"type": "Recreate"}, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {**node_module.PLACEMENT, "hostNetwork": True,
                                       "nodeSelector": {"kubernetes.io/hostname": "capliquify-node-0"},
                                       "containers": [{"name": "web", "image": image, "imagePullPolicy": "Never",
                                                       "env": env}]}}}}


def web_pod(local: cluster_module.LocalCluster) -> dict[str, typing.Any]:
    found = json.loads(local.kubectl("get", "pods", "-n", APPS, "-l", "app=web", "-o", "json"))["items"]
    live = [p for p in found if not p["metadata"].get("deletionTimestamp")]
    return live[0] if len(live) == 1 else {}


def post(url: str) -> None:
    request = urllib.request.Request(url, method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200


def test_a_managed_probe_is_executed_by_the_kubelet_and_a_bad_rollout_is_rolled_back(real: Real) -> None:
    local, port = real.local, cluster_module.free_port()
    address = real.nodes[0].address
    local.kubectl("create", "namespace", APPS)
    service = {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "web", "namespace": APPS},
               "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                        "healthChecks": [{"name": "api", "http": {"url": f"http://{address}:{port}/healthz", "timeoutSeconds": 1},
                                          "intervalSeconds": 2, "failureThreshold": 2}],
                        # Readiness only: the test turns health off and on, a liveness probe would restart it.
                        "probes": {"manage": True, "liveness": False},
                        "rollout": {"autoRollback": True, "progressDeadlineSeconds": 45, "analysis": {"windowSeconds": 0}}}}
    local.kubectl("apply", "-f", "-", input=yaml.safe_dump_all([web_deployment(real.demo_image, port), service]))

    def probe() -> dict[str, typing.Any]:
        container = web_pod(local).get("spec", {}).get("containers", [{}])[0]
        return container.get("readinessProbe") or {}

    # The operator applies the probe to the template; the pod of that revision carries it.
    local.wait_for(lambda: probe().get("httpGet", {}).get("port") == port, 120, "the managed readiness probe on the pod")
    local.wait_for(lambda: pods.ready(web_pod(local)), 60, "the web pod Ready")
    # The kubelet executes it: the app's /healthz failing takes the pod out of Ready, and back.
    post(f"http://{address}:{port}/fail")
    local.wait_for(lambda: not pods.ready(web_pod(local)), 30, "the web pod unready (kubelet's readiness probe)")
    post(f"http://{address}:{port}/recover")
    local.wait_for(lambda: pods.ready(web_pod(local)), 30, "the web pod Ready again")
    local.wait_for(lambda: rollout(local).get("phase") == "Healthy", 60, "the rollout guard's Healthy verdict")
    good = rollout(local)["revision"]

    # A version whose readiness really fails (the same probe, an app that answers 503).
    local.kubectl("set", "env", "deployment/web", "-n", APPS, "START_FAILING=1")
    local.wait_for(lambda: any(e["name"] == "START_FAILING" for e in web_pod(local).get("spec", {}).get("containers", [{}])[0]
                               .get("env", [])), 60, "the bad revision's pod")
    bad = revision(local)
    assert int(bad) > int(good)
    # Rolled back by the guard once the rollout misses its 45 s deadline; the old revision's pod Ready.
    local.wait_for(lambda: bad in rollout(local).get("rolledBackRevisions", []), 120, f"revision {bad} rolled back")
    local.wait_for(lambda: pods.ready(web_pod(local))
                   and not any(e["name"] == "START_FAILING" for e in web_pod(local)["spec"]["containers"][0]["env"]),
                   90, "the previous revision's pod Ready again")
    local.wait_for(lambda: rollout(local).get("phase") == "Healthy" and rollout(local).get("revision") not in (good, bad),
                   60, "the rollback's revision Healthy")
    assert rollout(local)["revision"] in rollout(local)["rollbackRevisions"], rollout(local)


def rollout(local: cluster_module.LocalCluster) -> dict[str, typing.Any]:
    return json.loads(local.kubectl("get", "msvc", "web", "-n", APPS, "-o", "json")).get("status", {}).get("rollout") or {}


def revision(local: cluster_module.LocalCluster) -> str:
    deployment = json.loads(local.kubectl("get", "deployment", "web", "-n", APPS, "-o", "json"))
    return deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"]


VERDICT_LINE = re.compile(r"first verdicts for (\d+) objects, ([0-9.]+) s after start")


def judged(local: cluster_module.LocalCluster, namespace: str, count: int) -> bool:
    items = json.loads(local.kubectl("get", "msvc", "-n", namespace, "-o", "json"))["items"]
    return len(items) == count and all(
        any(c["type"] == "Ready" for c in item.get("status", {}).get("conditions", [])) for item in items)


def services(namespace: str, count: int) -> list[dict[str, typing.Any]]:
    return [{"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": f"svc-{index}", "namespace": namespace},
             "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": f"missing-{index}"}}}} for index in range(count)]


def scale_operator(local: cluster_module.LocalCluster, replicas: int) -> None:
    local.kubectl("scale", "deployment", "capliquify-operator", "-n", SYSTEM, f"--replicas={replicas}")
    if replicas == 0:
        local.wait_for(lambda: not json.loads(local.kubectl("get", "pods", "-n", SYSTEM, "-o", "json"))["items"], 120,
                       "no operator pod left")


def test_first_verdicts_from_a_pod_and_from_a_host_process(real: Real, tmp_path_factory: pytest.TempPathFactory) -> None:
    """The same start-up as a pod (from `kubectl scale` to every verdict written: scheduling,
    the container's start, the operator's) and as a host process, in one run. Printed, not
    asserted (speed is the benchmarks' business); what is asserted is that each writes them all."""
    local, count = real.local, 200
    figures = {}
    try:
        scale_operator(local, 0)
        for where in ("pod", "host"):
            namespace = f"verdicts-{where}"
            local.kubectl("create", "namespace", namespace)
            local.kubectl_apply(*services(namespace, count))
            started = time.monotonic()
            if where == "pod":
                scale_operator(local, 1)
            else:
                host = operator_module.OperatorProcess(local, tmp_path_factory.mktemp("host") / "operator.log", "--leader-elect")
                host.start()
            local.wait_for(lambda namespace=namespace: judged(local, namespace, count), 180, f"{count} verdicts ({where})")
            took = time.monotonic() - started
            log = (local.kubectl("logs", "-n", SYSTEM, "deployment/capliquify-operator") if where == "pod" else host.log())
            found = VERDICT_LINE.search(log)
            # Its first round judges every object it sees: these, and what earlier tests left.
            assert found and int(found.group(1)) >= count, log[-2000:]
            figures[where] = (took, float(found.group(2)))
            if where == "pod":
                scale_operator(local, 0)
            else:
                host.stop()
            local.kubectl("delete", "namespace", namespace, "--wait=false")
    finally:
        scale_operator(local, 2)
        local.wait_for(lambda: len([p for p in pods.operator_pods(local) if pods.ready(p)]) == 2, 180, "two Ready again")
    for where, (took, logged) in figures.items():
        print(f"first verdicts for {count} MonitoredServices as a {where}: {took:.1f} s from start-up asked "
              f"({logged:.1f} s after the process started, by its log)")


def test_every_node_stays_where_it_belongs(real: Real) -> None:
    """The real nodes carry the taint and the label; kwok's nodes are untouched."""
    nodes = json.loads(real.local.kubectl("get", "nodes", "-o", "json"))["items"]
    by_name = {n["metadata"]["name"]: n for n in nodes}
    for real_node in real.nodes:
        spec = by_name[real_node.name]["spec"]
        assert {"key": node_module.TAINT["key"], "value": "true", "effect": "NoSchedule"} in spec.get("taints", [])
        assert by_name[real_node.name]["metadata"]["labels"][node_module.LABEL] == "real"
    kwok = [n for n in nodes if n["metadata"]["labels"].get("type") == "kwok"]
    assert kwok and all(not any(t["key"] == node_module.TAINT["key"] for t in n["spec"].get("taints", [])) for n in kwok)
