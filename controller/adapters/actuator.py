"""What acts on a target platform: the Actuator protocol and the registry of actuators.

One actuator per platform (core/platforms.py names them): it sets replicas, rolls a failed
revision back, applies container probes, and closes what it holds. The kopf layer holds one
`Actuators` and asks it by the workload's kind; it never names a platform. What a platform
offers (which of these it can do, for which kind) is the core's to say (core/platform.py).
"""

from __future__ import annotations

import typing

from controller.core import platforms
from controller.core import world as world_module


class Actuator(typing.Protocol):
    errors: tuple[type[Exception], ...]  # what a failed action raises (caught by the caller)

    async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int: ...

    async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str: ...

    async def apply_probes(self, kind: str, namespace: str, name: str, body: dict[str, typing.Any]) -> int: ...

    async def close(self) -> None: ...


class Observer(typing.Protocol):
    """An actuator of a platform the operator polls: each target (namespace, world kind, name)
    as a workload, or why it cannot be read (operator/polled.py)."""

    async def observe(self, keys: typing.Sequence[tuple[str, str, str]]
                      ) -> typing.Mapping[tuple[str, str, str], world_module.Workload | str]: ...


class Unsupported(Exception):
    """No actuator for this kind, or its platform does not offer this action."""


class Actuators:
    """The registry: platform name -> actuator, asked by a workload's kind."""

    def __init__(self, by_platform: typing.Mapping[str, Actuator]) -> None:
        self.by_platform = dict(by_platform)
        self.errors: tuple[type[Exception], ...] = (Unsupported, *{
            error for actuator in self.by_platform.values() for error in actuator.errors})

    def of(self, kind: str) -> Actuator:
        platform = platforms.of_kind(kind)
        actuator = self.by_platform.get(platform.name) if platform is not None else None
        if actuator is None:
            raise Unsupported(f"no actuator for kind {kind}")
        return actuator

    def supports(self, kind: str) -> bool:
        """Whether a failed revision of this kind can be rolled back (the rollout guard's question)."""
        platform = platforms.of_kind(kind)
        return platform is not None and platform.offers(kind).rollback and platform.name in self.by_platform

    async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        return await self.of(kind).set_replicas(kind, namespace, name, replicas)

    async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str:
        return await self.of(kind).rollback(kind, namespace, name, failed_revision)

    async def apply_probes(self, kind: str, namespace: str, name: str, body: dict[str, typing.Any]) -> int:
        return await self.of(kind).apply_probes(kind, namespace, name, body)

    async def close(self) -> None:
        for actuator in self.by_platform.values():
            await actuator.close()


def describe(error: Exception) -> str:
    """A failed action in one line: an API server's refusal as "status reason"."""
    status, reason = getattr(error, "status", None), getattr(error, "reason", None)
    if isinstance(status, int) and reason is not None:
        return f"{status} {reason}"
    return str(error)
