"""Slack incoming webhook (the URL is a secret)."""

from __future__ import annotations

from controller.adapters import notify
from controller.api import alertpolicy as api

ICONS = {"critical": ":rotating_light:", "warning": ":warning:", "info": ":information_source:"}


class SlackNotifier:
    def __init__(self, poster: notify.HttpPoster) -> None:
        self.poster = poster

    async def send(self, channel: api.Channel, message: notify.Message, secret: notify.SecretReader) -> None:
        assert channel.slack is not None
        url = (await secret(channel.slack.webhookSecretRef)).strip()
        n = message.notification
        icon = ":white_check_mark:" if message.resolved else ICONS.get(n.severity, "")
        text = f"{icon} *{n.severity}* {n.summary} ({message.namespace}/{message.policy}, {n.kind})"
        await self.poster.post(url, json_body={"text": text}, headers={"Idempotency-Key": n.key}, url_is_secret=True)
