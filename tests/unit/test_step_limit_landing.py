"""Found by the one-hour soak (issue 26, docs/reliability.md run 14): 33 pairs of one-pod steps
the same way within 10 s. The audit log showed each pair's decisions 10-11 s apart (status's
scaleEvents, whole seconds) but the first scale landing 1.5-9 s after its decision (the intent
write, the existence check and the scale call under load; 8.4 s inside a slow API server), so
the second step reached the workload 1.6-8.9 s after the first. The step limit counted a step
from the moment it was decided; HPA counts it from when the scale returned (storeScaleEvent
after the rescale). A step now counts from when it landed.

The scaler runs over the fake API server of test_step_limit_takeover.py, with a scale call that
takes `slow` seconds of the replica's clock."""

from __future__ import annotations

import asyncio
import copy
import datetime

from tests.unit import test_step_limit_takeover as takeover

T0 = takeover.T0


class SlowLeader(takeover.Leader):
    """A replica whose scale call returns `slow` seconds after it was made."""

    def __init__(self, server: takeover.Server, now: datetime.datetime, slow: float) -> None:
        super().__init__(server, now)
        self.slow = datetime.timedelta(seconds=slow)

    async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        written = await super().set_replicas(kind, namespace, name, replicas)
        self.now = self.now + self.slow  # the call returned this much later
        self.view.upsert(copy.deepcopy(self.server.objects[("Deployment", takeover.NS, "w2")]))  # the watch's event
        return written


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def test_a_step_counts_from_when_its_scale_landed_not_from_its_decision() -> None:
    """Decided at 0 s, landed at 4 s: the round at 10 s is 6 s after the change and holds; the
    round at 15 s (11 s after it) steps."""
    async def scenario() -> None:
        server = takeover.Server(6)
        leader = SlowLeader(server, T0, slow=4.0)
        await leader.decide()
        assert server.scales == [(6, 7)]
        leader.now = at(10)
        await leader.decide()
        assert server.scales == [(6, 7)], "a second step 6 s after the first one landed"
        leader.now = at(15)
        await leader.decide()
        assert server.scales == [(6, 7), (7, 8)]
    asyncio.run(scenario())


def test_a_successor_counts_the_step_from_when_it_landed() -> None:
    """The leader's record (written after the scale) says when the step landed; a successor
    reading status 6 s after that holds, and the step is in status once."""
    async def scenario() -> None:
        server = takeover.Server(6)
        await SlowLeader(server, T0, slow=4.0).decide()
        assert server.scales == [(6, 7)]
        assert takeover.scale_events(server) == [(6, 7)]  # the intent replaced, not added to
        successor = takeover.Leader(server, at(10))
        await successor.decide()
        assert server.scales == [(6, 7)], "the successor stepped 6 s after the step landed"
        successor.now = at(15)
        await successor.decide()
        assert server.scales == [(6, 7), (7, 8)]
    asyncio.run(scenario())


def test_the_opposite_direction_is_not_loosened_by_a_step_counted_twice() -> None:
    """Landed 4 s after its decision, the step is one step: a scale-down right after it is held
    to one pod (a step counted twice would let the period's start fall by two)."""
    async def scenario() -> None:
        server = takeover.Server(6)
        leader = SlowLeader(server, T0, slow=4.0)
        await leader.decide()
        leader.now = at(15)
        await leader.decide(cpu=1.0)  # far below the band: as far down as the limit allows
        assert server.scales[-1][0] - server.scales[-1][1] <= 1, server.scales
    asyncio.run(scenario())


