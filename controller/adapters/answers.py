"""A large answer is parsed in a process of its own, one at a time, fair between tenants.

json.loads holds the interpreter lock for the whole parse, so a thread does not take it off
the event loop: a 3 MiB answer parsed in a worker thread still stopped the loop for 0.16 s,
and a 16 MiB one for 1.6 s (every tenant's round, status write and health check waited).
In a process of its own the loop keeps running, and the parsed document (up to 25x the
answer's bytes, adapters/budget.py) lives and dies there: what comes back is the few series
the round can use.

The process is `controller.adapters.answer_worker`, started with the same interpreter and
spoken to over a pipe (not multiprocessing: that re-imports the parent's __main__ in the
child, and the operator's main is a program that must not start twice). One process, one
answer in it at a time (its memory is in the budget), handed out by `shares.FairShares` so
that one tenant's queue of large answers waits behind itself only. A parse whose caller gave
up (the round's deadline) still holds its place until the process has answered, so the pipe
never carries a stale answer and abandoned work never piles up.
"""

from __future__ import annotations

import asyncio
import os
import pathlib
import pickle
import sys
import typing

from controller.adapters import answer_worker
from controller.adapters import budget
from controller.adapters import shares

T = typing.TypeVar("T")
# The worker imports this package from where the parent did, whatever its working directory.
_WORKER_ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(
    [str(pathlib.Path(__file__).resolve().parents[2]), *filter(None, [os.environ.get("PYTHONPATH")])])}


class ParserFailed(Exception):
    """The parser process ended, or the call raised there (its type name is the text)."""


def echo(value: T) -> T:
    """A call the worker allows, for tests of the lane itself."""
    return value


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def call(self, payload: bytes) -> typing.Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(answer_worker.HEADER.pack(len(payload)))
        self.process.stdin.write(payload)  # not joined to its header: that would be one more copy
        await self.process.stdin.drain()
        header = await self.process.stdout.readexactly(answer_worker.HEADER.size)
        (size,) = answer_worker.HEADER.unpack(header)
        kind, value = pickle.loads(await self.process.stdout.readexactly(size))  # noqa: S301 (our own child)
        if kind != "ok":
            raise ParserFailed(str(value))
        return value

    def kill(self) -> None:
        if self.process.returncode is None:
            self.process.kill()


class ParseLane:
    def __init__(self, parsers: int = budget.PROMETHEUS_PARSERS) -> None:
        self.parsers = parsers
        self._loop: asyncio.AbstractEventLoop | None = None
        self.shares = shares.FairShares(parsers, 1)
        self._idle: list[_Worker] = []

    def _bind(self) -> None:
        """Subprocess pipes belong to one event loop: a lane used from another (a test's next
        asyncio.run) starts afresh."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self.close()
            self._loop = loop
            self.shares = shares.FairShares(self.parsers, 1)

    async def _worker(self) -> _Worker:
        if self._idle:
            return self._idle.pop()
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "controller.adapters.answer_worker",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=_WORKER_ENV)
        return _Worker(process)

    async def run(self, key: typing.Hashable, call: typing.Callable[..., T], *args: typing.Any) -> T:
        """`call(*args)` in the parser process (`call` must be in answer_worker.CALLS);
        raises ParserFailed if it raised there or the process ended (a new one starts for
        the next answer)."""
        self._bind()
        await self.shares.acquire(key)
        try:  # pickled only now: a copy of every waiting answer once sat in this queue
            payload = pickle.dumps((call.__module__, call.__name__, args), protocol=pickle.HIGHEST_PROTOCOL)
        except BaseException:
            self.shares.release(key)
            raise
        exchange = asyncio.ensure_future(self._exchange(key, payload))
        del payload
        # Shielded: a caller cancelled by its deadline leaves the exchange to finish (and to
        # give back its place and its worker) rather than leave an answer in the pipe.
        return typing.cast(T, await asyncio.shield(exchange))

    async def _exchange(self, key: typing.Hashable, payload: bytes) -> typing.Any:
        worker = None
        try:
            worker = await self._worker()
            value = await worker.call(payload)
            self._idle.append(worker)
            return value
        except ParserFailed:
            if worker is not None:
                self._idle.append(worker)  # the call failed; the process is fine
            raise
        except (OSError, EOFError, asyncio.IncompleteReadError, pickle.UnpicklingError):
            if worker is not None:
                worker.kill()
            raise ParserFailed("the parser process ended") from None
        except BaseException:
            if worker is not None:
                worker.kill()  # mid-call (shutdown): its answer would be the next caller's
            raise
        finally:
            self.shares.release(key)

    def close(self) -> None:
        for worker in self._idle:
            worker.kill()
        self._idle.clear()

    async def aclose(self) -> None:
        """Ends the idle workers and waits for them (their pipes closed within the loop).
        Workers started on another loop (a closed one: a test's earlier asyncio.run) cannot be
        awaited here: they are killed, as a new loop's first use would."""
        if self._loop is not asyncio.get_running_loop():
            self.close()
            self._loop = None
            return
        workers, self._idle = self._idle, []
        for worker in workers:
            worker.kill()
            await worker.process.wait()


LANE = ParseLane()  # the process' one parser lane (its memory is counted once in the budget)
