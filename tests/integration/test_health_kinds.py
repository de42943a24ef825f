"""Health checks of every kind through the operator on the real control plane (issue 24): an
HTTP check whose Authorization header comes from a Secret (read with the operator's own
rights, never written to status or an Event), a TCP check and a gRPC check against grpcio's
own health service; the verdict follows the gRPC service's status."""

from __future__ import annotations

import concurrent.futures
import http.server
import json
import socket
import threading

import pytest
import yaml

from tests.integration import test_monitoredservice as ms

pytestmark = pytest.mark.integration
TOKEN = "Bearer probe-t0ken-4f1c"


class Guarded(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        allowed = self.headers.get("Authorization") == TOKEN
        self.send_response(200 if allowed else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_http_tcp_and_grpc_checks_through_the_operator(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    import grpc
    from grpc_health.v1 import health as grpc_health_service
    from grpc_health.v1 import health_pb2
    from grpc_health.v1 import health_pb2_grpc

    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Guarded)
    threading.Thread(target=web.serve_forever, daemon=True).start()
    listener = socket.create_server(("127.0.0.1", 0))  # accepts into its backlog: enough for a TCP check
    rpc = grpc.server(concurrent.futures.ThreadPoolExecutor(2))
    service = grpc_health_service.HealthServicer()
    service.set("shop.Orders", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(service, rpc)
    rpc_port = rpc.add_insecure_port("127.0.0.1:0")
    rpc.start()
    checks = [
        {"name": "api", "secretName": "probe-auth", "intervalSeconds": 1, "failureThreshold": 1,
         "http": {"url": f"http://127.0.0.1:{web.server_address[1]}/health", "timeoutSeconds": 1,
                  "headers": [{"name": "Authorization", "secretKey": "authorization"}]}},
        {"name": "db", "intervalSeconds": 1, "failureThreshold": 1,
         "tcp": {"host": "127.0.0.1", "port": listener.getsockname()[1], "timeoutSeconds": 1}},
        {"name": "orders", "intervalSeconds": 1, "failureThreshold": 1,
         "grpc": {"host": "127.0.0.1", "port": rpc_port, "service": "shop.Orders", "timeoutSeconds": 1}},
    ]
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "probe-auth"}, "stringData": {"authorization": TOKEN}}
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
            secret, ms.deployment(), ms.msvc(checks=checks)]))
        operator_factory("--allow-loopback-checks")

        def status() -> dict:
            return ms.get(cluster, "msvc", namespace).get("status", {})

        cluster.wait_for(lambda: status().get("health") == "Healthy", 60, "Healthy: the Secret's header, TCP and gRPC pass")
        service.set("shop.Orders", health_pb2.HealthCheckResponse.NOT_SERVING)
        cluster.wait_for(lambda: status().get("health") == "Degraded", 30, "Degraded when the gRPC service is NOT_SERVING")
        orders = next(c for c in status()["checks"] if c["name"] == "orders")
        assert orders["healthy"] is False and orders["message"] == "NOT_SERVING"
        text = json.dumps(ms.get(cluster, "msvc", namespace)) + cluster.kubectl("get", "events", "-n", namespace, "-o", "json")
        assert "probe-t0ken" not in text
    finally:
        rpc.stop(None)
        listener.close()
        web.shutdown()
