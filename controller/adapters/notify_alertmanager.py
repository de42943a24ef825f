"""Alertmanager v2 API: POST /api/v2/alerts. Alertmanager groups, dedupes and routes further."""

from __future__ import annotations

import datetime
import typing

from controller.adapters import notify
from controller.api import alertpolicy as api
from controller.core import timestamps


class AlertmanagerNotifier:
    def __init__(self, poster: notify.HttpPoster) -> None:
        self.poster = poster

    async def send(self, channel: api.Channel, message: notify.Message, secret: notify.SecretReader) -> None:
        assert channel.alertmanager is not None
        n = message.notification
        # A firing alert stands until it is repeated or resolved; resolved ends now.
        ends = message.sent_at if message.resolved else message.sent_at + message.valid_for
        if n.group:  # a group's notification: each of its alerts, as Alertmanager takes alerts one by one
            # Each alert's own line of the group's text (one per alert, in the order listed).
            lines = [line.removeprefix("- ") for line in n.summary.split("\n")[1:]]
            alerts = [self._alert(member["labels"], member["annotations"], lines[index] if index < len(lines)
                                  else n.summary, n.fired_at, message.sent_at if member["state"] == "resolved" else ends)
                      for index, member in enumerate(message.members)]
        else:
            # The rule's labels too (Alertmanager routes, groups and inhibits on them); the
            # operator's own win, as in the alert's label set.
            labels = {**message.labels, "alertname": n.rule, "service": n.service, "namespace": message.namespace,
                      "severity": n.severity, "alertpolicy": message.policy}
            alerts = [self._alert(labels, message.annotations, n.summary, n.fired_at, ends)]
        await self.poster.post(channel.alertmanager.url.rstrip("/") + "/api/v2/alerts", json_body=alerts)

    @staticmethod
    def _alert(labels: typing.Mapping[str, str], annotations: typing.Mapping[str, str], summary: str,
               starts: datetime.datetime, ends: datetime.datetime) -> dict[str, typing.Any]:
        return {"labels": dict(labels), "annotations": {**annotations, "summary": summary},
                "startsAt": timestamps.to_status(starts), "endsAt": timestamps.to_status(ends)}
