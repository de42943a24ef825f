"""The operator installed as users install it, on the real nodes (localcluster/node.py):
`kubectl apply -k` of an overlay on manifests/ whose only changes are the image (kustomize's
image override, to the image `make image` built) and what a host-network pod on a loopback
node needs.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tomllib
import typing

import yaml

from localcluster import cluster as cluster_module
from localcluster import node as node_module

IMAGE_BUILD = cluster_module.REPO / "hack" / "image" / "build.sh"
SHIPPED_IMAGE = "ghcr.io/capliquify/operator"  # what manifests/ and the chart name
MANIFESTS = cluster_module.REPO / "manifests"
NAMESPACE = "capliquify-system"
LEASE = "capliquify-operator"
CNI_LOOPBACK = pathlib.Path("/usr/lib/cni/loopback")  # Debian's containernetworking-plugins (node.py's CNI)


def unavailable() -> str | None:
    """Why the operator cannot run as pods on a real node on this machine; None when it can
    (the kubelet and the image are built after this says yes: their failures are the caller's)."""
    if os.geteuid() != 0:
        return "not root (containerd, runc and buildah's store need root)"
    missing = [tool for tool in ("buildah", "containerd", "ctr", "runc") if shutil.which(tool) is None]
    if missing:
        return f"{', '.join(missing)} not installed (make apt installs them)"
    if not CNI_LOOPBACK.exists():
        return f"the CNI loopback plugin is not installed ({CNI_LOOPBACK}: make apt installs it)"
    return None


def build_image() -> pathlib.Path:
    """`make image` (skipped when its inputs have not changed): the operator's archive."""
    env = {**os.environ, "PY": sys.executable}
    result = subprocess.run(["bash", str(IMAGE_BUILD)], check=True, stdout=subprocess.PIPE, text=True,
                            timeout=3600, env=env)
    return pathlib.Path(result.stdout.strip().splitlines()[-1])


def built_image() -> pathlib.Path:
    """The archive `make image` wrote (hack/image/build.sh's default path), not rebuilt: for a
    caller that has just run `make image` (`make demo`), whose sources others may edit meanwhile."""
    project = tomllib.loads((cluster_module.REPO / "pyproject.toml").read_text())["project"]
    archive = cluster_module.REPO / "dist" / f"capliquify-operator-{project['version']}.tar"
    if not archive.exists():
        raise FileNotFoundError(f"{archive}: make image writes it")
    return archive


def image_name(archive: pathlib.Path) -> str:
    """The name a docker-archive carries (its manifest's first tag)."""
    listing = subprocess.run(["tar", "-xOf", str(archive), "manifest.json"], check=True, capture_output=True,
                             timeout=120).stdout
    return json.loads(listing)[0]["RepoTags"][0]


def demo_archive(operator_archive: pathlib.Path) -> pathlib.Path:
    """The examples' workload (hack/image/testapp.py), which `make image` writes beside the operator."""
    archive = operator_archive.with_name(operator_archive.name.replace("capliquify-operator-", "capliquify-demo-web-"))
    if not archive.exists():
        raise FileNotFoundError(f"{archive}: hack/image/build.sh writes it beside {operator_archive.name}")
    return archive


def operator_overlay(directory: pathlib.Path, local: cluster_module.LocalCluster, image: str,
                     metrics_port: int, health_port: int, extra_args: typing.Sequence[str] = ()) -> pathlib.Path:
    """A kustomization over manifests/: the image override, and for pods on a real node's network:
    - the API server's address (the kubelet would give the `kubernetes` Service's cluster IP,
      which nothing routes here: no kube-proxy, loopback only);
    - HOSTNAME = the pod's name (host-network pods share the host's name; the election
      identity starts with it);
    - /metrics and /healthz on the pod's IP (the node's own loopback address) and free ports.
    """
    directory.mkdir(parents=True, exist_ok=True)
    name, _, tag = image.rpartition(":")
    deployment = {"group": "apps", "version": "v1", "kind": "Deployment", "name": "capliquify-operator"}
    container = "/spec/template/spec/containers/0"
    env = [
        {"name": "KUBERNETES_SERVICE_HOST", "value": "127.0.0.1"},
        {"name": "KUBERNETES_SERVICE_PORT", "value": str(local.apiserver_port)},
        {"name": "HOSTNAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "CAPLIQUIFY_BIND_ADDRESS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "CAPLIQUIFY_METRICS_PORT", "value": str(metrics_port)},
        {"name": "CAPLIQUIFY_HEALTH_PORT", "value": str(health_port)},
    ]
    patch = [
        {"op": "add", "path": "/spec/template/spec/hostNetwork", "value": True},
        {"op": "add", "path": "/spec/template/spec/nodeSelector", "value": node_module.PLACEMENT["nodeSelector"]},
        {"op": "add", "path": "/spec/template/spec/tolerations", "value": node_module.PLACEMENT["tolerations"]},
        {"op": "add", "path": f"{container}/imagePullPolicy", "value": "Never"},
        {"op": "replace", "path": f"{container}/ports",
         "value": [{"name": "metrics", "containerPort": metrics_port}, {"name": "health", "containerPort": health_port}]},
        *({"op": "add", "path": f"{container}/env/-", "value": variable} for variable in env),
        *({"op": "add", "path": f"{container}/args/-", "value": arg} for arg in extra_args),
    ]
    (directory / "operator-on-real-node.yaml").write_text(yaml.safe_dump(patch))
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": [os.path.relpath(MANIFESTS, directory)],
        "images": [{"name": SHIPPED_IMAGE, "newName": name, "newTag": tag}],
        "patches": [{"path": "operator-on-real-node.yaml", "target": deployment}],
    }
    (directory / "kustomization.yaml").write_text(yaml.safe_dump(kustomization, sort_keys=False))
    return directory


def install(local: cluster_module.LocalCluster, overlay: pathlib.Path) -> str:
    """`kubectl apply -k` the overlay; returns when the CRDs are established."""
    try:
        out = local.kubectl("apply", "-k", str(overlay))
    except subprocess.CalledProcessError as error:
        raise RuntimeError(f"kubectl apply -k {overlay} failed:\n{error.stderr}") from None
    local.wait_for(lambda: local.kubectl(
        "get", "crd", "-o", 'jsonpath={.items[*].status.conditions[?(@.type=="Established")].status}'
    ).split() == ["True"] * 3, 60, "CRDs established")
    return out


def operator_pods(local: cluster_module.LocalCluster) -> list[dict[str, typing.Any]]:
    pods = json.loads(local.kubectl("get", "pods", "-n", "capliquify-system", "-l",
                                    "app.kubernetes.io/name=capliquify-operator", "-o", "json"))["items"]
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def ready(pod: dict[str, typing.Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def lease_holder(local: cluster_module.LocalCluster) -> str:
    """The election Lease's holder identity (`<HOSTNAME>_<suffix>`; HOSTNAME is the pod's name)."""
    lease = local.kubectl("get", "lease", LEASE, "-n", NAMESPACE, "-o", "json", check=False)
    return (json.loads(lease or "{}").get("spec") or {}).get("holderIdentity") or ""


def leader_pod(local: cluster_module.LocalCluster) -> dict[str, typing.Any]:
    """The operator pod that holds the Lease ({} when none does)."""
    holder = lease_holder(local)
    return next((pod for pod in operator_pods(local) if holder.startswith(pod["metadata"]["name"] + "_")), {})


def lease_free(local: cluster_module.LocalCluster) -> bool:
    """Nobody holds the election Lease: released (no holder) or expired (its holder's last renewal
    older than the Lease's duration; an expired Lease keeps its holder's name)."""
    spec = (json.loads(local.kubectl("get", "lease", LEASE, "-n", NAMESPACE, "-o", "json", check=False) or "{}")
            .get("spec") or {})
    if not spec.get("holderIdentity") or not spec.get("renewTime"):
        return True
    renewed = datetime.datetime.fromisoformat(spec["renewTime"].replace("Z", "+00:00"))
    age = (datetime.datetime.now(datetime.timezone.utc) - renewed).total_seconds()
    return age > float(spec.get("leaseDurationSeconds") or 15)
