"""A new leader decides from a view at least as new as its Lease (issue 26's soak).

The standby's watches can lag far behind on a slow link (the soak's api-bandwidth fault: 8-64
KB/s on one replica's API connection). Taking over with such a view, the new leader decided from
status its predecessor had already replaced: a step's intent missing (a second step within the
period), an alert's firing missing (the same error episode fired again under a second
idempotency key: a duplicate notice). At takeover every kind is listed afresh before the first
round; a later, older watch event never takes the view back."""

from __future__ import annotations

import asyncio
import copy
import types
import typing

import kopf

from controller.core import election as election_core
from controller.operator import election as election_module
from controller.operator import handlers
from controller.operator import loop
from controller.operator import view as view_module

NS = "soak-7-4"
TIMING = election_core.Timing(lease_duration=6, renew_deadline=4, retry_period=1)


def policy(version: str, events: list[dict[str, typing.Any]]) -> dict[str, typing.Any]:
    return {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy",
            "metadata": {"name": "w2", "namespace": NS, "uid": "uid-policy", "resourceVersion": version, "generation": 1},
            "spec": {"targetRef": {"monitoredService": "w2"}, "minReplicas": 1, "maxReplicas": 8,
                     "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]},
            "status": {"scaleEvents": events}}


STEP = [{"from": 6, "to": 7, "time": "2026-12-06T02:53:30Z"}]
KEY = ("ScalingPolicy", NS, "w2")


class Api:
    """The API server as it is: the policy with its predecessor's step (resourceVersion 7)."""

    def __init__(self, fail: bool = False) -> None:
        self.fail, self.calls = fail, []  # type: ignore[var-annotated]

    def list_page(self, kind: str, namespace: str | None, token: str | None) -> tuple[list[dict[str, typing.Any]], None, str]:
        self.calls.append(("list", kind))
        if self.fail:
            raise OSError("connection reset")
        return ([copy.deepcopy(policy("7", STEP))] if kind == "ScalingPolicy" else []), None, "100"


def runtime(api: Api, order: list[str]) -> handlers.Runtime:
    view = view_module.View()
    view.upsert(policy("5", []))  # what the lagging watch delivered
    evaluator = loop.Evaluator(view, api, 60.0, 4)  # type: ignore[arg-type]

    async def first_round(name: str) -> None:
        order.append(name)
        # What the first scaling round would decide from: the period's steps in the view.
        order.append(f"{name} saw {len((view.objects[KEY].get('status') or {}).get('scaleEvents') or [])} step(s)")

    async def forever() -> None:
        await asyncio.Event().wait()

    part = types.SimpleNamespace
    return handlers.Runtime(
        config=part(namespaces=(NS,), relist_seconds=3600),  # type: ignore[arg-type]
        view=view, evaluator=evaluator, api=api,  # type: ignore[arg-type]
        scaler=part(round=lambda: first_round("scaling"), run=forever),  # type: ignore[arg-type]
        guard=part(rollout_round=lambda: first_round("rollouts"), run_rollouts=forever, run_checks=forever),  # type: ignore[arg-type]
        snapshots=part(round=lambda: first_round("metrics"), run=forever),  # type: ignore[arg-type]
        alerter=part(run=forever),  # type: ignore[arg-type]
        elector=election_module.Elector(None, TIMING), watcher=None)  # type: ignore[arg-type]


async def take_over(rt: handlers.Runtime) -> None:
    handlers.register(kopf.OperatorRegistry(), rt)
    start = rt.elector._on_started_leading
    assert start is not None
    await start()
    for task in rt.acting:
        task.cancel()
    await asyncio.gather(*rt.acting, return_exceptions=True)


def test_the_first_round_of_a_new_term_sees_what_its_predecessor_wrote() -> None:
    order: list[str] = []
    api = Api()
    rt = runtime(api, order)
    asyncio.run(take_over(rt))
    assert ("list", "ScalingPolicy") in api.calls
    assert "scaling saw 1 step(s)" in order, order  # not 0: the predecessor's step counts
    assert rt.view.objects[KEY]["metadata"]["resourceVersion"] == "7"
    rt.view.upsert(policy("6", []))  # the lagging watch delivers an older version afterwards
    assert rt.view.objects[KEY]["status"]["scaleEvents"] == STEP


def test_a_failed_catch_up_acts_on_the_watches_view_and_does_not_end_the_term() -> None:
    order: list[str] = []
    rt = runtime(Api(fail=True), order)
    asyncio.run(take_over(rt))
    assert "scaling saw 0 step(s)" in order  # as before: the term goes on, the log says why
