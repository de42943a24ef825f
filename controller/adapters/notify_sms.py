"""SMS through an HTTP gateway; the Secret holds YAML `url` and `token`."""

from __future__ import annotations

from controller.adapters import notify
from controller.core import bounded_yaml
from controller.api import alertpolicy as api

SMS_LIMIT = 160


class SmsNotifier:
    def __init__(self, poster: notify.HttpPoster) -> None:
        self.poster = poster

    async def send(self, channel: api.Channel, message: notify.Message, secret: notify.SecretReader) -> None:
        assert channel.sms is not None
        settings = _settings(await secret(channel.sms.gatewaySecretRef))
        n = message.notification
        headers = {"Idempotency-Key": n.key}
        if settings.get("token"):
            headers["Authorization"] = f"Bearer {settings['token']}"
        text = f"[{n.severity.upper()}] {n.summary}"[:SMS_LIMIT]
        await self.poster.post(settings["url"], json_body={"to": list(channel.sms.to), "message": text, "key": n.key},
                               headers=headers, url_is_secret=True)


def _settings(text: str) -> dict:
    try:
        # Bounded: an alias bomb in a Secret must not expand when a value is used as text.
        settings = bounded_yaml.load(text, bounded_yaml.SECRET_ALIAS_NODES)
    except bounded_yaml.YamlRefused:
        settings = None
    if not isinstance(settings, dict) or not isinstance(settings.get("url"), str):
        raise notify.DeliveryError("SMS gateway secret must be YAML with url (and token)")
    return settings
