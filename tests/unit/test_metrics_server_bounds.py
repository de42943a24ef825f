"""/metrics holds a bounded number of connection threads, each with a read timeout and a
deadline (operator/metrics.py): clients that connect and never speak, or drip, cannot pile up
threads in the operator."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

import pytest

from controller.operator import metrics


def _threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith("Thread-") or "process_request" in t.name)


def _closed_by_server(connection: socket.socket, within: float) -> bool:
    connection.settimeout(within)
    try:
        return connection.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


@pytest.fixture()
def server(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setattr(metrics._QuietHandler, "timeout", 1.0)
    monkeypatch.setattr(metrics, "DEADLINE_SECONDS", 2.0)
    served = metrics.serve(0, address="127.0.0.1")
    yield served
    served.shutdown()
    served.server_close()


def test_silent_connections_hold_at_most_the_cap_and_are_cut_at_the_read_timeout(server) -> None:  # type: ignore[no-untyped-def]
    port = server.server_address[1]
    before = threading.active_count()
    silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(metrics.CONNECTIONS)]
    time.sleep(0.3)  # let the server accept them
    extra = [socket.create_connection(("127.0.0.1", port)) for _ in range(20)]
    # Past the cap: closed at once, no thread started for them.
    assert all(_closed_by_server(c, 0.5) for c in extra)
    assert threading.active_count() - before <= metrics.CONNECTIONS
    # The silent ones are cut at the read timeout, and a scrape is served again.
    assert all(_closed_by_server(c, 3.0) for c in silent)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read()
    assert b"capliquify_" in body
    for c in silent + extra:
        c.close()


def test_a_dripping_client_is_cut_at_the_connection_deadline(server) -> None:  # type: ignore[no-untyped-def]
    port = server.server_address[1]
    connection = socket.create_connection(("127.0.0.1", port))
    started = time.monotonic()
    cut = False
    connection.sendall(b"GET /metrics HTTP/1.1\r\n")
    while time.monotonic() - started < 6:
        try:
            connection.sendall(b"X")  # one byte of a header line, well inside each read's timeout
        except OSError:
            cut = True
            break
        if _closed_by_server(connection, 0.5):
            cut = True
            break
    connection.close()
    assert cut, "a dripping client kept its thread past the connection deadline"


def test_a_port_in_use_is_an_oserror_the_command_line_can_say() -> None:
    """The base class closes the server when its bind fails; that close must not raise an
    AttributeError in place of the OSError `capliquify run` turns into one line."""
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    try:
        for serve in (lambda port: metrics.serve(port, address="127.0.0.1"),
                      lambda port: metrics.serve_health(port, lambda: "standby", address="127.0.0.1")):
            with pytest.raises(OSError):
                serve(busy.getsockname()[1])
    finally:
        busy.close()
