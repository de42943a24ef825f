"""A new term alerts from AlertPolicies at least as new as its Lease (docs/reliability.md, "15.
the missed notifications of run 14, examined").

Run 14, 1,285-1,331 s: vm_c3515cb7 fired 10 alerts (outbox written, firings delivered) and lost
the Lease; vm_19b6a2e3 took it at 1,327 s with its AlertPolicy watch broken since 1,291 s, and its
catch-up (every kind listed afresh, bounded by the renew deadline) timed out. It alerted from the
status its watch had left, before the firings: the errors had ended, so nothing resolved, and its
status write at 1,351 s replaced the firings by what it had decided. The 10 resolutions were
never sent. The alerter now starts once the AlertPolicies have been listed in this term."""

from __future__ import annotations

import asyncio
import copy
import types
import typing

import kopf

from controller.core import election as election_core
from controller.operator import election as election_module
from controller.operator import handlers
from controller.operator import view as view_module

NS = "soak-7-3"
TIMING = election_core.Timing(lease_duration=6, renew_deadline=4, retry_period=0.01)  # a listing retried at once
KEY = ("AlertPolicy", NS, "w12")
FIRING = [{"rule": "SoakErrors", "service": "w12", "state": "Firing", "since": "2026-12-06T05:52:17Z",
           "notifications": 1}]


def policy(version: str, alerts: list[dict[str, typing.Any]]) -> dict[str, typing.Any]:
    return {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "AlertPolicy",
            "metadata": {"name": "w12", "namespace": NS, "uid": "uid-w12", "resourceVersion": version, "generation": 1},
            "spec": {"serviceRef": "w12",
                     "rules": [{"name": "SoakErrors", "metric": "errorRate", "op": ">", "threshold": 5,
                                "severity": "critical"}],
                     "channels": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/hook"}}]},
            "status": {"alerts": alerts}}


class Api:
    """The API server: the policy as the predecessor left it (firing, resourceVersion 9). The
    first `failures` listings fail (the catch-up timed out in run 14: here it fails at once)."""

    def __init__(self, failures: int) -> None:
        self.failures, self.calls = failures, []  # type: ignore[var-annotated]

    def list_page(self, kind: str, namespace: str | None, token: str | None) -> tuple[list[dict[str, typing.Any]], None, str]:
        self.calls.append(kind)
        if self.failures:
            self.failures -= 1
            raise OSError("connection reset")
        return ([copy.deepcopy(policy("9", FIRING))] if kind == "AlertPolicy" else []), None, "100"


def runtime(api: Api, seen: list[typing.Any]) -> handlers.Runtime:
    view = view_module.View()
    view.upsert(policy("5", []))  # what the broken watch had delivered: before the firing

    async def nothing() -> None:
        return None

    async def forever() -> None:
        await asyncio.Event().wait()

    async def alerting() -> None:
        # What the alerter's first round would judge from: the policy's alerts in the view.
        seen.append((view.objects[KEY].get("status") or {}).get("alerts"))
        await forever()

    part = types.SimpleNamespace
    # The evaluation loop is not under test: it only takes the marks a listing makes.
    evaluator = part(mark=lambda *_: None, mark_all=lambda: None, run=forever)
    return handlers.Runtime(
        config=part(namespaces=(NS,), relist_seconds=3600),  # type: ignore[arg-type]
        view=view, evaluator=evaluator, api=api,  # type: ignore[arg-type]
        scaler=part(round=nothing, run=forever),  # type: ignore[arg-type]
        guard=part(rollout_round=nothing, run_rollouts=forever, run_checks=forever),  # type: ignore[arg-type]
        snapshots=part(round=nothing, run=forever),  # type: ignore[arg-type]
        alerter=part(run=alerting),  # type: ignore[arg-type]
        elector=election_module.Elector(None, TIMING), watcher=None)  # type: ignore[arg-type]


async def take_over(rt: handlers.Runtime, seen: list[typing.Any]) -> None:
    handlers.register(kopf.OperatorRegistry(), rt)
    start = rt.elector._on_started_leading
    assert start is not None
    await start()
    for _ in range(500):  # until the alerter's first round (a bound on a stuck test, not a speed requirement)
        if seen:
            break
        await asyncio.sleep(0.01)
    for task in rt.acting:
        task.cancel()
    await asyncio.gather(*rt.acting, return_exceptions=True)


def test_after_a_failed_catch_up_the_alerter_judges_from_a_fresh_listing_of_its_policies() -> None:
    api, seen = Api(failures=2), []  # type: ignore[var-annotated]
    rt = runtime(api, seen)
    asyncio.run(take_over(rt, seen))
    assert seen == [FIRING], "the first alerting round judged from the broken watch's status"
    assert api.calls.count("AlertPolicy") >= 2  # listed again after the catch-up failed


def test_after_a_catch_up_the_alerter_starts_at_once() -> None:
    api, seen = Api(failures=0), []  # type: ignore[var-annotated]
    rt = runtime(api, seen)
    asyncio.run(take_over(rt, seen))
    assert seen == [FIRING]
    assert api.calls.count("AlertPolicy") == 1  # the catch-up's listing only
