"""Local health endpoints for the benchmark: one aiohttp process answering on many loopback
ports (a separate process, so its CPU is not counted as the operator's)."""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web


async def serve(ports: list[int]) -> None:
    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/health", health)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in ports:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.health_server")
    parser.add_argument("ports", type=int, nargs="+")
    asyncio.run(serve(parser.parse_args().ports))


if __name__ == "__main__":
    main()
