"""Email over SMTP (smtplib, blocking: run in a worker thread, with a timeout).

The Secret holds YAML: host, port (25), from, username, password, starttls (false). The
Message-ID derives from the idempotency key, so a re-sent notification is recognisably the same.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.message
import email.utils
import hashlib
import re
import smtplib
import socket
import threading
import typing

from controller.adapters import notify
from controller.adapters import shares
from controller.core import bounded_yaml
from controller.api import alertpolicy as api
from controller.core import egress as egress_policy

HOST = re.compile(r"[A-Za-z0-9.:\[\]_-]{1,253}")
TIMEOUT_SECONDS = 10  # each SMTP operation
DEADLINE_SECONDS = 30.0  # the whole conversation: a watchdog closes the socket after it
CONCURRENCY = 4  # SMTP sends in flight at once, in a pool of their own
POOL = concurrent.futures.ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="smtp")


class EmailNotifier:
    def __init__(self, allow_loopback: bool, fence: typing.Callable[[str], None] = lambda _: None) -> None:
        self.allow_loopback = allow_loopback
        self.fence = fence  # raises unless this replica may act: called right before the mail goes
        # One namespace (else one SMTP server) holds at most one of the pool's threads: a
        # namespace of servers that drip to the 30 s watchdog cannot hold everyone's mail.
        self._slots = shares.FairShares(CONCURRENCY, 1)

    async def send(self, channel: api.Channel, message: notify.Message, secret: notify.SecretReader) -> None:
        assert channel.email is not None
        settings = _settings(await secret(channel.email.smtpSecretRef))
        mail = build_message(settings["from"], list(channel.email.to), message)
        async with self._slots.hold(shares.key_for(f"smtp://{settings['host']}:{settings['port']}")):
            await asyncio.get_running_loop().run_in_executor(POOL, self._deliver, settings, mail)

    def _deliver(self, settings: dict[str, typing.Any], mail: email.message.EmailMessage) -> None:
        host, port = settings["host"], settings["port"]
        try:
            addresses = sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})
        except OSError:
            raise notify.DeliveryError(f"cannot resolve SMTP host {host}") from None
        refused = [r for a in addresses if (r := egress_policy.refused_address(a, self.allow_loopback))]
        if refused or not addresses:
            raise notify.DeliveryError(f"refused by the egress policy: {refused[0] if refused else 'no address'}")
        smtp = smtplib.SMTP(timeout=TIMEOUT_SECONDS)
        watchdog = threading.Timer(DEADLINE_SECONDS, smtp.close)  # unblocks a server that drips
        watchdog.start()
        try:
            # Connect to the address that was checked (no second lookup to rebind), and keep
            # the name for STARTTLS certificate verification.
            smtp.connect(addresses[0], port)
            setattr(smtp, "_host", host)  # noqa: B010 -- smtplib verifies STARTTLS against _host
            if settings["starttls"]:
                smtp.starttls()
            if settings.get("username"):
                smtp.login(str(settings["username"]), str(settings.get("password", "")))
            # Fenced here, after connecting and logging in (up to the 30 s deadline): the last
            # moment before the message leaves. Not caught below: the delivery stays Pending.
            self.fence("email")
            smtp.send_message(mail)
            smtp.quit()
        except smtplib.SMTPResponseException as error:
            raise notify.DeliveryError(f"SMTP {error.smtp_code} from {host}") from None
        except (smtplib.SMTPException, OSError, ValueError) as error:
            late = " (deadline reached)" if not watchdog.is_alive() else ""
            raise notify.DeliveryError(f"SMTP {host}:{port}: {type(error).__name__}{late}") from None
        finally:
            watchdog.cancel()
            smtp.close()


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
        # Bounded: an alias bomb in a Secret must not expand when a value is used as text.
        settings = bounded_yaml.load(text, bounded_yaml.SECRET_ALIAS_NODES)
    except bounded_yaml.YamlRefused:
        settings = None
    if not isinstance(settings, dict) or not settings.get("host") or not settings.get("from"):
        raise notify.DeliveryError("SMTP secret must be YAML with host and from (port, username, password, starttls)")
    host, sender, port = settings["host"], settings["from"], settings.get("port", 25)
    if not isinstance(host, str) or not HOST.fullmatch(host):
        raise notify.DeliveryError("SMTP secret: host must be a host name or address")
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        raise notify.DeliveryError("SMTP secret: port must be a number from 1 to 65535")
    if not isinstance(sender, str) or any(c in sender for c in "\r\n"):
        raise notify.DeliveryError("SMTP secret: from must be one address on one line")
    return {**settings, "port": port, "starttls": settings.get("starttls") is True}
