"""Loopback stand-ins the egress tests share: a site answering one text, and a resolver that
answers names from a table (the cluster's DNS, a public record) without asking any DNS server."""

from __future__ import annotations

import contextlib
import socket
import typing

from aiohttp import abc as aiohttp_abc
from aiohttp import web

from controller.adapters import egress
from controller.core import egress as policy


@contextlib.contextmanager
def cluster(*trusted: str) -> typing.Iterator[None]:
    """Loopback stands in for the cluster's networks (the only addresses a test may reach):
    egress's namespace rule on for the block, off after it."""
    egress.configure_cluster(policy.cluster_networks(["127.0.0.0/8"], trusted=trusted))
    try:
        yield
    finally:
        egress.configure_cluster(policy.ClusterNetworks())


@contextlib.asynccontextmanager
async def text_site(text: str) -> typing.AsyncIterator[int]:
    """An HTTP server on 127.0.0.1 answering `text` at /; yields its port."""
    app = web.Application()

    async def answer(_: web.Request) -> web.Response:
        return web.Response(text=text)

    app.router.add_get("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    finally:
        await runner.cleanup()


class Names(aiohttp_abc.AbstractResolver):
    """Answers each name from `names` (a name not there: itself, as for a literal)."""

    def __init__(self, names: typing.Mapping[str, str]) -> None:
        self.names = names

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET) -> list[aiohttp_abc.ResolveResult]:
        return [{"hostname": host, "host": self.names.get(host, host), "port": port, "family": socket.AF_INET,
                 "proto": 0, "flags": socket.AI_NUMERICHOST | socket.AI_NUMERICSERV}]

    async def close(self) -> None:
        return None
