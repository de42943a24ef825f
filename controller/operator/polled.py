"""Platforms the operator polls rather than watches: their targets read every interval into
the view's world, and the objects that name them marked when what was read changed.

Any platform whose actuator can `observe` (adapters/actuator.py `Observer`) runs here; which
targets are its own is the platforms' registry's to say (core/platforms.py), so this loop
names no platform.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from controller.adapters import actuator
from controller.adapters import boundary
from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import platform
from controller.core import platforms
from controller.operator import heartbeat
from controller.operator import loop
from controller.operator import view as view_module

logger = logging.getLogger(__name__)
WorldKey = tuple[str, str, str]  # namespace, world kind, name


class PolledPlatform:
    def __init__(self, platform_name: str, view: view_module.View, evaluator: loop.Evaluator,
                 observer: actuator.Observer, interval_seconds: float = 5.0) -> None:
        self.name = f"poll-{platform_name}"  # its loop's name (handlers.Runtime.pollers)
        self.platform_name, self.view, self.evaluator = platform_name, view, evaluator
        self.observer, self.interval_seconds = observer, interval_seconds
        self.known: set[WorldKey] = set()  # targets this loop put in the world

    async def run(self) -> None:
        heartbeat.expect(self.name, self.interval_seconds)
        try:
            while True:
                heartbeat.beat(self.name)
                try:
                    await self.poll()
                except Exception:  # one bad poll must not end the loop
                    logger.exception("%s failed", self.name)
                await asyncio.sleep(self.interval_seconds)
        finally:
            self.unstamp()

    def unstamp(self) -> None:
        """Polling stops (a stand-down): these targets are not read again until this replica
        leads, so what the world keeps of them says nothing of when this replica saw them; a
        next term's first scaling round (before its first poll) must not time a step by it."""
        world = self.view.world
        for target in self.known:
            if target in world.workloads:
                world.workloads[target] = dataclasses.replace(world.workloads[target], changed_at=None)

    def _ref(self, key: view_module.Key) -> platform.Ref | None:
        if key[0] == scalingpolicy.KIND.kind:
            spec = self.view.valid(key, scalingpolicy.ScalingPolicySpec)
            if spec is None:
                return None
            direct = platforms.of_policy(spec.targetRef)
            if direct is not None or spec.targetRef.monitoredService is None:
                return direct
            key = (monitoredservice.KIND.kind, key[1], spec.targetRef.monitoredService)
            if key not in self.view.objects:
                return None
        service = self.view.valid(key, monitoredservice.MonitoredServiceSpec)
        return platforms.of_service(service.target) if service is not None else None

    def wanted(self) -> dict[WorldKey, list[view_module.Key]]:
        """This platform's targets, each with the objects that name it."""
        found: dict[WorldKey, list[view_module.Key]] = {}
        for kind in (scalingpolicy.KIND.kind, monitoredservice.KIND.kind):
            for key in list(self.view.of_kind(kind)):
                try:
                    ref = self._ref(key)
                    if ref is not None and ref.platform == self.platform_name:
                        found.setdefault((key[1], ref.kind, ref.name), []).append(key)
                except Exception as failure:  # this tenant's problem alone
                    boundary.failed(failure, self.name, key)
        return found

    async def poll(self) -> None:
        wanted = self.wanted()
        world = self.view.world
        for gone in self.known - set(wanted):
            world.workloads.pop(gone, None)
            world.platform_errors.pop(gone, None)
        self.known = set(wanted)
        if not wanted:
            return
        results = await self.observer.observe(list(wanted))
        for target, result in results.items():
            before = (world.workloads.get(target), world.platform_errors.get(target))
            if isinstance(result, str):
                world.workloads.pop(target, None)
                world.platform_errors[target] = result
            else:
                world.workloads[target] = result.observed(world.workloads.get(target), self.view.clock())  # seen so then
                world.platform_errors.pop(target, None)
            if before != (world.workloads.get(target), world.platform_errors.get(target)):
                for key in wanted.get(target, []):
                    self.evaluator.mark(key, *self.view.dependents(key))
