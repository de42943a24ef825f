"""State kept for deleted objects is pruned, and a name recreated is a new object (issue 21):
the guard's probe history and rollout verdicts die with their object (by uid), and the view's
parsed spec is never another object's."""

from __future__ import annotations

import asyncio
import copy
import itertools
import typing

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from controller.api import monitoredservice as api
from controller.core import health
from controller.operator import guard as guard_module
from controller.operator import loop
from controller.operator import per_object
from controller.operator import view as view_module

NAMESPACE = "shop"
VERSIONS = itertools.count(1)  # etcd's resourceVersions only grow, across objects too


def service(name: str, uid: str, interval: int = 10) -> dict[str, typing.Any]:
    return {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
            "metadata": {"namespace": NAMESPACE, "name": name, "generation": 1, "uid": uid,
                         "resourceVersion": str(next(VERSIONS))},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": name}},
                     "healthChecks": [{"name": "http", "intervalSeconds": interval,
                                       "http": {"url": f"http://{name}.shop.svc:8080/health", "timeoutSeconds": 1}}]}}


def deployment(name: str) -> dict[str, typing.Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"namespace": NAMESPACE, "name": name, "generation": 1, "uid": f"d-{name}",
                         "annotations": {"deployment.kubernetes.io/revision": "3"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}}},
            "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}}


class Failing:
    """Every probe fails: a service with a long history of failures."""

    async def probe(self, check: api.HttpCheck) -> health.ProbeResult:
        return health.ProbeResult(False, None, "connection refused")


class NoEvents:
    def create_event(self, obj: typing.Any, event: typing.Any, now: typing.Any) -> None:
        pass


class DeploymentsOnly:
    errors = (RuntimeError,)

    def supports(self, kind: str) -> bool:
        return kind == "Deployment"

    async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str:
        raise AssertionError("nothing rolls back here")


async def no_metrics(*_: typing.Any) -> dict:
    return {}


def guard_over(view: view_module.View) -> guard_module.Guard:
    evaluator = loop.Evaluator(view, NoEvents(), 60.0, 4)  # type: ignore[arg-type]
    return guard_module.Guard(view, evaluator, Failing(), DeploymentsOnly(), no_metrics)  # type: ignore[arg-type]


def probe_all(guard: guard_module.Guard, times: int) -> None:
    async def run() -> None:
        for key in list(guard.view.of_kind("MonitoredService")):
            spec = guard.view.valid(key, api.MonitoredServiceSpec)
            assert spec is not None
            for _ in range(times):
                await guard._probe(key, spec.healthChecks[0], 0.0)
    asyncio.run(run())


def test_a_service_recreated_under_its_name_inherits_no_probe_history_nor_verdict() -> None:
    key = ("MonitoredService", NAMESPACE, "web")
    for missed_delete in (False, True):  # seen deleted, or deleted while the watch was broken
        view = view_module.View()
        view.upsert(deployment("web"))
        old = service("web", "uid-old")
        view.upsert(old)
        guard = guard_over(view)
        probe_all(guard, 5)
        asyncio.run(guard.rollout_round())
        assert guard.services[key].states["http"].healthy is False and len(guard.services[key].outcomes) == 5
        assert key in guard.verdicts
        if not missed_delete:
            view.remove(old)
        view.upsert(service("web", "uid-new"))  # the same name, another object
        assert guard.services.get(key) is None, "no probe history from the old object"
        assert guard.verdicts.get(key) is None, "no rollout verdict from the old object"
        assert guard.burn_rate(NAMESPACE, "web", "burnRate", 3600, 300) is None
        contribution = guard.contribute(key, {})
        assert contribution is None or "health" not in contribution[0]
        probe_all(guard, 1)
        assert len(guard.services[key].outcomes) == 1, "history starts with the new object"


def test_state_returns_to_zero_once_every_service_is_deleted() -> None:
    view = view_module.View()
    objects = [service(f"s{index}", f"uid-{index}") for index in range(40)]
    for obj in objects:
        view.upsert(deployment(obj["metadata"]["name"]))
        view.upsert(obj)
    guard = guard_over(view)
    probe_all(guard, 3)
    asyncio.run(guard.rollout_round())
    assert len(guard.services) == 40 and len(guard.verdicts) == 40
    for obj in objects:
        view.remove(obj)
    asyncio.run(guard.rollout_round())  # the guard's 2 s tick prunes
    assert held(guard.services) == 0 and held(guard.verdicts) == 0


def held(state: typing.Any) -> int:
    """Entries in memory, stale ones included (a plain dict on the old code holds them all)."""
    return state.stored() if isinstance(state, per_object.PerObject) else len(state)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["put", "delete", "recreate", "set", "prune"]),
                          st.sampled_from(["a", "b", "c"])), max_size=40))
def test_per_object_state_is_never_another_objects(steps: list[tuple[str, str]]) -> None:
    """Whatever happens to objects, an entry is never read for an object other than the one
    (uid) it was written for, and prune() keeps exactly the entries of objects still there."""
    view = view_module.View()
    state: per_object.PerObject[int] = per_object.PerObject(view)
    written: dict[view_module.Key, str | None] = {}  # key -> uid the view held when it was written
    uids = 0
    for action, name in steps:
        key = ("MonitoredService", NAMESPACE, name)
        if action in ("put", "recreate") and (action == "recreate" or key not in view.objects):
            uids += 1
            view.upsert(service(name, f"u{uids}"))
        if action == "delete" and key in view.objects:
            view.remove(copy.deepcopy(view.objects[key]))
        if action == "set":
            state[key] = uids
            written[key] = per_object.uid_of(view, key)
        if action == "prune":
            state.prune()
            assert state.stored() == sum(1 for k, uid in written.items()
                                         if uid is not None and per_object.uid_of(view, k) == uid)
        for other in [("MonitoredService", NAMESPACE, n) for n in "abc"]:
            current = per_object.uid_of(view, other)
            if current is not None and other in state:
                assert written[other] == current, "read for another object than it was written for"
    for obj in list(view.objects.values()):
        view.remove(copy.deepcopy(obj))
    state.prune()
    assert len(state) == 0 and state.stored() == 0


def test_the_views_parsed_spec_is_never_a_previous_objects() -> None:
    """A recreated object of the same name and generation (a delete the watch missed) is parsed
    afresh: the old spec would carry the old object's checks and targets."""
    view = view_module.View()
    view.upsert(service("web", "uid-old", interval=10))
    key = ("MonitoredService", NAMESPACE, "web")
    assert view.valid(key, api.MonitoredServiceSpec).healthChecks[0].intervalSeconds == 10  # type: ignore[union-attr]
    view.upsert(service("web", "uid-new", interval=30))
    assert view.valid(key, api.MonitoredServiceSpec).healthChecks[0].intervalSeconds == 30  # type: ignore[union-attr]


# -- the Railway token cache belongs to the objects it was read for ---------------------------

class Secrets:
    """The API's secret_value over a dict: (namespace, name, key) -> value; counts reads."""

    def __init__(self, values: dict[tuple[str, str, str], str]) -> None:
        self.values, self.reads = values, 0

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        self.reads += 1
        return self.values.get((namespace, name, key))


def railway_service(name: str, uid: str) -> dict[str, typing.Any]:
    return {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
            "metadata": {"namespace": NAMESPACE, "name": name, "generation": 1, "uid": uid,
                         "resourceVersion": str(next(VERSIONS))},
            "spec": {"target": {"railway": {"projectId": "p", "environmentId": "env-1", "serviceId": "svc-1",
                                            "tokenSecretRef": {"name": "railway", "key": "token"},
                                            "endpoint": "https://railway.example/graphql"}}}}


def test_a_railway_token_is_forgotten_with_the_objects_it_was_read_for() -> None:
    from controller.operator import railway as railway_module

    view = view_module.View()
    secrets = Secrets({(NAMESPACE, "railway", "token"): "old-tenants-token"})
    evaluator = loop.Evaluator(view, NoEvents(), 60.0, 4)  # type: ignore[arg-type]
    watcher = railway_module.RailwayWatcher(view, evaluator, secrets, "https://railway.example/graphql")  # type: ignore[arg-type]
    used: list[str | None] = []

    async def ask(binding: typing.Any, token: tuple[str | None, str | None]) -> str:
        used.append(token[0])
        return "not asked: a test"

    watcher._ask = ask  # type: ignore[method-assign]

    async def scenario() -> None:
        old = railway_service("api", "uid-old")
        view.upsert(old)
        await watcher.poll()
        await watcher.poll()
        assert secrets.reads == 1, "kept between polls while its object lives"
        # The namespace is deleted and made again (by someone else): same names, new objects.
        view.remove(old)
        secrets.values[(NAMESPACE, "railway", "token")] = "new-tenants-token"
        view.upsert(railway_service("api", "uid-new"))
        await watcher.poll()
        view.remove(view.objects[("MonitoredService", NAMESPACE, "api")])
        await watcher.poll()
        await watcher.close()

    asyncio.run(scenario())
    assert used == ["old-tenants-token", "old-tenants-token", "new-tenants-token"]
    assert watcher._tokens == {}, "nothing kept once no object names the Secret"


# -- what is known of Secrets goes with the last object naming them ----------------------------

class SecretKeys(NoEvents):
    def secret_keys(self, namespace: str, name: str) -> frozenset[str] | None:
        return frozenset({"token"})


def test_secrets_no_object_names_are_forgotten() -> None:
    view = view_module.View()
    evaluator = loop.Evaluator(view, SecretKeys(), 60.0, 4)  # type: ignore[arg-type]
    objects = [railway_service(f"api-{index}", f"uid-{index}") for index in range(3)]
    for index, obj in enumerate(objects):
        obj["spec"]["target"]["railway"]["tokenSecretRef"]["name"] = f"railway-{index}"
        view.upsert(obj)
    asyncio.run(evaluator._refresh_secrets(list(view.objects)))
    assert len(view.world.secrets) == 3
    view.remove(objects[0])
    evaluator.prune_secrets()
    assert set(view.world.secrets) == {(NAMESPACE, "railway-1"), (NAMESPACE, "railway-2")}, "still named: kept"
    for obj in objects[1:]:
        view.remove(obj)
    evaluator.prune_secrets()
    assert view.world.secrets == {} and evaluator._secrets_fetched == {}


def test_an_alert_policy_made_again_under_its_name_inherits_no_alerts_nor_deliveries() -> None:
    from controller.operator import alerter as alerter_module

    view = view_module.View()
    old = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "AlertPolicy",
           "metadata": {"namespace": NAMESPACE, "name": "pager", "uid": "uid-old", "resourceVersion": str(next(VERSIONS))},
           "spec": {}}
    view.upsert(old)
    evaluator = loop.Evaluator(view, NoEvents(), 60.0, 4)  # type: ignore[arg-type]
    alerter = alerter_module.Alerter(view, evaluator, None, None, {})  # type: ignore[arg-type]
    key = ("AlertPolicy", NAMESPACE, "pager")
    alerter.state[key] = {"alerts": [{"rule": "Down", "state": "Firing"}],
                          "deliveries": [{"key": "k1", "channel": "pager", "outcome": "Pending"}]}
    assert alerter.contribute(key, {}) is not None
    view.upsert({**old, "metadata": {**old["metadata"], "uid": "uid-new", "resourceVersion": str(next(VERSIONS))}})
    assert alerter.contribute(key, {}) is None and alerter.state.get(key) is None


def test_a_scaling_policy_made_again_under_its_name_inherits_no_decision_window_or_cooldown() -> None:
    from controller.operator import scaler as scaler_module

    view = view_module.View()
    old = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy",
           "metadata": {"namespace": NAMESPACE, "name": "web", "uid": "uid-old", "resourceVersion": str(next(VERSIONS))},
           "spec": {}}
    view.upsert(old)
    evaluator = loop.Evaluator(view, NoEvents(), 60.0, 4)  # type: ignore[arg-type]
    scaler = scaler_module.Scaler(view, evaluator, None, None, None)  # type: ignore[arg-type]
    key = ("ScalingPolicy", NAMESPACE, "web")
    record, state = object(), object()
    scaler.records[key], scaler.memory[key] = record, state  # type: ignore[assignment]
    scaler.unsupported[key] = "old reason"
    assert scaler.records.get(key) is record and scaler.memory.get(key) is state
    view.upsert({**old, "metadata": {**old["metadata"], "uid": "uid-new", "resourceVersion": str(next(VERSIONS))}})
    assert scaler.records.get(key) is None and scaler.memory.get(key) is None and key not in scaler.unsupported
    assert scaler.contribute(key, {}) is None, "the new object's status starts empty"


def test_snapshots_and_probe_records_are_per_object_too() -> None:
    from controller.operator import probes as probes_module
    from controller.operator import snapshots as snapshots_module

    view = view_module.View()
    old = service("web", "uid-old")
    view.upsert(old)
    evaluator = loop.Evaluator(view, NoEvents(), 60.0, 4)  # type: ignore[arg-type]
    snapshots = snapshots_module.Snapshots(view, evaluator, no_metrics)
    probe_manager = probes_module.ProbeManager(view, evaluator, None)  # type: ignore[arg-type]
    key = ("MonitoredService", NAMESPACE, "web")
    snapshots.readings[key] = object()  # type: ignore[assignment]
    probe_manager.applied[key] = probes_module.Applied(3, {"appliedGeneration": 3})
    probe_manager.failures[key] = probes_module.Failure(0.0, "old failure")
    view.upsert(service("web", "uid-new"))
    assert snapshots.contribute(key, {}) is None
    assert probe_manager.applied.get(key) is None and probe_manager.failures.get(key) is None


# -- a search: no new per-object map keyed by name alone ---------------------------------------

# Maps and sets keyed by an object's key that are NOT PerObject, each with why that is safe.
KEYED_BY_NAME_ON_PURPOSE = {
    "view.py:objects": "the view itself: what holds the uid",
    "view.py:_parsed": "cached by (uid, generation)",
    "view.py:_references": "rebuilt on every upsert, dropped on remove",
    "per_object.py:_items": "PerObject's own storage, with the uid",
    "loop.py:dirty": "keys to judge: judging a new object of the name is right",
    "loop.py:_writing": "a status write of that name in flight (its lock), discarded when the last ends",
    "object_metrics.py:_cache": "cached by resourceVersion, which a new object never shares",
    "scaler.py:next_due": "timing only (read every tick for every policy: kept a dict for speed)",
    "probes.py:_applying": "an apply in flight for that name, discarded when it ends",
    "alerter.py:_writing": "a policy's outbox write and sends in flight, discarded when they end",
    "guard.py:_scheduled": "a check's place in the schedule; its probes go to PerObject state",
    "guard.py:_in_flight": "a probe in flight for that check, discarded when it ends",
    "railway.py:_targets": "rebuilt from the view at every poll",
}


def test_no_per_object_state_is_keyed_by_name_alone() -> None:
    """Every map or set of the operator layer keyed by an object's key is PerObject, or listed
    above with the reason a recreated name cannot inherit anything through it."""
    import pathlib
    import re

    declared = re.compile(r"self\.(\w+): (?:dict|set)\[(?:tuple\[)?(?:view_module\.)?Key\b")
    root = pathlib.Path(per_object.__file__).parent
    found = {f"{path.name}:{match.group(1)}" for path in sorted(root.glob("*.py"))
             for match in declared.finditer(path.read_text())}
    assert found - set(KEYED_BY_NAME_ON_PURPOSE) == set(), "keep it in a PerObject, or say here why not"
