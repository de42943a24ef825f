"""The platform's alert table as shipped (manifests/examples/alertpolicy.yaml), end to end.

The example is applied as written; only what points outside this machine is pointed at
loopback (Prometheus, Slack, SMTP, the SMS gateway, Alertmanager) and the health check is
dropped (it names an in-cluster Service). The signals are driven through the
MonitoredService's own queries: `failed_logins` (Security Threat, critical, 1 min cooldown,
escalates at once) and `memory` (System Critical, critical, 5 min cooldown, escalates after
5 min). About eight minutes: the table's own cooldowns and escalation are what is tested.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

from localcluster import prometheus as prometheus_module
from localcluster import receivers
from tests import conftest

pytestmark = pytest.mark.integration


def example(cluster, namespace: str, prometheus_url: str, http: receivers.HttpReceiver, smtp_port: int) -> list[dict]:  # noqa: ANN001
    rendered = cluster.kubectl("kustomize", str(conftest.REPO / "manifests" / "examples"))
    docs = []
    for doc in yaml.safe_load_all(rendered):
        if doc["kind"] in ("Namespace", "ScalingPolicy"):
            continue
        doc["metadata"]["namespace"] = namespace
        if doc["kind"] == "MonitoredService":
            doc["spec"]["healthChecks"] = []
            doc["spec"]["metrics"]["prometheus"]["url"] = prometheus_url
        if doc["kind"] == "Secret":
            doc["stringData"] = {"slack-webhook": f"{http.url}/slack",
                                 "smtp": yaml.safe_dump({"host": "127.0.0.1", "port": smtp_port, "from": "x@example.com"}),
                                 "sms": yaml.safe_dump({"url": f"{http.url}/sms", "token": "t"})}
        if doc["kind"] == "AlertPolicy":
            for channel in doc["spec"]["channels"]:
                if "alertmanager" in channel:
                    channel["alertmanager"]["url"] = f"{http.url}/am"
        docs.append(doc)
    return docs


def drive(cluster, namespace: str, failed_logins: float, memory: float) -> None:  # noqa: ANN001
    msvc = json.loads(cluster.kubectl("get", "msvc", "web", "-n", namespace, "-o", "json"))
    custom = [dict(c, query=f"vector({failed_logins})") if c["name"] == "failed_logins" else c
              for c in msvc["spec"]["metrics"]["custom"]]
    cluster.kubectl("patch", "msvc", "web", "-n", namespace, "--type=merge", "-p", json.dumps(
        {"spec": {"metrics": {"custom": custom, "queries": {"memory": f"vector({memory})"}}}}))


def notices(http: receivers.HttpReceiver, path: str, rule: str, kind: str) -> list[receivers.Request]:
    """Deliveries of one rule's notices of one kind (firing, repeat, escalation, resolved), read
    from the idempotency key: <policy>/<rule>/<service>/<fired at>/<kind><n>/<channel>."""
    found = []
    for request in http.delivered(path):
        parts = request.headers["Idempotency-Key"].split("/")
        if parts[-5] == rule and parts[-2].rstrip("0123456789") == kind:
            found.append(request)
    return found


def alert(cluster, namespace: str, rule: str) -> dict:  # noqa: ANN001
    status = json.loads(cluster.kubectl("get", "alp", "prod-web", "-n", namespace, "-o", "json")).get("status", {})
    return next((a for a in status.get("alerts", []) if a["rule"] == rule), {})


def test_the_platform_alert_table_as_shipped(cluster, namespace, operator_factory, tmp_path) -> None:  # noqa: ANN001
    http, smtp = receivers.HttpReceiver(), receivers.SmtpReceiver()
    prometheus = prometheus_module.Prometheus(tmp_path / "prometheus", [], scrape_seconds=5)
    prometheus.start()
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(
            example(cluster, namespace, prometheus.url, http, smtp.port)))
        operator_factory("--metrics-interval-seconds=2", "--alert-interval-seconds=1", "--allow-loopback-egress")
        cluster.wait_for(lambda: json.loads(cluster.kubectl("get", "alp", "prod-web", "-n", namespace, "-o", "json"))
                         .get("status", {}).get("ruleCount") == 14, 60, "the policy judged")

        # Security Threat and System Critical at once.
        drive(cluster, namespace, failed_logins=150, memory=97)
        cluster.wait_for(lambda: notices(http, "/sms", "LoginAttack", "escalation"), 60, "security fired and escalated")
        cluster.wait_for(lambda: notices(http, "/slack", "LoginAttack", "firing"), 15, "security on Slack")
        fired = notices(http, "/slack", "LoginAttack", "firing")
        assert len(fired) == 1 and len(notices(http, "/sms", "LoginAttack", "firing")) == 1
        assert notices(http, "/sms", "LoginAttack", "escalation")[0].at - fired[0].at < 5, "escalates at once"
        assert not notices(http, "/slack", "HighMemory", "firing"), "memory waits its forSeconds (120 s)"

        # Flapping: resolved, then firing again within the 1 min cooldown: no second firing notice.
        drive(cluster, namespace, failed_logins=0, memory=97)
        cluster.wait_for(lambda: notices(http, "/slack", "LoginAttack", "resolved"), 30, "security resolved")
        drive(cluster, namespace, failed_logins=150, memory=97)
        cluster.wait_for(lambda: alert(cluster, namespace, "LoginAttack").get("damped") is True, 30, "re-fire damped")
        assert len(notices(http, "/slack", "LoginAttack", "firing")) == 1
        assert time.monotonic() - fired[0].at < 55, "checked within the cooldown"

        # System Critical fires on its own route; the security alert repeats on its 1 min cooldown.
        cluster.wait_for(lambda: notices(http, "/slack", "HighMemory", "firing"), 180, "system critical fired")
        memory_fired = notices(http, "/slack", "HighMemory", "firing")[0].at
        # The route's channels are delivered independently: the SMS and the mail may land a moment
        # after Slack's (one CI run read the mailbox before the mail arrived).
        cluster.wait_for(lambda: notices(http, "/sms", "HighMemory", "firing"), 15, "system critical paged")
        cluster.wait_for(lambda: any(m["Subject"].startswith("[CRITICAL]") and "memory" in m["Subject"]
                                     for m in smtp.messages), 15, "system critical mailed")
        assert len(notices(http, "/sms", "HighMemory", "firing")) == 1
        cluster.wait_for(lambda: notices(http, "/slack", "LoginAttack", "repeat"), 90, "security repeats after 1 min")
        last_security = notices(http, "/slack", "LoginAttack", "repeat")[-1].at
        security_fired = notices(http, "/slack", "LoginAttack", "firing")[-1].at  # after the flap's cooldown
        assert 55 < last_security - security_fired < 75, "the security cooldown is 1 min"

        # Acknowledge the security alert alone: its repeats and escalations stop; the other goes on.
        table = conftest.kubectl_capliquify(cluster, "status", "-n", namespace)
        row = next(line for line in table.splitlines() if line.startswith("web "))
        assert "HighMemory" in row and "LoginAttack" in row, table
        # Recorded under the caller's own name (the admission policy refuses any other).
        conftest.kubectl_capliquify(cluster, "ack", "alp/prod-web", "LoginAttack/web", "-n", namespace)
        cluster.wait_for(lambda: alert(cluster, namespace, "LoginAttack").get("acknowledgedBy") == "capliquify-admin",
                         30, "acked")
        acked_at = time.monotonic()
        security_before = len(notices(http, "/slack", "LoginAttack", "repeat")) + len(
            notices(http, "/sms", "LoginAttack", "escalation"))
        cluster.wait_for(lambda: notices(http, "/sms", "HighMemory", "escalation"), 400, "system critical escalates")
        escalated = notices(http, "/sms", "HighMemory", "escalation")[0].at
        assert 295 < escalated - memory_fired < 320, "System Critical escalates after 5 min"
        cluster.wait_for(lambda: notices(http, "/slack", "HighMemory", "repeat"), 30, "system critical repeats")
        assert notices(http, "/slack", "HighMemory", "repeat")[0].at - memory_fired > 295, "the 5 min cooldown"
        assert time.monotonic() - acked_at > 240
        assert len(notices(http, "/slack", "LoginAttack", "repeat")) + len(
            notices(http, "/sms", "LoginAttack", "escalation")) == security_before, "nothing for the acked alert"
        assert len(notices(http, "/slack", "HighMemory", "firing")) == 1
    finally:
        prometheus.stop()
        smtp.stop()
        http.stop()
