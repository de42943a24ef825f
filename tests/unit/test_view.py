from __future__ import annotations

from controller.operator import view as view_module


def obj(kind: str, name: str, rv: str, namespace: str = "shop", metadata_extra=None, **extra) -> dict:  # noqa: ANN001, ANN003
    return {"kind": kind, "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv}, **extra}


def test_stale_event_does_not_replace_newer_object() -> None:
    view = view_module.View()
    assert view.upsert(obj("ScalingPolicy", "web", "10", status={"x": 2}))[1] is True
    assert view.upsert(obj("ScalingPolicy", "web", "9", status={"x": 1}))[1] is False
    assert view.objects[("ScalingPolicy", "shop", "web")]["status"] == {"x": 2}


def test_redelivered_objects_change_nothing() -> None:
    view = view_module.View()
    deployment = obj("Deployment", "web", "5", spec={"replicas": 3}, status={"readyReplicas": 2})
    assert view.upsert(deployment)[1] is True
    assert view.upsert(obj("Deployment", "web", "6", spec={"replicas": 3}, status={"readyReplicas": 2}))[1] is False
    assert view.upsert(obj("Deployment", "web", "7", spec={"replicas": 4}, status={"readyReplicas": 2}))[1] is True
    policy = obj("ScalingPolicy", "web", "8", metadata_extra=None)
    policy["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    assert view.upsert(policy)[1] is True
    assert "managedFields" not in view.objects[("ScalingPolicy", "shop", "web")]["metadata"]
    assert view.upsert(obj("ScalingPolicy", "web", "8"))[1] is False


def test_workloads_and_services_feed_the_world() -> None:
    view = view_module.View()
    view.upsert(obj("Deployment", "web", "1", spec={"replicas": 3}, status={"readyReplicas": 2}))
    view.upsert(obj("MonitoredService", "web", "2"))
    assert view.world.workload("shop", "Deployment", "web").ready_replicas == 2
    assert ("shop", "web") in view.world.monitored_services
    assert view.dependents(("Deployment", "shop", "web")) == set()  # the msvc has no spec here
    view.remove(obj("Deployment", "web", "3"))
    view.remove(obj("MonitoredService", "web", "4"))
    assert view.world.workloads == {} and view.world.monitored_services == {} and view.objects == {}


def test_dependents_are_indexed_not_scanned() -> None:
    view = view_module.View()
    msvc = obj("MonitoredService", "web", "1", spec={"target": {"kubernetes": {"kind": "Deployment", "name": "web"}}})
    other = obj("MonitoredService", "api", "2", spec={"target": {"kubernetes": {"kind": "Deployment", "name": "api"}}})
    via_msvc = obj("ScalingPolicy", "web", "3", spec={"targetRef": {"monitoredService": "web"}})
    direct = obj("ScalingPolicy", "direct", "4", spec={"targetRef": {"kubernetes": {"name": "web"}}})
    by_selector = obj("AlertPolicy", "all", "5", spec={"selector": {"matchLabels": {}}})
    by_ref = obj("AlertPolicy", "api-only", "6", spec={"serviceRef": "api"})
    for item in (msvc, other, via_msvc, direct, by_selector, by_ref):
        view.upsert(item)
    assert view.dependents(("Deployment", "shop", "web")) == {
        ("MonitoredService", "shop", "web"), ("ScalingPolicy", "shop", "web"), ("ScalingPolicy", "shop", "direct"),
        ("AlertPolicy", "shop", "all")}
    assert view.dependents(("MonitoredService", "shop", "api")) == {("AlertPolicy", "shop", "all"),
                                                                   ("AlertPolicy", "shop", "api-only")}
    assert view.dependents(("Deployment", "other-ns", "web")) == set()
    view.remove(direct)
    assert ("ScalingPolicy", "shop", "direct") not in view.dependents(("Deployment", "shop", "web"))


def test_a_relist_forgets_what_was_deleted_during_a_watch_gap() -> None:
    """A watch that lost its place re-lists without DELETED events: reconcile says what is gone."""
    view = view_module.View()
    for name in ("a", "b"):
        view.upsert(obj("ScalingPolicy", name, "1"))
    view.upsert(obj("ScalingPolicy", "c", "1", namespace="other"))
    view.upsert(obj("Deployment", "web", "1", spec={"replicas": 2}))
    changed, removed = view.reconcile("ScalingPolicy", "shop", [obj("ScalingPolicy", "a", "1")])
    assert removed == {("ScalingPolicy", "shop", "b")} and changed == set()
    assert ("ScalingPolicy", "other", "c") in view.objects, "another namespace's list says nothing of it"
    _, removed = view.reconcile("Deployment", None, [])
    assert removed == {("Deployment", "shop", "web")} and not view.world.workloads


def test_objects_are_indexed_by_kind_and_kept_lean() -> None:
    view = view_module.View()
    policy = obj("ScalingPolicy", "web", "1")
    policy["metadata"]["annotations"] = {view_module.LAST_APPLIED: "{...}", "ops.capliquify.io/paused": "true"}
    view.upsert(policy)
    view.upsert(obj("AlertPolicy", "prod", "2"))
    view.upsert(obj("Deployment", "web", "3", spec={"replicas": 1}))
    assert list(view.of_kind("ScalingPolicy")) == [("ScalingPolicy", "shop", "web")]
    assert list(view.of_kind("AlertPolicy")) == [("AlertPolicy", "shop", "prod")]
    assert view.of_kind("MonitoredService") == {} and view.of_kind("Deployment") == {}
    assert view.objects[("ScalingPolicy", "shop", "web")]["metadata"]["annotations"] == {"ops.capliquify.io/paused": "true"}
    view.remove(obj("ScalingPolicy", "web", "4"))
    assert view.of_kind("ScalingPolicy") == {} and ("ScalingPolicy", "shop", "web") not in view.objects


def _retained(objects: list[dict]) -> float:  # type: ignore[type-arg]
    """Bytes the view holds per object after upserting `objects` (each as the watch hands it over)."""
    import json
    import tracemalloc

    texts = [json.dumps(item) for item in objects]
    view = view_module.View()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for text in texts:
            view.upsert(json.loads(text))
        return (tracemalloc.get_traced_memory()[0] - before) / len(texts)
    finally:
        tracemalloc.stop()


def test_an_authors_annotations_cost_the_view_nothing_and_its_own_are_kept() -> None:
    """4,000 annotations (within the API server's 256 KiB) once cost the view 0.70 MiB an object:
    ~1,100 such objects filled the operator's state budget. The view keeps what the operator reads."""
    spec = {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}}}

    def service(index: int, annotations: dict[str, str]) -> dict:  # type: ignore[type-arg]
        item = obj("MonitoredService", f"web{index}", str(index + 1), spec=spec, status={"conditions": []})
        item["metadata"].update(uid=f"uid-{index}", generation=1, labels={"team": "a"}, annotations=annotations,
                                managedFields=[{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}])
        return item

    fat = {f"a.example.com/k{index:05d}": "v" * 40 for index in range(4000)}
    plain = _retained([service(index, {}) for index in range(8)])
    heavy = _retained([service(index, fat) for index in range(8)])
    assert heavy < plain + 1024, f"an object with 4,000 annotations costs the view {heavy - plain:.0f} bytes more"

    view = view_module.View()
    ours = {"ops.capliquify.io/ack": "alice: HighCPU/web", "ops.capliquify.io/paused": "true"}
    view.upsert(service(0, {**fat, **ours}))
    kept = view.objects[("MonitoredService", "shop", "web0")]
    assert kept["metadata"] == {"name": "web0", "namespace": "shop", "resourceVersion": "1", "uid": "uid-0",
                                "generation": 1, "labels": {"team": "a"}, "annotations": ours}
    assert kept["spec"] == spec and view.world.monitored_services[("shop", "web0")] is kept
    # A status patch's answer (loop.reconcile) is the whole object again: kept as lean.
    answer = service(0, fat)
    answer["metadata"]["resourceVersion"] = "9"
    answer["status"] = {"conditions": [{"type": "Ready", "status": "True"}]}
    view.upsert(answer)
    kept = view.objects[("MonitoredService", "shop", "web0")]
    assert "annotations" not in kept["metadata"] and kept["status"] == answer["status"]
