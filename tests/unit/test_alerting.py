from __future__ import annotations

import datetime

import pytest

from controller.api import alertpolicy as api
from controller.core import alerting
from controller.core import outbox

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def policy(**rule: object) -> api.AlertPolicySpec:
    return api.AlertPolicySpec.model_validate({
        "serviceRef": "web",
        "rules": [{"name": "HighErrorRate", "metric": "errorRate", "threshold": 5, "severity": "critical",
                   "summary": "{{service}} error rate {{value}}% > {{threshold}}%", **rule}],
        "channels": [{"name": "slack", "slack": {"webhookSecretRef": {"name": "s", "key": "url"}}},
                     {"name": "mail", "email": {"smtpSecretRef": {"name": "m", "key": "c"}, "to": ["a@example.com"]}},
                     {"name": "pager", "sms": {"gatewaySecretRef": {"name": "g", "key": "c"}, "to": ["+15550100"]}}],
        "routes": [{"severity": "critical", "channels": ["slack", "mail"], "repeatIntervalSeconds": 300,
                    "escalation": [{"afterSeconds": 600, "channels": ["pager"]}]}],
    })


def run(spec: api.AlertPolicySpec, series: list[tuple[float, float | None]], ack_at: float | None = None
        ) -> tuple[list[str], list[tuple[float, str, str]]]:
    """Feeds (seconds, value) to evaluate; returns the states seen and (t, kind, channel) sent."""
    alerts: list[dict] = []
    last_ack = None
    states, sent = [], []
    for seconds, value in series:
        ack = "alice" if ack_at is not None and seconds >= ack_at else None
        result = alerting.evaluate(spec, [alerting.Observation("web", {"errorRate": value})], alerts, ack, last_ack,
                                   at(seconds), "uid1")
        alerts, last_ack = result.alerts, result.last_ack
        states.append(alerts[0]["state"] if alerts else "Inactive")
        sent += [(seconds, n.kind, n.channel) for n in result.notifications]
    return states, sent


CASES = [
    ("fires-at-once-without-for", {}, [(0, 9), (10, 9)], ["Firing", "Firing"],
     [(0, "firing", "slack"), (0, "firing", "mail")]),
    ("pending-then-firing", {"forSeconds": 30}, [(0, 9), (20, 9), (30, 9)], ["Pending", "Pending", "Firing"],
     [(30, "firing", "slack"), (30, "firing", "mail")]),
    ("pending-clears-silently", {"forSeconds": 30}, [(0, 9), (10, 1)], ["Pending", "Inactive"], []),
    ("resolves-and-tells", {}, [(0, 9), (10, 1)], ["Firing", "Resolved"],
     [(0, "firing", "slack"), (0, "firing", "mail"), (10, "resolved", "slack"), (10, "resolved", "mail")]),
    ("keep-firing-for", {"keepFiringForSeconds": 60}, [(0, 9), (10, 1), (40, 1), (70, 1)],
     ["Firing", "Firing", "Firing", "Resolved"],
     [(0, "firing", "slack"), (0, "firing", "mail"), (70, "resolved", "slack"), (70, "resolved", "mail")]),
    ("missing-data-holds", {}, [(0, 9), (10, None), (20, None)], ["Firing", "Firing", "Firing"],
     [(0, "firing", "slack"), (0, "firing", "mail")]),
    ("repeat-then-escalate", {}, [(0, 9), (299, 9), (300, 9), (600, 9), (900, 9)], ["Firing"] * 5,
     [(0, "firing", "slack"), (0, "firing", "mail"), (300, "repeat", "slack"), (300, "repeat", "mail"),
      (600, "repeat", "slack"), (600, "repeat", "mail"), (600, "escalation", "pager"),
      (900, "repeat", "slack"), (900, "repeat", "mail")]),
]


@pytest.mark.parametrize("rule,series,states,sent", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_state_machine_and_notifications(rule, series, states, sent) -> None:  # noqa: ANN001
    assert run(policy(**rule), series) == (states, sent)


def test_ack_stops_repeats_and_escalation() -> None:
    states, sent = run(policy(), [(0, 9), (100, 9), (300, 9), (600, 9), (700, 1)], ack_at=100)
    assert sent == [(0, "firing", "slack"), (0, "firing", "mail"), (700, "resolved", "slack"), (700, "resolved", "mail")]


def test_silence_holds_notifications_until_it_ends() -> None:
    spec = policy()
    spec = spec.model_copy(update={"silences": [api.Silence(start=at(-10), end=at(50), matchers={"rule": "HighErrorRate"})]})
    states, sent = run(spec, [(0, 9), (30, 9), (60, 9)])
    assert states == ["Firing"] * 3 and sent == [(60, "firing", "slack"), (60, "firing", "mail")]


def test_keys_are_stable_so_a_restart_re_decides_nothing_new() -> None:
    spec = policy()
    first = alerting.evaluate(spec, [alerting.Observation("web", {"errorRate": 9})], [], None, None, at(0), "uid1")
    assert [n.key for n in first.notifications] == ["uid1/HighErrorRate/web/1793534400/firing/slack",
                                                    "uid1/HighErrorRate/web/1793534400/firing/mail"]
    again = alerting.evaluate(spec, [alerting.Observation("web", {"errorRate": 9})], first.alerts, None, None, at(5), "uid1")
    assert again.notifications == [] and again.alerts == first.alerts, "steady firing: nothing new, nothing to write"
    assert first.notifications[0].summary == "web error rate 9% > 5%"


def test_outbox_queues_once_and_completes() -> None:
    spec = policy()
    notes = alerting.evaluate(spec, [alerting.Observation("web", {"errorRate": 9})], [], None, None, at(0), "u").notifications
    log = outbox.enqueue([], notes, at(0))
    assert [d["outcome"] for d in log] == ["Pending", "Pending"]
    assert outbox.enqueue(log, notes, at(1)) == log, "the same keys are not queued twice"
    assert [d["channel"] for d in outbox.due(log, at(0))] == ["slack", "mail"]
    log = outbox.complete(log, notes[0].key, None, at(1))
    log = outbox.complete(log, notes[1].key, "smtp: connection refused", at(1))
    assert [(d["channel"], d["outcome"], d["attempt"]) for d in log] == [("mail", "Pending", 2), ("slack", "Sent", 1)]
    assert outbox.due(log, at(5)) == [] and [d["channel"] for d in outbox.due(log, at(11))] == ["mail"]
    for attempt in range(2, outbox.MAX_ATTEMPTS + 1):
        log = outbox.complete(log, notes[1].key, "smtp: connection refused", at(100 * attempt))
    assert [d["outcome"] for d in log] == ["Failed", "Sent"]
    assert outbox.last_sent(log) == "2026-11-01T12:00:01Z"


def test_trim_keeps_pending_and_the_last_done() -> None:
    done = [{"key": f"d{i}", "outcome": "Sent", "time": "2026-11-01T12:00:00Z"} for i in range(60)]
    pending = [{"key": f"p{i}", "outcome": "Pending", "time": "2026-11-01T12:00:00Z"} for i in range(5)]
    kept = outbox.trim([*pending, *done])
    assert len(kept) == 55 and all(p in kept for p in pending)


def test_an_overflowing_outbox_gives_up_its_oldest_pending_and_still_fits_status() -> None:
    """A large incident: 400 pending deliveries. The status list (max 200) must still be written."""
    pending = [{"key": f"p{i}", "outcome": "Pending", "time": "2026-11-01T12:00:00Z"} for i in range(400)]  # newest first
    kept = outbox.trim(pending)
    assert len(kept) <= 200
    assert [d["key"] for d in kept if d["outcome"] == "Pending"] == [f"p{i}" for i in range(outbox.PENDING_LIMIT)]
    dropped = [d for d in kept if d["outcome"] == "Failed"]
    assert dropped and all(d["message"] == outbox.OVERFLOW for d in dropped)


def test_observe_maps_health_rollbacks_and_samples() -> None:
    from controller.core import scaling

    status = {"health": "Degraded", "availabilityPercent": 99.86, "rollout": {"history": [
        {"revision": "3", "phase": "RolledBack", "time": "2026-11-01T11:55:00Z"},
        {"revision": "2", "phase": "RolledBack", "time": "2026-11-01T11:40:00Z"},  # outside the 10 min window
        {"revision": "1", "phase": "Healthy", "time": "2026-11-01T11:30:00Z"}]}}
    samples = {("cpu", None): scaling.Sample(41.0, T0), ("errorRate", None): scaling.Sample(None, None, "query failed: x"),
               ("custom", "orders"): scaling.Sample(7.0, T0)}
    seen = alerting.observe("web", status, samples, T0)
    assert seen.values == {"cpu": 41.0, "errorRate": None, "custom:orders": 7.0, "health": 1.0, "availability": 99.86,
                           "rollbacks": 1.0, "rolloutsSucceeded": 0.0, "rolloutsFailed": 0.0}
    assert alerting.observe("web", {"health": "Unknown"}, None, T0).values == {
        "health": None, "availability": None, "rollbacks": 0.0, "rolloutsSucceeded": 0.0, "rolloutsFailed": 0.0}
    deploys = {"rollout": {"history": [{"revision": "5", "phase": "Healthy", "time": "2026-11-01T11:58:00Z"},
                                       {"revision": "4", "phase": "Failed", "time": "2026-11-01T11:57:00Z"}]}}
    values = alerting.observe("web", deploys, None, T0).values
    assert (values["rolloutsSucceeded"], values["rolloutsFailed"]) == (1.0, 1.0)


# -- Issue 12: flap damping and acknowledging one alert. --------------------------------------

def test_a_flapping_rule_notifies_once_within_the_cooldown() -> None:
    """Fire, resolve, fire again within the route's 300 s repeat interval: one firing
    notification, not two (the re-fire is damped, said in status), and escalation waits too."""
    spec = policy(keepFiringForSeconds=0)
    alerts: list[dict] = []
    sent = []
    for seconds, value in [(0, 9), (60, 1), (120, 9), (180, 9)]:
        result = alerting.evaluate(spec, [alerting.Observation("web", {"errorRate": value})], alerts, None, None,
                                   at(seconds), "uid1")
        alerts = result.alerts
        sent += [(seconds, n.kind) for n in result.notifications]
    assert [(t, k) for t, k in sent if k == "firing"] == [(0, "firing"), (0, "firing")]  # slack + mail, once
    assert alerts[0]["state"] == "Firing" and alerts[0]["damped"] is True
    # Still firing after the cooldown since the last notification (300 s): now it is told.
    result = alerting.evaluate(spec, [alerting.Observation("web", {"errorRate": 9})], alerts, None, None, at(301), "uid1")
    assert [n.kind for n in result.notifications] == ["firing", "firing"]
    assert "damped" not in result.alerts[0]


def test_a_re_fire_after_the_cooldown_notifies() -> None:
    spec = policy(keepFiringForSeconds=0)
    alerts: list[dict] = []
    kinds = []
    for seconds, value in [(0, 9), (60, 1), (400, 9)]:
        result = alerting.evaluate(spec, [alerting.Observation("web", {"errorRate": value})], alerts, None, None,
                                   at(seconds), "uid1")
        alerts = result.alerts
        kinds += [(seconds, n.kind) for n in result.notifications]
    assert (400, "firing") in kinds


def test_acknowledging_one_alert_leaves_the_others_escalating() -> None:
    spec = policy()
    observations = [alerting.Observation("web", {"errorRate": 9}), alerting.Observation("api", {"errorRate": 9})]
    alerts: list[dict] = []
    last_ack = None
    sent = []
    for seconds in (0, 100, 300, 600):
        ack = "alice: HighErrorRate/web" if seconds >= 100 else None
        result = alerting.evaluate(spec, observations, alerts, ack, last_ack, at(seconds), "uid1")
        alerts, last_ack = result.alerts, result.last_ack
        sent += [(seconds, n.kind, n.service) for n in result.notifications if seconds > 0]
    by_service = {a["service"]: a for a in alerts}
    assert by_service["web"].get("acknowledgedBy") == "alice" and "acknowledgedBy" not in by_service["api"]
    assert [s for s in sent if s[2] == "web"] == []
    assert (600, "escalation", "api") in sent and (300, "repeat", "api") in sent


@pytest.mark.parametrize("value,expected", [
    ("alice", ("alice", None)),
    ("alice: HighErrorRate/web, Down/api", ("alice", frozenset({"HighErrorRate/web", "Down/api"}))),
    ("HighErrorRate/web", ("ack", frozenset({"HighErrorRate/web"}))),
    ("bob: HighErrorRate", ("bob", frozenset({"HighErrorRate"}))),
])
def test_ack_annotation_forms(value: str, expected: tuple) -> None:
    assert alerting.parse_ack(value) == expected


# -- Issue 12: the platform's alert table, routed by labels and severity. --------------------

def platform() -> api.AlertPolicySpec:
    return api.AlertPolicySpec.model_validate({
        "serviceRef": "web",
        "rules": [
            {"name": "Breach", "metric": "custom", "customName": "failed_logins", "threshold": 100,
             "severity": "critical", "labels": {"type": "security"}},
            {"name": "Down", "metric": "health", "op": ">=", "threshold": 2, "severity": "critical"},
            {"name": "Orders", "metric": "custom", "customName": "orders", "op": "<", "threshold": 1,
             "severity": "info", "labels": {"type": "business"}},
        ],
        "channels": [{"name": "slack", "slack": {"webhookSecretRef": {"name": "s", "key": "url"}}},
                     {"name": "mail", "email": {"smtpSecretRef": {"name": "m", "key": "c"}, "to": ["a@example.com"]}},
                     {"name": "sms", "sms": {"gatewaySecretRef": {"name": "g", "key": "c"}, "to": ["+15550100"]}},
                     {"name": "bi", "webhook": {"url": "https://bi.example/hook"}}],
        "routes": [
            {"name": "security", "match": {"type": "security"}, "channels": ["slack", "mail", "sms"],
             "repeatIntervalSeconds": 60, "escalation": [{"afterSeconds": 1, "channels": ["sms"]}]},
            {"name": "business", "match": {"type": "business"}, "channels": ["slack"], "repeatIntervalSeconds": 1800,
             "continue": True},
            {"name": "dashboard", "match": {"type": "business"}, "channels": ["bi"]},
            {"name": "system-critical", "severity": "critical", "channels": ["slack", "mail", "sms"],
             "repeatIntervalSeconds": 300, "escalation": [{"afterSeconds": 300, "channels": ["sms"]}]},
        ],
    })


def test_two_critical_alert_types_keep_their_own_cooldowns_and_escalation() -> None:
    spec = platform()
    values = {"custom:failed_logins": 500.0, "health": 2.0, "custom:orders": 5.0}
    alerts: list[dict] = []
    sent = []
    for seconds in (0, 1, 60, 120, 300):
        result = alerting.evaluate(spec, [alerting.Observation("web", values)], alerts, None, None, at(seconds), "u")
        alerts = result.alerts
        sent += [(seconds, n.rule, n.kind, n.channel) for n in result.notifications]
    breach = [(t, k) for t, rule, k, c in sent if rule == "Breach" and c == "slack"]
    down = [(t, k) for t, rule, k, c in sent if rule == "Down" and c == "slack"]
    assert breach == [(0, "firing"), (60, "repeat"), (120, "repeat"), (300, "repeat")]  # every minute
    assert down == [(0, "firing"), (300, "repeat")]  # every five minutes
    assert (1, "Breach", "escalation", "sms") in sent  # security escalates at once
    assert (300, "Down", "escalation", "sms") in sent and not [s for s in sent if s[:3] == (1, "Down", "escalation")]


def test_continue_sends_a_business_anomaly_to_slack_and_the_dashboard() -> None:
    spec = platform()
    result = alerting.evaluate(spec, [alerting.Observation("web", {"custom:orders": 0.0})], [], None, None, at(0), "u")
    assert sorted(n.channel for n in result.notifications if n.rule == "Orders") == ["bi", "slack"]
    assert [r.name for r in alerting.matching_routes(spec, spec.rules[2])] == ["business", "dashboard"]
    assert [r.name for r in alerting.matching_routes(spec, spec.rules[1])] == ["system-critical"]


def test_a_burn_rate_rule_reads_its_own_windows() -> None:
    spec = api.AlertPolicySpec.model_validate({
        "serviceRef": "web",
        "rules": [{"name": "FastBurn", "metric": "burnRate", "threshold": 14.4, "severity": "critical"},
                  {"name": "SlowBurn", "metric": "burnRate", "threshold": 6, "severity": "warning",
                   "burnRateWindows": {"longSeconds": 21600, "shortSeconds": 1800}}],
        "channels": [{"name": "slack", "slack": {"webhookSecretRef": {"name": "s", "key": "url"}}}],
    })
    assert alerting.burn_rate_windows(spec) == {("burnRate", 3600, 300), ("burnRate", 21600, 1800)}
    values = {"burnRate:3600:300": 20.0, "burnRate:21600:1800": 2.0}
    result = alerting.evaluate(spec, [alerting.Observation("web", values)], [], None, None, at(0), "u")
    assert {a["rule"]: a["state"] for a in result.alerts} == {"FastBurn": "Firing"}
    with pytest.raises(ValueError, match="shortSeconds must be shorter"):
        api.BurnRateWindows(longSeconds=300, shortSeconds=300)


def test_a_latency_burn_rate_rule_reads_the_latency_budget() -> None:
    spec = api.AlertPolicySpec.model_validate({
        "serviceRef": "web",
        "rules": [{"name": "SlowFastBurn", "metric": "latencyBurnRate", "threshold": 14.4, "severity": "critical"},
                  {"name": "FastBurn", "metric": "burnRate", "threshold": 14.4, "severity": "critical"}],
        "channels": [{"name": "slack", "slack": {"webhookSecretRef": {"name": "s", "key": "url"}}}],
    })
    assert alerting.burn_rate_windows(spec) == {("latencyBurnRate", 3600, 300), ("burnRate", 3600, 300)}
    values = {"latencyBurnRate:3600:300": 16.0, "burnRate:3600:300": 0.0}
    result = alerting.evaluate(spec, [alerting.Observation("web", values)], [], None, None, at(0), "u")
    assert {a["rule"]: a["state"] for a in result.alerts} == {"SlowFastBurn": "Firing"}
