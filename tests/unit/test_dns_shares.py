"""Name lookups in a pool of their own, in fair shares per namespace (adapters/egress.Lookups).

getaddrinfo blocks a thread until the C library gives up and cannot be cancelled; these tests
stand in a DNS that never answers for tenant A's names (a getaddrinfo that waits) and check
that A holds at most its share of lookup threads, never the loop's default executor, that its
callers give up at the lookup deadline, and that tenant B's lookups (and checks) go on. Every
connection goes to loopback.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
import threading
import time
import typing

import pytest
from aiohttp import web

from controller.adapters import egress
from controller.adapters import http_check
from controller.adapters import notify
from controller.adapters import notify_email
from controller.adapters import shares
from controller.api import alertpolicy
from controller.api import monitoredservice
from controller.core import alerting

SLOW = ".slow.tenant-a.test"


class _Dns:
    """socket.getaddrinfo as the lookups see it: tenant A's names hang until `release`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = threading.Event()
        self.hanging = 0
        self.most_hanging = 0
        self.threads: set[str] = set()
        self._lock = threading.Lock()
        real = socket.getaddrinfo

        def getaddrinfo(host: typing.Any, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
            with self._lock:
                self.threads.add(threading.current_thread().name)
            if isinstance(host, str) and host.rstrip(".").endswith(SLOW):
                with self._lock:
                    self.hanging += 1
                    self.most_hanging = max(self.most_hanging, self.hanging)
                try:
                    self.release.wait(20)
                finally:
                    with self._lock:
                        self.hanging -= 1
                raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


async def _resolve(namespace: str, host: str) -> typing.Any:
    with shares.tenant(namespace):
        return await egress.GuardedResolver(True).resolve(host, 0, socket.AF_INET)


def test_one_namespaces_hanging_lookups_hold_its_share_of_threads_and_never_the_default_executor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    dns = _Dns(monkeypatch)

    async def scenario() -> tuple[float, list[typing.Any]]:
        hostile = [asyncio.create_task(_resolve("tenant-a", f"h{i}{SLOW}")) for i in range(40)]
        await asyncio.sleep(0.3)
        started = time.monotonic()
        answers = await asyncio.wait_for(_resolve("tenant-b", "localhost"), 5)
        took = time.monotonic() - started
        dns.release.set()
        await asyncio.gather(*hostile, return_exceptions=True)
        return took, answers

    try:
        took, answers = asyncio.run(scenario())
    finally:
        dns.release.set()
    assert answers and all(a["host"] in ("127.0.0.1", "::1") for a in answers)
    assert took < 1.0, f"tenant B's lookup waited {took:.1f} s behind tenant A's"
    assert dns.most_hanging <= egress.LOOKUP_SHARE, \
        f"tenant A's hanging lookups held {dns.most_hanging} threads (its share: {egress.LOOKUP_SHARE})"
    assert dns.threads and all(name.startswith("lookup") for name in dns.threads), \
        f"lookups ran outside their own pool: {sorted(dns.threads)}"


def test_a_lookup_that_never_answers_fails_at_its_deadline_and_keeps_its_place_until_its_thread_returns(
        monkeypatch: pytest.MonkeyPatch) -> None:
    dns = _Dns(monkeypatch)
    monkeypatch.setattr(egress, "LOOKUP_DEADLINE_SECONDS", 0.5, raising=False)

    async def scenario() -> tuple[float, list[typing.Any], int, int]:
        started = time.monotonic()
        outcomes = await asyncio.wait_for(asyncio.gather(
            *(_resolve("tenant-a", f"h{i}{SLOW}") for i in range(6)), return_exceptions=True), 3)
        took = time.monotonic() - started
        fair = egress.lookups().shares
        held = fair.busy  # the threads still hang: their places are still taken
        dns.release.set()
        for _ in range(100):
            if not fair.busy:
                break
            await asyncio.sleep(0.05)
        return took, outcomes, held, fair.busy

    try:
        took, outcomes, held, after = asyncio.run(scenario())
    finally:
        dns.release.set()
    assert took < 2.0, f"the lookups were given up after {took:.1f} s (deadline 0.5 s)"
    assert all(isinstance(o, socket.gaierror) and "within 0.5s" in str(o) for o in outcomes), outcomes
    assert held == egress.LOOKUP_SHARE and after == 0


def test_a_namespace_never_waits_on_another_namespaces_lookup_of_the_same_name(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiohttp shares one lookup among every caller of a name: tenant A, its share full of
    hanging lookups, checks B's own host name; B's check of it must not wait on A's turn."""
    dns = _Dns(monkeypatch)

    async def scenario() -> typing.Any:
        app = web.Application()

        async def healthy(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        app.router.add_get("/healthz", healthy)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        checker = http_check.HttpChecker(True)

        async def probe(namespace: str, url: str, timeout: int) -> typing.Any:
            check = monitoredservice.HttpCheck.model_validate({"url": url, "timeoutSeconds": timeout})
            with shares.tenant(namespace):
                return await checker.probe(check)

        try:
            # Enough to fill A's share, and the loop's default executor (where lookups ran before).
            hostile = [asyncio.create_task(probe("tenant-a", f"http://h{i}{SLOW}/", 5))
                       for i in range(max(egress.LOOKUP_SHARE, min(32, (os.cpu_count() or 1) + 4)) + 2)]
            await asyncio.sleep(0.3)
            riding = asyncio.create_task(probe("tenant-a", f"http://localhost:{port}/healthz", 5))
            await asyncio.sleep(0.1)
            result = await probe("tenant-b", f"http://localhost:{port}/healthz", 2)
            dns.release.set()
            await asyncio.gather(riding, *hostile, return_exceptions=True)
            return result
        finally:
            dns.release.set()
            await checker.close()
            await runner.cleanup()

    try:
        result = asyncio.run(scenario())
    finally:
        dns.release.set()
    assert result.ok, f"tenant B's check waited on tenant A's lookup of the same name: {result.message}"


def test_an_smtp_host_whose_dns_never_answers_fails_at_the_lookup_deadline_in_the_lookup_pool(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The SMTP lookup ran in the SMTP thread before its 30 s watchdog started: unbounded, and
    holding one of the four SMTP threads. Now it is a lookup like any other."""
    dns = _Dns(monkeypatch)
    monkeypatch.setattr(egress, "LOOKUP_DEADLINE_SECONDS", 0.5, raising=False)
    now = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
    channel = alertpolicy.Channel.model_validate(
        {"name": "mail", "email": {"smtpSecretRef": {"name": "smtp", "key": "config"}, "to": ["oncall@example.com"]}})
    note = alerting.Notification("k1", "mail", "firing", "HighCPU", "web", "critical", "web CPU 95%", now)
    message = notify.Message(note, "tenant-a", "page", now, datetime.timedelta(minutes=5))

    async def secret(_: typing.Any) -> str:
        return f"host: mx{SLOW}\nport: 25\nfrom: ops@example.com\n"

    async def scenario() -> tuple[float, str]:
        started = time.monotonic()
        with shares.tenant("tenant-a"):
            try:
                await asyncio.wait_for(notify_email.EmailNotifier(True).send(channel, message, secret), 3)
            except notify.DeliveryError as error:
                return time.monotonic() - started, str(error)
        return time.monotonic() - started, "delivered"

    try:
        took, outcome = asyncio.run(scenario())
    finally:
        dns.release.set()
    assert outcome == f"cannot resolve SMTP host mx{SLOW}" and took < 2.0, (took, outcome)
    assert all(name.startswith("lookup") for name in dns.threads), sorted(dns.threads)
