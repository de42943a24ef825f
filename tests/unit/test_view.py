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
    assert view.dependents("shop") == [("MonitoredService", "shop", "web")]
    view.remove(obj("Deployment", "web", "3"))
    view.remove(obj("MonitoredService", "web", "4"))
    assert view.world.workloads == {} and view.world.monitored_services == {} and view.objects == {}
