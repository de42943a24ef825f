"""The notifier registry: one notifier per channel kind."""

from __future__ import annotations

from controller.adapters import notify
from controller.adapters import notify_alertmanager
from controller.adapters import notify_email
from controller.adapters import notify_opsgenie
from controller.adapters import notify_pagerduty
from controller.adapters import notify_slack
from controller.adapters import notify_sms
from controller.adapters import notify_teams
from controller.adapters import notify_webhook
from controller.api import alertpolicy as api


def registry(poster: notify.HttpPoster) -> dict[str, notify.Notifier]:
    return {
        api.ChannelKind.SLACK.value: notify_slack.SlackNotifier(poster),
        api.ChannelKind.EMAIL.value: notify_email.EmailNotifier(poster.allow_loopback, poster.fence),
        api.ChannelKind.SMS.value: notify_sms.SmsNotifier(poster),
        api.ChannelKind.WEBHOOK.value: notify_webhook.WebhookNotifier(poster),
        api.ChannelKind.ALERTMANAGER.value: notify_alertmanager.AlertmanagerNotifier(poster),
        api.ChannelKind.PAGERDUTY.value: notify_pagerduty.PagerDutyNotifier(poster),
        api.ChannelKind.OPSGENIE.value: notify_opsgenie.OpsgenieNotifier(poster),
        api.ChannelKind.TEAMS.value: notify_teams.TeamsNotifier(poster),
    }


def kind_of(channel: api.Channel) -> str:
    return next(kind.value for kind in api.ChannelKind if getattr(channel, kind.value) is not None)
