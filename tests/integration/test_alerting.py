"""AlertPolicy end to end: the demo app told to fail, real Prometheus, the operator as its
ServiceAccount, and real receivers on loopback: an HTTP receiver playing Slack, an SMS gateway
and a webhook; an SMTP server (aiosmtpd); Debian's Alertmanager."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import typing
import urllib.request

import pytest
import yaml

from localcluster import alertmanager as alertmanager_module
from localcluster import prometheus as prometheus_module
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


# -- Issue 23: label routes, groups and inhibition on the real control plane. ------------------

SERVICES = {"web": ("a", "b", "c", "d"), "api": ("a", "b", "c", "d"), "db": ("a", "b")}  # 10 warnings


def incident_objects(prometheus_url: str, http: receivers.HttpReceiver) -> list[dict]:
    """Three services (each a Deployment and a MonitoredService with custom signals a..d and
    down, all `vector(0)` until driven) and a policy: warnings grouped by service to /chat,
    a critical to /page on its own, and an inhibition of a service's warnings by its critical."""
    docs: list[dict] = []
    for name in SERVICES:
        docs.append({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
                     "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                              "template": {"metadata": {"labels": {"app": name}},
                                           "spec": {"containers": [{"name": name, "image": "example/app:1"}]}}}})
        docs.append({"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": name, "labels": {"tier": "prod"}},
                     "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": name}},
                              "metrics": {"prometheus": {"url": prometheus_url},
                                          "custom": [{"name": signal, "query": "vector(0)"}
                                                     for signal in ("a", "b", "c", "d", "down")]}}})
    rules = [{"name": f"Signal{s.upper()}", "metric": "custom", "customName": s, "threshold": 0.5, "severity": "warning",
              "labels": {"team": "shop"}} for s in ("a", "b", "c", "d")]
    rules.append({"name": "Down", "metric": "custom", "customName": "down", "threshold": 0.5, "severity": "critical"})
    docs.append({"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "incident"}, "spec": {
        "selector": {"matchLabels": {"tier": "prod"}},
        "rules": rules,
        "channels": [{"name": "chat", "webhook": {"url": f"{http.url}/chat"}},
                     {"name": "page", "webhook": {"url": f"{http.url}/page"}}],
        "defaultRoute": {"channels": ["chat"], "repeatIntervalSeconds": 3600},
        "routes": [
            {"name": "critical", "matchers": ['severity="critical"'], "channels": ["page"]},
            {"name": "team-warnings", "matchers": ['team="shop"', 'severity=~"warning|info"'],
             "groupBy": ["service"], "groupWaitSeconds": 5, "groupIntervalSeconds": 10},
        ],
        "inhibitRules": [{"sourceMatchers": ['severity="critical"'], "targetMatchers": ['severity="warning"'],
                          "equal": ["service"]}],
    }})
    return docs


def drive_signals(cluster, namespace: str, service: str, firing: typing.Iterable[str]) -> None:  # noqa: ANN001
    on = set(firing)
    custom = [{"name": s, "query": f"vector({1 if s in on else 0})"} for s in ("a", "b", "c", "d", "down")]
    cluster.kubectl("patch", "msvc", service, "-n", namespace, "--type=merge", "-p",
                    json.dumps({"spec": {"metrics": {"custom": custom}}}))


def group_messages(http: receivers.HttpReceiver, path: str) -> list[dict]:
    return [json.loads(request.body) for request in http.delivered(path)]


def test_an_incident_of_ten_alerts_reaches_the_receiver_as_its_groups_say(cluster, namespace, operator_factory,
                                                                          tmp_path) -> None:  # noqa: ANN001
    http = receivers.HttpReceiver()
    prometheus = prometheus_module.Prometheus(tmp_path / "prometheus", [], scrape_seconds=5)
    prometheus.start()
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(
            incident_objects(prometheus.url, http)))
        operator_factory("--metrics-interval-seconds=2", "--alert-interval-seconds=1", "--allow-loopback-egress")
        cluster.wait_for(lambda: get(cluster, "alp", namespace, "incident").get("status", {}).get("ruleCount") == 5,
                         60, "the policy judged")

        # 10 warnings across 3 services: 3 messages (one per service) listing 4, 4 and 2 alerts.
        started = time.monotonic()
        for service, signals in SERVICES.items():
            drive_signals(cluster, namespace, service, signals)
        cluster.wait_for(lambda: len(http.delivered("/chat")) >= 3, 60, "three group messages")
        time.sleep(12)  # past a group interval: nothing changed, nothing more is sent
        messages = group_messages(http, "/chat")
        print(f"incident: {len(messages)} messages for 10 alerts, the last "
              f"{http.delivered('/chat')[-1].at - started:.1f}s after the signals were driven")
        assert len(messages) == 3, [m["summary"] for m in messages]
        by_service = {m["labels"]["service"]: m for m in messages}
        assert {s: len(m["alerts"]) for s, m in by_service.items()} == {"web": 4, "api": 4, "db": 2}
        assert all(m["kind"] == "firing" and m["summary"].startswith("[FIRING:") for m in messages)
        assert by_service["db"]["alerts"][0]["labels"]["team"] == "shop", "rule labels forwarded"
        assert http.delivered("/page") == []
        status = get(cluster, "alp", namespace, "incident")["status"]
        assert status["firing"] == 10 and len(status["groups"]) == 3

        # db goes down: its critical pages; its warnings are held while it fires, even a new one.
        drive_signals(cluster, namespace, "db", ("a", "b", "c", "down"))
        cluster.wait_for(lambda: len(http.delivered("/page")) == 1, 60, "critical paged")
        time.sleep(15)
        assert [m["labels"]["service"] for m in group_messages(http, "/chat")[3:]] == [], \
            "the inhibited warnings of db (and its new one) send nothing"
        assert json.loads(http.delivered("/page")[0].body)["rule"] == "Down"

        # db recovers: the critical resolves; its three warnings still firing are told as one group.
        drive_signals(cluster, namespace, "db", ("a", "b", "c"))
        cluster.wait_for(lambda: len(http.delivered("/page")) == 2, 60, "critical resolved")
        cluster.wait_for(lambda: len(http.delivered("/chat")) == 4, 60, "db's warnings told again")
        told = group_messages(http, "/chat")[3]
        assert told["labels"]["service"] == "db" and len(told["alerts"]) == 3
        assert json.loads(http.delivered("/page")[1].body)["kind"] == "resolved"
    finally:
        prometheus.stop()
        http.stop()
