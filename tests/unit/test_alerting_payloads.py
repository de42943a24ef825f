"""What the webhook and Alertmanager receivers get, reviewed as golden files (set
CAPLIQUIFY_UPDATE_GOLDEN=1 to rewrite them): the alert's labels and its rule's annotations
are forwarded, and a resolved notice reads as resolved."""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import pathlib
import typing

import pytest

from controller.adapters import notify
from controller.adapters import notify_alertmanager
from controller.adapters import notify_webhook
from controller.api import alertpolicy as api
from controller.core import alerting
from controller.core import routing

GOLDEN = pathlib.Path(__file__).parent.parent / "golden"
T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)


class Capture:
    """An HttpPoster that records what would be posted."""

    allow_loopback = True

    @staticmethod
    def fence(_: str) -> None:
        """Leads always (the registry hands it to the email notifier)."""

    def __init__(self) -> None:
        self.posted: list[dict[str, typing.Any]] = []

    async def post(self, url: str, *, json_body: typing.Any = None, data: bytes | None = None,
                   headers: typing.Mapping[str, str] | None = None, url_is_secret: bool = False) -> str:
        self.posted.append({"url": url, "body": json_body if data is None else json.loads(data),
                            "headers": dict(headers or {})})
        return ""


def policy() -> api.AlertPolicySpec:
    return api.AlertPolicySpec.model_validate({
        "serviceRef": "web",
        "rules": [{"name": "HighMemory", "metric": "memory", "threshold": 95, "severity": "critical",
                   "summary": "{{service}} memory {{value}}% > {{threshold}}%", "labels": {"team": "payments"},
                   "annotations": {"description": "{{service}} is close to its memory limit",
                                   "runbook_url": "https://runbooks.example/{{rule}}"}}],
        "channels": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/hook"}},
                     {"name": "am", "alertmanager": {"url": "http://127.0.0.1:9093"}}],
        "routes": [{"channels": ["hook", "am"], "repeatIntervalSeconds": 300}]})


def messages() -> dict[str, notify.Message]:
    spec = policy()
    rule = spec.rules[0]
    fired = alerting.evaluate(spec, [alerting.Observation("web", {"memory": 97.0})], [], None, None, T0, "uid-1",
                              namespace="shop", policy="prod-alerts")
    resolved = alerting.evaluate(spec, [alerting.Observation("web", {"memory": 60.0})], fired.alerts, None, None,
                                 T0 + datetime.timedelta(minutes=3), "uid-1", namespace="shop", policy="prod-alerts")
    labels = routing.alert_labels(rule, "web", "shop", "prod-alerts")

    def message(n: alerting.Notification, sent: datetime.datetime) -> notify.Message:
        return notify.Message(n, "shop", "prod-alerts", sent, datetime.timedelta(seconds=900), labels=labels,
                              annotations=alerting.rule_annotations(rule, "web"))

    first = next(n for n in fired.notifications if n.channel == "hook")
    last = next(n for n in resolved.notifications if n.channel == "hook")
    return {"firing": message(first, T0), "resolved": message(last, T0 + datetime.timedelta(minutes=3))}


def golden(name: str, value: typing.Any) -> None:
    path = GOLDEN / name
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("CAPLIQUIFY_UPDATE_GOLDEN"):
        path.write_text(text)
    assert path.exists(), f"{path} is missing: run with CAPLIQUIFY_UPDATE_GOLDEN=1 and review it"
    assert text == path.read_text()


@pytest.mark.parametrize("kind", ["firing", "resolved"])
def test_webhook_payload(kind: str) -> None:
    poster = Capture()
    channel = policy().channels[0]
    asyncio.run(notify_webhook.WebhookNotifier(typing.cast(notify.HttpPoster, poster)).send(
        channel, messages()[kind], lambda ref: asyncio.sleep(0, "")))
    golden(f"notify-webhook-{kind}.json", poster.posted[0]["body"])


@pytest.mark.parametrize("kind", ["firing", "resolved"])
def test_alertmanager_payload(kind: str) -> None:
    poster = Capture()
    channel = policy().channels[1]
    asyncio.run(notify_alertmanager.AlertmanagerNotifier(typing.cast(notify.HttpPoster, poster)).send(
        channel, messages()[kind], lambda ref: asyncio.sleep(0, "")))
    assert poster.posted[0]["url"] == "http://127.0.0.1:9093/api/v2/alerts"
    golden(f"notify-alertmanager-{kind}.json", poster.posted[0]["body"])


def test_a_groups_payloads() -> None:
    base = policy().model_dump(mode="json", by_alias=True, exclude_none=True)
    spec = api.AlertPolicySpec.model_validate({
        **base, "rules": [*base["rules"], {**base["rules"][0], "name": "HighMemoryPage", "threshold": 90}],
        "routes": [{"channels": ["hook", "am"], "groupBy": ["service"], "repeatIntervalSeconds": 300}]})
    result = alerting.evaluate(spec, [alerting.Observation("web", {"memory": 97.0})], [], None, None, T0, "uid-1",
                               namespace="shop", policy="prod-alerts")
    hook = next(n for n in result.notifications if n.channel == "hook")
    message = notify.Message(hook, "shop", "prod-alerts", T0, datetime.timedelta(seconds=900),
                             labels=alerting.group_labels(hook.group),
                             members=tuple(alerting.group_members(spec, hook.alerts, "shop", "prod-alerts")))
    webhook, am = Capture(), Capture()
    asyncio.run(notify_webhook.WebhookNotifier(typing.cast(notify.HttpPoster, webhook)).send(
        spec.channels[0], message, lambda ref: asyncio.sleep(0, "")))
    asyncio.run(notify_alertmanager.AlertmanagerNotifier(typing.cast(notify.HttpPoster, am)).send(
        spec.channels[1], message, lambda ref: asyncio.sleep(0, "")))
    assert alerting.group_labels(hook.group) == {"service": "web"}
    golden("notify-webhook-group.json", webhook.posted[0]["body"])
    golden("notify-alertmanager-group.json", am.posted[0]["body"])
