"""Partial Railway answers (issue 26: a fault kind the soak had not injected): an answer cut off
mid-body, one reset after its headers, JSON cut short, `errors` alone in a 200, `data` with a
field null beside `errors`. Each is a typed error of the real client (a poll takes none of it
in; a mutation's effect is unknown, never "not executed"); through the operator's Railway path
a partial poll decides no scale, and a partial answer to a scale is no step made, is not sent
again within the step's period, counts from when the failure came back (the latest it could
have landed), and says so in a condition with a reason.

Against the local Railway on loopback (`localcluster/railway.py`, `partial_kind`)."""

from __future__ import annotations

import asyncio
import datetime

import pytest

from controller import reasons
from controller.adapters import egress
from controller.adapters import railway as railway_adapter
from localcluster import hostile
from localcluster import railway as railway_sim
from tests.unit import railway_scaling as harness

KINDS = railway_sim.PARTIAL_KINDS


def call(simulator: railway_sim.RailwaySimulator, what: str) -> object:
    async def go() -> object:
        http = egress.GuardedClient(True)
        client = railway_adapter.RailwayClient(simulator.url, "t0ken", http)
        try:
            if what == "poll":
                return await client.poll("env-1", "svc-1", datetime.datetime.now(datetime.timezone.utc))
            return await client.set_replicas("env-1", "svc-1", simulator.services["svc-1"].replicas + 1)
        finally:
            await http.close()
    return asyncio.run(go())


@pytest.mark.parametrize("what", ["poll", "scale"])
@pytest.mark.parametrize("kind", KINDS)
def test_each_partial_answer_is_a_typed_error_of_the_client(railway, kind: str, what: str) -> None:  # noqa: ANN001
    railway.partial_every, railway.partial_kind = 1, kind
    with pytest.raises(railway_adapter.RailwayError) as raised:
        call(railway, what)
    error = raised.value
    if kind != "errors-only":  # `errors` alone is Railway's own error, its text as given
        assert isinstance(error, railway_adapter.RailwayPartialAnswer), (kind, error)
        assert str(error).startswith("Railway's answer was partial: "), str(error)
    assert error.executed is None, "a partial answer is never 'certainly not executed'"
    assert len(railway.requests) == 1 and railway.requests[0]["answer"] == kind, "sent once, never retried"
    assert railway.invalid == []
    if what == "scale":  # what Railway did with it: executed unless refused before (or the field that failed)
        executed = kind in ("cut-body", "reset-after-headers", "truncated-json")
        assert railway.services["svc-1"].replicas == (2 if executed else 1), kind


def test_a_partial_answer_leaves_the_next_whole_one_readable(railway) -> None:  # noqa: ANN001
    """A connection cut mid-answer is not reused: the next request is answered whole."""
    railway.partial_every, railway.partial_kind = 2, "reset-after-headers"
    instance, _ = call(railway, "poll")  # type: ignore[misc]
    with pytest.raises(railway_adapter.RailwayPartialAnswer):
        call(railway, "poll")
    again, usage = call(railway, "poll")  # type: ignore[misc]
    assert again == instance and usage.cpu == 40.0
    assert [r["answer"] for r in railway.requests] == ["ok", "reset-after-headers", "ok"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_partial_poll_decides_no_scale_and_says_why(railway, kind: str) -> None:  # noqa: ANN001
    async def scenario(leader: harness.Leader, clock: harness.Clock) -> None:
        await leader.poll()
        assert leader.condition(reasons.READY, harness.MSVC)["reason"] == reasons.TARGET_FOUND
        clock.seconds = 11
        railway.partial_every, railway.partial_kind = 1, kind
        await leader.poll()
        ready = leader.condition(reasons.READY, harness.MSVC)
        assert (ready["status"], ready["reason"]) == ("False", reasons.RAILWAY_UNAVAILABLE), ready
        assert ("partial" in ready["message"]) or kind == "errors-only", ready["message"]
        await leader.decide(cpu=95.0)
        assert harness.mutations(railway) == [], "a scale decided on a partial read"
        railway.partial_every = 0
        clock.seconds = 12
        await leader.poll()
        await leader.decide(cpu=95.0)
        assert [m["replicas"] for m in harness.mutations(railway)] == [2]
    harness.run(railway, scenario)


@pytest.mark.parametrize("kind", KINDS)
def test_a_partial_answer_to_a_scale_is_no_step_made_and_is_not_sent_again(railway, kind: str) -> None:  # noqa: ANN001
    """Decided at 0 s, the scale's answer partial at 4 s (the call took 4 s): a Warning and
    AbleToScale False FailedRescale; the step counts from 4 s, so the round at 10 s (6 s after
    Railway may have applied it) sends nothing, the one at 14.5 s steps once."""
    async def scenario(leader: harness.Leader, clock: harness.Clock) -> None:
        await leader.poll()
        railway.partial_every, railway.partial_kind = 1, kind
        await leader.decide(cpu=95.0)
        assert len(harness.mutations(railway)) == 1
        assert clock.seconds == 4.0
        able = leader.condition(reasons.ABLE_TO_SCALE)
        assert (able["status"], able["reason"]) == ("False", reasons.FAILED_RESCALE), able
        assert [reason for reason, _ in leader.events] == [reasons.FAILED_RESCALE]
        assert leader.status()["lastDecision"]["actuated"] is False, "a partial answer counted as a step made"
        assert leader.scale_events() == [(1, 2)], "its possible step counts (it may have been executed)"
        assert leader.status()["scaleEvents"][0]["time"] == "2026-12-06T05:32:04Z", "counted from its decision, not its failure"
        railway.partial_every = 0
        clock.seconds = 5
        await leader.poll()  # whole again: shows what Railway did
        clock.seconds = 10
        await leader.decide(cpu=95.0)
        assert len(harness.mutations(railway)) == 1, "sent again 6 s after it may have landed"
        clock.seconds = 14.5
        await leader.decide(cpu=95.0)
        assert len(harness.mutations(railway)) == 2
        assert leader.condition(reasons.ABLE_TO_SCALE)["status"] == "True"
    harness.run(railway, scenario, scale_seconds=4.0)


@pytest.mark.parametrize("body", [
    b'{"data": {"serviceInstance": null}, "errors": [{"message": "token t0ken is not valid here"}]}',
    b'{"errors": [{"message": "Bearer t0ken refused"}]}',
])
def test_railways_words_never_carry_the_token(body: bytes) -> None:
    """A failed scale's text goes into AbleToScale, a Warning Event and the log: whatever
    Railway echoes, the token is cut out of it."""
    server = hostile.HostileServer(hostile.http_reply(body))

    async def go() -> None:
        http = egress.GuardedClient(True)
        try:
            await railway_adapter.RailwayClient(f"http://127.0.0.1:{server.port}/graphql", "t0ken", http).set_replicas(
                "env-1", "svc-1", 3)
        finally:
            await http.close()
    try:
        with pytest.raises(railway_adapter.RailwayError) as raised:
            asyncio.run(go())
    finally:
        server.close()
    assert "t0ken" not in str(raised.value) and "[token]" in str(raised.value), str(raised.value)


def test_a_step_whose_outcome_is_unknown_does_not_loosen_the_other_way(railway) -> None:  # noqa: ANN001
    """A step up answered `null-data` (its redeploy never ran: Railway still runs 4) holds
    further steps up for its period, and does not let a step down right after it go two pods
    (counted as made, it would read the period's start as 3 and allow 2)."""
    railway.services["svc-1"].replicas = 4

    async def scenario(leader: harness.Leader, clock: harness.Clock) -> None:
        await leader.poll()
        railway.partial_every, railway.partial_kind = 1, "null-data"
        await leader.decide(cpu=95.0)
        railway.partial_every = 0
        clock.seconds = 3
        await leader.poll()
        await leader.decide(cpu=5.0)
        assert [(m["replicas"], m["answer"]) for m in harness.mutations(railway)] == [(5, "null-data"), (3, "ok")]
        assert railway.services["svc-1"].replicas == 3
    harness.run(railway, scenario)
