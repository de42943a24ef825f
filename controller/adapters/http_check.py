"""Operator-side HTTP health checks (asyncio, aiohttp) behind the egress guard."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from controller.adapters import budget
from controller.adapters import egress
from controller.adapters import shares
from controller.api import monitoredservice as api
from controller.core import egress as egress_policy
from controller.core import health

BODY_LIMIT = budget.HEALTH_BODY  # how far into a body `bodyContains` looks


EgressRefused = egress.EgressRefused  # one type, wherever a refusal is caught


class HttpChecker:
    def __init__(self, allow_loopback: bool, concurrency: int = 256) -> None:
        self.allow_loopback = allow_loopback
        self._concurrency = concurrency
        # One namespace (the guard says whose check this is; else one host) holds at most its
        # share of the connections (adapters/shares.py).
        self.shares = shares.FairShares(concurrency, min(concurrency, budget.HEALTH_PER_NAMESPACE))
        self._session: aiohttp.ClientSession | None = None

    async def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = egress.guarded_connector(self.allow_loopback, limit=self._concurrency)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    def literal_refusal(self, url: str) -> str | None:
        """Scheme, port and literal addresses, judged before any lookup (core/egress.py)."""
        return egress_policy.refused_url(url, self.allow_loopback)

    async def probe(self, check: api.HttpCheck) -> health.ProbeResult:
        refusal = self.literal_refusal(check.url)
        if refusal is not None:
            raise EgressRefused(refusal)
        session = await self._client()
        async with self.shares.hold(shares.key_for(check.url)):
            return await self._probe(session, check)

    async def _probe(self, session: aiohttp.ClientSession, check: api.HttpCheck) -> health.ProbeResult:
        started = time.perf_counter()  # once it has its place: a wait for one is not latency
        try:
            async with session.get(check.url, timeout=aiohttp.ClientTimeout(total=check.timeoutSeconds),
                                   allow_redirects=False) as response:
                # Searched as it streams: 256 probes in flight never hold 256 bodies.
                needle = check.bodyContains.encode() if check.bodyContains is not None else None
                found = await egress.contains(response.content, needle, BODY_LIMIT, budget.HEALTH_READ)
                ok, message = health.judge_response(response.status, (check.bodyContains or "") if found else "", check)
        except EgressRefused:
            raise
        except aiohttp.ClientConnectorError as error:
            refusal = egress.refusal_of(error)
            if refusal is not None:
                raise EgressRefused(refusal) from None
            cause = error.os_error
            return health.ProbeResult(False, None, f"cannot connect: {cause.strerror or type(cause).__name__}")
        except asyncio.TimeoutError:
            return health.ProbeResult(False, None, f"no answer within {check.timeoutSeconds}s")
        except aiohttp.ClientError as error:
            return health.ProbeResult(False, None, f"{type(error).__name__}")
        return health.ProbeResult(ok, (time.perf_counter() - started) * 1000, message)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
