"""An adversarial review of the alerter's concurrency (34d6b36, 431495f): one test per finding,
each driving the real Alerter and Evaluator (tests/unit/test_alerting_missed_episodes.py's
harness), each failing on the code as reviewed.

1. A firing after its resolution to the same channel. The firing's first attempt failed (the
   receiver answered 500), so it waited for its back-off (10 s) while the episode ended; the
   resolution, decided later, was due at once and went out first: the receiver was left with
   an alert firing that is over. Deliveries of one alert (or group) to one channel go in order.
2. A send going on after the term ended. A hanging receiver's delivery task was not among the
   tasks a stand-down cancels (`_sending` is a dict; only sets and lists have their tasks
   cancelled) and `_sending` was cleared under it: the send went on without the Lease, and the
   same replica's next term sent the same idempotency key again while the first still ran.
3. Status going backwards: two status writes of one policy (the evaluation loop's, the outbox
   write of the next round) judged in one order landed in the other.
"""

from __future__ import annotations

import asyncio
import datetime
import threading
import typing

import kopf

from controller.adapters import notify
from controller.core import election
from controller.operator import election as election_module
from controller.operator import handlers
from tests.unit import test_alerting_missed_episodes as harness

T0 = harness.T0


async def round_at(alerter: typing.Any, snapshots: typing.Any, clock: typing.Any, second: int) -> None:
    """One alert round at T0 + second with w16 erroring: judged, written, its sends started."""
    clock.now = T0 + datetime.timedelta(seconds=second)
    harness.errors(snapshots, "w16", 50.0, clock.now)
    await alerter.judge()
    alerter.write()
    if alerter._writing:
        await asyncio.wait(list(alerter._writing.values()))
    await asyncio.sleep(0)  # the sends start


class FailingOnce(harness.Hook):
    """The receiver answers the first attempt of each firing with a 500; it records what it took."""

    def __init__(self, clock: harness.Clock) -> None:
        super().__init__(clock)
        self.refused: set[str] = set()

    async def send(self, channel: typing.Any, message: typing.Any, secret: typing.Any) -> None:
        key = message.notification.key
        if message.notification.kind == "firing" and key not in self.refused:
            self.refused.add(key)
            raise notify.DeliveryError("HTTP 500 from the receiver")
        await super().send(channel, message, secret)


def test_a_resolution_is_not_delivered_before_its_firing_that_is_retrying() -> None:
    async def scenario() -> list[tuple[int, str]]:
        alerter, evaluator, snapshots, _, _, clock = harness.parts(["w16"])
        hook = FailingOnce(clock)
        alerter.registry = {"webhook": hook}
        for second in range(40):
            clock.now = T0 + datetime.timedelta(seconds=second)
            harness.errors(snapshots, "w16", 50.0 if 1 <= second < 6 else 0.0, clock.now)
            await alerter.round()
            keys, evaluator.dirty = evaluator.dirty, set()
            if keys:
                await evaluator.round(keys)
        return hook.sent

    sent = asyncio.run(scenario())
    assert [what for _, what in sent] == ["w16/firing", "w16/resolved"], sent


class Hanging(harness.Hook):
    """A receiver that takes each request and never answers; counts what it holds at once."""

    def __init__(self, clock: harness.Clock) -> None:
        super().__init__(clock)
        self.open: dict[str, int] = {}
        self.most_at_once = 0
        self.cancelled = 0

    async def send(self, channel: typing.Any, message: typing.Any, secret: typing.Any) -> None:
        key = message.notification.key
        self.open[key] = self.open.get(key, 0) + 1
        self.most_at_once = max(self.most_at_once, self.open[key])
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.open[key] -= 1


def test_a_stand_down_stops_the_sends_in_flight_and_a_next_term_never_sends_a_key_twice_at_once() -> None:
    async def scenario() -> Hanging:
        alerter, evaluator, snapshots, api, _, clock = harness.parts(["w16"])
        hook = Hanging(clock)
        alerter.registry = {"webhook": hook}
        runtime = handlers.Runtime(config=None, view=alerter.view, evaluator=evaluator, api=api,  # type: ignore[arg-type]
                                   scaler=None, guard=None, snapshots=snapshots, alerter=alerter,  # type: ignore[arg-type]
                                   elector=election_module.Elector(None, election.Timing(  # type: ignore[arg-type]
                                       lease_duration=15, renew_deadline=10, retry_period=2)), watcher=None)  # type: ignore[arg-type]
        handlers.register(kopf.OperatorRegistry(), runtime)
        stop_acting = runtime.elector._on_stopped_leading

        async def judged(second: int) -> None:
            await round_at(alerter, snapshots, clock, second)
            keys, evaluator.dirty = evaluator.dirty, set()
            if keys:
                await evaluator.round(keys)

        for second in range(1, 5):
            await judged(second)
        assert sum(hook.open.values()) == 1, hook.open  # the firing, taken and not answered
        assert await stop_acting()
        await asyncio.sleep(0)
        held_after_the_term = sum(hook.open.values())
        for second in range(5, 10):  # the same replica leads again: the firing is Pending in status
            await judged(second)
        for task in [*alerter._sending.values(), *alerter._tasks]:
            task.cancel()
        await asyncio.sleep(0)
        assert held_after_the_term == 0, "a send went on after the term ended"
        return hook

    hook = asyncio.run(scenario())
    assert hook.most_at_once == 1, hook.most_at_once


def test_a_graceful_stop_leaves_no_send_running(monkeypatch: typing.Any) -> None:
    """`stop` waited for the sends in flight at most DELIVERY_WAIT_SECONDS and then left a
    hanging one running past shutdown (the delivery stays Pending in status either way)."""
    from controller.operator import alerter as alerter_module
    monkeypatch.setattr(alerter_module, "DELIVERY_WAIT_SECONDS", 0.01)  # not a timing: a hanging send's wait

    async def scenario() -> Hanging:
        alerter, evaluator, snapshots, _, _, clock = harness.parts(["w16"])
        hook = Hanging(clock)
        alerter.registry = {"webhook": hook}
        for second in range(1, 5):
            await round_at(alerter, snapshots, clock, second)
        assert sum(hook.open.values()) == 1, hook.open
        await alerter.stop()
        await asyncio.sleep(0)
        assert sum(hook.open.values()) == 0 and hook.cancelled == 1, (hook.open, hook.cancelled)
        return hook  # (asyncio.run cancels what is left only after this)

    asyncio.run(scenario())


class HoldingOnce(harness.Api):
    """The API server: the first status write after `hold_next()` waits for `release`."""

    def __init__(self, view: typing.Any, clock: harness.Clock) -> None:
        super().__init__(view, clock)
        self.release = threading.Event()
        self.holding = False

    def hold_next(self) -> None:
        self.holding = True

    def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
        if self.holding:
            self.holding = False
            self.release.wait(timeout=60)
        return super().patch_status(kind, namespace, name, patch)


def test_an_older_status_write_never_lands_over_a_newer_one() -> None:
    """3. Status going backwards. The firing was sent and its outcome marked; the evaluation loop
    judged that (the firing Sent) and its write was slow. Meanwhile the next round decided the
    resolution and its outbox write (judged later: the resolution Pending) landed first; then
    the older write landed over it: status lost the resolution (sent meanwhile), so a successor
    taking over then would read the alert still firing."""
    async def scenario() -> tuple[list[str], list[str]]:
        alerter, evaluator, snapshots, _, hook, clock = harness.parts(["w16"])
        api = HoldingOnce(alerter.view, clock)
        evaluator.api = alerter.api = api  # type: ignore[assignment]
        for second in range(1, 4):  # the firing at 3 s, sent; its outcome not yet written
            clock.now = T0 + datetime.timedelta(seconds=second)
            harness.errors(snapshots, "w16", 50.0, clock.now)
            await alerter.round()
            keys, evaluator.dirty = evaluator.dirty, set()
            if second < 3 and keys:
                await evaluator.round(keys)
        assert [what for _, what in hook.sent] == ["w16/firing"], hook.sent
        assert keys, "the firing's outcome is marked for the evaluation loop"
        api.hold_next()
        slow = asyncio.create_task(evaluator.round(keys))  # judged now (firing Sent), held at the API
        for _ in range(50):
            await asyncio.sleep(0.01)
            if not api.holding:
                break
        clock.now = T0 + datetime.timedelta(seconds=5)
        harness.errors(snapshots, "w16", 0.0, clock.now)
        resolution = asyncio.create_task(alerter.round())  # the resolution: its outbox write, its send
        for _ in range(20):  # (with one write per object at a time, it waits for the slow one to land)
            await asyncio.sleep(0.01)
        api.release.set()
        await resolution
        sent = [what for _, what in hook.sent]
        await slow
        keys, evaluator.dirty = evaluator.dirty, set()
        status = alerter.view.objects[("AlertPolicy", harness.NS, "w16")]["status"]
        return [d["kind"] for d in status.get("deliveries") or []], sent

    kinds, sent = asyncio.run(scenario())
    assert sent == ["w16/firing", "w16/resolved"], sent
    assert "resolved" in kinds, f"status went back to before the resolution: {kinds}"


def test_a_first_attempt_stamped_by_a_clock_ahead_is_due_at_once() -> None:
    """4. A predecessor whose clock ran ahead (an hour) wrote a firing's first attempt Pending,
    stamped in its successor's future; the successor held it until its own clock reached the
    stamp (a first attempt waits for nothing: only retries wait for their back-off)."""
    from controller.core import outbox
    now = T0
    ahead = {"time": "2026-12-06T07:18:00Z", "channel": "hook", "alert": "SoakErrors/w16", "kind": "firing",
             "outcome": outbox.PENDING, "attempt": 1, "key": "k-firing", "severity": "critical", "summary": "s",
             "firedAt": "2026-12-06T07:17:58Z"}
    assert [d["key"] for d in outbox.due([ahead], now)] == ["k-firing"]


# -- Property: random interleavings of rounds, refused writes, failing receivers, loop writes ----

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


class Checking(harness.Hook):
    """A receiver that fails the attempts it is told to, and checks at every request that the
    delivery is Pending in status (only what status holds is sent)."""

    def __init__(self, clock: harness.Clock, view: typing.Any, failing: typing.AbstractSet[int]) -> None:
        super().__init__(clock)
        self.view, self.failing = view, failing
        self.not_in_status: list[str] = []
        self.received: list[tuple[str, str]] = []  # (episode, kind), in the order taken

    async def send(self, channel: typing.Any, message: typing.Any, secret: typing.Any) -> None:
        key = message.notification.key
        status = self.view.objects[("AlertPolicy", harness.NS, "w16")].get("status") or {}
        if not any(d.get("key") == key and d.get("outcome") == "Pending" for d in status.get("deliveries") or []):
            self.not_in_status.append(key)
        if int((self.clock.now - T0).total_seconds()) in self.failing:
            raise notify.DeliveryError("HTTP 503 from the receiver")
        parts = key.split("/")
        self.received.append((parts[3], parts[4]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans()), min_size=20, max_size=60))
def test_random_interleavings_keep_the_outbox_contract_and_each_alerts_order(
        seconds: list[tuple[bool, bool, bool, bool]]) -> None:
    """Each second: errors or not, the fence refusing writes or not, the receiver failing or
    not, the evaluation loop writing or not. Whatever the interleaving: nothing is sent that
    status does not hold Pending, and no firing reaches the receiver after its resolution."""
    async def scenario() -> Checking:
        alerter, evaluator, snapshots, api, _, clock = harness.parts(["w16"])
        failing = {second for second, (_, _, fails, _) in enumerate(seconds) if fails}
        api.refuse = {second for second, (_, refused, _, _) in enumerate(seconds) if refused}
        hook = Checking(clock, alerter.view, failing)
        alerter.registry = {"webhook": hook}
        for second, (erroring, _, _, loop_writes) in enumerate([*seconds, *[(False, False, False, True)] * 200]):
            clock.now = T0 + datetime.timedelta(seconds=second)
            harness.errors(snapshots, "w16", 50.0 if erroring else 0.0, clock.now)
            await alerter.round()
            if loop_writes:
                keys, evaluator.dirty = evaluator.dirty, set()
                if keys:
                    await evaluator.round(keys)
        return hook

    hook = asyncio.run(scenario())
    assert hook.not_in_status == [], hook.not_in_status
    resolved: set[str] = set()
    for episode, kind in hook.received:
        assert not (kind == "firing" and episode in resolved), f"a firing after its resolution: {hook.received}"
        if kind == "resolved":
            resolved.add(episode)
