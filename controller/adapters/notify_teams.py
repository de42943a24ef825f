"""Microsoft Teams through a workflow webhook ("When a Teams webhook request is received"):
a message holding one Adaptive Card (https://adaptivecards.io/schemas/adaptive-card.json).
The workflow's URL carries its own signature, so it is a secret."""

from __future__ import annotations

import typing

from controller.adapters import notify
from controller.api import alertpolicy as api
from controller.core import timestamps

COLORS = {"critical": "attention", "warning": "warning", "info": "accent"}


class TeamsNotifier:
    def __init__(self, poster: notify.HttpPoster) -> None:
        self.poster = poster

    async def send(self, channel: api.Channel, message: notify.Message, secret: notify.SecretReader) -> None:
        assert channel.teams is not None
        url = (await secret(channel.teams.webhookSecretRef)).strip()
        await self.poster.post(url, json_body=card(message), headers={"Idempotency-Key": message.notification.key},
                               url_is_secret=True)


def card(message: notify.Message) -> dict[str, typing.Any]:
    n = message.notification
    lines = n.summary.split("\n")
    title = ("Resolved: " if message.resolved else f"{n.severity.capitalize()}: ") + lines[0]
    body: list[dict[str, typing.Any]] = [
        {"type": "TextBlock", "text": title, "weight": "Bolder", "size": "Medium", "wrap": True,
         "color": "good" if message.resolved else COLORS.get(n.severity, "default")},
        *({"type": "TextBlock", "text": line, "wrap": True, "spacing": "None"} for line in lines[1:]),
        {"type": "FactSet", "facts": [{"title": "Policy", "value": f"{message.namespace}/{message.policy}"},
                                      {"title": "Kind", "value": n.kind},
                                      {"title": "Since", "value": timestamps.to_status(n.fired_at)},
                                      *({"title": k, "value": v} for k, v in sorted(message.labels.items()))]},
    ]
    if message.annotations.get("runbook_url", "").startswith(("https://", "http://")):
        actions = [{"type": "Action.OpenUrl", "title": "Runbook", "url": message.annotations["runbook_url"]}]
    else:
        actions = []
    content = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
               "version": "1.4", "body": body, **({"actions": actions} if actions else {})}
    return {"type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
                             "content": content}]}
