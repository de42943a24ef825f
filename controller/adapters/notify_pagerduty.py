"""PagerDuty Events API v2 (https://developer.pagerduty.com/docs/events-api-v2/trigger-events/):
`trigger` while firing (repeats and escalations re-trigger the same incident), `resolve` when
resolved, both under one dedup key: our alert's key. The routing key is a secret."""

from __future__ import annotations

import typing

from controller.adapters import notify
from controller.api import alertpolicy as api
from controller.core import timestamps

SEVERITIES = {"critical": "critical", "warning": "warning", "info": "info"}  # PagerDuty also has `error`
SUMMARY_LIMIT = 1024  # payload.summary, as documented


class PagerDutyNotifier:
    def __init__(self, poster: notify.HttpPoster) -> None:
        self.poster = poster

    async def send(self, channel: api.Channel, message: notify.Message, secret: notify.SecretReader) -> None:
        assert channel.pagerduty is not None
        routing_key = (await secret(channel.pagerduty.routingKeySecretRef)).strip()
        # The answer is never quoted in an error (url_is_secret): a receiver that echoes the
        # request would otherwise put the routing key in status.
        await self.poster.post(channel.pagerduty.url, json_body=event(routing_key, message),
                               headers={"Idempotency-Key": message.notification.key}, url_is_secret=True)


def event(routing_key: str, message: notify.Message) -> dict[str, typing.Any]:
    n = message.notification
    dedup = notify.alert_key(n)
    if message.resolved:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup}
    details: dict[str, typing.Any] = {**message.annotations, "labels": dict(message.labels), "kind": n.kind,
                                      "policy": f"{message.namespace}/{message.policy}"}
    if n.group:
        details["alerts"] = [{"alert": m["alert"], "state": m["state"]} for m in message.members]
    return {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": dedup,
        "payload": {"summary": n.summary[:SUMMARY_LIMIT], "source": f"{message.namespace}/{n.service or message.policy}",
                    "severity": SEVERITIES.get(n.severity, "info"), "timestamp": timestamps.to_status(n.fired_at),
                    "component": n.service or None, "group": message.namespace, "class": n.rule or n.group or None,
                    "custom_details": details},
        "client": "CapLiquify Operator",
    }
