"""The Lease: one replica leads and acts; the others keep their view warm and wait.

A standby runs the watches and the in-memory view (so a takeover does not start from
nothing) but writes nothing: the acting loops start only once this replica holds the Lease.
Fencing: every write to the API server passes `fence()` (the on-write hook of every
Kubernetes adapter), and the scaler and the alerter ask `leading()` before a Railway call or
a notification; a leader that has not renewed within the renew deadline stops acting
before the Lease can expire for anyone else, and a leader that loses the Lease exits (the
pod restarts into standby), as client-go's OnStoppedLeading does.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import time
import typing
import uuid

import kubernetes

from controller.adapters import kubernetes_lease
from controller.core import election
from controller.operator import metrics
from controller.operator import pools

logger = logging.getLogger(__name__)


class NotLeader(RuntimeError):
    """A write was attempted by a replica that does not (or no longer) hold the Lease."""


class Elector:
    def __init__(self, store: kubernetes_lease.LeaseStore | None, timing: election.Timing,
                 on_started_leading: typing.Callable[[], typing.Awaitable[None]],
                 identity: str | None = None, clock: typing.Callable[[], float] = time.monotonic) -> None:
        self.store, self.timing, self.clock = store, timing, clock
        self.identity = identity or f"{os.environ.get('HOSTNAME') or socket.gethostname()}_{uuid.uuid4().hex[:8]}"
        self._on_started_leading = on_started_leading
        self._seen: election.Observation | None = None
        self._renewed_at: float | None = None
        self.was_leader = False

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def leading(self) -> bool:
        if self.store is None:
            return True  # --leader-elect=false: a single replica always acts
        return election.leading(self._renewed_at, self.clock(), self.timing)

    def fence(self, verb: str) -> None:
        """The on-write hook: counts the write, and refuses it unless this replica leads."""
        if not self.leading():
            metrics.FENCED_WRITES.inc()
            raise NotLeader(f"not the leader: {verb} refused")
        metrics.count_write(verb)

    async def run(self) -> None:
        if self.store is None:
            self.was_leader = True
            metrics.LEADER.set(1)
            await self._on_started_leading()
            return
        logger.info("leader election as %s on Lease %s/%s", self.identity, self.store.namespace, self.store.name)
        while True:
            await self._attempt()
            if self.was_leader and not self.leading():
                logger.error("lost the Lease (no renewal within %ss): stopping to restart as a standby",
                             self.timing.renew_deadline)
                metrics.LEADER.set(0)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            await asyncio.sleep(self.timing.retry_period)

    async def _attempt(self) -> None:
        assert self.store is not None
        try:
            current = await asyncio.wait_for(pools.run(pools.KUBE, self.store.read), self.timing.retry_period * 2)
        except (asyncio.TimeoutError, kubernetes.client.ApiException, OSError) as error:
            logger.warning("reading the Lease failed: %s", type(error).__name__)
            return
        now = self.clock()
        step = election.next_step(self.identity, self._seen, current, now, self.timing)
        self._seen = election.observe(self._seen, current, now)
        if step.action == "wait":
            if self.was_leader and current is not None and current.holder != self.identity:
                self._renewed_at = None  # someone else holds it: stop at once
            return
        started = self.clock()
        try:
            await asyncio.wait_for(pools.run(pools.KUBE, self.store.write, self.identity, step, current,
                                             self.timing.lease_duration), self.timing.retry_period * 2)
        except kubernetes_lease.Conflict:
            return  # someone else moved first; read again next time
        except (asyncio.TimeoutError, kubernetes.client.ApiException, OSError) as error:
            logger.warning("%s of the Lease failed: %s", step.action, type(error).__name__)
            return
        # The renewal counts from before it was sent: the deadline is never overestimated.
        self._renewed_at = started
        if not self.was_leader:
            self.was_leader = True
            metrics.LEADER.set(1)
            logger.info("became the leader (%s)", step.action)
            await self._on_started_leading()

    async def release(self) -> None:
        """On a clean shutdown the leader hands the Lease back for an immediate takeover."""
        if self.store is None or not self.leading():
            return
        try:
            current = await pools.run(pools.KUBE, self.store.read)
            if current is not None and current.holder == self.identity:
                await pools.run(pools.KUBE, self.store.release, self.identity, current)
                logger.info("released the Lease")
        except Exception as error:  # it expires by itself
            logger.warning("releasing the Lease failed: %s", type(error).__name__)
        self._renewed_at = None
