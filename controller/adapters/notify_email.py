"""Email over SMTP (smtplib, blocking: run in a worker thread, with a timeout).

The Secret holds YAML: host, port (25), from, username, password, starttls (false). The
Message-ID derives from the idempotency key, so a re-sent notification is recognisably the same.
"""

from __future__ import annotations

import asyncio
import email.message
import email.utils
import hashlib
import smtplib
import socket
import typing

import yaml

from controller.adapters import notify
from controller.api import alertpolicy as api
from controller.core import health

TIMEOUT_SECONDS = 10


class EmailNotifier:
    def __init__(self, allow_loopback: bool) -> None:
        self.allow_loopback = allow_loopback

    async def send(self, channel: api.Channel, message: notify.Message, secret: notify.SecretReader) -> None:
        assert channel.email is not None
        settings = _settings(await secret(channel.email.smtpSecretRef))
        mail = build_message(settings["from"], list(channel.email.to), message)
        await asyncio.to_thread(self._deliver, settings, mail)

    def _deliver(self, settings: dict[str, typing.Any], mail: email.message.EmailMessage) -> None:
        host, port = str(settings["host"]), int(settings.get("port", 25))
        try:
            addresses = {info[4][0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
        except OSError:
            raise notify.DeliveryError(f"cannot resolve SMTP host {host}") from None
        refused = [r for a in addresses if (r := health.refused_address(a, self.allow_loopback))]
        if refused:
            raise notify.DeliveryError(f"refused by the egress policy: {refused[0]}")
        try:
            with smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS) as smtp:
                if settings.get("starttls"):
                    smtp.starttls()
                if settings.get("username"):
                    smtp.login(str(settings["username"]), str(settings.get("password", "")))
                smtp.send_message(mail)
        except smtplib.SMTPResponseException as error:
            raise notify.DeliveryError(f"SMTP {error.smtp_code} from {host}") from None
        except (smtplib.SMTPException, OSError) as error:
            raise notify.DeliveryError(f"SMTP {host}:{port}: {type(error).__name__}") from None


def build_message(sender: str, to: list[str], message: notify.Message) -> email.message.EmailMessage:
    n = message.notification
    mail = email.message.EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Subject"] = f"[{n.severity.upper()}] {n.summary}"
    mail["Date"] = email.utils.format_datetime(message.sent_at)
    mail["Message-ID"] = f"<{hashlib.sha256(n.key.encode()).hexdigest()[:32]}@capliquify.ops>"
    mail["X-CapLiquify-Key"] = n.key
    mail.set_content(
        f"{n.summary}\n\nrule: {n.rule}\nservice: {message.namespace}/{n.service}\nseverity: {n.severity}\n"
        f"kind: {n.kind}\nfiring since: {notify.stamp(n.fired_at)}\npolicy: {message.namespace}/{message.policy}\n")
    return mail


def _settings(text: str) -> dict[str, typing.Any]:
    try:
        settings = yaml.safe_load(text)
    except yaml.YAMLError:
        settings = None
    if not isinstance(settings, dict) or not settings.get("host") or not settings.get("from"):
        raise notify.DeliveryError("SMTP secret must be YAML with host and from (port, username, password, starttls)")
    return settings
