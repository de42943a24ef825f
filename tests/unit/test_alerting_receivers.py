"""PagerDuty (Events API v2), Opsgenie (Alert API) and Microsoft Teams (workflow webhook,
an Adaptive Card): each payload checked against the vendor's documented fields and limits
(transcribed below as data, with where they are documented) and kept as a golden file
(CAPLIQUIFY_UPDATE_GOLDEN=1 rewrites them). A trigger and its resolution share one key."""

from __future__ import annotations

import asyncio
import datetime
import re
import typing

import pytest

from controller.adapters import notifiers
from controller.adapters import notify
from controller.api import alertpolicy as api
from controller.api import common
from controller.core import alerting
from controller.core import routing
from tests.unit import test_alerting_payloads as payloads

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
SECRETS = {"pd": "R0UTINGKEY0000000000000000000000", "og": "00000000-0000-0000-0000-000000000000",
           "teams": "http://127.0.0.1:9/workflows/abc?sig=s3cret"}

# developer.pagerduty.com/docs/events-api-v2/trigger-events and .../resolve-events
PAGERDUTY = {"event_action": {"trigger", "resolve"}, "severity": {"critical", "error", "warning", "info"},
             "summary_max": 1024, "dedup_key_max": 255,
             "trigger_required": ("routing_key", "event_action", "payload"),
             "payload_required": ("summary", "source", "severity"),
             "resolve_required": ("routing_key", "event_action", "dedup_key")}
# docs.opsgenie.com/docs/alert-api (Create Alert, Close Alert)
OPSGENIE = {"message_max": 130, "alias_max": 512, "description_max": 15000, "tags_max": 20, "tag_max": 50,
            "priority": {"P1", "P2", "P3", "P4", "P5"}, "create_required": ("message",)}
# adaptivecards.io/schemas/adaptive-card.json, learn.microsoft.com (Teams workflows: post a card)
TEAMS = {"attachment_type": "application/vnd.microsoft.card.adaptive", "card_type": "AdaptiveCard",
         "elements": {"TextBlock", "FactSet", "Container", "Image"}, "actions": {"Action.OpenUrl"}}


def spec() -> api.AlertPolicySpec:
    ref = lambda name: {"name": "oncall", "key": name}  # noqa: E731
    return api.AlertPolicySpec.model_validate({
        **payloads.policy().model_dump(mode="json", by_alias=True, exclude_none=True),
        "channels": [{"name": "pd", "pagerduty": {"routingKeySecretRef": ref("pd"), "url": "http://127.0.0.1:9/v2/enqueue"}},
                     {"name": "og", "opsgenie": {"apiKeySecretRef": ref("og"), "url": "http://127.0.0.1:9"}},
                     {"name": "teams", "teams": {"webhookSecretRef": ref("teams")}}],
        "routes": [{"channelKinds": ["pagerduty", "opsgenie", "teams"]}]})


def sent(channel: str) -> dict[str, list[dict[str, typing.Any]]]:
    """What each receiver is posted for the firing and the resolved notification."""
    policy = spec()
    rule = policy.rules[0]
    fired = alerting.evaluate(policy, [alerting.Observation("web", {"memory": 97.0})], [], None, None, T0, "uid-1",
                              namespace="shop", policy="prod-alerts")
    resolved = alerting.evaluate(policy, [alerting.Observation("web", {"memory": 60.0})], fired.alerts, None, None,
                                 T0 + datetime.timedelta(minutes=3), "uid-1", namespace="shop", policy="prod-alerts")
    target = next(c for c in policy.channels if c.name == channel)
    out = {}
    for kind, result in (("firing", fired), ("resolved", resolved)):
        n = next(n for n in result.notifications if n.channel == channel)
        message = notify.Message(n, "shop", "prod-alerts", n.fired_at, datetime.timedelta(seconds=900),
                                 labels=routing.alert_labels(rule, "web", "shop", "prod-alerts"),
                                 annotations=alerting.rule_annotations(rule, "web"))
        poster = payloads.Capture()

        async def secret(ref: common.SecretKeyRef) -> str:
            return SECRETS[ref.key]

        registry = notifiers.registry(typing.cast(notify.HttpPoster, poster))
        asyncio.run(registry[notifiers.kind_of(target)].send(target, message, secret))
        out[kind] = poster.posted
    return out


def test_pagerduty_triggers_and_resolves_under_one_dedup_key() -> None:
    posts = sent("pd")
    trigger, resolve = posts["firing"][0]["body"], posts["resolved"][0]["body"]
    assert posts["firing"][0]["url"] == "http://127.0.0.1:9/v2/enqueue"
    assert all(trigger.get(f) for f in PAGERDUTY["trigger_required"])
    assert all(trigger["payload"].get(f) for f in PAGERDUTY["payload_required"])
    assert trigger["event_action"] in PAGERDUTY["event_action"] and trigger["payload"]["severity"] in PAGERDUTY["severity"]
    assert len(trigger["payload"]["summary"]) <= PAGERDUTY["summary_max"]
    assert all(resolve.get(f) for f in PAGERDUTY["resolve_required"]) and resolve["event_action"] == "resolve"
    assert trigger["dedup_key"] == resolve["dedup_key"] == "uid-1/HighMemory/web/1793534400"
    assert len(trigger["dedup_key"]) <= PAGERDUTY["dedup_key_max"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", trigger["payload"]["timestamp"])
    payloads.golden("notify-pagerduty-firing.json", trigger)
    payloads.golden("notify-pagerduty-resolved.json", resolve)


def test_opsgenie_creates_then_closes_the_same_alias() -> None:
    posts = sent("og")
    create, close = posts["firing"][0], posts["resolved"][0]
    assert create["url"] == "http://127.0.0.1:9/v2/alerts"
    assert create["headers"]["Authorization"] == "GenieKey " + SECRETS["og"]
    body = create["body"]
    assert all(body.get(f) for f in OPSGENIE["create_required"]) and len(body["message"]) <= OPSGENIE["message_max"]
    assert len(body["alias"]) <= OPSGENIE["alias_max"] and len(body["description"]) <= OPSGENIE["description_max"]
    assert len(body["tags"]) <= OPSGENIE["tags_max"] and all(len(t) <= OPSGENIE["tag_max"] for t in body["tags"])
    assert body["priority"] in OPSGENIE["priority"] and body["priority"] == "P1"
    assert close["url"] == ("http://127.0.0.1:9/v2/alerts/uid-1%2FHighMemory%2Fweb%2F1793534400/close"
                            "?identifierType=alias")
    assert body["alias"] == "uid-1/HighMemory/web/1793534400"
    payloads.golden("notify-opsgenie-firing.json", body)
    payloads.golden("notify-opsgenie-resolved.json", close["body"])


def test_teams_gets_one_adaptive_card() -> None:
    posts = sent("teams")
    first = posts["firing"][0]
    assert first["url"] == SECRETS["teams"]
    for kind in ("firing", "resolved"):
        message = posts[kind][0]["body"]
        assert message["type"] == "message" and len(message["attachments"]) == 1
        attachment = message["attachments"][0]
        assert attachment["contentType"] == TEAMS["attachment_type"]
        card = attachment["content"]
        assert card["type"] == TEAMS["card_type"] and card["version"] == "1.4"
        assert {element["type"] for element in card["body"]} <= TEAMS["elements"]
        assert {action["type"] for action in card.get("actions", [])} <= TEAMS["actions"]
        payloads.golden(f"notify-teams-{kind}.json", message)
    assert posts["resolved"][0]["body"]["attachments"][0]["content"]["body"][0]["text"].startswith("Resolved: ")


@pytest.mark.parametrize("kind,settings", [("pagerduty", {"routingKeySecretRef": {"name": "s", "key": "k"}}),
                                           ("opsgenie", {"apiKeySecretRef": {"name": "s", "key": "k"}}),
                                           ("teams", {"webhookSecretRef": {"name": "s", "key": "k"}})])
def test_a_new_receiver_is_one_kind_of_channel(kind: str, settings: dict[str, typing.Any]) -> None:
    assert notifiers.kind_of(api.Channel.model_validate({"name": "x", kind: settings})) == kind
    with pytest.raises(ValueError, match="exactly one"):
        api.Channel.model_validate({"name": "x", kind: settings, "slack": {"webhookSecretRef": {"name": "s", "key": "k"}}})


def test_a_long_alert_identity_is_hashed_within_the_receivers_limit() -> None:
    n = alerting.Notification("u" * 36 + "/" + "R" * 63 + "/" + "s" * 253 + "/1793534400/firing/pd", "pd", "firing",
                              "R", "s", "critical", "x", T0)
    assert len(notify.alert_key(n)) <= PAGERDUTY["dedup_key_max"] and notify.alert_key(n).startswith("capliquify-")


def test_a_receiver_echoing_the_request_never_puts_the_key_in_the_error() -> None:
    """A PagerDuty or Opsgenie URL is the author's to set: one that answers 400 with the
    request it got (routing key, GenieKey header) must not carry the key into status."""
    import http.server
    import threading

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(400)
            self.end_headers()
            self.wfile.write(body + str(self.headers).encode())

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    policy = spec()
    n = alerting.Notification("uid-1/HighMemory/web/1793534400/firing/pd", "pd", "firing", "HighMemory", "web",
                              "critical", "web memory 97% > 95%", T0)
    message = notify.Message(n, "shop", "prod-alerts", T0, datetime.timedelta(seconds=900))

    async def secret(ref: common.SecretKeyRef) -> str:
        return SECRETS[ref.key]

    async def attempt(channel: api.Channel) -> str:
        poster = notify.HttpPoster(allow_loopback=True)
        try:
            await notifiers.registry(poster)[notifiers.kind_of(channel)].send(channel, message, secret)
        except notify.DeliveryError as error:
            return str(error)
        finally:
            await poster.close()
        return "sent"

    try:
        for name, field in (("pd", "pagerduty"), ("og", "opsgenie")):
            channel = next(c for c in policy.channels if c.name == name)
            settings = getattr(channel, field).model_copy(
                update={"url": f"{base}/v2/enqueue" if field == "pagerduty" else base})
            error = asyncio.run(attempt(channel.model_copy(update={field: settings})))
            assert error.startswith("HTTP 400 from 127.0.0.1") and SECRETS[name] not in error, error
    finally:
        server.shutdown()


def test_each_new_receivers_secret_is_watched_and_its_absence_reported() -> None:
    """ChannelsReady names a channel whose Secret is missing, whatever its kind."""
    from controller.core import readiness

    assert readiness.secret_refs("AlertPolicy", spec()) == ["oncall"]
    refs = [readiness._channel_secret_refs(c) for c in spec().channels]
    assert [[(ref.key, why) for ref, why in found] for found in refs] == [
        [("pd", "channel pd")], [("og", "channel og")], [("teams", "channel teams")]]
