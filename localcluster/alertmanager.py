"""Debian's Alertmanager on loopback, clustering off, with a config that keeps alerts in its API."""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import urllib.request

import yaml

from localcluster import cluster as cluster_module
from localcluster import daemon

CONFIG = {
    "route": {"receiver": "null", "group_by": ["alertname", "service"], "group_wait": "1s", "group_interval": "5s"},
    "receivers": [{"name": "null"}],
}


class Alertmanager:
    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.port = cluster_module.free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Alertmanager":
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:
            raise RuntimeError("alertmanager is not installed (make deps installs prometheus-alertmanager)")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config_path = self.workdir / "alertmanager.yml"
        config_path.write_text(yaml.safe_dump(CONFIG))
        self.process = daemon.start(
            "alertmanager",
            [binary, f"--config.file={config_path}", f"--storage.path={self.workdir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--cluster.listen-address="],
            self.workdir / "alertmanager.log", f"{self.url}/-/ready")
        return self

    def alerts(self) -> list[dict]:
        """The alerts Alertmanager holds as active (firing, not silenced or inhibited)."""
        query = "active=true&silenced=false&inhibited=false"
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{query}", timeout=5) as response:
            return json.loads(response.read())

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
