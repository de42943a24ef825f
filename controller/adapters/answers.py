"""A large answer is parsed in a process of its own, one at a time, fair between tenants.

json.loads holds the interpreter lock for the whole parse, so a thread does not take it off
the event loop: a 3 MiB answer parsed in a worker thread still stopped the loop for 0.16 s,
and a 16 MiB one for 1.6 s (every tenant's round, status write and health check waited).
In a process of its own the loop keeps running, and the parsed document (up to 25x the
answer's bytes, adapters/budget.py) lives and dies there: what comes back is the few series
the round can use.

One parser process, one answer in it at a time (its memory is in the budget), handed out
by `shares.FairShares` so that one tenant's queue of large answers waits behind itself
only. A parse whose caller gave up (the round's deadline) still holds its place until the
process is done with it, so abandoned answers never pile up in the process' queue.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import typing

from controller.adapters import budget
from controller.adapters import shares

T = typing.TypeVar("T")


class ParseLane:
    def __init__(self, parsers: int = budget.PROMETHEUS_PARSERS) -> None:
        self.parsers = parsers
        self.shares = shares.FairShares(parsers, 1)
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None

    def _executor(self) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn: the operator has threads, and a forked child of a threaded process may
            # inherit a lock held by a thread that does not exist there.
            self._pool = concurrent.futures.ProcessPoolExecutor(
                self.parsers, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    async def run(self, key: typing.Hashable, call: typing.Callable[..., T], *args: typing.Any) -> T:
        """`call(*args)` in the parser process; raises what it raises, or BrokenProcessPool
        if the process died (it is started again for the next answer)."""
        await self.shares.acquire(key)
        loop = asyncio.get_running_loop()
        try:
            future = self._executor().submit(call, *args)
        except BaseException:
            self.shares.release(key)
            raise

        def done(_: concurrent.futures.Future[T]) -> None:
            try:
                loop.call_soon_threadsafe(self.shares.release, key)
            except RuntimeError:
                pass  # the loop is closed: nobody waits for the place any more

        future.add_done_callback(done)
        try:
            return await asyncio.wrap_future(future)
        except concurrent.futures.process.BrokenProcessPool:
            self.close()
            raise

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


LANE = ParseLane()  # the process' one parser lane (its memory is counted once in the budget)
