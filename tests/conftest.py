"""Fixtures: a real local control plane (session) and the operator as its own ServiceAccount."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
import typing

import pytest

from localcluster import cluster as cluster_module

REPO = pathlib.Path(__file__).resolve().parent.parent
OPERATOR_NAMESPACE = "capliquify-system"
OPERATOR_ACCOUNT = "capliquify-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[cluster_module.LocalCluster]:
    local = cluster_module.LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        local.start()
        # The operator's install: CRDs, namespace, RBAC, Deployment (kwok "runs" its pod).
        local.kubectl("apply", "-k", str(REPO / "manifests"))
        local.wait_for(lambda: "Established" in local.kubectl(
            "get", "crd", "-o", "jsonpath={.items[*].status.conditions[?(@.status==\"True\")].type}"), 60, "CRDs")
        # The OpenAPI document (explain, server-side apply) is published a few seconds later.
        local.wait_for(lambda: all(local.kubectl("explain", kind, check=False).strip()
                                   for kind in ("msvc", "scp", "alp")), 60, "CRD OpenAPI published")
        yield local
    finally:
        local.stop()


class OperatorProcess:
    """`capliquify run` as a subprocess, authenticated as the operator's ServiceAccount."""

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
            cwd=REPO, env=env, stdout=open(self.log_path, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )
        self.local.wait_for(self.healthy, 60, "operator liveness endpoint")
        return self

    def healthy(self) -> bool:
        import urllib.request

        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(f"operator exited {self.process.returncode}:\n{self.log()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def metrics_text(self) -> str:
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as response:
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


@pytest.fixture
def operator_factory(cluster: cluster_module.LocalCluster, tmp_path: pathlib.Path):  # noqa: ANN201
    started: list[OperatorProcess] = []

    def start(*extra: str) -> OperatorProcess:
        process = OperatorProcess(cluster, tmp_path / f"operator-{len(started)}.log", *extra).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def namespace(cluster: cluster_module.LocalCluster, request: pytest.FixtureRequest) -> typing.Iterator[str]:
    name = f"t-{request.node.name.lower().replace('_', '-')[:40].strip('-')}-{int(time.time() * 1000) % 100000}"
    name = "".join(ch if ch.isalnum() or ch == "-" else "-" for ch in name)
    cluster.kubectl("create", "namespace", name)
    yield name
    cluster.kubectl("delete", "namespace", name, "--wait=false")
