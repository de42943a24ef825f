"""Generic JSON webhook, optionally signed: X-CapLiquify-Signature: sha256=<hex HMAC of the body>."""

from __future__ import annotations

import hashlib
import hmac
import json

from controller.adapters import notify
from controller.api import alertpolicy as api


class WebhookNotifier:
    def __init__(self, poster: notify.HttpPoster) -> None:
        self.poster = poster

    async def send(self, channel: api.Channel, message: notify.Message, secret: notify.SecretReader) -> None:
        assert channel.webhook is not None
        data = json.dumps(notify.body(message), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.notification.key}
        if channel.webhook.hmacSecretRef is not None:
            key = (await secret(channel.webhook.hmacSecretRef)).encode()
            headers["X-CapLiquify-Signature"] = "sha256=" + hmac.new(key, data, hashlib.sha256).hexdigest()
        await self.poster.post(channel.webhook.url, data=data, headers=headers)
