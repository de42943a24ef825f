"""The two Railway double steps of the one-hour soak (issue 26, docs/reliability.md run 14, §17):
soak-7-1/rw stepped at 109.5 and 112.6 s, soak-7-2/rw at 121.1 and 128.2 s, right after a 429
storm (every second request refused, Retry-After 2 s, 83-106 s). The audit log's status
writes put soak-7-2's first scale 1.5-4 s after its decision: a request held by the token's
rate limiter (paused by a 429) lands after its decision, and the step limit counted the step
from the decision. Through the operator's real Railway path (watcher, client, rate limiter,
actuator, scaler) on the local Railway, the limiter's waits passing on the test's clock:

- a scale that waited 2 s in the limiter counts from when it landed (the next one waits 10 s
  from there), as the Deployment's since b27d6dd;
- a scale Railway refused with 429 executed nothing: it is no step (its intent is withdrawn),
  so it cannot loosen the next step the other way (a phantom step down let a step up of two)."""

from __future__ import annotations

import asyncio
import contextlib

from controller.adapters import railway as railway_adapter
from tests.unit import railway_scaling as harness


def test_a_scale_held_by_the_rate_limiter_counts_from_when_it_landed(railway) -> None:  # noqa: ANN001
    railway.services["svc-1"].replicas = 4

    async def scenario(leader: harness.Leader, clock: harness.Clock) -> None:
        await leader.poll()
        railway.refuse_every, railway.retry_after = 1, 2  # the storm: this poll is answered 429
        clock.seconds = 0.5
        await leader.poll()
        assert leader.watcher.limiter.limited_for(railway_adapter.RateLimiter.key(harness.TOKEN)) == 2.0
        railway.refuse_every = 0  # the storm is over; the token's pause is not
        await leader.decide(cpu=95.0)  # decided at 0.5 s, sent at 2.5 s when the pause ends
        assert [m["replicas"] for m in harness.mutations(railway)] == [5]
        assert clock.seconds == 2.5
        assert leader.status()["lastScaleTime"] == "2026-12-06T05:32:02Z"
        clock.seconds = 10.5
        await leader.decide(cpu=95.0)
        assert [m["replicas"] for m in harness.mutations(railway)] == [5], "stepped 8 s after the first landed"
        clock.seconds = 12.6
        await leader.decide(cpu=95.0)
        assert [m["replicas"] for m in harness.mutations(railway)] == [5, 6]
    harness.run(railway, scenario)


def test_a_scale_refused_with_429_is_no_step_and_loosens_nothing(railway) -> None:  # noqa: ANN001
    railway.services["svc-1"].replicas = 4

    async def scenario(leader: harness.Leader, clock: harness.Clock) -> None:
        await leader.poll()
        railway.refuse_every, railway.retry_after = 1, 2
        await leader.decide(cpu=10.0)  # a step down, answered 429: Railway executed nothing
        assert [m["answer"] for m in harness.mutations(railway)] == ["429"]
        assert leader.scale_events() == [], "a refused scale left in the period as a step"
        railway.refuse_every = 0
        clock.seconds = 3
        await leader.poll()
        await leader.decide(cpu=95.0)
        assert [m["replicas"] for m in harness.mutations(railway)] == [3, 5], "one pod per 10 s"
        assert railway.services["svc-1"].replicas == 5
    harness.run(railway, scenario)


def test_a_successor_times_a_step_left_without_its_record_by_its_poll_not_railways_deployment(railway) -> None:  # noqa: ANN001
    """Leader A decides at 0.5 s, its scale waits in the rate limiter and lands at 2.5 s, and A is
    stopped before its record. Successor B, leading from 3 s, polls then: it first sees the new
    count at 3 s on its own clock (not Railway's deployment createdAt, another clock's:
    test_review_findings 23), so B counts the step from there: not from its decision at 0.5 s
    (B holds at 11 s), nor from its first decision at 5 s (B steps at 13.1 s), and it holds at
    12.6 s, a period after the deploy but not after B saw it."""
    railway.services["svc-1"].replicas = 4

    async def scenario() -> None:
        clock = harness.Clock()
        railway.clock = clock.wall  # Railway's deployment times on the test's clock
        shared = harness.objects(railway.url)  # what the API server holds
        a = harness.Leader(railway, clock, objects_=shared)
        b = None
        try:
            await a.poll()
            railway.refuse_every, railway.retry_after = 1, 2
            clock.seconds = 0.5
            await a.poll()  # 429: the token paused for 2 s
            railway.refuse_every = 0
            a.pause_after_scale = True
            await a.decide(cpu=95.0)
            assert [m["replicas"] for m in harness.mutations(railway)] == [5] and clock.seconds == 2.5
            assert "lastScaleTime" not in (shared[harness.KEY].get("status") or {}), "A's record was written"
            clock.seconds = 3
            b = harness.Leader(railway, clock, objects_=shared)
            await b.poll()
            clock.seconds = 5
            await b.decide(cpu=95.0)
            clock.seconds = 11
            await b.decide(cpu=95.0)
            assert [m["replicas"] for m in harness.mutations(railway)] == [5], "B counted A's step from its decision"
            clock.seconds = 12.6
            await b.decide(cpu=95.0)
            assert [m["replicas"] for m in harness.mutations(railway)] == [5], "B counted it from Railway's deployment"
            clock.seconds = 13.1
            await b.decide(cpu=95.0)
            assert [m["replicas"] for m in harness.mutations(railway)] == [5, 6], "B counted it from its first decision"
        finally:
            await a.close()
            if b is not None:
                await b.close()
    asyncio.run(scenario())


def test_a_stand_down_forgets_when_this_replica_saw_railways_services(railway) -> None:  # noqa: ANN001
    """Railway is polled only while leading: what the world keeps of a service after a
    stand-down is a past term's, and a next term's first scaling round (before its first poll)
    would time a step by it. The stamp is dropped when polling stops, and the next poll stamps
    the service anew even if nothing changed."""
    async def scenario() -> None:
        clock = harness.Clock()
        leader = harness.Leader(railway, clock)
        try:
            await leader.poll()
            [key] = [k for k in leader.view.world.workloads if k[1] == "Railway"]
            assert leader.view.world.workloads[key].changed_at == clock.now()
            clock.seconds = 7
            polling = asyncio.ensure_future(leader.watcher.run())
            await asyncio.sleep(0)
            polling.cancel()  # a stand-down cancels the poll loop
            with contextlib.suppress(asyncio.CancelledError):
                await polling
            assert leader.view.world.workloads[key].changed_at is None
            clock.seconds = 9
            await leader.poll()
            assert leader.view.world.workloads[key].changed_at == clock.now(), "a past term's stamp kept"
        finally:
            await leader.close()
    asyncio.run(scenario())
