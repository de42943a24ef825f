"""Hostile endpoints for tests: a loopback server that answers every request with one canned
reply, at once or dripped a byte at a time (the slow-loris of an HTTP client)."""

from __future__ import annotations

import socket
import threading
import time


def http_reply(body: bytes, status: str = "200 OK", content_type: str = "application/json") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body


class HostileServer:
    def __init__(self, reply: bytes, drip_seconds: float = 0.0) -> None:
        self.reply, self.drip = reply, drip_seconds
        self.requests = 0
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(64)
        self.port = self._socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            try:
                connection.settimeout(5)
                connection.recv(65536)
                self.requests += 1
                if not self.drip:
                    connection.sendall(self.reply)
                    return
                head, _, rest = self.reply.partition(b"\r\n\r\n")
                connection.sendall(head + b"\r\n\r\n")
                for byte in rest:
                    connection.sendall(bytes([byte]))
                    time.sleep(self.drip)
            except OSError:
                pass

    def close(self) -> None:
        self._socket.close()
