"""The one evaluation loop: judges dirty objects and writes only what changed.

Watch events mark objects dirty; the loop wakes, judges them with the pure core and
patches status (and posts Events) only on change, so a steady state makes no writes.
A periodic resync re-judges everything, which is how Secret changes are noticed.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import time
import typing

import kubernetes

from controller import crdgen
from controller import reasons
from controller.adapters import kubernetes_api
from controller.core import conditions
from controller.core import election
from controller.core import readiness
from controller.core import status as status_module
from controller.operator import metrics
from controller.operator import view as view_module
from controller.operator import heap
from controller.operator import heartbeat
from controller.operator import pools

logger = logging.getLogger(__name__)
# Each kind's status schema, generated from the same models as the CRDs: what is written fits.
STATUS_SCHEMAS = {info.kind: crdgen.build_schema(model)["properties"]["status"] for model, info in crdgen.KINDS}
DEBOUNCE_SECONDS = 0.2
JUDGE_CHUNK = 200  # objects judged between two yields to the loop
# What a part of the operator adds to one object's status: fields and conditions, or nothing.
Contribution = typing.Optional[tuple[dict[str, typing.Any], list[conditions.ConditionChange]]]
Status = typing.Mapping[str, typing.Any]
Contributor = typing.Callable[[view_module.Key, Status], Contribution]


class StatusWriter(typing.Protocol):
    """Patches an object's status on the event loop (adapters/kubernetes_status.py)."""

    async def patch_status(self, kind: str, namespace: str, name: str,
                           patch: dict[str, typing.Any]) -> dict[str, typing.Any]: ...


Judged = tuple[typing.Mapping[str, typing.Any], dict[str, typing.Any]]  # the object judged, its patch
RETRY_SECONDS = 5.0
# How often an object that is Ready and whose status does not move with time is judged again
# although nothing was reported about it (at 10,000 policies a minute's judgement of all was
# a tenth of the operator's CPU).
SETTLED_RESYNC_SECONDS = 600.0


def write_priority(obj: typing.Mapping[str, typing.Any], patch: typing.Mapping[str, typing.Any]) -> int:
    """0 for a write that announces a problem (a Warning Event), 1 for any other."""
    before = (obj.get("status") or {}).get("conditions") or []
    events = status_module.transition_events(before, patch.get("conditions") or before)
    return 0 if any(event.type == status_module.WARNING for event in events) else 1


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


class Evaluator:
    def __init__(
        self,
        view: view_module.View,
        api: kubernetes_api.KubeApi,
        resync_seconds: float,
        write_concurrency: int,
        clock: typing.Callable[[], datetime.datetime] = utcnow,
        status_writer: StatusWriter | None = None,
    ) -> None:
        self.view = view
        self.api = api
        self.status_writer = status_writer
        self.resync_seconds = resync_seconds
        self.clock = clock
        self.dirty: set[view_module.Key] = set()
        self._wake = asyncio.Event()
        self.write_concurrency = write_concurrency
        self._writes = asyncio.Semaphore(write_concurrency)
        # One status write of an object at a time, judged once the one before it landed: two
        # writes judged in one order (the evaluation loop's, an intent's or outbox's at once)
        # landed in the other and status went back (an alert's resolution lost). Kept while held.
        self._writing: dict[view_module.Key, tuple[asyncio.Lock, int]] = {}  # key -> its lock, its users
        self._secrets_fetched: dict[tuple[str, str], float] = {}
        # Other parts (scaling, health, alerting) add their own fields and conditions here, so
        # that one patch per object carries everything and nothing overwrites anything else.
        self.contributors: list[Contributor] = []
        # Parts whose status moves with time alone (availability over a window) name the
        # objects that need judging at every resync; settled ones are judged every
        # SETTLED_RESYNC_SECONDS (a safety net: nothing of theirs changes without an event).
        self.time_dependent: list[typing.Callable[[], typing.Iterable[view_module.Key]]] = []

    def mark(self, *keys: view_module.Key) -> None:
        self.dirty.update(keys)
        self._wake.set()

    def mark_all(self) -> None:
        self.mark(*self.view.objects)

    async def run(self) -> None:
        next_resync = time.monotonic()
        next_full_resync = next_resync + SETTLED_RESYNC_SECONDS
        judged_all = False
        heartbeat.expect("evaluation", self.resync_seconds)
        while True:
            heartbeat.beat("evaluation")
            if time.monotonic() >= next_resync:
                self._secrets_fetched.clear()  # re-read for the objects judged now, not for all
                if not judged_all or time.monotonic() >= next_full_resync:
                    self.prune_secrets()
                    self.mark_all()
                    next_full_resync = time.monotonic() + SETTLED_RESYNC_SECONDS
                else:
                    self.mark(*self.unsettled())
                next_resync = time.monotonic() + self.resync_seconds
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=max(0.0, next_resync - time.monotonic()))
            except asyncio.TimeoutError:
                continue
            await asyncio.sleep(DEBOUNCE_SECONDS)
            self._wake.clear()
            keys, self.dirty = self.dirty, set()
            try:
                with metrics.ROUND_SECONDS.time():
                    await self.round(keys)
                if not judged_all:  # the first round covers the whole view (mark_all above)
                    metrics.ALL_JUDGED_SECONDS.set(time.monotonic() - metrics.STARTED)
                    logger.info("first verdicts for %d objects, %.1f s after start", len(keys),
                                time.monotonic() - metrics.STARTED)
                    judged_all = True
                    heap.freeze("the first verdicts")  # every object was replaced by its written status
            except Exception:  # one bad round must not end the loop (liveness would fail)
                logger.exception("evaluation round failed; re-marking %d objects", len(keys))
                self.dirty.update(keys)

    def unsettled(self) -> list[view_module.Key]:
        """What a resync judges again: objects not Ready (a Secret or target may have appeared
        since, which no watch reports) and those whose status moves with time."""
        keys = [key for key, obj in self.view.objects.items() if not conditions.is_true(
            (obj.get("status") or {}).get("conditions") or [], reasons.READY)]
        for source in self.time_dependent:
            keys.extend(source())
        return keys

    def count_watched(self) -> None:
        for kind in {key[0] for key in self.view.objects}:
            metrics.WATCHED_OBJECTS.labels(kind).set(len(self.view.of_kind(kind)))

    async def round(self, keys: typing.Iterable[view_module.Key]) -> None:
        present = [key for key in keys if key in self.view.objects]
        await self._refresh_secrets(present)
        # Judging is synchronous and cheap; what needs a write is queued at once and written by
        # a bounded set of writers while the rest is judged: at start-up (every object written)
        # the API server has writes to work on meanwhile. Problems go first: at 10,000 objects a
        # broken one's Warning must not wait behind thousands of "all is well" writes.
        queue: asyncio.PriorityQueue[tuple[int, int, view_module.Key, Judged]] = asyncio.PriorityQueue()
        writers: list[asyncio.Task[None]] = []
        try:
            for index, key in enumerate(present):
                if index % JUDGE_CHUNK == JUDGE_CHUNK - 1:
                    await asyncio.sleep(0)
                try:
                    patch = self.judge(key)
                except Exception:
                    metrics.RECONCILE_ERRORS.labels(key[0]).inc()
                    logger.exception("judging %s failed; retrying", key)
                    self._retry_later(key)
                    continue
                if not patch:
                    metrics.RECONCILES.labels(key[0], "unchanged").inc()
                    continue
                obj = self.view.objects[key]
                queue.put_nowait((write_priority(obj, patch), index, key, (obj, patch)))
                if len(writers) < self.write_concurrency:
                    writers.append(asyncio.create_task(self._write_from(queue)))
            await queue.join()
        finally:
            for writer in writers:
                writer.cancel()

    async def _write_from(self, queue: asyncio.PriorityQueue[tuple[int, int, view_module.Key, Judged]]) -> None:
        while True:
            _, _, key, judged = await queue.get()
            try:
                await self._reconcile_guarded(key, judged)
            finally:
                queue.task_done()

    def prune_secrets(self) -> None:
        """Forgets what is known of Secrets no object names any more (their keys, kept for
        readiness): otherwise every Secret ever named stays, and a name made again later (a
        namespace deleted and recreated) would start from what the old one had."""
        named = {(key[1], name) for key in list(self.view.objects)
                 for name in readiness.secret_refs(key[0], self.view.parsed(key, readiness.SPEC_MODELS[key[0]]))}
        for ref in [ref for ref in self.view.world.secrets if ref not in named]:
            del self.view.world.secrets[ref]
            self._secrets_fetched.pop(ref, None)

    async def _refresh_secrets(self, keys: list[view_module.Key]) -> None:
        wanted = {
            (key[1], name)
            for key in keys
            for name in readiness.secret_refs(key[0], self.view.parsed(key, readiness.SPEC_MODELS[key[0]]))
        }
        missing = [ref for ref in wanted if ref not in self._secrets_fetched]
        for namespace, name in missing:
            try:
                found = await pools.run(pools.KUBE, self.api.secret_keys, namespace, name)
            except kubernetes.client.ApiException as error:
                logger.warning("cannot read Secret %s/%s: %s %s", namespace, name, error.status, error.reason)
                continue
            self.view.world.secrets[(namespace, name)] = found
            self._secrets_fetched[(namespace, name)] = time.monotonic()

    async def _reconcile_guarded(self, key: view_module.Key, judged: Judged | None = None) -> None:
        kind = key[0]
        try:
            with metrics.RECONCILE_SECONDS.labels(kind).time():
                result = await self.reconcile(key, judged)
            metrics.RECONCILES.labels(kind, result).inc()
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return  # deleted meanwhile; its DELETED event removes it from the view
            metrics.RECONCILE_ERRORS.labels(kind).inc()
            logger.warning("reconcile of %s failed (%s %s); retrying", key, error.status, error.reason)
            self._retry_later(key)
        except election.NotLeader:
            # Fenced: this replica no longer leads (counted in capliquify_fenced_writes_total);
            # the next leader judges every object. Not an error, and no traceback: a stand-down
            # under load refused 2,000 in-flight writes, each a traceback (issue 26's soak).
            logger.debug("reconcile of %s refused by the fence", key)
        except Exception:
            metrics.RECONCILE_ERRORS.labels(kind).inc()
            logger.exception("reconcile of %s failed; retrying", key)
            self._retry_later(key)

    async def reconcile_now(self, key: view_module.Key) -> bool:
        """Judge and write one object at once (an intent that must be in status before acting)."""
        if key not in self.view.objects:
            return False
        try:
            await self.reconcile(key)
        except election.NotLeader:
            logger.debug("immediate reconcile of %s refused by the fence", key)
            return False
        except kubernetes.client.ApiException as error:
            logger.warning("immediate reconcile of %s failed (%s %s)", key, error.status, error.reason)
            return False
        except Exception:
            logger.exception("immediate reconcile of %s failed", key)
            return False
        return True

    def _retry_later(self, key: view_module.Key) -> None:
        asyncio.get_running_loop().call_later(RETRY_SECONDS, self.mark, key)

    def is_ready(self, key: view_module.Key) -> bool:
        """Whether the object is Ready: as its status says once written, else as readiness would
        judge it now. So scaling and snapshots contribute to an object's first verdict, which
        then takes one status write instead of two (issue 10: start-up at 10,000)."""
        obj = self.view.objects[key]
        written = conditions.find((obj.get("status") or {}).get("conditions") or [], reasons.READY)
        if written is not None:
            return written.get("status") == "True"
        kind, namespace, _ = key
        assessment = readiness.JUDGES[kind](namespace, self.view.parsed(key, readiness.SPEC_MODELS[kind]), self.view.world)
        return any(change.type == reasons.READY and change.status == "True" for change in assessment.conditions)

    def judge(self, key: view_module.Key) -> dict[str, typing.Any]:
        """The status patch one object needs now ({} in a steady state)."""
        obj = self.view.objects[key]
        kind, namespace, _ = key
        spec = self.view.parsed(key, readiness.SPEC_MODELS[kind])
        assessment = readiness.JUDGES[kind](namespace, spec, self.view.world)
        current = obj.get("status") or {}
        for contributor in self.contributors:
            extra = contributor(key, current)
            if extra is not None:
                assessment = readiness.combine(assessment, *extra)
        return status_module.build_status_patch(
            current, assessment, self.clock(), obj["metadata"].get("generation") or 0, STATUS_SCHEMAS.get(kind))

    async def post_event(self, obj: typing.Mapping[str, typing.Any], event: status_module.EventSpec,
                         now: datetime.datetime | None = None) -> None:
        """Posts one Event about `obj`; a failure is logged, never raised (Events are best effort)."""
        try:
            async with self._writes:
                await pools.run(pools.KUBE, self.api.create_event, obj, event, now or self.clock())
        except kubernetes.client.ApiException as error:
            logger.warning("posting event %s failed: %s", event.reason, error.reason)

    async def reconcile(self, key: view_module.Key, judged: Judged | None = None) -> str:
        """Judge one object; patch and announce only what changed. Returns the outcome.
        `judged`: the object as a round judged it and the patch it got, used as it is unless
        the object or anything contributing to its status changed since (then judged again)."""
        lock, users = self._writing.get(key) or (asyncio.Lock(), 0)
        self._writing[key] = (lock, users + 1)
        try:
            async with lock:
                outcome, updated, events, now = await self._write_one(key, judged)
        finally:
            held = self._writing.get(key)  # (a stand-down may have cleared it meanwhile)
            if held is not None and held[0] is lock:
                if held[1] > 1:
                    self._writing[key] = (lock, held[1] - 1)
                else:
                    del self._writing[key]
        for event in events:  # after the next write of it may start: an Event never holds it
            async with self._writes:
                await pools.run(pools.KUBE, self.api.create_event, updated, event, now)
        return outcome

    async def _write_one(self, key: view_module.Key, judged: Judged | None) -> tuple[
            str, typing.Mapping[str, typing.Any], list[status_module.EventSpec], datetime.datetime]:
        """`reconcile`'s judgement and status write (one of an object at a time)."""
        kind, namespace, _ = key
        now = self.clock()
        obj = self.view.objects.get(key)
        if obj is None:
            return "unchanged", {}, [], now  # deleted while the write before it was made
        current = obj.get("status") or {}
        fresh = judged is not None and judged[0] is obj and key not in self.dirty
        patch = judged[1] if judged is not None and fresh else self.judge(key)
        if not patch:
            return "unchanged", obj, [], now
        logger.debug("patching %s/%s/%s status: %s", *key, sorted(patch))
        async with self._writes:
            if self.status_writer is not None:
                updated = await self.status_writer.patch_status(kind, namespace, key[2], patch)
            else:
                updated = await pools.run(pools.KUBE, self.api.patch_status, kind, namespace, key[2], patch)
        self.view.upsert(updated)
        events = status_module.transition_events(current.get("conditions") or [], updated["status"]["conditions"])
        return "patched", updated, list(events), now
