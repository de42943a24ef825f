"""What b27d6dd left (issue 26, docs/reliability.md §17): a leader stopped between its scale and
its record leaves its intent in status, stamped at the decision, for its successor; the scale
may have landed up to the call's latency later, so counting the intent from its decision let
the successor step within the period of a step that landed late. A successor cannot read when
it landed on its own clock (status keeps the intent; managedFields and Railway's createdAt are
other clocks'), so it counts such an intent, one no record confirmed (newer than lastScaleTime,
not its own), as landed when it first saw the workload run the intent's count (a standby's watch
event or poll) or else first read it, at the latest LANDING_BOUND after its decision (no scale
call lands later: the API server's request timeout).

The scaler over the fake API server of test_step_limit_takeover.py."""

from __future__ import annotations

import asyncio
import copy
import datetime

from controller.core import scaling
from controller.core import scaling_status
from tests.unit import test_step_limit_landing as landing
from tests.unit import test_step_limit_takeover as takeover

at = landing.at


def test_a_successor_counts_an_intent_left_without_its_record_from_its_first_read() -> None:
    """A decides at 0 s; its scale takes 4 s and A is stopped right after it (no record). B
    first reads status at 5 s and holds; at 10 s it still holds (5 s after its first read, 6 s
    after the scale landed); at 15.5 s it steps."""
    async def scenario() -> None:
        server = takeover.Server(6)
        a = landing.SlowLeader(server, takeover.T0, slow=4.0)
        a.pause_after_scale = True
        await a.decide()
        assert server.scales == [(6, 7)]
        assert "lastScaleTime" not in (server.objects[takeover.KEY].get("status") or {}), "the record was written"
        server.paused = False
        b = takeover.Leader(server, at(5))
        await b.decide()
        assert server.scales == [(6, 7)]
        b.now = at(10)
        await b.decide()
        assert server.scales == [(6, 7)], "B stepped 6 s after A's scale landed"
        b.now = at(15.5)
        await b.decide()
        assert server.scales == [(6, 7), (7, 8)]
    asyncio.run(scenario())


def test_an_old_intent_without_its_record_holds_nothing_past_the_landing_bound() -> None:
    """An intent decided long ago (its leader stopped, no record since) landed within
    LANDING_BOUND of its decision, if at all: a successor reading it a period after that steps
    at once (not a period after its first read)."""
    async def scenario() -> None:
        server = takeover.Server(6)
        a = takeover.Leader(server, takeover.T0, pause_after_scale=True)
        await a.decide()
        server.paused = False
        b = takeover.Leader(server, at(scaling_status.LANDING_BOUND.total_seconds() + 11))
        await b.decide()
        assert server.scales == [(6, 7), (7, 8)]
    asyncio.run(scenario())


def test_a_confirmed_step_is_counted_from_its_record_not_from_a_successors_first_read() -> None:
    """A's record says when its step landed (4 s): B, first reading at 10 s, holds only until
    14 s (not until 20 s from its first read)."""
    async def scenario() -> None:
        server = takeover.Server(6)
        await landing.SlowLeader(server, takeover.T0, slow=4.0).decide()
        b = takeover.Leader(server, at(10))
        await b.decide()
        assert server.scales == [(6, 7)]
        b.now = at(15)
        await b.decide()
        assert server.scales == [(6, 7), (7, 8)]
    asyncio.run(scenario())


def test_unconfirmed_names_the_intents_no_record_followed() -> None:
    status = {"lastScaleTime": "2026-12-06T02:53:30Z",
              "scaleEvents": [{"from": 7, "to": 8, "time": "2026-12-06T02:53:45Z"},
                              {"from": 6, "to": 7, "time": "2026-12-06T02:53:30Z"}]}
    assert [(e.from_replicas, e.to_replicas) for e in scaling_status.unconfirmed(status, None)] == [(7, 8)]
    assert [(e.from_replicas, e.to_replicas) for e in scaling_status.unconfirmed(
        {"scaleEvents": status["scaleEvents"]}, None)] == [(7, 8), (6, 7)]
    mine = scaling.State(observing_since=takeover.T0, events=(scaling.ScaleEvent(
        datetime.datetime(2026, 12, 6, 2, 53, 47, tzinfo=datetime.timezone.utc), 7, 8,
        decided=datetime.datetime(2026, 12, 6, 2, 53, 45, 300000, tzinfo=datetime.timezone.utc)),))
    assert scaling_status.unconfirmed(status, mine) == [], "this replica's own step is not another's intent"


class StampingLeader(landing.SlowLeader):
    """A's scale as the API server records it: the scale subresource's managedFields entry for
    spec.replicas, stamped (whole seconds) when the write landed."""

    async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        written = await super().set_replicas(kind, namespace, name, replicas)
        deployment = self.server.objects[("Deployment", takeover.NS, "w2")]
        deployment["metadata"]["managedFields"] = [
            {"manager": "kubectl-client-side-apply", "operation": "Update", "time": "2026-12-06T02:50:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {}}}},
            {"manager": "capliquify-operator", "operation": "Update", "subresource": "scale",
             "time": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"), "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
        return written


def test_a_warm_standby_times_a_deployments_step_left_without_its_record_by_its_watch_event() -> None:
    """B is standing by (its view fed by watches) when A decides at 0 s; A's scale lands at 3.5 s,
    B's watch brings the Deployment's new count at 3.6 s on B's clock, and A is stopped before
    its record. B first reads the intent at 8 s: it holds at 12 s (not from the decision) and
    steps at 14 s (not 18 s, a period from its first read): its own clock saw the count at 3.6 s."""
    async def scenario() -> None:
        server = takeover.Server(6)
        b = takeover.Leader(server, takeover.T0)  # standing by: a fenced replica never actuates
        a = StampingLeader(server, takeover.T0, slow=3.5)
        a.pause_after_scale = True
        await a.decide()
        assert server.scales == [(6, 7)]
        b.now = at(3.6)
        for watched in (takeover.KEY, ("Deployment", takeover.NS, "w2")):  # B's watch events: A's intent, the count
            b.view.upsert(copy.deepcopy(server.objects[watched]))
        server.paused = False
        b.now = at(8)
        await b.decide()
        b.now = at(12)
        await b.decide()
        assert server.scales == [(6, 7)], "B counted A's step from its decision"
        b.now = at(14)
        await b.decide()
        assert server.scales == [(6, 7), (7, 8)], "B counted A's step from its first read"
    asyncio.run(scenario())


def test_a_cold_successor_times_a_step_left_without_its_record_from_its_first_read_not_the_api_servers_stamp() -> None:
    """The same step, B started after it (its first read of the Deployment at 8 s). The API
    server's managedFields stamp (3 s: by 4 s on the API server's clock) is another clock's,
    whose offset B does not know (test_review_findings 23: 3 s behind, B stepped 8.5 s after
    the step): B counts from its first read, holds at 14.5 s, and steps at 18 s."""
    async def scenario() -> None:
        server = takeover.Server(6)
        a = StampingLeader(server, takeover.T0, slow=3.5)
        a.pause_after_scale = True
        await a.decide()
        assert server.scales == [(6, 7)]
        server.paused = False
        b = takeover.Leader(server, at(8))
        await b.decide()
        b.now = at(14.5)
        await b.decide()
        assert server.scales == [(6, 7)], "B counted A's step from the API server's stamp"
        b.now = at(18)
        await b.decide()
        assert server.scales == [(6, 7), (7, 8)]
    asyncio.run(scenario())


def test_the_view_stamps_a_workload_when_this_replica_first_saw_its_count_on_its_own_clock() -> None:
    """Workload.changed_at: the first event showing the count and generation, on the view's
    clock; a status-only event keeps it; a new count, or a generation moved by a change a
    re-list missed (7 -> 6 -> 7), stamps it again (the newer side); managedFields play no part."""
    now = [at(1)]
    view = takeover.view_module.View(clock=lambda: now[0])
    deployment = copy.deepcopy(takeover.objects(7)[("Deployment", takeover.NS, "w2")])
    deployment["metadata"]["managedFields"] = [
        {"manager": "capliquify-operator", "operation": "Update", "subresource": "scale", "time": "2020-01-01T00:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
    key = (takeover.NS, "Deployment", "w2")

    def seen(**status: int) -> datetime.datetime | None:
        deployment["status"].update(status)
        view.upsert(copy.deepcopy(deployment))
        return view.world.workloads[key].changed_at

    assert seen() == at(1)
    now[0] = at(5)
    assert seen(readyReplicas=6) == at(1), "a status event is no new count"
    deployment["metadata"]["generation"] = 3  # 7 -> 6 -> 7 while the watch was re-listing
    assert seen() == at(5)
    now[0] = at(9)
    deployment["spec"]["replicas"], deployment["metadata"]["generation"] = 8, 4
    assert seen() == at(9)
