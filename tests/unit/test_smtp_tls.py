"""SMTP STARTTLS verifies the server before any credential goes (adapters/notify_email.py).

A loopback SMTP server (aiosmtpd) offers STARTTLS and AUTH (only after TLS) and records every
credential and message it is given. Certificates are throwaway ones made by the openssl
command; SSL_CERT_FILE stands in for the system's CAs, so a certificate is "trusted" here by
naming it there.
"""

from __future__ import annotations

import asyncio
import datetime
import shutil
import socket
import ssl
import subprocess
import typing

import pytest
from aiosmtpd import controller as smtp_controller
from aiosmtpd import smtp as aiosmtpd_smtp

from controller.adapters import notify
from controller.adapters import notify_email
from controller.adapters import shares
from controller.api import alertpolicy
from controller.core import alerting

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for certificates")

NOW = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
USERNAME, PASSWORD = "alerts-user@example.com", "s3cret-smtp-password"


def _certificate(directory: typing.Any, name: str) -> tuple[str, str]:
    cert, key = str(directory / f"{name}.pem"), str(directory / f"{name}.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class _Server:
    """aiosmtpd on 127.0.0.1 with STARTTLS required and AUTH only after it."""

    def __init__(self, cert: str, key: str) -> None:
        self.credentials: list[tuple[bytes, bytes]] = []
        self.messages: list[bytes] = []
        server = self
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        class Handler:
            async def handle_DATA(self, _: typing.Any, __: typing.Any, envelope: typing.Any) -> str:  # noqa: N802
                server.messages.append(envelope.content)
                return "250 OK"

        def authenticator(_: typing.Any, __: typing.Any, ___: typing.Any, ____: str,
                          data: typing.Any) -> aiosmtpd_smtp.AuthResult:
            server.credentials.append((data.login, data.password))
            return aiosmtpd_smtp.AuthResult(success=True)

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.controller = smtp_controller.Controller(
            Handler(), hostname="127.0.0.1", port=self.port, tls_context=context, require_starttls=True,
            auth_require_tls=True, authenticator=authenticator)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def _send(port: int) -> str | None:
    """One notification through EmailNotifier.send to localhost:port; the DeliveryError, if any."""
    channel = alertpolicy.Channel.model_validate(
        {"name": "mail", "email": {"smtpSecretRef": {"name": "smtp", "key": "config"}, "to": ["oncall@example.com"]}})
    note = alerting.Notification("k1", "mail", "firing", "HighCPU", "web", "critical", "web CPU 95%", NOW)
    message = notify.Message(note, "tenant-b", "page", NOW, datetime.timedelta(minutes=5))

    async def secret(_: typing.Any) -> str:
        return (f"host: localhost\nport: {port}\nfrom: ops@example.com\nusername: {USERNAME}\n"
                f"password: {PASSWORD}\nstarttls: true\n")

    async def scenario() -> str | None:
        with shares.tenant("tenant-b"):
            try:
                await notify_email.EmailNotifier(True).send(channel, message, secret)
            except notify.DeliveryError as error:
                return str(error)
        return None

    return asyncio.run(scenario())


def test_starttls_gives_credentials_only_to_a_server_whose_certificate_verifies_for_the_secrets_host(
        tmp_path: typing.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    good, wrong_name = _certificate(tmp_path, "localhost"), _certificate(tmp_path, "attacker.invalid")
    trusted = tmp_path / "trusted.pem"
    trusted.write_text(open(good[0]).read() + open(wrong_name[0]).read())  # both trusted: only the name differs
    monkeypatch.setenv("SSL_CERT_FILE", str(trusted))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    # The control: a server whose certificate verifies for "localhost" gets the login and the mail.
    server = _Server(*good)
    try:
        assert _send(server.port) is None
        assert server.credentials == [(USERNAME.encode(), PASSWORD.encode())] and len(server.messages) == 1
    finally:
        server.stop()

    # A trusted certificate for another name, then a self-signed one for a name nobody trusts.
    for cert, key in (wrong_name, _untrusted_localhost(tmp_path)):
        server = _Server(cert, key)
        try:
            error = _send(server.port)
        finally:
            server.stop()
        assert server.credentials == [] and server.messages == [], "credentials went to an unverified server"
        assert error is not None and "certificate does not verify for localhost" in error, error
        assert USERNAME not in error and PASSWORD not in error and "s3cret" not in error


def _untrusted_localhost(tmp_path: typing.Any) -> tuple[str, str]:
    """A certificate for localhost that no CA in SSL_CERT_FILE signed (same name, another key)."""
    directory = tmp_path / "untrusted"
    directory.mkdir()
    return _certificate(directory, "localhost")
