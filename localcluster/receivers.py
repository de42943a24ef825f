"""Local notification receivers (tests, demo): an HTTP receiver (Slack, SMS gateway, webhooks)
and an SMTP server (aiosmtpd), both on loopback, recording what they get."""

from __future__ import annotations

import dataclasses
import email
import email.message
import http.server
import threading
import time
import typing

from aiosmtpd import controller as smtp_controller

from localcluster import cluster as cluster_module


@dataclasses.dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int
    at: float = dataclasses.field(default_factory=time.monotonic)  # when it arrived


class _QuietServer(http.server.ThreadingHTTPServer):
    """A client that goes away mid-answer (the soak's reset faults, a cancelled request) is the
    client's business: not a traceback on the test's or soak's console. Anything else is printed."""

    def handle_error(self, request: typing.Any, client_address: typing.Any) -> None:
        import sys

        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
            return
        super().handle_error(request, client_address)


class HttpReceiver:
    """Records every POST; `fail[path] = n` answers 503 to the next n requests to that path."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.fail: dict[str, int] = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = 503 if receiver.fail.get(self.path, 0) > 0 else 200
                if status == 503:
                    receiver.fail[self.path] -= 1
                receiver.requests.append(Request(self.path, dict(self.headers), body, status))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"try later")

            def log_message(self, *_: object) -> None:
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def delivered(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path and r.answered == 200]

    def stop(self) -> None:
        self.server.shutdown()


class SmtpReceiver:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []
        receiver = self

        class Handler:
            async def handle_DATA(self, server: typing.Any, session: typing.Any, envelope: typing.Any) -> str:  # noqa: N802
                receiver.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        self.port = cluster_module.free_port()
        self.controller = smtp_controller.Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
