"""The real kube-state-metrics (pinned module, hack/exporters/ksm) against the local API
server, on loopback: `kube_pod_container_resource_requests` as on a real cluster."""

from __future__ import annotations

import pathlib
import subprocess

from localcluster import cluster as cluster_module
from localcluster import daemon
from localcluster import metrics_server


class KubeStateMetrics:
    def __init__(self, local: cluster_module.LocalCluster, namespaces: tuple[str, ...] = ()) -> None:
        self.local = local
        self.namespaces = namespaces
        self.port = cluster_module.free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "KubeStateMetrics":
        binary: pathlib.Path = metrics_server.build() / "kube-state-metrics"
        argv = [str(binary), f"--kubeconfig={self.local.kubeconfig}", "--host=127.0.0.1", f"--port={self.port}",
                "--telemetry-host=127.0.0.1", f"--telemetry-port={cluster_module.free_port()}", "--resources=pods"]
        if self.namespaces:
            argv.append(f"--namespaces={','.join(self.namespaces)}")
        self.process = daemon.start("kube-state-metrics", argv, self.local.logs / "kube-state-metrics.log",
                                    f"http://{self.target}/healthz")
        self.local.processes["kube-state-metrics"] = self.process  # stopped with the cluster, whatever happens
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
