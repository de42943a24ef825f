"""A MonitoredService deleted and created again under its name inherits nothing of the old
one (issue 21): on the real control plane, a service whose checks failed is replaced
(`kubectl replace --force`: delete, then create) by one whose endpoint answers; the new
object's availability counts its own probes only."""

from __future__ import annotations

import http.server
import json
import threading

import pytest
import yaml

pytestmark = pytest.mark.integration


class Endpoint(http.server.BaseHTTPRequestHandler):
    up = False

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200 if Endpoint.up else 503)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def service(url: str) -> dict:
    return {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService", "metadata": {"name": "web"},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                     "healthChecks": [{"name": "api", "http": {"url": url, "timeoutSeconds": 1}, "intervalSeconds": 1,
                                       "failureThreshold": 1, "successThreshold": 2}],
                     "slo": {"availabilityPercent": 10, "windowSeconds": 600}}}


WEB = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
       "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                             "spec": {"containers": [{"name": "web", "image": "web:1"}]}}}}


def test_a_service_made_again_under_its_name_starts_with_no_probe_history(cluster, namespace,  # noqa: ANN001
                                                                            operator_factory) -> None:  # noqa: ANN001
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoint)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Endpoint.up = False
    url = f"http://127.0.0.1:{server.server_address[1]}/health"
    try:
        def status() -> dict:
            obj = json.loads(cluster.kubectl("get", "msvc", "web", "-n", namespace, "-o", "json"))
            return {"uid": obj["metadata"]["uid"], **(obj.get("status") or {})}

        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([WEB, service(url)]))
        operator_factory("--allow-loopback-checks")
        cluster.wait_for(lambda: status().get("health") == "Unhealthy", 30, "the old service Unhealthy")
        old = status()
        assert old["availabilityPercent"] < 100

        Endpoint.up = True
        cluster.kubectl("replace", "--force", "-n", namespace, "-f", "-", input=yaml.safe_dump(service(url)))
        cluster.wait_for(lambda: status()["uid"] != old["uid"] and status().get("health") == "Healthy", 30,
                         "the new service Healthy")
        new = status()
        assert new["availabilityPercent"] == 100, f"the old object's failures counted: {new['availabilityPercent']}"
    finally:
        server.shutdown()
