"""Fair shares of a shared client: one tenant holds at most its share, the others proceed.

Every outbound client the operator shares between tenants (Prometheus, Railway, health
checks, notifications) has a fixed number of connections, sized from the memory budget
(adapters/budget.py). A plain semaphore hands them out first come, first served: one
namespace with 32 hanging queries took all 8 Prometheus connections and every other
namespace waited behind it, deadline after deadline. `FairShares` gives out the same
places with two rules instead:

- one key (a namespace; failing that, a destination host) holds up to `per_key` places,
  and more only while `reserve` places (as many as a share) stay free for whoever comes
  next: one tenant alone may use most of the pool, never all of it;
- a place that comes free goes to the waiting key that holds the fewest (ties: the one
  waiting longest), never simply to the next in line.

So one slow tenant can never make a newcomer wait: at least `reserve` places stay free
beside it. A tenant arriving while several slow ones have filled the pool waits for the
first place to come free (at most one of the holders' deadlines), and then goes ahead of
everyone with more.

Which tenant a request belongs to travels in a context variable (`TENANT`), set by the loop
that works for that tenant (each asyncio task has its own copy), so the clients below it
need no new parameter: a request without a tenant is charged to its destination host.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import itertools
import typing

import yarl

TENANT: contextvars.ContextVar[str | None] = contextvars.ContextVar("capliquify_tenant", default=None)


def key_for(url: str) -> tuple[str, str]:
    """The share a request to `url` is charged to: its tenant if one is set, else its host."""
    tenant = TENANT.get()
    if tenant is not None:
        return ("namespace", tenant)
    try:
        # yarl's reading, the one aiohttp dials and the egress policy judges (urlsplit reads
        # some hosts otherwise: a share must be charged to the host actually reached).
        parsed = yarl.URL(url)
        return ("host", f"{parsed.host}:{parsed.port}")
    except (ValueError, TypeError):
        return ("host", "")


@contextlib.contextmanager
def tenant(namespace: str | None) -> typing.Iterator[None]:
    """`with shares.tenant(ns):` — requests made inside are charged to namespace `ns`."""
    token = TENANT.set(namespace)
    try:
        yield
    finally:
        TENANT.reset(token)


class FairShares:
    """At most `total` holders at once; a key past `per_key` only while `reserve` (by default
    a share) stay free (see the module)."""

    def __init__(self, total: int, per_key: int, reserve: int | None = None) -> None:
        if total < 1 or not 1 <= per_key <= total:
            raise ValueError(f"a fair share needs 1 <= per_key <= total (got {per_key}, {total})")
        self.total, self.per_key = total, per_key
        self.reserve = min(per_key if reserve is None else reserve, total)
        self.busy = 0
        self.held: collections.Counter[typing.Hashable] = collections.Counter()
        self._waiting: dict[typing.Hashable, collections.deque[tuple[int, asyncio.Future[None]]]] = {}
        self._order = itertools.count()

    def waiting(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    @contextlib.asynccontextmanager
    async def hold(self, key: typing.Hashable) -> typing.AsyncIterator[None]:
        await self.acquire(key)
        try:
            yield
        finally:
            self.release(key)

    async def acquire(self, key: typing.Hashable) -> None:
        """A place for `key`; every acquire is paired with one `release(key)`."""
        # Invariant (kept by _wake): nobody waits who may take a place. So a key that may take
        # one goes at once: it passes nobody.
        if self.may_take(key):
            self._take(key)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, collections.deque()).append((next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(key)  # granted, then cancelled before it ran: give it back
            else:
                self._forget(key, future)
            raise

    def may_take(self, key: typing.Hashable) -> bool:
        if self.busy >= self.total:
            return False
        if self.held[key] < self.per_key:
            return True
        return self.busy + 1 <= self.total - self.reserve  # past its share: the reserve stays free

    def _take(self, key: typing.Hashable) -> None:
        self.busy += 1
        self.held[key] += 1

    def release(self, key: typing.Hashable) -> None:
        self.busy -= 1
        self.held[key] -= 1
        if self.held[key] <= 0:
            del self.held[key]
        self._wake()

    def _forget(self, key: typing.Hashable, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(key)
        if queue is None:
            return
        for entry in queue:
            if entry[1] is future:
                queue.remove(entry)
                break
        if not queue:
            del self._waiting[key]

    def _wake(self) -> None:
        while self.busy < self.total:
            eligible = [(self.held[k], q[0][0], k) for k, q in self._waiting.items() if self.may_take(k)]
            if not eligible:
                return
            _, _, key = min(eligible, key=lambda e: (e[0], e[1]))
            _, future = self._waiting[key].popleft()
            if not self._waiting[key]:
                del self._waiting[key]
            if future.done():  # cancelled while waiting
                continue
            self._take(key)  # the place is the waiter's from now: nobody can slip in between
            future.set_result(None)
