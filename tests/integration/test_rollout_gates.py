"""Verification gates on a real Deployment's rollout (issue 24): two groups of endpoints, one
that must be all healthy and one that must be 80 % healthy, each within its timeout. With 1 of
5 failing in the 80 % group the rollout succeeds; with 2 failing it is rolled back."""

from __future__ import annotations

import http.server
import threading

import pytest
import yaml

from tests.integration import test_monitoredservice as ms

pytestmark = pytest.mark.integration
CORE = [f"core{i}" for i in range(5)]
INTEGRATION = [f"int{i}" for i in range(5)]


class Endpoints(http.server.BaseHTTPRequestHandler):
    failing: set[str] = set()

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        down = self.path.strip("/") in Endpoints.failing
        self.send_response(503 if down else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"no" if down else b"ok")

    def log_message(self, *_: object) -> None:
        pass


def test_a_rollout_judged_by_two_endpoint_groups(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoints)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    Endpoints.failing = {"int3"}
    checks = [{"name": name, "http": {"url": f"{base}/{name}", "timeoutSeconds": 1}, "intervalSeconds": 1,
               "failureThreshold": 1} for name in CORE + INTEGRATION]
    rollout = {"autoRollback": True, "progressDeadlineSeconds": 60, "analysis": {
        "windowSeconds": 15, "maxErrorRatePercent": 100, "requireHealthyChecks": False, "gates": [
            {"name": "core", "checks": CORE, "timeoutSeconds": 15},
            {"name": "integration", "checks": INTEGRATION, "timeoutSeconds": 15, "healthyPercent": 80}]}}
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
            ms.deployment(), ms.msvc(rollout, checks)]))
        operator_factory("--allow-loopback-checks")
        ms.wait_phase(cluster, namespace, "Healthy")

        # 1 of 5 failing in the 80 % group: both gates pass, the revision is kept.
        ms.roll_to(cluster, namespace, "web:2")
        ms.wait_phase(cluster, namespace, "Analyzing", 60)
        status = ms.wait_phase(cluster, namespace, "Healthy", 60)
        assert status["revision"] == "2" and status["passedGates"] == ["core", "integration"], status
        assert ms.image(cluster, namespace) == "web:2"

        # 2 of 5 failing: the 80 % gate is not met within its 15 s, and the revision is rolled back.
        Endpoints.failing = {"int1", "int3"}
        ms.roll_to(cluster, namespace, "web:3")
        cluster.wait_for(lambda: ms.image(cluster, namespace) == "web:2", 90, "template rolled back to web:2")
        status = ms.rollout_status(cluster, namespace)
        record = next(r for r in status["history"] if r["revision"] == "3")
        assert record["phase"] == "RolledBack", status
        assert "gate integration not met within 15s: 3 of 5 check(s) passing, 80 % needed" in record["reason"]
        rolled = ms.events(cluster, namespace, "RolledBack")
        assert len(rolled) == 1 and "gate integration" in rolled[0]["message"]
    finally:
        server.shutdown()


def test_a_railway_deploy_judged_by_an_endpoint_group(cluster, namespace, operator_factory, railway) -> None:  # noqa: ANN001
    """The same gates on a Railway service (its deployments are its revisions): a deploy whose
    group has 2 of 5 endpoints failing is rolled back to the one before through Railway's API."""
    from tests.integration import test_railway_rollouts as rr

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Endpoints)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    Endpoints.failing = set()
    checks = [{"name": name, "http": {"url": f"{base}/{name}", "timeoutSeconds": 1}, "intervalSeconds": 1,
               "failureThreshold": 1} for name in INTEGRATION]
    guarded = {"healthChecks": checks, "rollout": {"autoRollback": True, "progressDeadlineSeconds": 300, "analysis": {
        "windowSeconds": 20, "maxErrorRatePercent": 100, "requireHealthyChecks": False,
        "gates": [{"name": "integration", "checks": INTEGRATION, "timeoutSeconds": 15, "healthyPercent": 80}]}}}
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(rr.service(railway.url, **guarded)))
        operator_factory(*rr.FAST)
        cluster.wait_for(lambda: rr.rollout(cluster, namespace).get("phase") == "Healthy", 60, "the first deployment healthy")
        good = railway.services["svc-1"].deployments[-1]["id"]
        Endpoints.failing = {"int0", "int4"}
        bad = rr.control(railway, deploy={"status": "SUCCESS"})["latestDeployment"]
        cluster.wait_for(lambda: len(railway.rollbacks) == 1, 90, "Railway took the rollback")
        assert railway.rollbacks[0][2] == good
        cluster.wait_for(lambda: rr.rollout(cluster, namespace).get("rolledBackRevisions") == [bad], 30, "recorded")
        warning = rr.events(cluster, namespace, "RolledBack")
        assert len(warning) == 1 and "gate integration not met within 15s: 3 of 5" in warning[0]["message"]
        assert railway.invalid == []
    finally:
        server.shutdown()
