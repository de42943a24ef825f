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

    def __init__(self, cert: str | None, key: str | None, mode: str = "starttls") -> None:
        self.credentials: list[tuple[bytes, bytes]] = []
        self.messages: list[bytes] = []
        server = self
        context: ssl.SSLContext | None = None
        if cert and key:
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
        # "starttls": STARTTLS required, AUTH only after it; "implicit": TLS from the first byte;
        # "plain": no TLS at all, AUTH offered in the clear (what a Secret must never be sent to).
        options: dict[str, typing.Any] = {
            "starttls": {"tls_context": context, "require_starttls": True, "auth_require_tls": True},
            "implicit": {"ssl_context": context, "auth_require_tls": False},
            "plain": {"auth_require_tls": False},
        }[mode]
        self.controller = smtp_controller.Controller(
            Handler(), hostname="127.0.0.1", port=self.port, authenticator=authenticator, **options)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def _send(port: int, tls: str = "starttls: true\n") -> str | None:
    """One notification through EmailNotifier.send to localhost:port; the DeliveryError, if any."""
    channel = alertpolicy.Channel.model_validate(
        {"name": "mail", "email": {"smtpSecretRef": {"name": "smtp", "key": "config"}, "to": ["oncall@example.com"]}})
    note = alerting.Notification("k1", "mail", "firing", "HighCPU", "web", "critical", "web CPU 95%", NOW)
    message = notify.Message(note, "tenant-b", "page", NOW, datetime.timedelta(minutes=5))

    async def secret(_: typing.Any) -> str:
        return (f"host: localhost\nport: {port}\nfrom: ops@example.com\nusername: {USERNAME}\n"
                f"password: {PASSWORD}\n{tls}")

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


def _ca_yaml(cert: str) -> str:
    pem = open(cert).read().strip().replace("\n", "\n  ")
    return f"ca: |\n  {pem}\n"


def test_a_private_ca_in_the_secret_is_trusted_alone(tmp_path: typing.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`ca` in the Secret: a server signed by it is trusted though the system's CAs do not know
    it, and a certificate the system trusts is not (only the private CA counts)."""
    private, public = _certificate(tmp_path, "localhost"), _untrusted_localhost(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", public[0])  # "the system" trusts the other certificate
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)

    server = _Server(*private)
    try:
        assert _send(server.port, "starttls: true\n" + _ca_yaml(private[0])) is None
        assert server.credentials == [(USERNAME.encode(), PASSWORD.encode())] and len(server.messages) == 1
    finally:
        server.stop()

    server = _Server(*public)
    try:
        error = _send(server.port, "starttls: true\n" + _ca_yaml(private[0]))
    finally:
        server.stop()
    assert error is not None and "certificate does not verify" in error and server.credentials == []


def test_implicit_tls_verifies_the_secrets_host_name(tmp_path: typing.Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """`tls: true` (port 465 style): verified against the Secret's host name though the
    connection goes to the address the egress policy checked."""
    good, wrong_name = _certificate(tmp_path, "localhost"), _certificate(tmp_path, "attacker.invalid")
    trusted = tmp_path / "trusted.pem"
    trusted.write_text(open(good[0]).read() + open(wrong_name[0]).read())
    monkeypatch.setenv("SSL_CERT_FILE", str(trusted))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    for (cert, key), delivered in ((good, True), (wrong_name, False)):
        server = _Server(cert, key, "implicit")
        try:
            error = _send(server.port, "tls: true\n")
        finally:
            server.stop()
        if delivered:
            assert error is None and server.credentials == [(USERNAME.encode(), PASSWORD.encode())]
        else:
            assert error is not None and "certificate does not verify for localhost" in error
            assert server.credentials == [] and server.messages == []


@pytest.mark.parametrize("tls", ["", "starttls: false\n", "starttls: \"true\"\n"])
def test_credentials_are_never_sent_in_the_clear(tls: str) -> None:
    """A Secret with a username and no TLS is refused before anything is dialled: the server,
    which would accept AUTH in the clear, sees neither the password nor the mail."""
    server = _Server(None, None, "plain")
    try:
        error = _send(server.port, tls)
    finally:
        server.stop()
    assert error is not None and "only over TLS" in error, error
    assert PASSWORD not in error and server.credentials == [] and server.messages == []


@pytest.mark.parametrize("extra,message", [
    ("starttls: true\ntls: true\n", "exclusive"),
    ("starttls: true\nca: not a certificate\n", "ca must be PEM"),
    ("starttls: true\nca: [1, 2]\n", "ca must be PEM"),
])
def test_tls_settings_that_cannot_be_right_are_refused(extra: str, message: str) -> None:
    with pytest.raises(notify.DeliveryError, match=message):
        notify_email._settings(f"host: localhost\nfrom: ops@example.com\nusername: u\npassword: p\n{extra}")
