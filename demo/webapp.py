"""The demo workload: an HTTP app whose load per replica falls as its Deployment gains
ready replicas.

It runs on loopback beside the local control plane (kwok's pods run no containers) and
plays the Deployment's pods: requests are spread over the pods that are Ready in the
cluster, and it exports, per pod, the series that cAdvisor, kube-state-metrics and
conventional HTTP instrumentation would: container_cpu_usage_seconds_total,
container_memory_working_set_bytes, kube_pod_container_resource_requests,
http_requests_total, http_request_duration_seconds, http_requests_queued.
POST /control {"errorRate": 50, "costMs": 20} changes its behaviour (tests, demo).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import threading
import time

import kubernetes
from aiohttp import web

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CPU_REQUEST_CORES = 0.25
MEMORY_REQUEST_BYTES = 256 * 1024 * 1024


class Pods:
    """The Deployment's Ready pods, refreshed from the API server every second."""

    def __init__(self, kubeconfig: str, namespace: str, selector: str) -> None:
        self._api = kubernetes.client.CoreV1Api(kubernetes.config.new_client_from_config(config_file=kubeconfig))
        self.namespace, self.selector = namespace, selector
        self.ready: list[str] = []

    def refresh(self) -> None:
        pods = self._api.list_namespaced_pod(self.namespace, label_selector=self.selector, _request_timeout=(5, 10))
        self.ready = sorted(
            p.metadata.name for p in pods.items
            if p.metadata.deletion_timestamp is None
            and any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
        )


class App:
    def __init__(self, pods: Pods, cost_ms: float, queue_gauge: bool = True) -> None:
        self.pods = pods
        self.cost_ms = cost_ms
        self.queue_gauge = queue_gauge  # most apps do not export http_requests_queued
        self.error_rate = 0.0
        self.cpu_seconds: dict[str, float] = {}
        self.requests: dict[tuple[str, str], int] = {}
        self.buckets: dict[str, list[int]] = {}
        self.duration_sum: dict[str, float] = {}
        self.in_flight = 0
        self._next = 0
        # Requests that reached the front door (a Service, a gateway), served or not: it counts
        # with no pod ready too, so it can wake a workload scaled to zero.
        self.frontend_requests = 0

    def utilization(self) -> float:
        """Busy share of one pod's CPU request, from the cost of recent work."""
        return min(0.99, self.recent_rate * self.cost_ms / 1000 / max(len(self.pods.ready), 1) / CPU_REQUEST_CORES)

    recent_rate = 0.0

    async def handle(self, request: web.Request) -> web.Response:
        self.frontend_requests += 1
        ready = self.pods.ready
        if not ready:
            return web.Response(status=503, text="no ready pods\n")
        pod = ready[self._next % len(ready)]  # round robin, as a Service would
        self._next += 1
        self.in_flight += 1
        try:
            # Latency grows as the pods get busier (an M/M/1-like curve).
            latency = self.cost_ms / 1000 / (1 - self.utilization())
            await asyncio.sleep(min(latency, 2.0) * 0.1)  # compressed so the load generator keeps up
        finally:
            self.in_flight -= 1
        self.cpu_seconds[pod] = self.cpu_seconds.get(pod, 0.0) + self.cost_ms / 1000
        code = "500" if random.random() * 100 < self.error_rate else "200"
        self.requests[(pod, code)] = self.requests.get((pod, code), 0) + 1
        counts = self.buckets.setdefault(pod, [0] * (len(BUCKETS) + 1))
        for index, bound in enumerate(BUCKETS):
            if latency <= bound:
                counts[index] += 1
        counts[-1] += 1
        self.duration_sum[pod] = self.duration_sum.get(pod, 0.0) + latency
        return web.Response(status=int(code), text="ok\n" if code == "200" else "failed\n")

    async def health(self, _: web.Request) -> web.Response:
        return web.Response(status=500 if self.error_rate >= 100 else 200, text="ok\n")

    async def control(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.error_rate = float(body.get("errorRate", self.error_rate))
        self.cost_ms = float(body.get("costMs", self.cost_ms))
        return web.json_response({"errorRate": self.error_rate, "costMs": self.cost_ms})

    async def metrics(self, _: web.Request) -> web.Response:
        ns = self.pods.namespace
        lines = []
        for pod in self.pods.ready:
            base = f'namespace="{ns}",pod="{pod}",container="web"'
            lines.append(f"container_cpu_usage_seconds_total{{{base}}} {self.cpu_seconds.get(pod, 0.0)}")
            lines.append(f"container_memory_working_set_bytes{{{base}}} {MEMORY_REQUEST_BYTES * 0.4}")
            lines.append(f'kube_pod_container_resource_requests{{{base},resource="cpu",unit="core"}} {CPU_REQUEST_CORES}')
            lines.append(f'kube_pod_container_resource_requests{{{base},resource="memory",unit="byte"}} '
                         f"{MEMORY_REQUEST_BYTES}")
            for code in ("200", "500"):
                lines.append(f'http_requests_total{{namespace="{ns}",pod="{pod}",code="{code}"}} '
                             f"{self.requests.get((pod, code), 0)}")
            counts = self.buckets.get(pod, [0] * (len(BUCKETS) + 1))
            for bound, count in zip((*map(str, BUCKETS), "+Inf"), counts, strict=True):
                lines.append(f'http_request_duration_seconds_bucket{{namespace="{ns}",pod="{pod}",le="{bound}"}} {count}')
            lines.append(f'http_request_duration_seconds_count{{namespace="{ns}",pod="{pod}"}} {counts[-1]}')
            lines.append(f'http_request_duration_seconds_sum{{namespace="{ns}",pod="{pod}"}} {self.duration_sum.get(pod, 0.0)}')
            if self.queue_gauge:
                lines.append(f'http_requests_queued{{namespace="{ns}",pod="{pod}"}} '
                             f"{self.in_flight / max(len(self.pods.ready), 1)}")
        lines.append(f"demo_ready_pods {len(self.pods.ready)}")
        lines.append(f'demo_frontend_requests_total{{namespace="{ns}"}} {self.frontend_requests}')
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


def _poll(app: App, stop: threading.Event) -> None:
    last_total, last_time = 0, time.monotonic()
    while not stop.is_set():
        try:
            app.pods.refresh()
        except Exception as error:  # noqa: BLE001 - keep serving with the last known pods
            print(f"webapp: pod refresh failed: {error}", flush=True)
        total, now = sum(app.requests.values()), time.monotonic()
        app.recent_rate = 0.7 * app.recent_rate + 0.3 * (total - last_total) / max(now - last_time, 1e-3)
        last_total, last_time = total, now
        stop.wait(1.0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="demo.webapp")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", default="shop")
    parser.add_argument("--selector", default="app=web")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--cost-ms", type=float, default=25.0, help="CPU milliseconds per request")
    parser.add_argument("--no-queue-gauge", dest="queue_gauge", action="store_false",
                        help="do not export http_requests_queued (as most applications do not)")
    args = parser.parse_args(argv)
    app = App(Pods(args.kubeconfig, args.namespace, args.selector), args.cost_ms, args.queue_gauge)
    stop = threading.Event()
    threading.Thread(target=_poll, args=(app, stop), daemon=True).start()
    server = web.Application()
    server.add_routes([web.get("/", app.handle), web.get("/health", app.health), web.post("/control", app.control),
                       web.get("/metrics", app.metrics)])
    print(json.dumps({"listening": f"127.0.0.1:{args.port}"}), flush=True)
    web.run_app(server, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
