"""Run 14's missed notifications, the operator's share (docs/reliability.md, "15. the missed
notifications of run 14, examined"), one test each, driving the real Alerter and Evaluator.

1. A decision kept only in memory. The round put a firing (or a resolution) into the alerter's
   memory, then its outbox write was refused by the fence (a renewal late by a moment under
   API latency: the leader went on leading) or the transition's Event failed before it (a
   refusal, a reset connection). Nothing wrote it again: later rounds saw no change, and only
   what status holds is sent. A firing went out with its resolution, or, with both writes
   refused, never (the whole episode: run 14's soak-7-0/w16 at 2,914 s).
2. One policy's writes held the next policies' judgement. A round judged each namespace's
   policies in turn and awaited each one's Event and outbox write: 20 policies firing in the
   same seconds at 0.5-1.5 s an API write made rounds of 10-25 s, and an episode of 25-35 s
   was judged twice at most (Pending, then already over): 208 whole episodes of run 14.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import threading
import time
import typing

import urllib3

from controller.core import election
from controller.core import scaling
from controller.operator import alerter as alerter_module
from controller.operator import loop
from controller.operator import snapshots as snapshots_module
from controller.operator import view as view_module

T0 = datetime.datetime(2026, 12, 6, 6, 18, 0, tzinfo=datetime.timezone.utc)
GROUP = "ops.capliquify.io/v1alpha1"
NS = "soak-7-0"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime.datetime:
        return self.now


class Api:
    """The API server for status writes and Events; `refuse` holds the seconds at which the
    fence refuses a write (NotLeader, raised at the call as the real fence does), `failing` the
    seconds at which an Event's connection is reset."""

    def __init__(self, view: view_module.View, clock: Clock) -> None:
        self.view, self.clock = view, clock
        self.refuse: set[int] = set()
        self.failing: set[int] = set()
        self.hold: dict[str, threading.Event] = {}  # policy name -> its status write waits for this

    def second(self) -> int:
        return int((self.clock.now - T0).total_seconds())

    def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
        if name in self.hold:
            self.hold[name].wait(timeout=60)
        if self.second() in self.refuse:
            raise election.NotLeader("not the leader: patch refused")
        obj = copy.deepcopy(self.view.objects[(kind, namespace, name)])
        obj["status"] = {**(obj.get("status") or {}), **patch}
        obj["metadata"]["resourceVersion"] = str(int(obj["metadata"]["resourceVersion"]) + 1)
        return obj

    def create_event(self, obj: typing.Any, event: typing.Any, now: typing.Any) -> None:
        if self.second() in self.refuse:
            raise election.NotLeader("not the leader: create refused")
        if self.second() in self.failing:
            raise urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError(104, "reset"))


class Hook:
    """The webhook notifier: what was sent, when (the clock's second)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.sent: list[tuple[int, str]] = []

    async def send(self, channel: typing.Any, message: typing.Any, secret: typing.Any) -> None:
        key = message.notification.key
        self.sent.append((int((self.clock.now - T0).total_seconds()), f"{key.split('/')[2]}/{key.split('/')[4]}"))


def custom(kind: str, name: str, spec: dict[str, typing.Any]) -> dict[str, typing.Any]:
    return {"apiVersion": GROUP, "kind": kind, "metadata": {"name": name, "namespace": NS, "uid": f"uid-{kind}-{name}",
                                                            "generation": 1, "resourceVersion": "1"}, "spec": spec}


def soak_policy(service: str) -> dict[str, typing.Any]:
    """The soak's AlertPolicy: errorRate > 5 % for 2 s, to a webhook, repeats every 60 s."""
    return {"serviceRef": service,
            "rules": [{"name": "SoakErrors", "metric": "errorRate", "op": ">", "threshold": 5, "forSeconds": 2,
                       "severity": "critical"}],
            "channels": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:1/hook"}}],
            "routes": [{"severity": "critical", "channelKinds": ["webhook"], "repeatIntervalSeconds": 60}]}


def parts(services: typing.Sequence[str], interval: float = 1.0) -> tuple[
        alerter_module.Alerter, loop.Evaluator, snapshots_module.Snapshots, Api, Hook, Clock]:
    """The alerter as runtime.py wires it (its state contributed to every status write), over
    a view holding one MonitoredService and one AlertPolicy per service."""
    clock = Clock()
    view = view_module.View()
    api = Api(view, clock)
    evaluator = loop.Evaluator(view, api, 60.0, 8, clock=clock)  # type: ignore[arg-type]

    async def no_metrics(*_: typing.Any, **__: typing.Any) -> dict:
        return {}

    # Readings never go stale here (3 intervals): each test sets them as the metrics would be.
    snapshots = snapshots_module.Snapshots(view, evaluator, no_metrics, 10_000.0, clock=clock)
    hook = Hook(clock)
    alerter = alerter_module.Alerter(view, evaluator, api, snapshots, {"webhook": hook}, interval, clock=clock)  # type: ignore[arg-type]
    evaluator.contributors.append(alerter.contribute)
    for service in services:
        view.upsert(custom("MonitoredService", service, {"target": {"kubernetes": {"kind": "Deployment", "name": service}},
                                                        "metrics": {"prometheus": {"url": "http://127.0.0.1:1"}}}))
        view.upsert(custom("AlertPolicy", service, soak_policy(service)))
    return alerter, evaluator, snapshots, api, hook, clock


def errors(snapshots: snapshots_module.Snapshots, service: str, value: float, now: datetime.datetime) -> None:
    snapshots.readings[("MonitoredService", NS, service)] = snapshots_module.Reading(
        now, {("errorRate", None): scaling.Sample(value, now)})


async def episode(refuse: typing.AbstractSet[int] = frozenset(), failing: typing.AbstractSet[int] = frozenset()
                  ) -> list[tuple[int, str]]:
    """An error episode from 1 s to 31 s, judged every second, the evaluation loop writing what
    rounds mark (as it runs beside them); returns what the webhook received, when."""
    alerter, evaluator, snapshots, api, hook, clock = parts(["w16"])
    api.refuse, api.failing = set(refuse), set(failing)
    for second in range(60):
        clock.now = T0 + datetime.timedelta(seconds=second)
        errors(snapshots, "w16", 50.0 if 1 <= second < 31 else 0.0, clock.now)
        await alerter.round()
        keys, evaluator.dirty = evaluator.dirty, set()
        if keys:
            await evaluator.round(keys)
    return hook.sent


def test_the_episode_is_notified_when_nothing_is_refused() -> None:
    assert asyncio.run(episode()) == [(3, "w16/firing"), (31, "w16/resolved")]


def test_a_firing_whose_outbox_write_was_refused_goes_out_once_the_fence_lets_it() -> None:
    """The fence refused the firing's outbox write at 3 s; the leader still leads at 4 s. The old
    code kept the firing in memory only and sent it with the resolution, 28 s late."""
    sent = asyncio.run(episode(refuse={3}))
    assert sent == [(4, "w16/firing"), (31, "w16/resolved")]


def test_an_episode_whose_firing_and_resolution_writes_were_refused_is_still_notified() -> None:
    """Both outbox writes refused for a moment (3 s and 31 s): the old code never sent either
    (run 14's soak-7-0/w16, 2,914-2,944 s: one status write, Pending, then nothing until the
    next leader, which read no firing from status)."""
    sent = asyncio.run(episode(refuse={3, 31}))
    assert sent == [(4, "w16/firing"), (32, "w16/resolved")]


def test_an_event_refused_or_reset_before_the_outbox_write_does_not_lose_the_notice() -> None:
    """The transition's Event was posted before the outbox write and its failure (the fence's
    refusal: NotLeader; a reset connection: urllib3's ProtocolError) left the round: the firing
    stayed in memory unwritten (run 14: 'alerting for ... failed: NotLeader / ProtocolError')."""
    assert asyncio.run(episode(failing={3, 31})) == [(3, "w16/firing"), (31, "w16/resolved")]


def test_a_policy_whose_outbox_write_hangs_does_not_hold_the_next_policys_firing() -> None:
    """w0's outbox write does not return (an API server answering slowly: 0.5-1.5 s a write in
    run 14, 20 policies of a namespace firing together). w1, later in the same namespace, must
    still be judged every round: the old round waited on w0's write and never reached it."""
    async def scenario() -> list[tuple[int, str]]:
        alerter, _, snapshots, api, hook, clock = parts(["w0", "w1"], interval=0.001)
        api.hold["w0"] = threading.Event()
        for service in ("w0", "w1"):
            errors(snapshots, service, 50.0, clock.now)
        running = asyncio.create_task(alerter.run())
        deadline = time.monotonic() + 20  # a bound on a stuck test, not a speed requirement
        try:
            while not hook.sent and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                clock.now += datetime.timedelta(seconds=1)  # a second per turn of the test's loop
                for service in ("w0", "w1"):
                    errors(snapshots, service, 50.0, clock.now)
            return list(hook.sent)
        finally:
            api.hold["w0"].set()
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
            await asyncio.sleep(0.05)  # the held write's thread returns

    sent = asyncio.run(scenario())
    assert [what for _, what in sent] == ["w1/firing"], sent
