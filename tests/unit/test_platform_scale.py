"""The /scale platform: a target resolves, is judged and polled like any workload; the
actuators' registry finds its actuator by kind; its string selector is read as the API server
writes it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime

import pytest

from controller import reasons
from controller.adapters import actuator
from controller.core import platform_scale
from controller.core import platforms
from controller.core import readiness
from controller.core import selectors
from controller.core import targets
from controller.core import world as world_module
from controller.operator import loop
from controller.operator import polled
from controller.operator import view as view_module

KIND = "widgets.example.com"
POLICY = {"targetRef": {"scale": {"apiGroup": "example.com", "resource": "widgets", "name": "w"}},
          "minReplicas": 1, "maxReplicas": 5, "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]}
WIDGET = world_module.Workload(KIND, "shop", "w", replicas=2, ready_replicas=1)


def ready(assessment: readiness.Assessment) -> tuple[str, str]:
    found = next(c for c in assessment.conditions if c.type == reasons.READY)
    return found.status, found.reason


def test_a_scale_target_resolves_to_its_platform_and_kind() -> None:
    from controller.api import scalingpolicy
    spec = scalingpolicy.ScalingPolicySpec.model_validate(POLICY)
    ref = platforms.of_policy(spec.targetRef)
    assert ref is not None and (ref.platform, ref.kind, ref.name, ref.display) == ("scale", KIND, "w", f"{KIND}/w")
    target = targets.of_policy("shop", spec, lambda _: "unused", None)
    assert isinstance(target, targets.Target) and target.workload_key == ("shop", KIND, "w")
    assert platforms.of_kind(KIND) is platform_scale.PLATFORM
    assert platforms.offers(KIND) == platforms.offers(KIND).__class__(scale=True, rollback=False, probes=False)


@pytest.mark.parametrize("world,expected,fields", [
    (world_module.World(), ("Unknown", reasons.AWAITING_OBSERVATION), {"target": f"{KIND}/w"}),
    (world_module.World(platform_errors={("shop", KIND, "w"): "not found (404)"}), ("False", reasons.TARGET_NOT_FOUND),
     {"target": f"{KIND}/w"}),
    (world_module.World(workloads={("shop", KIND, "w"): WIDGET}), ("True", reasons.TARGET_FOUND),
     {"target": f"{KIND}/w", "currentReplicas": 2}),
])
def test_a_scale_target_is_judged_as_polled(world: world_module.World, expected: tuple[str, str], fields: dict) -> None:
    assessment = readiness.scaling_policy("shop", POLICY, world)
    assert ready(assessment) == expected
    assert assessment.fields == fields


@pytest.mark.parametrize("text,labels,expressions", [
    ("app=web", (("app", "web"),), ()),
    ("app==web,tier!=db", (("app", "web"),), (("tier", "NotIn", ("db",)),)),
    ("app in (a, b),!canary,track", (), (("app", "In", ("a", "b")), ("canary", "DoesNotExist", ()), ("track", "Exists", ()))),
    ("app notin (x)", (), (("app", "NotIn", ("x",)),)),
])
def test_a_scales_selector_string_is_read_as_the_api_server_writes_it(text: str, labels: tuple, expressions: tuple) -> None:
    assert platform_scale.parse_selector(text) == selectors.Selector(labels, expressions)


def test_an_unreadable_selector_selects_nothing() -> None:
    assert platform_scale.parse_selector("app=(") is None


class Recording:
    errors = (RuntimeError,)

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        self.calls.append((kind, namespace, name, replicas))
        return replicas

    async def rollback(self, *args: str) -> str:
        raise AssertionError

    async def apply_probes(self, *args: object) -> int:
        raise AssertionError

    async def close(self) -> None:
        return None


def test_the_registry_finds_the_actuator_by_kind_and_refuses_what_the_platform_does_not_offer() -> None:
    scale, kube = Recording(), Recording()
    actuators = actuator.Actuators({"scale": scale, "kubernetes": kube})  # type: ignore[dict-item]
    assert asyncio.run(actuators.set_replicas(KIND, "shop", "w", 3)) == 3
    assert scale.calls == [(KIND, "shop", "w", 3)] and not kube.calls
    assert not actuators.supports(KIND) and actuators.supports("Deployment") and not actuators.supports("StatefulSet")
    with pytest.raises(actuator.Unsupported):
        actuators.of("Railway")  # registered platform, no actuator here
    assert RuntimeError in actuators.errors and actuator.Unsupported in actuators.errors


class Observer:
    def __init__(self, answers: dict) -> None:
        self.answers, self.asked = answers, []

    async def observe(self, keys):  # noqa: ANN001, ANN201
        self.asked.append(sorted(keys))
        return {key: self.answers[key] for key in keys}


def test_a_stand_down_forgets_when_this_replica_saw_its_polled_targets() -> None:
    """Polled only while leading: when polling stops, the world's entries lose their stamp
    (a next term's first scaling round, before its first poll, must not time a step by a past
    term's sight of them); the next poll stamps them anew though nothing changed."""
    now = [datetime.datetime(2026, 12, 6, 9, 0, tzinfo=datetime.timezone.utc)]
    view = view_module.View(clock=lambda: now[0])
    evaluator = loop.Evaluator(view, None, 60.0, 4)  # type: ignore[arg-type]
    view.upsert({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy",
                 "metadata": {"namespace": "shop", "name": "w", "uid": "w", "resourceVersion": "1", "generation": 1},
                 "spec": POLICY})
    key = ("shop", KIND, "w")
    poller = polled.PolledPlatform("scale", view, evaluator, Observer({key: WIDGET}))  # type: ignore[arg-type]

    async def term() -> None:
        polling = asyncio.ensure_future(poller.run())
        await asyncio.sleep(0)
        assert view.world.workloads[key].changed_at == now[0]
        polling.cancel()  # a stand-down
        with contextlib.suppress(asyncio.CancelledError):
            await polling

    asyncio.run(term())
    assert view.world.workloads[key].changed_at is None
    now[0] += datetime.timedelta(minutes=5)
    asyncio.run(poller.poll())
    assert view.world.workloads[key].changed_at == now[0], "a past term's stamp kept"


def test_the_poller_reads_its_platforms_targets_into_the_world_and_marks_their_policies() -> None:
    seen_at = datetime.datetime(2026, 12, 6, 9, 0, tzinfo=datetime.timezone.utc)
    view = view_module.View(clock=lambda: seen_at)
    evaluator = loop.Evaluator(view, None, 60.0, 4)  # type: ignore[arg-type]
    for name, spec in (("w", POLICY), ("d", {**POLICY, "targetRef": {"kubernetes": {"name": "web"}}})):
        view.upsert({"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy",
                     "metadata": {"namespace": "shop", "name": name, "uid": name, "resourceVersion": "1", "generation": 1},
                     "spec": spec})
    key = ("shop", KIND, "w")
    observer = Observer({key: WIDGET})
    poller = polled.PolledPlatform("scale", view, evaluator, observer)  # type: ignore[arg-type]
    evaluator.dirty.clear()
    asyncio.run(poller.poll())
    assert observer.asked == [[key]], "only its own platform's targets"
    assert view.world.workloads[key] == dataclasses.replace(WIDGET, changed_at=seen_at), "stamped when this replica saw it"
    assert ("ScalingPolicy", "shop", "w") in evaluator.dirty
    observer.answers[key] = "not found (404)"
    asyncio.run(poller.poll())
    assert key not in view.world.workloads and view.world.platform_errors[key] == "not found (404)"
    view.remove({"kind": "ScalingPolicy", "metadata": {"namespace": "shop", "name": "w"}})
    asyncio.run(poller.poll())
    assert key not in view.world.platform_errors, "a target nobody names is forgotten"
