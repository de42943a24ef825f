"""Fixtures: a real local control plane (session) and the operator as its own ServiceAccount."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time
import typing
import urllib.request

import pytest
import yaml

from localcluster import cluster as cluster_module
from localcluster import metrics_server as metrics_server_module
from localcluster import operator as operator_module
from localcluster import prometheus as prometheus_module
from localcluster import railway as railway_module

REPO = cluster_module.REPO
OPERATOR_USER = operator_module.OPERATOR_USER


def kubectl_capliquify(cluster: cluster_module.LocalCluster, *args: str) -> str:
    """`kubectl capliquify ...` as a user runs it: kubectl finds the installed plugin on PATH
    (the package's `kubectl-capliquify` script, beside this interpreter) and the kubeconfig in
    $KUBECONFIG (kubectl hands plugins its environment, not its flags)."""
    import os

    env = {**os.environ, "PATH": f"{pathlib.Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "KUBECONFIG": str(cluster.kubeconfig), "KUBECTL_VERSION_SKEW_WARNING": "false"}
    result = subprocess.run(["kubectl", "capliquify", *args], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> typing.Iterator[cluster_module.LocalCluster]:
    local = cluster_module.LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        local.start()
        operator_module.install(local)
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def metrics_server(cluster: cluster_module.LocalCluster) -> typing.Iterator[metrics_server_module.MetricsServer]:
    """The real metrics-server behind the aggregation layer (started once, when first needed)."""
    server = metrics_server_module.MetricsServer(cluster).start()
    yield server
    server.stop()


@pytest.fixture
def operator_factory(cluster: cluster_module.LocalCluster, tmp_path: pathlib.Path):  # noqa: ANN201
    started: list[operator_module.OperatorProcess] = []

    def start(*extra: str) -> operator_module.OperatorProcess:
        process = operator_module.OperatorProcess(cluster, tmp_path / f"operator-{len(started)}.log", *extra).start()
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


class DemoStack:
    """The demo app playing a Deployment's pods, scraped by a real Prometheus, plus load."""

    def __init__(self, local: cluster_module.LocalCluster, namespace: str, workdir: pathlib.Path) -> None:
        self.local, self.namespace, self.workdir = local, namespace, workdir
        self.app_port = cluster_module.free_port()
        self.app: subprocess.Popen[bytes] | None = None
        self.load: subprocess.Popen[bytes] | None = None
        self.prometheus = prometheus_module.Prometheus(workdir / "prometheus", [f"127.0.0.1:{self.app_port}"])

    @property
    def app_url(self) -> str:
        return f"http://127.0.0.1:{self.app_port}"

    def start(self, replicas: int = 2, queue_gauge: bool = True) -> "DemoStack":
        deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                      "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                               "template": {"metadata": {"labels": {"app": "web"}},
                                            "spec": {"containers": [{"name": "web", "image": "demo/web:1"}]}}}}
        self.local.kubectl("apply", "-n", self.namespace, "-f", "-", input=yaml.safe_dump(deployment))
        self.app = subprocess.Popen(
            [sys.executable, "-m", "demo.webapp", f"--kubeconfig={self.local.kubeconfig}",
             f"--namespace={self.namespace}", f"--port={self.app_port}", *(() if queue_gauge else ("--no-queue-gauge",))],
            cwd=REPO, stdout=open(self.workdir / "webapp.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )
        self.local.wait_for(lambda: self.ready_pods() == replicas, 60, "demo app sees the ready pods")
        self.prometheus.start()
        return self

    def ready_pods(self) -> int:
        try:
            with urllib.request.urlopen(f"{self.app_url}/metrics", timeout=2) as response:
                for line in response.read().decode().splitlines():
                    if line.startswith("demo_ready_pods "):
                        return int(line.split()[1])
        except OSError:
            pass
        return -1

    def start_load(self, rate: float, seconds: float = 600) -> None:
        self.stop_load()
        self.load = subprocess.Popen(
            [sys.executable, "-m", "demo.loadgen", f"--url={self.app_url}/", f"--rate={rate}", f"--seconds={seconds}"],
            cwd=REPO, stdout=open(self.workdir / "loadgen.log", "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
        )

    def stop_load(self) -> None:
        if self.load is not None and self.load.poll() is None:
            self.load.terminate()
            self.load.wait(timeout=10)

    def stop(self) -> None:
        self.stop_load()
        self.prometheus.stop()
        if self.app is not None and self.app.poll() is None:
            self.app.terminate()
            self.app.wait(timeout=10)


@pytest.fixture
def demo_stack(cluster: cluster_module.LocalCluster, namespace: str, tmp_path: pathlib.Path) -> typing.Iterator[DemoStack]:
    stack = DemoStack(cluster, namespace, tmp_path)
    try:
        yield stack.start()
    finally:
        stack.stop()


@pytest.fixture
def railway() -> typing.Iterator[railway_module.RailwaySimulator]:
    """The local Railway on loopback, token "t0ken", with service svc-1 ("api", 1 replica) in env-1."""
    simulator = railway_module.RailwaySimulator(token="t0ken").start()
    simulator.add_service("svc-1", "api", replicas=1)
    yield simulator
    simulator.stop()
