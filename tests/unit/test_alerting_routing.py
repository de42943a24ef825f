"""Issue 23: label matchers, the route tree, the default route, continue routes repeating on
their own, silences with matchers, inhibition, resolved notices that read as resolved."""

from __future__ import annotations

import datetime

import pydantic
import pytest

from controller import celcheck
from controller.api import alertpolicy as api
from controller.api import matchers
from controller.core import alerting
from controller.core import routing

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
CHANNELS = [{"name": n, "webhook": {"url": f"https://{n}.example/hook"}} for n in ("a", "b", "c", "d", "root")]


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def spec(**fields: object) -> api.AlertPolicySpec:
    document = {"selector": {"matchLabels": {"tier": "prod"}},
                "rules": [{"name": "Down", "metric": "health", "op": ">=", "threshold": 2, "severity": "critical",
                           "labels": {"team": "payments"}},
                          {"name": "Slow", "metric": "latencyP95", "threshold": 2000, "severity": "warning"}],
                "channels": CHANNELS, **fields}
    return api.AlertPolicySpec.model_validate(document)


@pytest.mark.parametrize("text,labels,expected", [
    ('team="payments"', {"team": "payments"}, True),
    ('team!="payments"', {"team": "payments"}, False),
    ('team=""', {}, True),  # a missing label is the empty string
    ('team!=""', {}, False),
    ('team=~"pay.*"', {"team": "payments"}, True),
    ('team=~"pay"', {"team": "payments"}, False),  # anchored at both ends
    ('team!~"pay"', {"team": "payments"}, True),
    ('service=~"web|api"', {"service": "api"}, True),
    ('team=~".*"', {}, True),
    ('team=~".+"', {}, False),
])
def test_matchers_in_alertmanagers_semantics(text: str, labels: dict[str, str], expected: bool) -> None:
    assert matchers.parse(text).matches(labels) is expected


@pytest.mark.parametrize("text,message", [
    ('team=~"(a"', "invalid regular expression"),
    ('team=~"(?=a)"', "invalid regular expression"),  # lookahead: not RE2
    ('team=~"(a)\\\\1"', "invalid regular expression"),  # a backreference: not RE2
    ("team", "bad matcher format"),
    ("team=", "matcher value is not present"),
    ('team="a', "unescaped double quote"),
])
def test_an_unreadable_matcher_is_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        spec(routes=[{"matchers": [text], "channels": ["a"]}])


def test_the_cel_twin_refuses_a_matcher_without_an_operator() -> None:
    good = spec(routes=[{"matchers": ['service=~"web|api"'], "channels": ["a"]}]).model_dump(mode="json", by_alias=True,
                                                                                                 exclude_none=True)
    assert celcheck.spec_violations("AlertPolicy", good) == []
    bad = {**good, "routes": [{**good["routes"][0], "matchers": ["service web"]}]}
    assert any("each matcher is name=value" in v for v in celcheck.spec_violations("AlertPolicy", bad))


def labels(rule: str = "Down", service: str = "web") -> dict[str, str]:
    policy = spec()
    return routing.alert_labels(next(r for r in policy.rules if r.name == rule), service, "shop", "prod-alerts")


def test_an_alert_carries_its_rule_labels_and_who_it_is() -> None:
    assert labels() == {"team": "payments", "alertname": "Down", "severity": "critical", "service": "web",
                        "namespace": "shop", "alertpolicy": "prod-alerts"}


def test_routes_match_on_service_and_severity_and_children_inherit() -> None:
    policy = spec(
        defaultRoute={"channels": ["root"], "repeatIntervalSeconds": 3600, "groupBy": ["alertname"]},
        routes=[{"name": "payments", "matchers": ['team="payments"'], "channels": ["a"], "repeatIntervalSeconds": 600,
                 "routes": [{"name": "api", "matchers": ['service="api"'], "channels": ["b"]},
                            {"name": "paging", "matchers": ['severity="critical"'],
                             "escalation": [{"afterSeconds": 60, "channels": ["c"]}]}]}])
    web, api_ = routing.match(policy, labels("Down", "web")), routing.match(policy, labels("Down", "api"))
    assert [(r.name, r.channels, r.repeat, r.group_by) for r in api_] == [("api", ("b",), 600, ("alertname",))]
    assert [(r.name, r.channels, r.repeat) for r in web] == [("paging", ("a",), 600)]  # channels inherited
    assert web[0].escalation[0].afterSeconds == 60
    # No route matches a Slow alert (it has no team): the default route takes it.
    assert [(r.path, r.channels, r.repeat) for r in routing.match(policy, labels("Slow"))] == [
        ("defaultRoute", ("root",), 3600)]


def test_without_a_default_route_an_unmatched_alert_is_not_sent_as_before() -> None:
    policy = spec(routes=[{"matchers": ['team="nobody"'], "channels": ["a"]}])
    result = alerting.evaluate(policy, [alerting.Observation("web", {"health": 2.0})], [], None, None, at(0), "u")
    assert result.firing == 1 and result.notifications == []
    assert routing.match(policy, labels())[0].repeat == routing.DEFAULT_REPEAT_SECONDS == 900


def test_the_older_match_on_severity_now_means_the_alerts_severity() -> None:
    """Before issue 23 `match: {severity: critical}` compared a rule label named severity
    (so it never matched a rule without one); it now compares the alert's severity."""
    policy = spec(routes=[{"match": {"severity": "critical"}, "channels": ["a"]}])
    assert [r.channels for r in routing.match(policy, labels("Down"))] == [("a",)]
    assert routing.match(policy, labels("Slow"))[0].path == "defaultRoute"


def run(policy: api.AlertPolicySpec, times: list[float], values: dict[str, float | None],
        service: str = "web") -> list[tuple[float, str, str, str]]:
    alerts: list[dict] = []
    sent = []
    for seconds in times:
        result = alerting.evaluate(policy, [alerting.Observation(service, values)], alerts, None, None, at(seconds),
                                   "u", namespace="shop", policy="prod-alerts")
        alerts = result.alerts
        sent += [(seconds, n.rule, n.kind, n.channel) for n in result.notifications]
    return sent


def test_a_route_reached_through_continue_repeats_and_escalates_on_its_own() -> None:
    policy = spec(routes=[
        {"matchers": ['team="payments"'], "channels": ["a"], "repeatIntervalSeconds": 600, "continue": True},
        {"matchers": ['severity="critical"'], "channels": ["b"], "repeatIntervalSeconds": 300,
         "escalation": [{"afterSeconds": 120, "channels": ["c"]}]}])
    sent = [s for s in run(policy, [0, 120, 300, 600], {"health": 2.0}) if s[1] == "Down"]
    assert sent == [(0, "Down", "firing", "a"), (0, "Down", "firing", "b"), (120, "Down", "escalation", "c"),
                    (300, "Down", "repeat", "b"), (600, "Down", "repeat", "a"), (600, "Down", "repeat", "b")]


def test_a_silence_with_matchers_holds_until_its_end_inclusive() -> None:
    policy = spec(routes=[{"channels": ["a"]}],
                  silences=[{"start": "2026-11-01T11:59:00Z", "end": "2026-11-01T12:01:00Z",
                             "labelMatchers": ['service=~"web|api"', 'team="payments"']}])
    sent = run(policy, [0, 60, 61], {"health": 2.0})
    assert sent == [(61, "Down", "firing", "a")], "silenced at its exact end (60 s), told one second after"
    assert alerting.silenced(policy, labels("Down", "api"), at(60))
    assert not alerting.silenced(policy, labels("Down", "db"), at(30))
    assert not alerting.silenced(policy, labels("Slow", "web"), at(30))  # no team: team="" fails


def test_the_older_silence_form_still_reads_rule_as_the_alert_name() -> None:
    policy = spec(silences=[{"start": "2026-11-01T11:59:00Z", "end": "2026-11-01T12:01:00Z",
                             "matchers": {"rule": "Down", "service": "web"}}])
    assert alerting.silenced(policy, labels("Down", "web"), at(0))
    assert not alerting.silenced(policy, labels("Down", "api"), at(0))


def test_an_inhibition_holds_a_warning_while_its_critical_fires() -> None:
    policy = spec(routes=[{"channels": ["a"]}],
                  inhibitRules=[{"sourceMatchers": ['severity="critical"'], "targetMatchers": ['severity="warning"'],
                                 "equal": ["service"]}])
    values = {"health": 2.0, "latencyP95": 5000.0}
    assert run(policy, [0, 10], values) == [(0, "Down", "firing", "a")]  # Slow on web held back
    # Another service's critical does not inhibit web's warning (equal: service).
    both = alerting.evaluate(policy, [alerting.Observation("web", {"latencyP95": 5000.0}),
                                      alerting.Observation("api", {"health": 2.0})], [], None, None, at(0), "u")
    assert sorted((n.rule, n.service) for n in both.notifications) == [("Down", "api"), ("Slow", "web")]
    # Once the critical resolves, the warning still firing is told.
    alerts = alerting.evaluate(policy, [alerting.Observation("web", values)], [], None, None, at(0), "u").alerts
    later = alerting.evaluate(policy, [alerting.Observation("web", {"health": 0.0, "latencyP95": 5000.0})], alerts,
                              None, None, at(30), "u")
    assert sorted((n.rule, n.kind) for n in later.notifications) == [("Down", "resolved"), ("Slow", "firing")]


def test_a_resolved_notice_reads_as_resolved() -> None:
    policy = spec(routes=[{"channels": ["a"]}])
    alerts = alerting.evaluate(policy, [alerting.Observation("web", {"latencyP95": 5000.0})], [], None, None, at(0),
                               "u").alerts
    done = alerting.evaluate(policy, [alerting.Observation("web", {"latencyP95": 300.0})], alerts, None, None, at(10),
                             "u")
    assert [n.summary for n in done.notifications] == ["[RESOLVED] Slow on web: 5000 > 2000 (now 300)"]


def test_bounds_on_the_tree() -> None:
    deep = {"routes": [{"routes": [{"routes": [{"channels": ["a"]}]}]}]}  # a fourth level
    with pytest.raises(pydantic.ValidationError):
        spec(routes=[deep])
    with pytest.raises(pydantic.ValidationError, match="stands alone"):
        spec(routes=[{"groupBy": ["...", "service"], "channels": ["a"]}])
    with pytest.raises(pydantic.ValidationError):
        spec(routes=[{"matchers": ['a="1"'] * (api.MAX_MATCHERS + 1), "channels": ["a"]}])
    with pytest.raises(pydantic.ValidationError, match="undeclared channels: nope"):
        spec(routes=[{"routes": [{"channels": ["nope"]}]}])


def test_a_tenants_regexes_are_compiled_within_a_budget() -> None:
    """RE2 at 256 KiB a pattern refuses a huge program at once; all of a policy's regexes
    together stay within MAX_PROGRAM_PER_POLICY instructions (validation is cheap, bounded)."""
    with pytest.raises(pydantic.ValidationError, match=r"routes\[0\].matchers: invalid regular expression.*too large"):
        spec(routes=[{"matchers": [r'team=~"\pL{400}"'], "channels": ["a"]}])
    mid = [f'team=~"\\\\pL{{8}}{i}"' for i in range(24)]  # ~9,600 instructions each, distinct
    with pytest.raises(pydantic.ValidationError, match="exceed 100000 RE2 instructions"):
        spec(routes=[{"matchers": mid[i * 8:(i + 1) * 8], "channels": ["a"]} for i in range(3)])
    spec(routes=[{"matchers": [f'service=~"web-{i}|api-[a-z0-9]{{1,40}}"' for i in range(8)], "channels": ["a"]}
                 for _ in range(16)])  # an ordinary policy's regexes: well within
