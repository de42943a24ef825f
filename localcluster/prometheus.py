"""Debian's Prometheus on loopback, with a generated config that scrapes given targets."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import yaml

from localcluster import cluster as cluster_module
from localcluster import daemon


def config(targets: list[str], scrape_seconds: float, extra_jobs: list[dict] | None = None) -> dict:
    jobs = [{"job_name": "demo", "honor_labels": True, "static_configs": [{"targets": targets}]}] if targets else []
    return {
        "global": {"scrape_interval": f"{int(scrape_seconds * 1000)}ms",
                   "evaluation_interval": f"{int(scrape_seconds * 1000)}ms"},
        # honor_labels: the demo app speaks for many pods and sets namespace/pod itself.
        "scrape_configs": jobs + list(extra_jobs or ()),
    }


def kwok_job(local: cluster_module.LocalCluster) -> dict:
    """cAdvisor-style series (container_cpu_usage_seconds_total, container_memory_working_set_bytes)
    from kwok's kubelet-style endpoint of each fake node, as Prometheus scrapes kubelets."""
    return {"job_name": "kubelet", "scheme": "https", "tls_config": {"ca_file": str(local.pki / "ca.crt")},
            "static_configs": [{"targets": [f"127.0.0.1:{local.kwok_port}"],
                                "labels": {"__metrics_path__": f"/metrics/nodes/kwok-node-{index}/metrics/resource",
                                           "node": f"kwok-node-{index}"}}
                               for index in range(cluster_module.NODE_COUNT)]}


def static_job(name: str, target: str) -> dict:
    return {"job_name": name, "honor_labels": True, "static_configs": [{"targets": [target]}]}


class Prometheus:
    def __init__(self, workdir: pathlib.Path, targets: list[str], scrape_seconds: float = 1.0,
                 extra_jobs: list[dict] | None = None) -> None:
        self.workdir = workdir
        self.targets = targets
        self.extra_jobs = extra_jobs
        self.scrape_seconds = scrape_seconds
        self.port = cluster_module.free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Prometheus":
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed (make deps installs Debian's package)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "prometheus.yml"
        config_path.write_text(yaml.safe_dump(config(self.targets, self.scrape_seconds, self.extra_jobs)))
        self.process = daemon.start(
            "prometheus",
            [binary, f"--config.file={config_path}", f"--storage.tsdb.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--storage.tsdb.retention.time=2h"],
            self.workdir / "prometheus.log", f"{self.url}/-/ready")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
