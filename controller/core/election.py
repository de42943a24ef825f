"""Leader election over a coordination.k8s.io/v1 Lease, as client-go's leaderelection does. Pure.

Times here are the caller's monotonic clock, never the Lease's own timestamps: like client-go,
a candidate judges expiry by how long *it* has seen the record unchanged (observedTime), so
clock skew between nodes cannot make two leaders. The leader counts from its own last
successful renewal and stops acting once `renew_deadline` has passed without one — before
any other candidate can take the lease (`lease_duration` after it last saw it change).
"""

from __future__ import annotations

import dataclasses


class NotLeader(RuntimeError):
    """A side effect was attempted by a replica that does not (or no longer) hold the Lease.

    Raised by every fence: the Kubernetes adapters' on-write hook, and the hooks Railway and
    the notifiers call immediately before each send (adapters raise it without knowing who leads).
    """


@dataclasses.dataclass(frozen=True)
class Timing:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        if not 0 < self.retry_period < self.renew_deadline < self.lease_duration:
            raise ValueError("need 0 < retry period < renew deadline < lease duration")

    @property
    def first_round_deadline(self) -> float:
        """How long a new leader waits for its first reads before it judges everything anyway.

        Renewal does not wait for them (it runs on its own schedule); this bounds how long a
        slow tenant can hold back every other tenant's first verdict. Half the renew deadline:
        well inside the lease, and a read still in flight then is its own tenant's delay.
        """
        return self.renew_deadline / 2


@dataclasses.dataclass(frozen=True)
class Record:
    """What the Lease says (spec.holderIdentity, leaseTransitions) and its resourceVersion."""

    holder: str | None
    transitions: int
    version: str


@dataclasses.dataclass(frozen=True)
class Observation:
    """A candidate's memory of the Lease: the record and when (its clock) it last changed."""

    record: Record | None
    observed_at: float


@dataclasses.dataclass(frozen=True)
class Step:
    action: str  # create | renew | acquire | wait
    transitions: int = 0


def next_step(me: str, seen: Observation | None, current: Record | None, now: float, timing: Timing) -> Step:
    """What a candidate does with the Lease it has just read."""
    if current is None:
        return Step("create", 0)
    if current.holder == me:
        return Step("renew", current.transitions)
    if not current.holder:
        return Step("acquire", current.transitions + 1)  # released on purpose
    unchanged_since = seen.observed_at if seen is not None and seen.record == current else now
    if now - unchanged_since >= timing.lease_duration:
        return Step("acquire", current.transitions + 1)  # the holder stopped renewing
    return Step("wait")


def observe(seen: Observation | None, current: Record | None, now: float) -> Observation:
    """The memory after a read: the observed time moves only when the record changed."""
    if seen is not None and seen.record == current:
        return seen
    return Observation(current, now)


def leading(renewed_at: float | None, now: float, timing: Timing) -> bool:
    """May the leader act now? Only within renew_deadline of its last successful renewal."""
    return renewed_at is not None and now - renewed_at < timing.renew_deadline
