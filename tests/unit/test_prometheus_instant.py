"""A round's Prometheus queries are evaluated at one instant (issue 21): each carries the same
`time`, the round's, so what a round compares is of one moment. Against a real socket on
loopback: the form Prometheus receives is what is checked."""

from __future__ import annotations

import asyncio
import time
import typing

from aiohttp import web

from controller.adapters import egress
from controller.adapters import metric_source
from controller.adapters import source_prometheus
from controller.core import targets

ANSWER = {"status": "success", "data": {"resultType": "vector", "result": []}}


def test_every_query_of_a_round_is_evaluated_at_the_rounds_one_instant() -> None:
    received: list[dict[str, str]] = []

    async def query(request: web.Request) -> web.Response:
        received.append(dict(await request.post()))
        await asyncio.sleep(0.05 * len(received))  # answers arrive at different times
        return web.json_response(ANSWER)

    async def scenario() -> None:
        app = web.Application()
        app.router.add_post("/api/v1/query", query)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        client = egress.GuardedClient(allow_loopback=True)
        source = source_prometheus.BatchedPrometheus(client, _no_secret, "2m", lambda _: None)
        try:
            url = f"http://127.0.0.1:{port}"
            requests = [metric_source.Request(("ScalingPolicy", ns, "p"), (metric, None),
                                              targets.Target(ns, "Deployment", "web", prometheus_url=url))
                        for ns in ("a", "b") for metric in ("cpu", "memory", "latencyP95", "errorRate")]
            started = time.time()
            await source.read(requests)
            first = list(received)
            received.clear()
            await source.read(requests[:2])
            ended = time.time()
        finally:
            await client.close()
            await runner.cleanup()
        assert len({r["query"] for r in first}) == len(first) >= 4, "several distinct queries in the round"
        instants = {r.get("time") for r in first}
        assert len(instants) == 1 and None not in instants, first
        at = float(instants.pop() or "nan")
        assert started - 0.001 <= at <= ended, "the round's own instant (Unix seconds)"
        later = {r.get("time") for r in received}
        assert len(later) == 1 and float(later.pop() or "nan") > at, "the next round: its own, later instant"

    asyncio.run(scenario())


async def _no_secret(namespace: str, name: str, key: str) -> typing.Optional[str]:
    return None
