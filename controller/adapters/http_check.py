"""Operator-side HTTP health checks (asyncio, aiohttp) behind the egress guard."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import typing
import urllib.parse

import aiohttp
from aiohttp import abc as aiohttp_abc

from controller.api import monitoredservice as api
from controller.core import health

BODY_LIMIT = 64 * 1024


class EgressRefused(OSError):
    """The URL resolves to an address the egress policy refuses (an OSError, so aiohttp's
    connector carries it through as the connection error)."""


class GuardedResolver(aiohttp_abc.AbstractResolver):
    """Resolves like aiohttp does, then refuses forbidden addresses (no DNS-rebinding gap)."""

    def __init__(self, allow_loopback: bool) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allow_loopback = allow_loopback

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict[str, typing.Any]]:
        answers = await self._inner.resolve(host, port, family)
        refused = [health.refused_address(a["host"], self._allow_loopback) for a in answers]
        if any(refused):
            raise EgressRefused(next(r for r in refused if r))
        return answers

    async def close(self) -> None:
        await self._inner.close()


class HttpChecker:
    def __init__(self, allow_loopback: bool, concurrency: int = 256) -> None:
        self.allow_loopback = allow_loopback
        self._concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._concurrency, resolver=GuardedResolver(self.allow_loopback),
                                             ttl_dns_cache=30)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    def literal_refusal(self, url: str) -> str | None:
        host = urllib.parse.urlsplit(url).hostname or ""
        try:
            ipaddress.ip_address(host)
        except ValueError:
            return None  # a name: the resolver judges what it resolves to
        return health.refused_address(host, self.allow_loopback)

    async def probe(self, check: api.HttpCheck) -> health.ProbeResult:
        refusal = self.literal_refusal(check.url)
        if refusal is not None:
            raise EgressRefused(refusal)
        session = await self._client()
        started = time.perf_counter()
        try:
            async with session.get(check.url, timeout=aiohttp.ClientTimeout(total=check.timeoutSeconds),
                                   allow_redirects=False) as response:
                body = (await response.content.read(BODY_LIMIT)).decode(errors="replace")
                ok, message = health.judge_response(response.status, body, check)
        except EgressRefused:
            raise
        except aiohttp.ClientConnectorError as error:
            cause = error.os_error
            if isinstance(cause, EgressRefused) or isinstance(cause.__cause__, EgressRefused):
                raise EgressRefused(str(cause.args[0] if cause.args else cause)) from None
            return health.ProbeResult(False, None, f"cannot connect: {cause.strerror or type(cause).__name__}")
        except asyncio.TimeoutError:
            return health.ProbeResult(False, None, f"no answer within {check.timeoutSeconds}s")
        except aiohttp.ClientError as error:
            return health.ProbeResult(False, None, f"{type(error).__name__}")
        return health.ProbeResult(ok, (time.perf_counter() - started) * 1000, message)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
