"""Bounded worker pools, one per kind of blocking call, so that no kind can starve another.

asyncio's default pool has min(32, cores + 4) threads shared by everything: six on two
cores. A Railway endpoint that drips its answer, or a slow scale patch, would then hold the
threads that status writes and Events need. Each kind gets its own pool instead; every
call in them has its own deadline (the adapters' timeouts).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import typing

T = typing.TypeVar("T")

# The API server: status writes, Events, Secret reads, lists (most traffic, short calls).
KUBE_THREADS = 32
KUBE = concurrent.futures.ThreadPoolExecutor(KUBE_THREADS, thread_name_prefix="kube")
# Actuation: scale patches, rollbacks, probe applies (rare). Railway and every other HTTP
# peer go through aiohttp (adapters/egress.py), with a connection limit per purpose instead.
ACTUATION = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="actuate")
# The Lease alone (with a client and connections of its own): a renewal never waits for a
# thread or a connection behind status writes, lists or a tenant's slow call. Two threads: a
# call stuck until its request timeout still leaves one for the next attempt.
LEASE = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="lease")
# Alert evaluation (pure CPU: one policy's rules x services, seconds at thousands of
# services): off the loop, which keeps its slices of the GIL. One thread: rounds are sequential.
ALERTING = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="alerting")


async def run(pool: concurrent.futures.Executor, call: typing.Callable[..., T], *args: typing.Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(pool, functools.partial(call, *args))
