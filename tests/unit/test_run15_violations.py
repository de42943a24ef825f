"""Run 15's scaling and rollback violations (issue 26, docs/reliability.md §18), replayed with
the run's own timings from its audit log and the replicas' logs.

Scaling: both double steps were an intent left without its record whose scale landed seconds
after its decision because etcd was down, counted by the next leader from its decision.
- soak-7-1/w5: replica a decided 5 -> 6 at 08:26:05.1 (intent written), its scale was received
  at 06.6 and landed at 15.8 (etcd restart, back after 10.4 s); a lost the Lease at 08.8 (its
  record never written); replica b became the leader at 16.8 and stepped 6 -> 7 at 17.1:
  1.3 s after the first step landed, 12.0 s after its decision.
- soak-7-1/w6 and w13: replica a decided 4 -> 3 (and 7 -> 6) at 08:29:12.1 (11.7), the scales
  were received at 13.3-13.6 and landed at 20.1 (etcd restart); a's term ended at 17.8 (no
  renewal within 4 s), the record refused; a's next term began at 23.0 (a term's memory is
  cleared when it ends: handlers._leader_state, so a new term reads status as a successor
  does) and stepped again at 23.4-23.6: 3.5 s after the first steps landed.

The fixed code (ddd47ec: an unconfirmed intent counts from the successor's first read; 970ec02:
or from the managedFields stamp of the scale subresource's write) holds both; 80a3eca's
counted the intent from its decision and stepped.

Rollback: soak-7-3/w2 (bad-1 at revision 2, rolled back to revision 3, bad-9 at revision 4):
the guard rolled back 4 -> 3 at 08:50:02.8 and issued it again every 2 s while the Deployment's
revision annotation still said 4 (the deployment controller, slow, wrote it only at 08:50:15);
at 08:50:08.3 the controller had renumbered the restored ReplicaSet 3 -> 5, so the fourth
rollback (09.1) took the newest revision older than 4, revision 2: the failed bad-1 template."""

from __future__ import annotations

import asyncio
import copy
import typing

import kubernetes

from controller.adapters import kubernetes_rollback as rb
from tests.unit import test_step_limit_landing as landing
from tests.unit import test_step_limit_takeover as takeover

at = landing.at


class StampingLeader(landing.SlowLeader):
    """The predecessor's scale as the API server records it: the scale subresource's
    managedFields entry for spec.replicas, stamped (whole seconds) when the write landed."""

    async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        written = await super().set_replicas(kind, namespace, name, replicas)
        deployment = self.server.objects[("Deployment", takeover.NS, "w2")]
        deployment["metadata"]["managedFields"] = [
            {"manager": "capliquify-operator", "operation": "Update", "subresource": "scale",
             "time": self.now.strftime("%Y-%m-%dT%H:%M:%SZ"), "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {"f:replicas": {}}}}]
        return written


def _replay(landed_after: float, takeover_at: float, steps_at: typing.Sequence[float], stamped: bool) -> None:
    """A decides at 0 s; its scale lands `landed_after` s later and A acts no more (its record is
    never written); B (another replica, or A's next term) decides at each of `steps_at`: it must
    hold until a period (10 s) after the step landed."""
    async def scenario() -> None:
        server = takeover.Server(6)
        a = (StampingLeader if stamped else landing.SlowLeader)(server, takeover.T0, slow=landed_after)
        a.pause_after_scale = True
        await a.decide()
        assert server.scales == [(6, 7)]
        assert "lastScaleTime" not in (server.objects[takeover.KEY].get("status") or {}), "the record was written"
        server.paused = False
        b = takeover.Leader(server, at(takeover_at))
        for when in steps_at:
            b.now = at(when)
            await b.decide()
            assert server.scales == [(6, 7)], (
                f"stepped at {when} s, {when - landed_after:.1f} s after the first step landed")
        b.now = at(max(landed_after, steps_at[0]) + 10.5)  # a period after the landing and B's first read
        await b.decide()
        assert server.scales == [(6, 7), (7, 8)], "held past the period"
    asyncio.run(scenario())


def test_run15_w5_a_successor_holds_a_step_etcd_delayed() -> None:
    """soak-7-1/w5: landed 10.7 s after its decision, b leads at 11.7 s and decides at 12.0 s."""
    for stamped in (False, True):
        _replay(10.7, 11.7, [12.0, 16.0], stamped)


def test_run15_w6_w13_a_new_term_of_the_same_replica_holds_its_last_terms_step() -> None:
    """soak-7-1/w6 (w13 alike): landed 8.0 s after its decision, the term ended at 5.7 s, the
    next term leads at 10.9 s and decides at 11.3 s."""
    for stamped in (False, True):
        _replay(8.0, 10.9, [11.3, 15.0], stamped)


# -- the rollback ------------------------------------------------------------------------------

UID = "w2-uid"
ORIGINAL, BAD_1, BAD_9 = "soak:ok", "soak:bad-1", "soak:bad-9"


def _template(image: str, hash_: str | None = None) -> dict[str, typing.Any]:
    labels = {"app": "w2", **({"pod-template-hash": hash_} if hash_ else {})}
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": image}]}}


class DeploymentController:
    """The apps API over soak-7-3/w2 as it stood at 08:50:02 (ReplicaSets: bad-1 at revision 2,
    the original at 3, bad-9 at 4, current), and the deployment controller's two steps after a
    template change, run by `controller_step()`: first the ReplicaSet of the new template gets
    the next revision (its own write), then the Deployment's annotation follows (a status write
    seconds later in run 15)."""

    def __init__(self) -> None:
        self.replica_sets = {image: {"metadata": {"name": f"w2-{image[5:]}", "ownerReferences": [{"uid": UID}],
                                                  "annotations": {rb.REVISION: revision}},
                                     "spec": {"template": _template(image, f"h-{image[5:]}")}}
                             for image, revision in ((BAD_1, "2"), (ORIGINAL, "3"), (BAD_9, "4"))}
        self.stored = {"metadata": {"name": "w2", "namespace": "soak-7-3", "uid": UID, "resourceVersion": "100",
                                    "annotations": {rb.REVISION: "4"}},
                       "spec": {"selector": {"matchLabels": {"app": "w2"}}, "template": _template(BAD_9)}}
        self.images: list[str] = []  # each template the Deployment was patched to

    def image(self) -> str:
        return str(self.stored["spec"]["template"]["spec"]["containers"][0]["image"])

    def controller_step(self) -> None:
        current = self.replica_sets[self.image()]
        latest = max(int(rs["metadata"]["annotations"][rb.REVISION]) for rs in self.replica_sets.values())
        if current["metadata"]["annotations"][rb.REVISION] != str(latest):
            current["metadata"]["annotations"][rb.REVISION] = str(latest + 1)  # the ReplicaSet first
        else:
            self.stored["metadata"]["annotations"][rb.REVISION] = str(latest)  # then the Deployment

    # -- the apps API the rollback calls ----------------------------------------------------------
    def read_namespaced_deployment(self, name: str, namespace: str, **_: typing.Any) -> dict[str, typing.Any]:
        return copy.deepcopy(self.stored)

    def list_namespaced_replica_set(self, namespace: str, **_: typing.Any) -> dict[str, typing.Any]:
        return {"items": copy.deepcopy(list(self.replica_sets.values()))}

    def patch_namespaced_deployment(self, name: str, namespace: str, patch: list[dict[str, typing.Any]],
                                    **_: typing.Any) -> dict[str, typing.Any]:
        for op in patch:
            if op["op"] == "test":
                parent, leaf = self.stored["metadata"], op["path"].rsplit("/", 1)[1]
                assert parent[leaf] == op["value"], "the test ops hold: nothing else wrote the Deployment"
        for op in patch:
            if op["op"] == "replace" and op["path"] == "/spec/template":
                self.stored["spec"]["template"] = copy.deepcopy(op["value"])
            elif op["op"] == "replace" and op["path"] == "/metadata/annotations":
                self.stored["metadata"]["annotations"] = copy.deepcopy(op["value"])
        self.stored["metadata"]["resourceVersion"] = str(int(self.stored["metadata"]["resourceVersion"]) + 1)
        self.images.append(self.image())
        return copy.deepcopy(self.stored)


def test_run15_a_repeated_rollback_never_puts_back_an_older_failed_revision() -> None:
    """The guard issues the rollback of revision 4 every 2 s until the Deployment's revision
    changes (core/rollout.py: pendingRollback); the deployment controller renumbers the
    restored ReplicaSet before it updates the Deployment's annotation. Run 15: rolled back
    4 -> 3, 4 -> 3, 4 -> 3, then 4 -> 2 (bad-1 current again); the Deployment must stay on the
    original template whatever the order."""
    api = DeploymentController()
    target = rb.KubernetesRollback(kubernetes.client.ApiClient(), on_write=lambda verb: None)
    target._apps = api  # type: ignore[assignment]
    answers = [target.rollback("soak-7-3", "w2", "4")]
    assert answers == ["3"] and api.image() == ORIGINAL
    answers.append(target.rollback("soak-7-3", "w2", "4"))  # the controller has not acted yet
    api.controller_step()  # the original's ReplicaSet: revision 3 -> 5; the Deployment still says 4
    answers.append(target.rollback("soak-7-3", "w2", "4"))
    assert api.image() == ORIGINAL, f"rolled back to bad-1: answers {answers}, templates {api.images}"
    assert answers == ["3", "", ""], "a rollback already made is not made again"
    api.controller_step()  # the Deployment's annotation: 5
    assert target.rollback("soak-7-3", "w2", "4") == ""
    assert api.images == [ORIGINAL]


def test_runs_revision_reads_the_template_not_the_annotation() -> None:
    api = DeploymentController()
    replica_sets = list(api.replica_sets.values())
    assert rb.runs_revision(api.stored, replica_sets, "4"), "bad-9's template, hash label aside"
    assert not rb.runs_revision(api.stored, replica_sets, "3")
    assert rb.runs_revision(api.stored, replica_sets, "7"), "no ReplicaSet of that revision: nothing says otherwise"
    foreign = copy.deepcopy(replica_sets)
    for rs in foreign:
        rs["metadata"]["ownerReferences"] = [{"uid": "another"}]
    assert rb.runs_revision(api.stored, foreign, "3"), "another Deployment's ReplicaSets say nothing"
