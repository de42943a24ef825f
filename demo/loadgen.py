"""A bounded load generator for the demo app (loopback only): N requests/s for S seconds."""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp


async def generate(url: str, rate: float, seconds: float, stop: asyncio.Event | None = None) -> dict[str, int]:
    """Sends `rate` requests per second to `url` for `seconds` (or until `stop`); returns counts."""
    if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError("the load generator only targets loopback addresses")
    counts = {"ok": 0, "failed": 0, "error": 0}
    interval = 1.0 / rate if rate > 0 else None
    deadline = time.monotonic() + seconds
    pending: set[asyncio.Task[None]] = set()
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:

        async def one() -> None:
            try:
                async with session.get(url) as response:
                    await response.read()
                    counts["ok" if response.status < 500 else "failed"] += 1
            except (aiohttp.ClientError, asyncio.TimeoutError):
                counts["error"] += 1

        next_at = time.monotonic()
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            if interval is None:
                await asyncio.sleep(0.2)
                continue
            task = asyncio.create_task(one())
            pending.add(task)
            task.add_done_callback(pending.discard)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if pending:
            await asyncio.wait(pending, timeout=5)
    return counts


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="demo.loadgen")
    parser.add_argument("--url", default="http://127.0.0.1:8089/")
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    args = parser.parse_args(argv)
    print(asyncio.run(generate(args.url, args.rate, args.seconds)))


if __name__ == "__main__":
    main()
