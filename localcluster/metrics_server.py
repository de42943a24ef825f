"""The real metrics-server, serving `metrics.k8s.io` through the local API server's aggregation layer.

metrics-server (built from its pinned module, hack/exporters/build.sh) runs on loopback and
scrapes kwok's kubelet-style resource metrics for each fake node (the node's InternalIP is
127.0.0.1, its kubelet port kwok's server, its metrics path the node annotation
`metrics.k8s.io/resource-metrics-path`). The API server reaches metrics-server through an
APIService whose Service is `ExternalName: localhost`: the aggregator resolves such a Service
to `https://localhost:<port>` without endpoints or kube-proxy. A pod's usage is whatever its
annotations `kwok.x-k8s.io/usage-cpu` / `-memory` say (localcluster/kwok/metrics.yaml).
"""

from __future__ import annotations

import base64
import json
import pathlib
import ssl
import subprocess
import urllib.request

from localcluster import cluster as cluster_module

BUILD_SCRIPT = cluster_module.REPO / "hack" / "exporters" / "build.sh"
USAGE_CPU = "kwok.x-k8s.io/usage-cpu"
USAGE_MEMORY = "kwok.x-k8s.io/usage-memory"
RESOLUTION_SECONDS = 10  # metrics-server's minimum


def build() -> pathlib.Path:
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True, timeout=3600)
    return pathlib.Path(result.stdout.strip().splitlines()[-1])


class MetricsServer:
    def __init__(self, local: cluster_module.LocalCluster) -> None:
        self.local = local
        self.port = cluster_module.free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> "MetricsServer":
        binary = build() / "metrics-server"
        pki = self.local.pki
        log = open(self.local.logs / "metrics-server.log", "ab")  # noqa: SIM115 - owned by the process
        self.process = subprocess.Popen([
            str(binary), f"--kubeconfig={self.local.kubeconfig}",
            f"--authentication-kubeconfig={self.local.kubeconfig}", f"--authorization-kubeconfig={self.local.kubeconfig}",
            "--bind-address=127.0.0.1", f"--secure-port={self.port}",
            f"--tls-cert-file={pki / 'metrics-server.crt'}", f"--tls-private-key-file={pki / 'metrics-server.key'}",
            f"--requestheader-client-ca-file={pki / 'ca.crt'}", "--requestheader-allowed-names=front-proxy-client",
            "--kubelet-preferred-address-types=InternalIP", "--kubelet-use-node-status-port",
            f"--kubelet-certificate-authority={pki / 'ca.crt'}", f"--metric-resolution={RESOLUTION_SECONDS}s",
            "--kubelet-request-timeout=5s",
        ], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.local.processes["metrics-server"] = self.process  # stopped with the cluster, whatever happens
        self.local.wait_for(self._ready, 60, "metrics-server ready")
        ca_bundle = base64.b64encode((pki / "ca.crt").read_bytes()).decode()
        self.local.kubectl_apply(
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "metrics-server", "namespace": "kube-system"},
             "spec": {"type": "ExternalName", "externalName": "localhost",
                      "ports": [{"name": "https", "port": self.port, "protocol": "TCP"}]}},
            {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
             "metadata": {"name": "v1beta1.metrics.k8s.io"},
             "spec": {"group": "metrics.k8s.io", "version": "v1beta1", "groupPriorityMinimum": 100, "versionPriority": 100,
                      "caBundle": ca_bundle,
                      "service": {"name": "metrics-server", "namespace": "kube-system", "port": self.port}}},
        )
        self.local.wait_for(self._available, 90, "metrics.k8s.io served through the aggregator")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            text = (self.local.logs / "metrics-server.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"metrics-server exited {self.process.returncode}:\n{text}")
        context = ssl.create_default_context(cafile=str(self.local.pki / "ca.crt"))
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/livez", timeout=2, context=context) as answer:
                return answer.status == 200
        except OSError:
            return False

    def _available(self) -> bool:
        # A node without pods has no usage, and metrics-server leaves out a node at zero: the
        # list answering at all is the sign (pods appear one resolution after they run).
        out = self.local.kubectl("get", "--raw", "/apis/metrics.k8s.io/v1beta1/nodes", check=False)
        try:
            return json.loads(out).get("kind") == "NodeMetricsList"
        except ValueError:
            return False

    def pod_metrics(self, namespace: str) -> list[dict]:
        out = self.local.kubectl("get", "--raw", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods")
        return json.loads(out)["items"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
