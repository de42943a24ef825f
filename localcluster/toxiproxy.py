"""Shopify's toxiproxy (built by hack/toxiproxy/build.sh) on loopback, and a small client of
its HTTP API: a proxy per endpoint, toxics added and removed on it (latency, bandwidth,
timeout, reset_peer), its upstream switched or the proxy disabled."""

from __future__ import annotations

import json
import pathlib
import subprocess
import urllib.error
import urllib.request

from localcluster import cluster as cluster_module
from localcluster import daemon

BUILD_SCRIPT = cluster_module.REPO / "hack" / "toxiproxy" / "build.sh"


def build() -> pathlib.Path:
    result = subprocess.run(["bash", str(BUILD_SCRIPT)], check=True, stdout=subprocess.PIPE, text=True, timeout=1200)
    return pathlib.Path(result.stdout.strip().splitlines()[-1])


class Toxiproxy:
    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.port = cluster_module.free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.upstreams: dict[str, str] = {}
        self.listens: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Toxiproxy":
        binary = build()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = daemon.start("toxiproxy", [str(binary), "-host", "127.0.0.1", "-port", str(self.port)],
                                    self.workdir / "toxiproxy.log", f"{self.url}/version")
        return self

    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read()
        return json.loads(text) if text.strip() else {}

    def proxy(self, name: str, upstream: str) -> str:
        """A proxy on a free loopback port in front of `upstream` (host:port); returns its host:port."""
        listen = f"127.0.0.1:{cluster_module.free_port()}"
        self._call("POST", "/proxies", {"name": name, "listen": listen, "upstream": upstream, "enabled": True})
        self.upstreams[name], self.listens[name] = upstream, listen
        return listen

    def set_upstream(self, name: str, upstream: str) -> None:
        """Points the proxy elsewhere; connections already open stay with the old upstream."""
        self._call("POST", f"/proxies/{name}", {"upstream": upstream})

    def enable(self, name: str, enabled: bool) -> None:
        """Disabled: every connection through it is closed and new ones are refused."""
        self._call("POST", f"/proxies/{name}", {"enabled": enabled})

    def add_toxic(self, proxy: str, toxic: str, kind: str, attributes: dict, stream: str = "downstream") -> None:
        self._call("POST", f"/proxies/{proxy}/toxics", {"name": toxic, "type": kind, "stream": stream,
                                                         "toxicity": 1.0, "attributes": attributes})

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        try:
            self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic}")
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise

    def reset(self) -> None:
        """Every proxy enabled, every toxic removed."""
        self._call("POST", "/reset")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
