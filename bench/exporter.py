"""A synthetic exporter for the benchmark: cAdvisor- and kube-state-metrics-shaped series for
N workloads of one pod each, with CPU at a steady 50 % of request (inside the hold band)."""

from __future__ import annotations

import http.server
import threading
import time

CPU_REQUEST = 0.25
MEMORY_REQUEST = 256 * 1024 * 1024


def pod_name(index: int) -> str:
    return f"w{index}-6d9d4bc5cd-x{index % 10000:04d}"[:63]


class Exporter:
    def __init__(self, namespace: str, count: int, port: int, utilization: float = 0.5) -> None:
        self.namespace, self.count, self.port, self.utilization = namespace, count, port, utilization
        self.started = time.monotonic()
        self._server: http.server.ThreadingHTTPServer | None = None

    def render(self) -> bytes:
        # Counters as if started an hour ago: rate() then reads the true rate from its second
        # sample on, instead of rising while its window fills (which would cross bands).
        elapsed = time.monotonic() - self.started + 3600
        cpu_seconds = CPU_REQUEST * self.utilization * elapsed
        lines = []
        for index in range(self.count):
            base = f'namespace="{self.namespace}",pod="{pod_name(index)}",container="app"'
            lines.append(f"container_cpu_usage_seconds_total{{{base}}} {cpu_seconds:.3f}")
            lines.append(f"container_memory_working_set_bytes{{{base}}} {MEMORY_REQUEST * 0.6:.0f}")
            lines.append(f'kube_pod_container_resource_requests{{{base},resource="cpu"}} {CPU_REQUEST}')
            lines.append(f'kube_pod_container_resource_requests{{{base},resource="memory"}} {MEMORY_REQUEST}')
        return ("\n".join(lines) + "\n").encode()

    def start(self) -> "Exporter":
        exporter = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = exporter.render()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
