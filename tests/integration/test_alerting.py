"""AlertPolicy end to end: the demo app told to fail, real Prometheus, the operator as its
ServiceAccount, and real receivers on loopback: an HTTP receiver playing Slack, an SMS gateway
and a webhook; an SMTP server (aiosmtpd); Debian's Alertmanager."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request

import pytest
import yaml

from localcluster import alertmanager as alertmanager_module
from localcluster import receivers

pytestmark = pytest.mark.integration
GROUP = "ops.capliquify.io/v1alpha1"
HMAC_KEY = "s3cret"


@pytest.fixture
def sinks(tmp_path):  # noqa: ANN001, ANN201
    http, smtp = receivers.HttpReceiver(), receivers.SmtpReceiver()
    alertmanager = alertmanager_module.Alertmanager(tmp_path / "alertmanager").start()
    yield http, smtp, alertmanager
    alertmanager.stop()
    smtp.stop()
    http.stop()


def secret(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "stringData": data}


def objects(prometheus_url: str, http: receivers.HttpReceiver, smtp_port: int, alertmanager_url: str) -> list[dict]:
    msvc = {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "web", "labels": {"tier": "prod"}},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                     "metrics": {"prometheus": {"url": prometheus_url}}}}
    policy = {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "prod"}, "spec": {
        "selector": {"matchLabels": {"tier": "prod"}},
        "rules": [{"name": "HighErrorRate", "metric": "errorRate", "op": ">", "threshold": 5, "forSeconds": 4,
                   "severity": "critical", "summary": "{{service}} error rate {{value}}% > {{threshold}}%"}],
        "channels": [
            {"name": "ops-slack", "slack": {"webhookSecretRef": {"name": "slack", "key": "url"}}},
            {"name": "ops-mail", "email": {"smtpSecretRef": {"name": "smtp", "key": "config"}, "to": ["ops@example.com"]}},
            {"name": "oncall-sms", "sms": {"gatewaySecretRef": {"name": "sms", "key": "config"}, "to": ["+15550100"]}},
            {"name": "hook", "webhook": {"url": f"{http.url}/hook", "hmacSecretRef": {"name": "hook", "key": "key"}}},
            {"name": "am", "alertmanager": {"url": alertmanager_url}},
        ],
        "routes": [{"severity": "critical", "channelKinds": ["slack", "email", "sms", "webhook", "alertmanager"],
                    "repeatIntervalSeconds": 3600}],
    }}
    return [
        secret("slack", url=f"{http.url}/slack"),
        secret("smtp", config=yaml.safe_dump({"host": "127.0.0.1", "port": smtp_port, "from": "capliquify@example.com"})),
        secret("sms", config=yaml.safe_dump({"url": f"{http.url}/sms", "token": "t0ken"})),
        secret("hook", key=HMAC_KEY),
        msvc, policy,
    ]


def get(cluster, kind: str, namespace: str, name: str) -> dict:  # noqa: ANN001
    return json.loads(cluster.kubectl("get", kind, name, "-n", namespace, "-o", "json"))


def events(cluster, namespace: str, reason: str) -> list[dict]:  # noqa: ANN001
    items = json.loads(cluster.kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
    return [e for e in items if e["reason"] == reason and e["source"].get("component") == "capliquify-operator"]


def control(stack, body: dict) -> None:  # noqa: ANN001
    request = urllib.request.Request(f"{stack.app_url}/control", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    urllib.request.urlopen(request, timeout=5).read()


def test_fires_to_every_channel_once_across_a_restart_and_resolves(cluster, namespace, demo_stack, operator_factory,
                                                                    sinks) -> None:  # noqa: ANN001
    http, smtp, alertmanager = sinks
    http.fail["/slack"] = 1  # Slack's first answer is a 503: the delivery is retried, not lost
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(
        objects(demo_stack.prometheus.url, http, smtp.port, alertmanager.url)))
    flags = ("--rate-window=10s", "--metrics-interval-seconds=2", "--alert-interval-seconds=1", "--allow-loopback-egress")
    first = operator_factory(*flags)
    demo_stack.start_load(10)
    cluster.wait_for(lambda: (get(cluster, "msvc", namespace, "web").get("status", {}).get("metrics") or {})
                     .get("requestRate", 0) > 5, 90, "metrics flowing")

    failing_since = time.monotonic()
    control(demo_stack, {"errorRate": 60})

    def all_delivered(kind: str) -> bool:
        return (len(http.delivered("/hook")) >= (1 if kind == "firing" else 2)
                and len(http.delivered("/slack")) >= (1 if kind == "firing" else 2)
                and len(http.delivered("/sms")) >= (1 if kind == "firing" else 2)
                and len(smtp.messages) >= (1 if kind == "firing" else 2))

    cluster.wait_for(lambda: all_delivered("firing"), 90, "firing delivered to every channel")
    print(f"firing: every channel notified {time.monotonic() - failing_since:.1f}s after the app began failing "
          "(rate window 10s, forSeconds 4)")
    cluster.wait_for(lambda: any(a["labels"]["alertname"] == "HighErrorRate" for a in alertmanager.alerts()), 30,
                     "alert active in Alertmanager")
    hook = json.loads(http.delivered("/hook")[0].body)
    assert (hook["kind"], hook["rule"], hook["service"], hook["severity"]) == ("firing", "HighErrorRate", "web", "critical")
    signature = http.delivered("/hook")[0].headers["X-CapLiquify-Signature"]
    assert signature == "sha256=" + hmac.new(HMAC_KEY.encode(), http.delivered("/hook")[0].body, hashlib.sha256).hexdigest()
    assert http.delivered("/sms")[0].headers["Authorization"] == "Bearer t0ken"
    assert smtp.messages[0]["Subject"].startswith("[CRITICAL] web error rate")
    assert [r.answered for r in http.requests if r.path == "/slack"] == [503, 200]

    # A restart while firing: nothing is sent again.
    first.stop()
    operator_factory(*flags)
    time.sleep(8)
    assert (len(http.delivered("/hook")), len(http.delivered("/slack")), len(http.delivered("/sms")),
            len(smtp.messages)) == (1, 1, 1, 1)
    status = get(cluster, "alp", namespace, "prod")["status"]
    assert status["firing"] == 1 and status["alerts"][0]["state"] == "Firing"
    slack = next(d for d in status["deliveries"] if d["channel"] == "ops-slack")
    assert (slack["outcome"], slack["attempt"]) == ("Sent", 2)

    control(demo_stack, {"errorRate": 0})
    cluster.wait_for(lambda: all_delivered("resolved"), 120, "resolved delivered to every channel")
    cluster.wait_for(lambda: not any(a["labels"]["alertname"] == "HighErrorRate" for a in alertmanager.alerts()), 30,
                     "alert resolved in Alertmanager")
    time.sleep(3)
    assert json.loads(http.delivered("/hook")[1].body)["kind"] == "resolved"
    assert (len(http.delivered("/hook")), len(http.delivered("/slack")), len(http.delivered("/sms")),
            len(smtp.messages)) == (2, 2, 2, 2)
    status = get(cluster, "alp", namespace, "prod")["status"]
    assert status["firing"] == 0 and status["alerts"][0]["state"] == "Resolved"
    assert {d["outcome"] for d in status["deliveries"]} == {"Sent"} and len(status["deliveries"]) == 10
    assert [e["type"] for e in events(cluster, namespace, "AlertFiring")] == ["Warning"]
    assert [e["type"] for e in events(cluster, namespace, "AlertResolved")] == ["Normal"]
    print("deliveries:", [(d["channel"], d["kind"], d["attempt"]) for d in status["deliveries"]])
