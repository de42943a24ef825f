"""The one way out: every outbound HTTP request goes through a guarded aiohttp session.

The policy itself is pure (`core/egress.py`); this file applies it where it matters — on
the address the connection is actually made to (the resolver refuses after DNS, so there is
no window for a name to rebind between check and connect) — and gives every request a total
deadline, no redirects, no proxy from the environment, and a body size limit.
"""

from __future__ import annotations

import socket
import types
import typing

import aiohttp
from aiohttp import abc as aiohttp_abc

from controller.core import egress


class EgressRefused(OSError):
    """The destination is refused by the egress policy (an OSError, so aiohttp's connector
    carries it through as the connection error)."""


class GuardedResolver(aiohttp_abc.AbstractResolver):
    """Resolves like aiohttp does, then refuses forbidden addresses (no DNS-rebinding gap)."""

    def __init__(self, allow_loopback: bool) -> None:
        self._inner = aiohttp.ThreadedResolver()
        self._allow_loopback = allow_loopback

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[aiohttp_abc.ResolveResult]:
        answers = await self._inner.resolve(host, port, family)
        refused = [egress.refused_address(a["host"], self._allow_loopback) for a in answers]
        if any(refused):
            raise EgressRefused(next(r for r in refused if r))
        return answers

    async def close(self) -> None:
        await self._inner.close()


def refusal_of(error: BaseException) -> str | None:
    """The egress refusal behind an aiohttp connection error, if that is what it is."""
    cause = getattr(error, "os_error", error)
    for candidate in (cause, getattr(cause, "__cause__", None)):
        if isinstance(candidate, EgressRefused):
            return str(candidate.args[0] if candidate.args else candidate)
    return None


async def read_limited(content: aiohttp.StreamReader, limit: int) -> bytes:
    """Up to `limit` bytes of a body, to its end (one `read` returns only what has arrived)."""
    chunks, size = [], 0
    while size < limit:
        chunk = await content.read(limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


RATE_HEADERS = ("Retry-After", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")


class Response(typing.NamedTuple):
    status: int
    body: bytes
    truncated: bool
    # Only the headers a caller may act on (rate limits), each capped: a hostile server's
    # headers are not kept whole.
    headers: typing.Mapping[str, str] = types.MappingProxyType({})


class GuardedClient:
    """One pooled session for one purpose (checks, notifications, metrics), its own limit."""

    def __init__(self, allow_loopback: bool, limit: int = 64) -> None:
        self.allow_loopback = allow_loopback
        self._limit = limit
        self._session: aiohttp.ClientSession | None = None

    def refused(self, url: str) -> str | None:
        return egress.refused_url(url, self.allow_loopback)

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, resolver=GuardedResolver(self.allow_loopback),
                                             ttl_dns_cache=30)
            self._session = aiohttp.ClientSession(connector=connector, trust_env=False)
        return self._session

    async def request(self, method: str, url: str, *, deadline: float, body_limit: int,
                      **kwargs: typing.Any) -> Response:
        """One request within `deadline` seconds in total (connect, send, every byte back);
        raises EgressRefused, asyncio.TimeoutError or aiohttp.ClientError."""
        refusal = self.refused(url)
        if refusal is not None:
            raise EgressRefused(refusal)
        try:
            async with self.session().request(method, url, allow_redirects=False,
                                              timeout=aiohttp.ClientTimeout(total=deadline), **kwargs) as response:
                body = await read_limited(response.content, body_limit + 1)
                kept = {name: response.headers[name][:64] for name in RATE_HEADERS if name in response.headers}
                return Response(response.status, body[:body_limit], len(body) > body_limit, kept)
        except aiohttp.ClientConnectorError as error:
            refusal = refusal_of(error)
            if refusal is not None:
                raise EgressRefused(refusal) from None
            raise

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
