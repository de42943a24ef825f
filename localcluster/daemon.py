"""Starting a local daemon (Prometheus, Alertmanager) and waiting until it says it is ready."""

from __future__ import annotations

import pathlib
import subprocess
import time
import urllib.request


def start(name: str, command: list[str], log_path: pathlib.Path, ready_url: str,
          seconds: float = 30) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=open(log_path, "ab"), stderr=subprocess.STDOUT,  # noqa: SIM115
                               start_new_session=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")
        try:
            with urllib.request.urlopen(ready_url, timeout=2) as response:
                if response.status == 200:
                    return process
        except OSError:
            time.sleep(0.3)
    process.terminate()
    raise TimeoutError(f"{name} did not become ready")
