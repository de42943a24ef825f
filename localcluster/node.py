"""Real nodes beside kwok's: containerd and a kubelet, started by this code, registered with
the local API server. Pods run for real (runc), and the kubelet executes their probes.

Each node has a loopback address of its own (127.0.0.2, 127.0.0.3, ...) as its InternalIP and
runs `hostNetwork: true` pods on it: no traffic leaves loopback, and two pods of one
Deployment on two nodes may listen on the same port. The kubelet refuses a loopback node IP,
so it runs with `--cloud-provider=external` and this code plays the cloud provider: it writes
the node's address and lifts the `uninitialized` taint. The nodes are labelled
`capliquify.io/node=real` and tainted `capliquify.io/real-node:NoSchedule`: only pods that ask
for them land there, and scale tests keep using kwok's nodes.

Needs root (containerd, runc) and Debian's runc, containerd and containernetworking-plugins
(`make apt`); the kubelet and the pause binary come from hack/node/build.sh.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import subprocess
import tempfile
import time
import typing

import yaml

from localcluster import certs
from localcluster import cluster as cluster_module

NODE_BUILD = cluster_module.REPO / "hack" / "node" / "build.sh"
PAUSE_IMAGE = "localhost/capliquify-pause:1"
LABEL = "capliquify.io/node"
TAINT = {"key": "capliquify.io/real-node", "value": "true", "effect": "NoSchedule"}
# What a pod needs to land on a real node (the test's and the demo's overlays add it).
PLACEMENT = {"nodeSelector": {LABEL: "real"}, "tolerations": [{**TAINT, "operator": "Equal"}]}
UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"


def build() -> pathlib.Path:
    """Builds (once, cached) the kubelet and pause; returns their directory."""
    result = subprocess.run(["bash", str(NODE_BUILD)], check=True, stdout=subprocess.PIPE, text=True, timeout=3600)
    return pathlib.Path(result.stdout.strip().splitlines()[-1])


def cache_root() -> pathlib.Path:
    """Where the build scripts cache (their CAPLIQUIFY_CACHE rule)."""
    if os.environ.get("CAPLIQUIFY_CACHE"):
        return pathlib.Path(os.environ["CAPLIQUIFY_CACHE"])
    return pathlib.Path(os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache") / "capliquify"


def buildah(*args: str) -> str:
    """buildah on the image build's own store (hack/image/build.sh): vfs, no daemon."""
    root = cache_root()
    argv = ["buildah", "--root", str(root / "buildah" / "root"), "--runroot", str(root / "buildah" / "run"),
            "--storage-driver", "vfs", *args]
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=900).stdout.strip()


def image_archive(name: str, files: dict[pathlib.Path, str], entrypoint: list[str], archive: pathlib.Path) -> pathlib.Path:
    """A small image from scratch (`files` and an entrypoint) written as a docker-archive."""
    container = buildah("from", "scratch")
    try:
        for source, destination in files.items():
            buildah("copy", container, str(source), destination)
        buildah("config", "--entrypoint", json.dumps(entrypoint), "--cmd", "", container)
        buildah("commit", "--quiet", container, name)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            buildah("rm", container)
    archive.unlink(missing_ok=True)
    buildah("push", "--quiet", name, f"docker-archive:{archive}:{name}")
    return archive


def pause_archive(bin_dir: pathlib.Path) -> pathlib.Path:
    """The sandbox image (no registry to pull registry.k8s.io/pause from), made once."""
    archive = bin_dir / "pause.tar"
    if not archive.exists():
        image_archive(PAUSE_IMAGE, {bin_dir / "pause": "/pause"}, ["/pause"], archive.with_suffix(".tmp"))
        archive.with_suffix(".tmp").rename(archive)
    return archive


def containerd_config(home: pathlib.Path, socket: pathlib.Path, cni_dir: pathlib.Path) -> str:
    cri = {
        "sandbox_image": PAUSE_IMAGE,
        # The CRI asks -998 for sandboxes; this machine does not let a process lower its OOM
        # score, and runc then fails every sandbox ("can't get final child's PID from pipe").
        "restrict_oom_score_adj": True,
        "disable_apparmor": True,
        # exec/attach/port-forward streams: loopback only.
        "stream_server_address": "127.0.0.1",
        "stream_server_port": "0",
        "containerd": {
            # overlayfs: a container's root is a mount, not a copy ("native" copied the 285 MB
            # image for every container: seconds per pod start on a busy machine).
            "snapshotter": "overlayfs",
            "default_runtime_name": "runc",
            "runtimes": {"runc": {"runtime_type": "io.containerd.runc.v2",
                                  "options": {"SystemdCgroup": False, "Root": str(home / "runc")}}},
        },
        "cni": {"bin_dir": "/usr/lib/cni", "conf_dir": str(cni_dir)},
    }
    config = {
        "version": 2, "root": str(home / "root"), "state": str(home / "state"),
        "grpc": {"address": str(socket)}, "ttrpc": {"address": f"{socket}.ttrpc"},
        "plugins": {"io.containerd.grpc.v1.cri": cri},
    }
    return _toml(config)


def _toml(table: dict[str, typing.Any], prefix: str = "") -> str:
    """Just enough TOML for containerd's config: scalars first, then sub-tables."""
    lines, tables = [], []
    for key, value in table.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {json.dumps(value)}")
    out = "\n".join(lines) + "\n"
    for key, value in tables:
        name = f'{prefix}.{json.dumps(key) if "." in key else key}' if prefix else (json.dumps(key) if "." in key else key)
        out += f"\n[{name}]\n" + _toml(value, name)
    return out


# Pods on a real node use the host's network; the CRI still wants one CNI network loaded before
# it calls the node's network ready. The loopback plugin alone: a pod that is not on the host's
# network gets only its own `lo`, inside the network namespace created for it.
CNI_LOOPBACK = {"cniVersion": "1.0.0", "name": "capliquify-loopback", "plugins": [{"type": "loopback"}]}


class RealNode:
    """One node: `start()` returns when the Node is Ready with its loopback address."""

    def __init__(self, local: cluster_module.LocalCluster, index: int, archives: typing.Sequence[pathlib.Path] = ()) -> None:
        self.local = local
        self.name = f"capliquify-node-{index}"
        self.address = f"127.0.0.{index + 2}"
        self.archives = list(archives)
        # Short: containerd's socket path must fit a sockaddr_un (108 bytes).
        self.home = pathlib.Path(tempfile.mkdtemp(prefix=f"cq-n{index}-"))
        self.socket = self.home / "containerd.sock"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def log_path(self, name: str) -> pathlib.Path:
        return self.home / f"{name}.log"

    def _spawn(self, name: str, argv: list[str]) -> None:
        out = open(self.log_path(name), "ab")  # noqa: SIM115 - owned by the process
        self.processes[name] = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def _alive(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:
            tail = self.log_path(name).read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{self.name}: {name} exited with {process.returncode}:\n{tail}")

    def ctr(self, *args: str) -> str:
        return subprocess.run(["ctr", "--address", str(self.socket), "--namespace", "k8s.io", *args],
                              check=True, capture_output=True, text=True, timeout=600).stdout

    def import_image(self, archive: pathlib.Path) -> None:
        # Unpacked for the snapshotter the CRI uses: an image unpacked for another one is not
        # one the kubelet's pods can use.
        self.ctr("images", "import", "--snapshotter", "overlayfs", str(archive))

    def start(self) -> "RealNode":
        started = time.monotonic()
        bin_dir = build()
        cni_dir = self.home / "cni"
        cni_dir.mkdir()
        (cni_dir / "10-loopback.conflist").write_text(json.dumps(CNI_LOOPBACK))
        (self.home / "containerd.toml").write_text(containerd_config(self.home, self.socket, cni_dir))
        self._spawn("containerd", ["containerd", "--config", str(self.home / "containerd.toml")])
        self.local.wait_for(lambda: (self._alive("containerd"), self.socket.exists())[1], 60, f"{self.name} containerd")
        for archive in [pause_archive(bin_dir), *self.archives]:
            self.import_image(archive)
        self._spawn("kubelet", [str(bin_dir / "kubelet"), *self._kubelet_args()])
        self.local.wait_for(self._registered, 120, f"{self.name} registered")
        self._initialise()
        self.local.wait_for(self._ready, 120, f"{self.name} Ready")
        self.local._log(f"{self.name} Ready at {self.address} in {time.monotonic() - started:.1f}s ({self.home})")
        return self

    def _kubelet_args(self) -> list[str]:
        pki = self.local.pki
        cert = f"node-{self.name}"
        certs._signed(cert, f"/O=system:nodes/CN=system:node:{self.name}", pki, "extendedKeyUsage=clientAuth\n")
        kubeconfig = self.local._write_kubeconfig(self.home / "kubelet.kubeconfig", cert)
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": self.address, "port": cluster_module.free_port(), "readOnlyPort": 0,
            "healthzBindAddress": self.address, "healthzPort": cluster_module.free_port(),
            # The API server reaches the kubelet (logs, exec) without a client certificate;
            # the kubelet listens on its loopback address only.
            "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False},
                               "x509": {"clientCAFile": str(pki / "ca.crt")}},
            "authorization": {"mode": "AlwaysAllow"},
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            # cgroups here are v1 controllers with cgroup2 beside them; no systemd.
            "failCgroupV1": False, "cgroupDriver": "cgroupfs", "cgroupsPerQOS": False, "enforceNodeAllocatable": [],
            "failSwapOn": False, "resolvConf": "", "podLogsDir": str(self.home / "pods"),
            "registerWithTaints": [TAINT], "maxPods": 30, "serializeImagePulls": False,
            # Images are imported, never pulled: garbage collection must not remove them, and
            # a shared disk filling up must not evict the test's pods.
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%", "imagefs.available": "1%"},
        }
        config_path = self.home / "kubelet.yaml"
        config_path.write_text(yaml.safe_dump(config))
        return [f"--config={config_path}", f"--kubeconfig={kubeconfig}", f"--hostname-override={self.name}",
                f"--root-dir={self.home / 'kubelet'}", f"--cert-dir={self.home / 'kubelet-pki'}",
                "--cloud-provider=external", f"--node-labels={LABEL}=real,type=real", "--v=1"]

    def _node(self) -> dict[str, typing.Any] | None:
        out = self.local.kubectl("get", "node", self.name, "-o", "json", check=False)
        return json.loads(out) if out.strip() else None

    def _registered(self) -> bool:
        self._alive("kubelet")
        return self._node() is not None

    def _initialise(self) -> None:
        """The cloud provider's part: the node's address (InternalIP only: the API server then
        dials the kubelet there, not at a host name) and the `uninitialized` taint lifted."""
        addresses = {"status": {"addresses": [{"type": "InternalIP", "address": self.address}]}}
        self.local.kubectl("patch", "node", self.name, "--subresource=status", "--type=merge", "-p", json.dumps(addresses))
        node = self._node() or {}
        taints = [t for t in node.get("spec", {}).get("taints", []) if t["key"] != UNINITIALIZED]
        self.local.kubectl("patch", "node", self.name, "--type=merge", "-p", json.dumps({"spec": {"taints": taints}}))

    def _ready(self) -> bool:
        self._alive("kubelet")
        node = self._node() or {}
        return any(c["type"] == "Ready" and c["status"] == "True" for c in node.get("status", {}).get("conditions", []))

    def stop(self) -> None:
        """The kubelet first, then every container it left (so no shim or pod outlives the
        test), then containerd."""
        started = time.monotonic()
        kubelet = self.processes.get("kubelet")
        if kubelet and kubelet.poll() is None:
            # Killed, not asked: nothing of its state outlives the test, and the containers it
            # leaves are killed below.
            kubelet.kill()
            kubelet.wait(timeout=20)
        containerd = self.processes.get("containerd")
        if containerd and containerd.poll() is None:
            with contextlib.suppress(subprocess.SubprocessError):
                for task in self.ctr("tasks", "ls", "-q").split():
                    with contextlib.suppress(subprocess.SubprocessError):
                        self.ctr("tasks", "kill", "--signal", "SIGKILL", task)
                # The CRI deletes a task once it has exited (`ctr tasks delete` then finds none and
                # a retry loop waited out its deadline: 20 s per node): wait for the list to empty.
                deadline = time.monotonic() + 20
                while self.ctr("tasks", "ls", "-q").split() and time.monotonic() < deadline:
                    time.sleep(0.2)
            # Its containers are gone and its state is removed below: nothing to shut down cleanly.
            containerd.kill()
            containerd.wait(timeout=20)
        self.processes.clear()
        # The kubelet bind-mounts its root dir onto itself (mount propagation) and mounts each
        # pod's volumes: unmount whatever is left under home, deepest first, then remove it.
        for mountpoint in sorted(self._mounts(), key=len, reverse=True):
            subprocess.run(["umount", "--lazy", mountpoint], check=False, capture_output=True, timeout=30)
        subprocess.run(["rm", "-rf", str(self.home)], check=False, timeout=120)
        self.local._log(f"{self.name} stopped in {time.monotonic() - started:.1f}s")

    def _mounts(self) -> list[str]:
        prefix = str(self.home) + "/"
        lines = pathlib.Path("/proc/self/mountinfo").read_text().splitlines()
        # Field 5 is the mount point (octal escapes for spaces; none in our paths).
        return [fields[4] for fields in (line.split() for line in lines) if fields[4].startswith(prefix)]
