"""Start and stop a local control plane: etcd, apiserver, controller-manager, scheduler, kwok."""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import typing
import urllib.request

import yaml

from localcluster import certs

REPO = pathlib.Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO / "hack" / "controlplane" / "build.sh"
KWOK_CONFIG = pathlib.Path(__file__).resolve().parent / "kwok" / "metrics.yaml"
NODE_COUNT = 2

AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        # Writes: the tests count them per user to prove a quiet steady state.
        {"level": "Metadata", "verbs": ["create", "update", "patch", "delete", "deletecollection"]},
        # And reads of Secrets (metadata only: never their data), to count how often tokens are read.
        {"level": "Metadata", "verbs": ["get"], "resources": [{"group": "", "resources": ["secrets"]}]},
        {"level": "None"},
    ],
}


def build() -> pathlib.Path:
    """Builds (once, cached) and returns the directory holding the binaries."""
    result = subprocess.run(
        ["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True, timeout=3600
    )
    return pathlib.Path(result.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def kubeconfig(server: str, ca: pathlib.Path, user: dict[str, str], name: str = "local") -> dict[str, typing.Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {"server": server, "certificate-authority": str(ca)}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
    }


def kwok_node(name: str) -> dict[str, typing.Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0",
                            # metrics-server (>= 0.7) scrapes this path instead of /metrics/resource.
                            "metrics.k8s.io/resource-metrics-path": f"/metrics/nodes/{name}/metrics/resource"},
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "type": "kwok"},
        },
        "status": {
            "allocatable": {"cpu": "32", "memory": "256Gi", "pods": "250"},
            "capacity": {"cpu": "32", "memory": "256Gi", "pods": "250"},
        },
    }


class LocalCluster:
    """One control plane in `workdir`; `start()` returns when the API is ready."""

    def __init__(self, workdir: pathlib.Path | None = None, log=None,  # noqa: ANN001
                 controller_manager_args: tuple[str, ...] = ()) -> None:
        self.controller_manager_args = controller_manager_args
        self.workdir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="capliquify-cluster-"))
        self.pki = self.workdir / "pki"
        self.logs = self.workdir / "logs"
        self.audit_log = self.logs / "audit.log"
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.apiserver_port = 0
        self.kwok_port = 0
        self._log = log or (lambda message: print(f"[localcluster] {message}", flush=True))

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.apiserver_port}"

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
        self.processes[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def _write_kubeconfig(self, path: pathlib.Path, client: str) -> pathlib.Path:
        user = {"client-certificate": str(self.pki / f"{client}.crt"), "client-key": str(self.pki / f"{client}.key")}
        path.write_text(yaml.safe_dump(kubeconfig(self.server, self.pki / "ca.crt", user)))
        return path

    def _wait_ready(self, deadline_seconds: float = 120) -> None:
        context = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        context.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        deadline = time.monotonic() + deadline_seconds
        last_error = ""
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    tail = (self.logs / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{self.server}/readyz", context=context, timeout=5) as response:
                    if response.status == 200:
                        return
            except Exception as error:  # noqa: BLE001 - keep polling until the deadline
                last_error = str(error)
            time.sleep(0.5)
        raise TimeoutError(f"kube-apiserver not ready after {deadline_seconds}s: {last_error}")

    def start(self) -> "LocalCluster":
        started = time.monotonic()
        bin_dir = build()
        self.logs.mkdir(parents=True, exist_ok=True)
        certs.generate(self.pki)
        etcd_port, etcd_peer = free_port(), free_port()
        self.apiserver_port = free_port()
        policy = self.workdir / "audit-policy.yaml"
        policy.write_text(yaml.safe_dump(AUDIT_POLICY))
        self._spawn("etcd", [
            str(bin_dir / "etcd"), f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-url=http://127.0.0.1:{etcd_port}", f"--listen-peer-url=http://127.0.0.1:{etcd_peer}",
        ])
        pki = self.pki
        self._spawn("kube-apiserver", [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers=http://127.0.0.1:{etcd_port}",
            "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={self.apiserver_port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}",
            f"--service-account-key-file={pki / 'sa.pub'}", f"--service-account-signing-key-file={pki / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            "--authorization-mode=Node,RBAC", "--service-cluster-ip-range=10.96.0.0/16",
            f"--audit-policy-file={policy}", f"--audit-log-path={self.audit_log}", "--audit-log-mode=blocking",
            f"--cert-dir={self.workdir / 'apiserver-certs'}", "--allow-privileged=true",
            "--enable-priority-and-fairness=false", "--profiling=false",
            # The aggregation layer (metrics.k8s.io from metrics-server, localcluster/metrics_server.py).
            f"--requestheader-client-ca-file={pki / 'ca.crt'}", "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={pki / 'front-proxy-client.crt'}",
            f"--proxy-client-key-file={pki / 'front-proxy-client.key'}",
        ])
        self._wait_ready()
        self._write_kubeconfig(self.kubeconfig, "admin")
        cm_config = self._write_kubeconfig(self.workdir / "controller-manager.kubeconfig", "controller-manager")
        sched_config = self._write_kubeconfig(self.workdir / "scheduler.kubeconfig", "scheduler")
        self._spawn("kube-controller-manager", [
            str(bin_dir / "kube-controller-manager"), f"--kubeconfig={cm_config}",
            f"--authentication-kubeconfig={cm_config}", f"--authorization-kubeconfig={cm_config}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--leader-elect=false",
            f"--service-account-private-key-file={pki / 'sa.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            "--use-service-account-credentials=true",
            # No cloud, no node networking: kwok's nodes need neither. The node-lifecycle
            # controller stays: it lifts the not-ready taint new nodes are admitted with.
            "--controllers=*,-node-ipam-controller,-node-route-controller,-cloud-node-lifecycle-controller,"
            "-service-lb-controller",
            # kwok's nodes never die; a long grace keeps a busy 2-core machine from marking
            # them NotReady, which would mark every pod unready for good.
            "--node-monitor-grace-period=10m", "--node-startup-grace-period=10m",
            *self.controller_manager_args,
        ])
        self._spawn("kube-scheduler", [
            str(bin_dir / "kube-scheduler"), f"--kubeconfig={sched_config}",
            f"--authentication-kubeconfig={sched_config}", f"--authorization-kubeconfig={sched_config}",
            "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--leader-elect=false",
        ])
        # kwok plays the kubelets: its nodes' address is loopback and their kubelet port is kwok's
        # own server (TLS with a certificate for 127.0.0.1), where it serves kubelet-style resource
        # metrics per node (localcluster/kwok/metrics.yaml) for metrics-server to scrape.
        self.kwok_port = free_port()
        self._spawn("kwok", [
            str(bin_dir / "kwok"), f"--kubeconfig={self.kubeconfig}", f"--config={KWOK_CONFIG}", "--manage-all-nodes=false",
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            "--disregard-status-with-annotation-selector=kwok.x-k8s.io/status=custom",
            "--cidr=10.0.0.1/24", "--node-ip=127.0.0.1", f"--node-port={self.kwok_port}",
            "--node-lease-duration-seconds=40", f"--server-address=127.0.0.1:{self.kwok_port}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
        ])
        for index in range(NODE_COUNT):
            self.kubectl_apply(kwok_node(f"kwok-node-{index}"))
        self.wait_for(lambda: self._nodes_ready() == NODE_COUNT, 90, "kwok nodes Ready")
        self._wait_default_service_account()
        self._log(f"control plane ready at {self.server} in {time.monotonic() - started:.1f}s ({self.workdir})")
        return self

    def _nodes_ready(self) -> int:
        nodes = json.loads(self.kubectl("get", "nodes", "-o", "json"))["items"]
        return sum(
            1
            for node in nodes
            for condition in node.get("status", {}).get("conditions", [])
            if condition["type"] == "Ready" and condition["status"] == "True"
        )

    def _wait_default_service_account(self) -> None:
        def present() -> bool:
            return subprocess.run(
                self._kubectl_argv("get", "serviceaccount", "default", "-n", "default"),
                capture_output=True, timeout=30,
            ).returncode == 0

        self.wait_for(present, 60, "default ServiceAccount")

    @staticmethod
    def wait_for(predicate: typing.Callable[[], bool], seconds: float, what: str, interval: float = 0.5) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(interval)
        raise TimeoutError(f"timed out after {seconds}s waiting for {what}")

    def _kubectl_argv(self, *args: str, kubeconfig_path: pathlib.Path | None = None) -> list[str]:
        return ["kubectl", f"--kubeconfig={kubeconfig_path or self.kubeconfig}", *args]

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                kubeconfig_path: pathlib.Path | None = None) -> str:
        """Runs kubectl as the admin (or `kubeconfig_path`); returns stdout, raises with stderr."""
        env = {**os.environ, "KUBECTL_VERSION_SKEW_WARNING": "false"}
        result = subprocess.run(
            self._kubectl_argv(*args, kubeconfig_path=kubeconfig_path),
            input=input, capture_output=True, text=True, timeout=120, env=env,
        )
        if check and result.returncode != 0:
            raise subprocess.CalledProcessError(result.returncode, result.args, result.stdout, result.stderr)
        return result.stdout

    def kubectl_apply(self, *objects: dict[str, typing.Any]) -> str:
        return self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects))

    def service_account_kubeconfig(self, namespace: str, name: str, hours: int = 4) -> pathlib.Path:
        """A kubeconfig that authenticates as the ServiceAccount (a TokenRequest token)."""
        token = self.kubectl("create", "token", name, "-n", namespace, f"--duration={hours}h").strip()
        path = self.workdir / f"{namespace}-{name}.kubeconfig"
        path.write_text(yaml.safe_dump(kubeconfig(self.server, self.pki / "ca.crt", {"token": token})))
        return path

    def audit_events(self) -> list[dict[str, typing.Any]]:
        if not self.audit_log.exists():
            return []
        events = []
        for line in self.audit_log.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                events.append(json.loads(line))
        return events

    def stop(self) -> None:
        for name in reversed(list(self.processes)):
            process = self.processes[name]
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.processes.clear()

    def remove(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.remove()
