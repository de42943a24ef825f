"""`capliquify run` as a subprocess, authenticated as the operator's own ServiceAccount."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import urllib.parse
import urllib.request

from localcluster import cluster as cluster_module

OPERATOR_NAMESPACE = "capliquify-system"
OPERATOR_ACCOUNT = "capliquify-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"


def install(local: cluster_module.LocalCluster) -> str:
    """`kubectl apply -k manifests/`: CRDs, namespace, RBAC, Deployment (kwok "runs" its pod)."""
    out = local.kubectl("apply", "-k", str(cluster_module.REPO / "manifests"))
    local.wait_for(lambda: local.kubectl(
        "get", "crd", "-o", 'jsonpath={.items[*].status.conditions[?(@.type=="Established")].status}'
    ).split() == ["True"] * 3, 60, "CRDs established")
    # The OpenAPI document (kubectl explain, server-side apply) is published a few seconds later.
    local.wait_for(lambda: all(local.kubectl("explain", kind, check=False).strip()
                               for kind in ("msvc", "scp", "alp")), 60, "CRD OpenAPI published")
    return out


class OperatorProcess:
    """The operator process; never cluster-admin: its kubeconfig holds the ServiceAccount's token."""

    def __init__(self, local: cluster_module.LocalCluster, log_path: pathlib.Path, *extra: str) -> None:
        self.local = local
        self.log_path = log_path
        self.kubeconfig = local.service_account_kubeconfig(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
        self.metrics_port = cluster_module.free_port()
        self.health_port = cluster_module.free_port()
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "OperatorProcess":
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("KUBECONFIG", None)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "controller", "run", f"--kubeconfig={self.kubeconfig}",
             f"--metrics-port={self.metrics_port}", f"--health-port={self.health_port}", *self.extra],
            cwd=cluster_module.REPO, env=env, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )
        self.local.wait_for(self.healthy, 60, "operator liveness endpoint")
        return self

    def healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"operator exited {self.process.returncode}:\n{self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def metrics_text(self, *names: str) -> str:
        """Its /metrics; only the families `names` when given (the operator renders nothing else)."""
        query = "?" + urllib.parse.urlencode([("name[]", name) for name in names]) if names else ""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics{query}", timeout=5) as response:
            return response.read().decode()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
