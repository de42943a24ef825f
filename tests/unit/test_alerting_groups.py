"""Issue 23: grouping. A route with groupBy sends one notification per group listing its
alerts, through groupWait, groupInterval and repeatInterval, firing and resolved, through
the outbox (keys deterministic, state in status.groups)."""

from __future__ import annotations

import datetime
import typing

from controller.api import alertpolicy as api
from controller.core import alerting
from controller.core import outbox

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
SERVICES = ("web", "api", "db")
RULES = ("HighCPU", "HighMemory", "HighErrors", "SlowResponses")


def policy(**route: object) -> api.AlertPolicySpec:
    metrics = {"HighCPU": "cpu", "HighMemory": "memory", "HighErrors": "errorRate", "SlowResponses": "latencyP95"}
    return api.AlertPolicySpec.model_validate({
        "selector": {"matchLabels": {"tier": "prod"}},
        "rules": [{"name": name, "metric": metric, "threshold": 50, "severity": "warning"}
                  for name, metric in metrics.items()],
        "channels": [{"name": "chat", "webhook": {"url": "https://chat.example/hook"}},
                     {"name": "pager", "webhook": {"url": "https://pager.example/hook"}}],
        "routes": [{"channels": ["chat"], "groupBy": ["service"], "groupWaitSeconds": 30,
                    "groupIntervalSeconds": 60, "repeatIntervalSeconds": 600, **route}],
    })


class Run:
    """Evaluates rounds as the alerter does: alerts and groups carried from one to the next."""

    def __init__(self, spec: api.AlertPolicySpec) -> None:
        self.spec = spec
        self.alerts: list[dict[str, typing.Any]] = []
        self.groups: list[dict[str, typing.Any]] = []
        self.sent: list[tuple[float, alerting.Notification]] = []

    def at(self, seconds: float, firing: typing.Mapping[str, typing.Iterable[str]], ack: str | None = None
           ) -> list[alerting.Notification]:
        metric = {"HighCPU": "cpu", "HighMemory": "memory", "HighErrors": "errorRate", "SlowResponses": "latencyP95"}
        observations = [alerting.Observation(service, {metric[r]: 90.0 if r in firing.get(service, ()) else 10.0
                                                       for r in RULES}) for service in SERVICES]
        result = alerting.evaluate(self.spec, observations, self.alerts, ack, None, T0 + datetime.timedelta(
            seconds=seconds), "uid", namespace="shop", policy="prod", groups=self.groups)
        self.alerts, self.groups = result.alerts, result.groups
        self.sent += [(seconds, n) for n in result.notifications]
        return result.notifications


# An incident of 10 alerts across 3 services: web 4, api 4, db 2.
INCIDENT = {"web": RULES, "api": RULES, "db": RULES[:2]}


def test_an_incident_of_ten_alerts_is_three_messages_after_the_group_wait() -> None:
    run = Run(policy())
    assert run.at(0, INCIDENT) == [] and run.at(20, INCIDENT) == []  # groupWait 30 s
    told = run.at(30, INCIDENT)
    assert len(told) == 3 and {n.channel for n in told} == {"chat"}
    by_group = {n.group: n for n in told}
    assert set(by_group) == {'routes[0]{service="web"}', 'routes[0]{service="api"}', 'routes[0]{service="db"}'}
    db = by_group['routes[0]{service="db"}']
    assert db.kind == "firing" and db.alerts == ("HighCPU/db=firing", "HighMemory/db=firing")
    assert db.summary.splitlines() == ["[FIRING:2] service=db", "- HighCPU on db: 90 > 50",
                                       "- HighMemory on db: 90 > 50"]
    assert run.at(35, INCIDENT) == [], "nothing changed: nothing sent"


def test_an_alert_joining_waits_for_the_group_interval_then_one_message_lists_all() -> None:
    run = Run(policy())
    run.at(0, {"web": RULES[:1]})
    run.at(30, {"web": RULES[:1]})
    assert run.at(40, {"web": RULES[:2]}) == [] and run.at(80, {"web": RULES[:2]}) == []  # 60 s from 30
    [update] = run.at(90, {"web": RULES[:2]})
    assert update.kind == "firing" and update.alerts == ("HighCPU/web=firing", "HighMemory/web=firing")


def test_resolutions_are_one_message_that_reads_resolved_and_the_group_ends() -> None:
    run = Run(policy())
    run.at(0, INCIDENT)
    run.at(30, INCIDENT)
    calmer = {"api": RULES, "db": RULES[:2]}
    assert run.at(60, calmer) == []  # web resolved; the interval (60 s from 30) has not passed
    [resolved] = run.at(90, calmer)
    assert resolved.kind == "resolved" and resolved.group == 'routes[0]{service="web"}'
    assert resolved.summary.splitlines()[0] == "[RESOLVED:0] service=web (4 resolved)"
    assert all(a.endswith("=resolved") for a in resolved.alerts) and len(resolved.alerts) == 4
    assert 'routes[0]{service="web"}' not in {g["key"] for g in run.groups}
    assert run.at(200, calmer) == []


def test_a_steady_group_repeats_every_repeat_interval_until_acknowledged() -> None:
    run = Run(policy())
    for seconds in (0, 30, 300, 629, 630, 900, 1230):
        run.at(seconds, {"db": RULES[:1]}, ack="alice: HighCPU/db" if seconds >= 900 else None)
    assert [(t, n.kind) for t, n in run.sent] == [(30, "firing"), (630, "repeat")]


def test_keys_are_deterministic_and_the_outbox_takes_each_once() -> None:
    first, again = Run(policy()), Run(policy())
    for run in (first, again):
        run.at(0, INCIDENT)
    a, b = first.at(30, INCIDENT), again.at(30, INCIDENT)
    assert [n.key for n in a] == [n.key for n in b] and len({n.key for n in a}) == 3
    log = outbox.enqueue([], a, T0)
    assert outbox.enqueue(log, b, T0) == log, "re-deciding the same round after a restart queues nothing new"
    assert {d["group"] for d in log} == {n.group for n in a} and all(d["alerts"] for d in log)
    # The status written with the outbox carries the groups: the next round sends nothing again.
    assert first.at(31, INCIDENT) == []


def test_group_by_nothing_is_one_group_for_the_route_and_escalation_stays_per_alert() -> None:
    run = Run(policy(groupBy=[], escalation=[{"afterSeconds": 120, "channels": ["pager"]}]))
    run.at(0, INCIDENT)
    [one] = run.at(30, INCIDENT)
    assert one.group == "routes[0]{}" and len(one.alerts) == 10
    assert one.summary.startswith("[FIRING:10] all alerts")
    escalations = run.at(120, INCIDENT)
    assert len(escalations) == 10 and {n.kind for n in escalations} == {"escalation"}


def test_without_group_by_each_alert_is_told_at_once_as_before() -> None:
    spec = policy()
    spec.routes[0].groupBy = None  # inherits the default `...`: every alert its own notification
    run = Run(spec)
    assert len(run.at(0, INCIDENT)) == 10 and run.groups == []


def test_a_groups_labels_are_read_back_from_its_key_whatever_they_hold() -> None:
    spec = policy(groupBy=["team", "service"])
    spec.rules[0].labels = {"team": 'pay"ments, EU'}
    run = Run(spec)
    run.at(0, {"web": RULES[:1]})
    [told] = run.at(30, {"web": RULES[:1]})
    assert alerting.group_labels(told.group) == {"service": "web", "team": 'pay"ments, EU'}


def test_a_group_key_too_long_for_status_is_hashed_and_still_groups() -> None:
    names = [f"{'l' * 60}{i}" for i in range(8)]  # 8 labels of 61 characters, values of 63: past 1024
    spec = policy(groupBy=["service", *names])
    spec.rules[0].labels = {name: "v" * 63 for name in names}
    run = Run(spec)
    run.at(0, {"web": RULES[:1]})
    [told] = run.at(30, {"web": RULES[:1]})
    assert len(told.group) <= 1024 and "{#" in told.group and alerting.group_labels(told.group) == {}
    assert run.at(31, {"web": RULES[:1]}) == [], "the hashed key is stable: nothing sent again"
