"""The Lease: one replica leads and acts; the others keep their view warm and wait.

A standby runs the watches and the in-memory view (so a takeover does not start from
nothing) but writes nothing: the acting loops start only once this replica holds the Lease.

Renewal runs on its own schedule and nothing else runs inside it: acting starts as a task
of its own (a first read that hangs on one tenant's Prometheus delays that start, never the
next renewal), and Lease calls have a pool and a client of their own (status writes queued
on the API pool cannot hold a renewal back).

Fencing: every side effect asks at the call. Kubernetes writes pass `fence()` (the on-write
hook of every Kubernetes adapter); Railway calls and notification sends pass `fence_send()`
immediately before the request leaves, after any Secret read or rate-limit wait. Both refuse
once `renew_deadline` has passed without a renewal, before the Lease can expire for anyone else.

A leader that loses the Lease stops acting at once (the acting tasks are cancelled) and
stays on as a standby, watches and view warm, free to lead again later. It sends itself
SIGTERM only when the process is unhealthy: its acting tasks did not stop when told to.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import socket
import time
import typing
import uuid

import kubernetes
import urllib3

from controller.adapters import kubernetes_lease
from controller.core import election
from controller.operator import metrics
from controller.operator import pools

logger = logging.getLogger(__name__)

NotLeader = election.NotLeader  # the operator layer's name for it, kept for its callers
StartActing = typing.Callable[[], typing.Coroutine[typing.Any, typing.Any, None]]
# Returns whether every acting task stopped; False means the process is unhealthy.
StopActing = typing.Callable[[], typing.Awaitable[bool]]
# A Lease call that failed is one failed attempt, whatever failed: the client's urllib3 raises
# MaxRetryError (no OSError) when the API server drops connections mid-TLS (issue 26's soak).
CALL_FAILED = (asyncio.TimeoutError, kubernetes.client.ApiException, OSError, urllib3.exceptions.HTTPError)
# Test-only, off unless set: a broken fence. The replica takes itself for the leader whether or
# not it holds the Lease, so a standby acts (and writes, and sends) from its start: the soak
# (bench/soak.py) shows its invariants catch that on every run, not only when a woken leader
# happens to write before standing down. Never set it in a deployment.
BREAK_FENCE = os.environ.get("CAPLIQUIFY_TEST_BREAK_FENCE") == "1"


async def _nothing_to_stop() -> bool:
    return True


class Elector:
    def __init__(self, store: kubernetes_lease.LeaseStore | None, timing: election.Timing,
                 on_started_leading: StartActing | None = None,
                 identity: str | None = None, clock: typing.Callable[[], float] = time.monotonic,
                 on_stopped_leading: StopActing = _nothing_to_stop,
                 sleep: typing.Callable[[float], typing.Awaitable[None]] = asyncio.sleep,
                 pool: concurrent.futures.Executor = pools.LEASE) -> None:
        self.store, self.timing, self.clock, self._sleep, self._pool = store, timing, clock, sleep, pool
        self.identity = identity or f"{os.environ.get('HOSTNAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        self._on_started_leading = on_started_leading
        self._on_stopped_leading = on_stopped_leading
        self._seen: election.Observation | None = None
        self._renewed_at: float | None = None
        self._start: asyncio.Task[None] | None = None  # the acting start of the current term
        self.acting = False  # this replica's acting loops run (it leads, or is about to)
        self.terms = 0  # how many times this process has started leading
        self._longest_gap = 0.0  # between two renewals in this term: how close it came to its deadline

    def bind(self, on_started_leading: StartActing, on_stopped_leading: StopActing) -> None:
        """The kopf layer's start and stop of the acting loops (built after the elector)."""
        self._on_started_leading, self._on_stopped_leading = on_started_leading, on_stopped_leading

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def leading(self) -> bool:
        if self.store is None or BREAK_FENCE:
            return True  # --leader-elect=false: a single replica always acts
        return election.leading(self._renewed_at, self.clock(), self.timing)

    def fence(self, verb: str) -> None:
        """The on-write hook: counts the write, and refuses it unless this replica leads."""
        if not self.leading():
            metrics.FENCED_WRITES.inc()
            raise NotLeader(f"not the leader: {verb} refused")
        metrics.count_write(verb)

    def fence_send(self, what: str) -> None:
        """The hook Railway and the notifiers call immediately before a request leaves."""
        if not self.leading():
            metrics.FENCED_WRITES.inc()
            raise NotLeader(f"not the leader: {what} refused")

    async def run(self) -> None:
        if BREAK_FENCE:
            logger.error("CAPLIQUIFY_TEST_BREAK_FENCE is set: the fence lets every write and send through "
                         "(a test of the soak's invariants; never in a deployment)")
        if self.store is None:
            self.acting = True
            metrics.LEADER.set(1)
            assert self._on_started_leading is not None, "bind() the acting loops first"
            await self._on_started_leading()
            return
        logger.info("leader election as %s on Lease %s/%s", self.identity, self.store.namespace, self.store.name)
        while True:
            await self._attempt()
            if self.leading() and not self.acting:
                self._begin()
            elif self.acting and not self.leading():
                await self._stand_down()
            await self._sleep(self.timing.retry_period)

    def _begin(self) -> None:
        assert self._on_started_leading is not None, "bind() the acting loops first"
        self.acting = True
        self.terms += 1
        self._longest_gap = 0.0
        metrics.LEADER.set(1)
        metrics.LEASE_RENEWAL_GAP.set(0)
        # A task of its own: whatever the first reads wait for, the next renewal does not.
        self._start = asyncio.create_task(self._on_started_leading(), name="start-acting")
        self._start.add_done_callback(_log_failure)

    async def _stand_down(self) -> None:
        """Lost the Lease: stop acting at once (the fence already refuses), stay a standby."""
        logger.error("lost the Lease (no renewal within %ss): stopping acting, staying on as a standby",
                     self.timing.renew_deadline)
        self.acting = False
        metrics.LEADER.set(0)
        start, self._start = self._start, None
        bound = self.timing.renew_deadline
        if start is not None and not start.done():
            start.cancel()
            await asyncio.wait({start}, timeout=bound)
        try:
            stopped = start is None or start.done()
            stopped = await asyncio.wait_for(self._on_stopped_leading(), bound) and stopped
        except (asyncio.TimeoutError, Exception):
            logger.exception("stopping the acting loops failed")
            stopped = False
        if not stopped:
            # Tasks that outlive their cancellation would act on as a standby: only a restart
            # ends them. The fence refuses their writes meanwhile.
            logger.error("acting did not stop within %ss: unhealthy, SIGTERM to itself", bound)
            os.kill(os.getpid(), signal.SIGTERM)

    async def _attempt(self) -> None:
        assert self.store is not None
        try:
            current = await asyncio.wait_for(pools.run(self._pool, self.store.read), self.timing.retry_period * 2)
        except CALL_FAILED as error:
            logger.warning("reading the Lease failed: %s", type(error).__name__)
            return
        now = self.clock()
        step = election.next_step(self.identity, self._seen, current, now, self.timing)
        self._seen = election.observe(self._seen, current, now)
        if step.action == "wait":
            if current is not None and current.holder != self.identity:
                self._renewed_at = None  # someone else holds it: stop at once
            return
        started = self.clock()
        try:
            await asyncio.wait_for(pools.run(self._pool, self.store.write, self.identity, step, current,
                                             self.timing.lease_duration), self.timing.retry_period * 2)
        except kubernetes_lease.Conflict:
            return  # someone else moved first; read again next time
        except CALL_FAILED as error:
            logger.warning("%s of the Lease failed: %s", step.action, type(error).__name__)
            return
        # The renewal counts from before it was sent: the deadline is never overestimated.
        if step.action == "renew" and self.acting and self._renewed_at is not None:
            self._longest_gap = max(self._longest_gap, started - self._renewed_at)
            metrics.LEASE_RENEWAL_GAP.set(self._longest_gap)
        self._renewed_at = started
        if step.action != "renew" or not self.acting:
            logger.info("became the leader (%s)", step.action)

    async def release(self) -> None:
        """On a clean shutdown the Lease is handed back for an immediate takeover if this replica
        still holds it, past its renew deadline too: a leader starved of CPU when told to stop
        had stopped acting already, and keeping the Lease to its expiry only made the next
        leader wait (16 s once in the demo). Nobody else can hold a Lease the API says is ours."""
        if self.store is None:
            return
        try:
            current = await pools.run(self._pool, self.store.read)
            if current is not None and current.holder == self.identity:
                await pools.run(self._pool, self.store.release, self.identity, current)
                logger.info("released the Lease")
        except Exception as error:  # it expires by itself
            logger.warning("releasing the Lease failed: %s", type(error).__name__)
        self._renewed_at = None


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        # Holding the Lease without acting would keep every standby from acting too: unhealthy.
        logger.error("starting to act failed (%r): unhealthy, SIGTERM to itself", task.exception())
        os.kill(os.getpid(), signal.SIGTERM)
