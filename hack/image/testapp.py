"""A workload for the real nodes' tests: an HTTP server whose /healthz can be made to fail.

GET /healthz answers 200, or 503 while failing; POST /fail and POST /recover switch it.
START_FAILING=1 makes a version that is never healthy (a bad rollout). It listens on
BIND_ADDRESS:PORT (the pod's IP on a real node's loopback address). Standard library only:
it runs on the operator image's python3 (localcluster/pods.py builds its image).
"""

from __future__ import annotations

import http.server
import os
import signal
import sys


class State:
    failing = os.environ.get("START_FAILING", "") == "1"


class Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self, status: int, body: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path.split("?")[0] in ("/healthz", "/health"):
            self._answer(503 if State.failing else 200, "failing\n" if State.failing else "ok\n")
        else:
            self._answer(200, "testapp\n")

    def do_POST(self) -> None:  # noqa: N802
        if self.path not in ("/fail", "/recover"):
            self._answer(404, "POST /fail or /recover\n")
            return
        State.failing = self.path == "/fail"
        print(f"testapp: health {'failing' if State.failing else 'passing'}", flush=True)
        self._answer(200, "ok\n")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the probes would flood the log
        pass


def main() -> None:
    address, port = os.environ.get("BIND_ADDRESS", "0.0.0.0"), os.environ.get("PORT", "8080")  # noqa: S104
    try:
        server = http.server.ThreadingHTTPServer((address, int(port)), Handler)
    except (OSError, ValueError) as error:
        sys.exit(f"testapp: cannot listen on {address}:{port}: {error}")
    # PID 1 in its container: the kernel delivers SIGTERM only to a handler, and without one the
    # kubelet waits the whole grace period (30 s) before a Recreate rollout can go on.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"testapp: listening on {address}:{port}, health {'failing' if State.failing else 'passing'}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
