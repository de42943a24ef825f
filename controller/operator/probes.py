"""Probe management: keeps a target's container probes as its MonitoredService derives them.

Event-driven through the evaluation loop: a MonitoredService is judged when it or its
workload changes (and on resync), so this is a status contributor. When the core says to
apply, the apply runs as a task; its result (the workload's new generation) is recorded in
status, which is how a later revert is told apart from the watch catching up.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import typing


from controller import reasons
from controller.adapters import actuator
from controller.api import monitoredservice as api
from controller.core import conditions
from controller.core import platforms
from controller.core import probes
from controller.core import status as status_module
from controller.operator import loop
from controller.operator import metrics
from controller.operator import per_object
from controller.operator import view as view_module

logger = logging.getLogger(__name__)
KIND = api.KIND.kind
RETRY_AFTER_FAILURE_SECONDS = 60.0


@dataclasses.dataclass(frozen=True)
class Applied:
    generation: int
    record: dict[str, typing.Any]


@dataclasses.dataclass(frozen=True)
class Failure:
    at: float  # monotonic
    message: str


class ProbeManager:
    def __init__(self, view: view_module.View, evaluator: loop.Evaluator, target: actuator.Actuators) -> None:
        self.view, self.evaluator, self.target = view, evaluator, target
        # Per object (uid): a service made again under its name inherits no apply record or back-off.
        self.applied: per_object.PerObject[Applied] = per_object.PerObject(view)
        self.failures: per_object.PerObject[Failure] = per_object.PerObject(view)
        self._applying: set[view_module.Key] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def contribute(self, key: view_module.Key, current: loop.Status) -> loop.Contribution:
        if key[0] != KIND:
            return None
        spec = self.view.valid(key, api.MonitoredServiceSpec)
        if spec is None:
            return None
        ref = platforms.of_service(spec.target)
        if not platforms.of(ref).offers(ref.kind).probes:
            return None
        workload = self.view.world.workload(key[1], ref.kind, ref.name)
        if workload is None:
            return None  # readiness says TargetNotFound
        recorded = current.get("probes") or {}
        applied = self.applied.get(key)
        if applied is not None:
            if workload.generation < applied.generation or recorded.get("appliedGeneration") != applied.generation:
                return {"probes": applied.record}, []  # record our apply before judging anything else
            del self.applied[key]
        has_condition = conditions.find(current.get("conditions") or [], reasons.PROBES_MANAGED) is not None
        plan = probes.plan(spec, workload.kind, workload.name, workload.containers, workload.generation,
                           recorded, has_condition)
        if plan is None:
            return None
        if plan.apply is None:
            self.failures.pop(key, None)
            return plan.fields, [plan.condition] if plan.condition else []
        failure = self.failures.get(key)
        if failure is not None:
            if time.monotonic() - failure.at < RETRY_AFTER_FAILURE_SECONDS:
                return {}, [conditions.ConditionChange(reasons.PROBES_MANAGED, "False", reasons.PROBES_APPLY_FAILED,
                                                       failure.message)]
        if key not in self._applying:
            self._applying.add(key)
            task = asyncio.get_running_loop().create_task(self._apply(key, workload.kind, workload.name, plan))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return None

    async def _apply(self, key: view_module.Key, kind: str, name: str, plan: probes.Plan) -> None:
        self.applied.prune()  # what deleted services left goes at the next apply (applies are rare)
        self.failures.prune()
        obj = self.view.objects.get(key)
        try:
            assert plan.apply is not None
            generation = await self.target.apply_probes(kind, key[1], name, plan.apply)
        except self.target.errors as error:
            metrics.PROBE_APPLIES.labels("failed").inc()
            message = f"applying probes to {kind} {name} failed: {actuator.describe(error)}"
            logger.warning("%s: %s", key, message)
            self.failures[key] = Failure(time.monotonic(), message)
            if obj is not None:
                await self.evaluator.post_event(
                    obj, status_module.EventSpec("Warning", reasons.PROBES_APPLY_FAILED, message))
            # Retried after the back-off by the next judgement (a change, or the resync).
            asyncio.get_running_loop().call_later(RETRY_AFTER_FAILURE_SECONDS, self.evaluator.mark, key)
            return
        finally:
            self._applying.discard(key)
        metrics.PROBE_APPLIES.labels("applied").inc()
        self.failures.pop(key, None)
        self.applied[key] = Applied(generation, {**plan.fields["probes"], "appliedGeneration": generation})
        if obj is not None and plan.event is not None:
            await self.evaluator.post_event(obj, status_module.EventSpec(*plan.event))
        self.evaluator.mark(key)

