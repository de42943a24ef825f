"""Email over SMTP (smtplib, blocking: run in a worker thread, with a timeout).

The Secret holds YAML: host, port (25), from, username, password, starttls (false), tls
(false: implicit TLS, usually port 465) and ca (PEM: trust only this CA, for a private one;
default the system's CAs). Credentials go only over a verified TLS connection: a Secret with a
username and neither starttls nor tls is refused before anything is dialled. The Message-ID
derives from the idempotency key, so a re-sent notification is recognisably the same.
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
import ssl
import threading
import typing

from controller.adapters import egress
from controller.adapters import notify
from controller.adapters import shares
from controller.core import bounded_yaml
from controller.core import timestamps
from controller.api import alertpolicy as api

HOST = re.compile(r"[A-Za-z0-9.:\[\]_-]{1,253}")
TIMEOUT_SECONDS = 10  # each SMTP operation
DEADLINE_SECONDS = 30.0  # the whole conversation: a watchdog closes the socket after it
CONCURRENCY = 4  # SMTP sends in flight at once, in a pool of their own
REPLY_BYTES = 64 * 1024  # one SMTP reply, all its lines: smtplib holds a multi-line reply whole
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
        try:
            mail = build_message(settings["from"], list(channel.email.to), message)
        except (ValueError, UnicodeError):  # the email library's refusal of a header (an odd `from`)
            raise notify.DeliveryError("SMTP secret: from is not an address a mail header can carry") from None
        # The lookup first, on the loop: in the lookups' own pool, charged to the namespace and
        # bounded by their deadline (in the SMTP thread it ran before the watchdog, unbounded).
        addresses = await _addresses(settings["host"], settings["port"], self.allow_loopback)
        async with self._slots.hold(shares.key_for(f"smtp://{settings['host']}:{settings['port']}")):
            await asyncio.get_running_loop().run_in_executor(POOL, self._deliver, settings, mail, addresses)

    def _deliver(self, settings: dict[str, typing.Any], mail: email.message.EmailMessage,
                 addresses: list[tuple[str, int]] | None = None) -> None:
        """Blocking: one SMTP conversation. `addresses` are those `send` resolved and judged; a
        caller without them (a test) gets the same bounded lookup, on a loop of its own."""
        host, port = settings["host"], settings["port"]
        if addresses is None:
            addresses = asyncio.run(_addresses(host, port, self.allow_loopback))
        context = _tls_context(settings)
        smtp = _ImplicitTls(host, context) if settings["tls"] else _Smtp(timeout=TIMEOUT_SECONDS)
        watchdog = threading.Timer(DEADLINE_SECONDS, smtp.close)  # unblocks a server that drips
        watchdog.start()
        try:
            # Connect to the address that was checked (no second lookup to rebind), and keep
            # the name for STARTTLS certificate verification.
            smtp.connect(*addresses[0])  # its port: a Service's endpoint may serve on another (egress.py)
            setattr(smtp, "_host", host)  # noqa: B010 -- smtplib verifies STARTTLS against _host
            if settings["starttls"]:
                # Verified: the system's CAs (or the Secret's ca) and the Secret's host name
                # (without a context, smtplib verifies nothing and the password goes to whoever answers).
                smtp.starttls(context=context)
            if settings.get("username"):
                smtp.login(str(settings["username"]), str(settings.get("password", "")))
            # Fenced here, after connecting and logging in (up to the 30 s deadline): the last
            # moment before the message leaves. Not caught below: the delivery stays Pending.
            self.fence("email")
            smtp.send_message(mail)
            smtp.quit()
        except _ReplyTooLong:
            raise notify.DeliveryError(f"SMTP {host}:{port}: a reply longer than {REPLY_BYTES // 1024} KiB "
                                       "(nothing more was read)") from None
        except smtplib.SMTPResponseException as error:
            raise notify.DeliveryError(f"SMTP {error.smtp_code} from {host}") from None
        except ssl.SSLCertVerificationError:
            raise notify.DeliveryError(
                f"SMTP {host}:{port}: TLS refused: the server's certificate does not verify for {host} "
                "(nothing was sent)") from None
        except (smtplib.SMTPException, OSError, ValueError, AttributeError) as error:
            # AttributeError: smtplib reading from the socket the watchdog has just closed.
            late = " (deadline reached)" if not watchdog.is_alive() else ""
            if isinstance(error, AttributeError) and not late:
                raise
            raise notify.DeliveryError(f"SMTP {host}:{port}: {type(error).__name__}{late}") from None
        finally:
            watchdog.cancel()
            smtp.close()


class _ReplyTooLong(Exception):
    """The server's reply went past REPLY_BYTES."""


class _Capped:
    """The connection's reader as smtplib uses it (readline, close), counting what one reply
    has read: past REPLY_BYTES the reply is refused, not held (a `250-` line after another,
    endlessly, was buffered whole until the watchdog: hundreds of MiB a second on a fast link)."""

    def __init__(self, raw: typing.Any) -> None:
        self.raw, self.left = raw, REPLY_BYTES

    def readline(self, size: int = -1) -> bytes:
        line: bytes = self.raw.readline(size)
        self.left -= len(line)
        if self.left < 0:
            raise _ReplyTooLong()
        return line

    def close(self) -> None:
        self.raw.close()


class _BoundedReplies(smtplib.SMTP):
    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _Capped(self.sock.makefile("rb"))
        elif isinstance(self.file, _Capped):
            self.file.left = REPLY_BYTES  # each reply has the whole budget
        return super().getreply()


class _Smtp(_BoundedReplies):
    """Plain SMTP (STARTTLS when asked), every reply bounded."""


class _ImplicitTls(_BoundedReplies, smtplib.SMTP_SSL):
    """SMTP over TLS from the first byte, connected to a checked address but verified against
    the Secret's host name (SMTP_SSL would verify against whatever `connect` was given)."""

    def __init__(self, server_name: str, context: ssl.SSLContext) -> None:
        self.server_name = server_name
        super().__init__(timeout=TIMEOUT_SECONDS, context=context)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        raw = socket.create_connection((host, port), timeout, self.source_address)
        return self.context.wrap_socket(raw, server_hostname=self.server_name)


def _tls_context(settings: dict[str, typing.Any]) -> ssl.SSLContext:
    """The system's CAs, or only the Secret's `ca` (a private CA); names always checked."""
    if settings.get("ca") is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cadata=settings["ca"])
    except (ssl.SSLError, ValueError, TypeError):
        raise notify.DeliveryError("SMTP secret: ca must be PEM certificates (nothing was sent)") from None


async def _addresses(host: str, port: int, allow_loopback: bool) -> list[tuple[str, int]]:
    """The (address, port) of the SMTP host, each judged by the egress policy (one refused: all)."""
    try:
        answers = await egress.GuardedResolver(allow_loopback).resolve(host, port, socket.AF_UNSPEC)
    except egress.EgressRefused as refused:
        raise notify.DeliveryError(f"refused by the egress policy: {refused}") from None
    except OSError:
        raise notify.DeliveryError(f"cannot resolve SMTP host {host}") from None
    addresses = sorted({(answer["host"], answer["port"]) for answer in answers})
    if not addresses:
        raise notify.DeliveryError("refused by the egress policy: no address")
    return addresses


def build_message(sender: str, to: list[str], message: notify.Message) -> email.message.EmailMessage:
    n = message.notification
    mail = email.message.EmailMessage()
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    # One line: a header may not break (a summary written as a YAML block, or U+2028, made the
    # email library raise for every mail of its rule); the body keeps the summary whole.
    mail["Subject"] = f"[{n.severity.upper()}] {' '.join(n.summary.split())}"[:998]
    mail["Date"] = email.utils.format_datetime(message.sent_at)
    mail["Message-ID"] = f"<{hashlib.sha256(n.key.encode()).hexdigest()[:32]}@capliquify.ops>"
    mail["X-CapLiquify-Key"] = n.key
    mail.set_content(
        f"{n.summary}\n\nrule: {n.rule}\nservice: {message.namespace}/{n.service}\nseverity: {n.severity}\n"
        f"kind: {n.kind}\nfiring since: {timestamps.to_status(n.fired_at)}\npolicy: {message.namespace}/{message.policy}\n")
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
    if not isinstance(sender, str) or len(sender.splitlines()) != 1 or not sender.isprintable():
        raise notify.DeliveryError("SMTP secret: from must be one address on one line")
    starttls, tls = settings.get("starttls") is True, settings.get("tls") is True
    if settings.get("username") and not (starttls or tls):
        # Refused, not sent in the clear: AUTH over plain SMTP hands the password to anyone on
        # the path (and to a server that merely answers on the port).
        raise notify.DeliveryError("SMTP secret: a username and password go only over TLS: "
                                   "set starttls: true or tls: true (nothing was sent)")
    if starttls and tls:
        raise notify.DeliveryError("SMTP secret: starttls and tls are exclusive (tls is implicit TLS, port 465)")
    ca = settings.get("ca")
    if ca is not None and (not isinstance(ca, str) or "-----BEGIN CERTIFICATE-----" not in ca or len(ca) > 65536):
        raise notify.DeliveryError("SMTP secret: ca must be PEM certificates (at most 64 KiB)")
    return {**settings, "port": port, "starttls": starttls, "tls": tls}
