"""Starts the local control plane, installs the operator, runs it as its own ServiceAccount,
applies the examples, and shows what `kubectl get capliquify -A` shows a person."""

from __future__ import annotations

import json
import pathlib
import sys
import tempfile
import time

from localcluster import cluster as cluster_module
from localcluster import operator as operator_module


def say(message: str) -> None:
    print(f"\n==> {message}", flush=True)


def ready(local: cluster_module.LocalCluster, kind: str, namespace: str) -> bool:
    items = json.loads(local.kubectl("get", kind, "-n", namespace, "-o", "json"))["items"]
    return bool(items) and all(
        any(c["type"] == "Ready" and c["status"] == "True" for c in item.get("status", {}).get("conditions", []))
        for item in items
    )


def main() -> int:
    workdir = pathlib.Path(tempfile.mkdtemp(prefix="capliquify-demo-"))
    local = cluster_module.LocalCluster(workdir / "cluster")
    operator = None
    try:
        say("Starting a local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok)")
        local.start()
        say("kubectl apply -k manifests/   (CRDs, RBAC, operator Deployment)")
        print(operator_module.install(local), end="")
        say("Running the operator as ServiceAccount capliquify-system/capliquify-operator")
        operator = operator_module.OperatorProcess(local, workdir / "operator.log").start()
        say("kubectl apply -k manifests/examples   (web Deployment + one object per kind)")
        print(local.kubectl("apply", "-k", str(cluster_module.REPO / "manifests" / "examples")), end="")
        for kind in ("msvc", "scp", "alp"):
            local.wait_for(lambda kind=kind: ready(local, kind, "shop"), 60, f"{kind} Ready")
        local.wait_for(lambda: json.loads(local.kubectl("get", "msvc", "web", "-n", "shop", "-o", "json"))
                       ["status"].get("replicas", {}).get("ready") == 2, 60, "web ready")
        time.sleep(1)
        say("kubectl get events -n shop (from the operator)")
        print(local.kubectl("get", "events", "-n", "shop", "--field-selector", "source=capliquify-operator"), end="")
        say("kubectl get capliquify -A")
        print(local.kubectl("get", "capliquify", "-A"), end="", flush=True)
        return 0
    except Exception as error:  # noqa: BLE001 - show the logs that explain it
        print(f"demo failed: {error}", file=sys.stderr)
        for log in sorted(workdir.rglob("*.log")):
            print(f"--- {log}\n{log.read_text(errors='replace')[-2000:]}", file=sys.stderr)
        return 1
    finally:
        if operator is not None:
            operator.stop()
        local.stop()


if __name__ == "__main__":
    sys.exit(main())
