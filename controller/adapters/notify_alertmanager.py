"""Alertmanager v2 API: POST /api/v2/alerts. Alertmanager groups, dedupes and routes further."""

from __future__ import annotations

from controller.adapters import notify
from controller.api import alertpolicy as api


class AlertmanagerNotifier:
    def __init__(self, poster: notify.HttpPoster) -> None:
        self.poster = poster

    async def send(self, channel: api.Channel, message: notify.Message, secret: notify.SecretReader) -> None:
        assert channel.alertmanager is not None
        n = message.notification
        # A firing alert stands until it is repeated or resolved; resolved ends now.
        ends = message.sent_at if message.resolved else message.sent_at + message.valid_for
        alert = {
            # The rule's labels too (Alertmanager routes, groups and inhibits on them); the
            # operator's own win, as in the alert's label set.
            "labels": {**message.labels, "alertname": n.rule, "service": n.service, "namespace": message.namespace,
                       "severity": n.severity, "alertpolicy": message.policy},
            "annotations": {**message.annotations, "summary": n.summary},
            "startsAt": notify.stamp(n.fired_at),
            "endsAt": notify.stamp(ends),
        }
        await self.poster.post(channel.alertmanager.url.rstrip("/") + "/api/v2/alerts", json_body=[alert])
