"""What the operator knows of the cluster, as plain data for the pure core."""

from __future__ import annotations

import dataclasses
import datetime
import typing

from controller.core import selectors


@dataclasses.dataclass(frozen=True)
class Container:
    """A container of a workload's pod template, as far as probe management needs it."""

    name: str
    readiness: typing.Mapping[str, typing.Any] | None = None
    liveness: typing.Mapping[str, typing.Any] | None = None


@dataclasses.dataclass(frozen=True)
class ReplicaLimits:
    """What a workload's platform allows whatever a policy asks, and why (said in status)."""

    floor: int = 0
    cap: int | None = None
    floor_why: str = ""
    cap_why: str = ""


@dataclasses.dataclass(frozen=True)
class Workload:
    """A workload of any platform (core/platforms.py) as the core needs it."""

    kind: str
    namespace: str
    name: str
    replicas: int | None
    ready_replicas: int
    generation: int = 0
    observed_generation: int = 0
    revision: str | None = None  # deployment.kubernetes.io/revision
    updated_replicas: int = 0
    available_replicas: int = 0
    paused: bool = False
    deadline_exceeded: bool = False  # Progressing=False, reason ProgressDeadlineExceeded
    uid: str = ""
    containers: tuple[Container, ...] = ()
    selector: selectors.Selector = selectors.Selector()  # spec.selector: its pods, for the metrics API
    failure: str | None = None  # its platform reports the current revision failed outright
    limits: ReplicaLimits | None = None  # its platform's floor and cap on replicas
    template_digest: str | None = None  # sha256 of its pod template (core/predeploy.template_digest)
    # When THIS replica first saw it as it is now (its count and its spec's generation, or
    # Railway's latest deployment), on its own clock: a watch event's or a poll answer's
    # arrival, or its first read. Its count had changed by then; a successor times a step its
    # predecessor left without a record by it (issue 26). Never the platform's own stamp: that
    # is another clock's (managedFields, createdAt), and a clock behind made a step look older.
    changed_at: datetime.datetime | None = None

    def observed(self, previous: Workload | None, now: datetime.datetime) -> Workload:
        """This workload stamped with when this replica first saw it so: `previous`'s stamp
        while its count and what sets it (its spec's generation, its revision: Railway's latest
        deployment) are unchanged, else `now`. A change missed between two reads (a watch's
        re-list) moved the generation or revision: stamped `now`, the newer side."""
        if previous is not None and previous.changed_at is not None and (
                previous.replicas, previous.generation, previous.revision) == (self.replicas, self.generation, self.revision):
            return dataclasses.replace(self, changed_at=previous.changed_at)
        return dataclasses.replace(self, changed_at=now)


@dataclasses.dataclass(frozen=True)
class ObjectRef:
    namespace: str
    name: str


@dataclasses.dataclass
class World:
    """A snapshot of the objects that readiness depends on.

    `secrets` maps a referenced Secret to its data keys, or to None when it does not
    exist; a Secret absent from the map was not looked up and is not judged.
    """

    workloads: dict[tuple[str, str, str], Workload] = dataclasses.field(default_factory=dict)
    monitored_services: dict[tuple[str, str], typing.Mapping[str, typing.Any]] = dataclasses.field(
        default_factory=dict
    )
    secrets: dict[tuple[str, str], frozenset[str] | None] = dataclasses.field(default_factory=dict)
    # HorizontalPodAutoscalers by the workload they target: (namespace, kind, name) -> HPA name.
    autoscalers: dict[tuple[str, str, str], str] = dataclasses.field(default_factory=dict)
    # Workloads a platform polls (rather than watches), by (namespace, kind, name): until the
    # platform has answered, or when it fails, the error is here (core/platform_*.py judge it).
    platform_errors: dict[tuple[str, str, str], str] = dataclasses.field(default_factory=dict)
    # Polled workloads whose last poll was held back (a rate limit): their last known state
    # stands, and this says why it is not fresher.
    platform_stale: dict[tuple[str, str, str], str] = dataclasses.field(default_factory=dict)

    def workload(self, namespace: str, kind: str, name: str) -> Workload | None:
        """A workload of any platform, by the kind and name its platform gives it (core/platforms.py)."""
        return self.workloads.get((namespace, kind, name))
