"""Opsgenie Alert API (https://docs.opsgenie.com/docs/alert-api): create while firing (a repeat
or escalation of an open alert is deduplicated by Opsgenie on its alias), close when
resolved. `Authorization: GenieKey <key>`; the key is a secret."""

from __future__ import annotations

import typing
import urllib.parse

from controller.adapters import notify
from controller.api import alertpolicy as api

PRIORITIES = {"critical": "P1", "warning": "P3", "info": "P5"}
# The documented limits: message 130 characters, alias 512, description 15,000; at most 20
# tags of 50 characters each; details keys 8,000 and values 8,000 characters in total.
MESSAGE, ALIAS, DESCRIPTION, TAGS, TAG = 130, 512, 15000, 20, 50


class OpsgenieNotifier:
    def __init__(self, poster: notify.HttpPoster) -> None:
        self.poster = poster

    async def send(self, channel: api.Channel, message: notify.Message, secret: notify.SecretReader) -> None:
        assert channel.opsgenie is not None
        key = (await secret(channel.opsgenie.apiKeySecretRef)).strip()
        headers = {"Authorization": f"GenieKey {key}", "Idempotency-Key": message.notification.key}
        url, body = request(channel.opsgenie.url, message)
        # The answer is never quoted in an error (url_is_secret): a receiver that echoes the
        # request would otherwise put the key in status.
        await self.poster.post(url, json_body=body, headers=headers, url_is_secret=True)


def request(base: str, message: notify.Message) -> tuple[str, dict[str, typing.Any]]:
    """The URL and body of this notification: a create, or a close of the same alias."""
    n = message.notification
    alias = notify.alert_key(n, ALIAS)
    root = base.rstrip("/") + "/v2/alerts"
    if message.resolved:
        quoted = urllib.parse.quote(alias, safe="")
        return f"{root}/{quoted}/close?identifierType=alias", {"source": "capliquify", "note": n.summary[:DESCRIPTION]}
    tags = [f"{k}:{v}"[:TAG] for k, v in sorted(message.labels.items())][:TAGS]
    details = {**{k: v[:1000] for k, v in message.labels.items()}, **{k: v[:1000] for k, v in message.annotations.items()}}
    return root, {"message": n.summary.split("\n")[0][:MESSAGE], "alias": alias, "description": n.summary[:DESCRIPTION],
                  "tags": tags, "details": details, "priority": PRIORITIES.get(n.severity, "P3"),
                  "source": f"capliquify {message.namespace}/{message.policy}", "entity": n.service or n.group}
