"""Leader election (client-go semantics): the pure decisions (expiry by observed time,
fencing), and the elector's loop (renewal on its own schedule, standing down to standby)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import itertools
import signal
import threading
import typing

import kopf
import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from controller.adapters import kubernetes_lease
from controller.core import election
from controller.operator import election as election_module
from controller.operator import handlers
from controller.operator import heartbeat
from controller.operator import metrics
from controller.operator import pools

TIMING = election.Timing(lease_duration=15, renew_deadline=10, retry_period=2)


def record(holder: str | None, version: str = "1", transitions: int = 0) -> election.Record:
    return election.Record(holder, transitions, version)


def test_no_lease_is_created() -> None:
    assert election.next_step("a", None, None, 0, TIMING) == election.Step("create", 0)


def test_the_holder_renews_and_others_wait_while_it_does() -> None:
    assert election.next_step("a", None, record("a"), 0, TIMING).action == "renew"
    seen = election.observe(None, record("a", "1"), 0)
    assert election.next_step("b", seen, record("a", "1"), 14, TIMING).action == "wait"
    seen = election.observe(seen, record("a", "2"), 14)  # renewed: the clock starts again
    assert election.next_step("b", seen, record("a", "2"), 28, TIMING).action == "wait"


def test_a_lease_unchanged_for_its_duration_is_taken_whatever_its_timestamps_say() -> None:
    """Expiry is judged on the candidate's own clock (observedTime), not on renewTime: skew-proof."""
    seen = election.observe(None, record("a", "7", transitions=3), 100)
    assert election.next_step("b", seen, record("a", "7", 3), 114.9, TIMING).action == "wait"
    assert election.next_step("b", seen, record("a", "7", 3), 115, TIMING) == election.Step("acquire", 4)


def test_a_first_sight_never_takes_over() -> None:
    """A candidate that has just started has seen nothing age: it waits one full duration."""
    assert election.next_step("b", None, record("a", "7"), 10_000, TIMING).action == "wait"


def test_a_released_lease_is_taken_at_once() -> None:
    assert election.next_step("b", None, record(None, "8", 2), 0, TIMING) == election.Step("acquire", 3)


def test_the_leader_stops_acting_before_anyone_can_take_over() -> None:
    """Fencing: renew deadline (10 s) < lease duration (15 s), both counted from the same renewal."""
    assert election.leading(100, 109.9, TIMING)
    assert not election.leading(100, 110, TIMING)
    assert not election.leading(None, 0, TIMING)


@pytest.mark.parametrize("timing", [(15, 15, 2), (15, 10, 10), (10, 15, 2), (15, 10, 0)])
def test_inconsistent_timings_are_refused(timing: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        election.Timing(*timing)


# -- the elector's loop, with a fake clock, a fake Lease and no threads (issue 21) ------------

class FakeClock:
    """Monotonic time that moves only when the elector sleeps: renewals are counted, not timed."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


class FakeLease:
    """One Lease in memory, with client-go's optimistic concurrency on its version."""

    def __init__(self) -> None:
        self.record: election.Record | None = None
        self.renewals = 0
        self.failing = False
        namespace, name = "capliquify-system", "capliquify-operator"
        self.namespace, self.name = namespace, name

    def _bump(self, holder: str | None, transitions: int) -> None:
        version = int(self.record.version) + 1 if self.record else 1
        self.record = election.Record(holder, transitions, str(version))

    def read(self) -> election.Record | None:
        if self.failing:
            raise OSError("the API server is unreachable")
        return self.record

    def write(self, me: str, step: election.Step, current: election.Record | None, duration: float) -> None:
        if self.failing:
            raise OSError("the API server is unreachable")
        if current != self.record:
            raise kubernetes_lease.Conflict()
        self.renewals += step.action == "renew"
        self._bump(me, step.transitions)

    def release(self, me: str, current: election.Record) -> None:
        self._bump(None, current.transitions)

    def taken_by(self, other: str) -> None:
        self._bump(other, (self.record.transitions if self.record else 0) + 1)


class Inline(concurrent.futures.Executor):
    """Runs a Lease call at once on the caller's thread: the fake clock alone orders events."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        future: concurrent.futures.Future[typing.Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as error:  # as a worker thread would hand it back
            future.set_exception(error)
        return future


class Acting:
    """The acting side: a start that hangs on its first read (one tenant's Prometheus) and a
    stop that records being called."""

    def __init__(self, stops: bool = True) -> None:
        self.starts = 0
        self.cancelled = 0
        self.stopped = 0
        self.stops = stops

    async def start(self) -> None:
        self.starts += 1
        try:
            await asyncio.Event().wait()  # the first read never answers
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def stop(self) -> bool:
        self.stopped += 1
        return self.stops


@pytest.fixture
def kills(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    sent: list[int] = []
    monkeypatch.setattr(election_module.os, "kill", lambda pid, sig: sent.append(sig))
    return sent


def elector(lease: FakeLease, clock: FakeClock, acting: Acting, me: str = "a",
            pool: concurrent.futures.Executor | None = None) -> election_module.Elector:
    made = election_module.Elector(lease, TIMING, identity=me, clock=clock, sleep=clock.sleep,  # type: ignore[arg-type]
                                   pool=pool or Inline())
    made.bind(acting.start, acting.stop)
    return made


async def until(condition: typing.Callable[[], bool], what: str) -> None:
    """Waits for `condition` in real time (the fake clock runs as fast as the loop spins)."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0)
    try:
        await asyncio.wait_for(poll(), 5)
    except asyncio.TimeoutError:
        raise AssertionError(f"never: {what}") from None


def test_renewal_goes_on_while_the_first_read_hangs(kills: list[int]) -> None:
    """Issue 21, 'HA unseats itself': a new leader whose first read never answers keeps
    renewing on its own schedule (a minute of fake time: 30 renewals), keeps acting and never
    sends itself SIGTERM. The old loop awaited the start inside the renewal: one renewal, then
    'lost the Lease' after the renew deadline and SIGTERM to itself."""
    async def scenario() -> None:
        clock, lease, acting = FakeClock(), FakeLease(), Acting()
        me = elector(lease, clock, acting)
        run = asyncio.create_task(me.run())
        await until(lambda: clock.now >= 1060, "a minute of fake time")
        assert acting.starts == 1 and acting.cancelled == 0
        assert lease.renewals >= 25, lease.renewals
        assert me.leading() and me.acting and lease.record and lease.record.holder == "a"
        assert lease.record.transitions == 0, "no other holder ever"
        run.cancel()
    asyncio.run(scenario())
    assert kills == []


def test_a_lost_lease_cancels_acting_keeps_a_standby_that_leads_again(kills: list[int]) -> None:
    async def scenario() -> None:
        clock, lease, acting = FakeClock(), FakeLease(), Acting()
        me = elector(lease, clock, acting)
        run = asyncio.create_task(me.run())
        await until(lambda: me.acting and acting.starts == 1, "leads")
        lease.taken_by("b")  # another replica holds it now (this one was paused, say)
        await until(lambda: acting.stopped == 1, "stands down")
        assert not me.acting and acting.cancelled == 1, "the acting tasks were cancelled"
        with pytest.raises(election.NotLeader):
            me.fence("patch")
        with pytest.raises(election.NotLeader):
            me.fence_send("webhook")
        assert not run.done(), "still running: a standby"
        # It stays a standby while b renews (b's writes move the version), then takes over
        # once b releases the Lease.
        for _ in range(5):
            lease.taken_by("b")
            await clock.sleep(TIMING.retry_period)
        assert not me.acting and acting.starts == 1
        assert lease.record is not None
        lease.release("b", lease.record)
        await until(lambda: me.acting and acting.starts == 2, "leads again")
        assert me.terms == 2 and me.leading()
        run.cancel()
    asyncio.run(scenario())
    assert kills == []


def test_a_leader_that_cannot_renew_is_fenced_at_its_deadline_then_stands_down(kills: list[int]) -> None:
    async def scenario() -> None:
        clock, lease, acting = FakeClock(), FakeLease(), Acting()
        me = elector(lease, clock, acting)
        run = asyncio.create_task(me.run())
        await until(lambda: me.acting, "leads")
        lease.failing = True
        renewed = clock.now
        await until(lambda: clock.now >= renewed + TIMING.renew_deadline, "the renew deadline")
        with pytest.raises(election.NotLeader):
            me.fence_send("railway")  # refused from the deadline on, whatever the loop is doing
        await until(lambda: acting.stopped == 1, "stands down")
        assert not me.acting
        lease.failing = False  # the API server is back and the Lease still names it
        await until(lambda: me.acting and acting.starts == 2, "renews and leads again")
        run.cancel()
    asyncio.run(scenario())
    assert kills == []


def test_acting_that_will_not_stop_is_unhealthy_and_only_then_restarts(kills: list[int]) -> None:
    async def scenario() -> None:
        clock, lease, acting = FakeClock(), FakeLease(), Acting(stops=False)
        me = elector(lease, clock, acting)
        run = asyncio.create_task(me.run())
        await until(lambda: me.acting, "leads")
        lease.taken_by("b")
        await until(lambda: bool(kills), "SIGTERM")
        run.cancel()
    asyncio.run(scenario())
    assert kills == [signal.SIGTERM]


def test_lease_calls_do_not_queue_behind_a_full_api_pool(kills: list[int]) -> None:
    """Every thread of the API pool busy (status writes, a slow list): renewals go on, in
    the Lease's own pool. Through the shared pool they waited, past the renew deadline."""
    release = threading.Event()
    busy = [pools.KUBE.submit(release.wait, 30) for _ in range(pools.KUBE_THREADS + 4)]

    async def scenario() -> None:
        clock, lease, acting = FakeClock(), FakeLease(), Acting()
        me = election_module.Elector(lease, TIMING, identity="a", clock=clock, sleep=clock.sleep)  # type: ignore[arg-type]
        me.bind(acting.start, acting.stop)
        run = asyncio.create_task(me.run())
        await until(lambda: lease.renewals >= 5, "renewals with the API pool full")
        assert me.acting
        run.cancel()
    try:
        asyncio.run(scenario())
    finally:
        release.set()
        concurrent.futures.wait(busy)
    assert kills == []


def test_without_leader_election_it_always_acts_and_sends() -> None:
    me = election_module.Elector(None, TIMING)
    me.fence_send("webhook")
    me.fence("patch")
    assert me.leading()


# -- what the kopf layer starts and stops with each term ---------------------------------------

class Part:
    """A stand-in for one acting component: its first round may hang (one tenant's Prometheus),
    its loops learn things and spawn work, all of which must end with the term."""

    def __init__(self, name: str, first_hangs: bool = False) -> None:
        self.name, self.first_hangs = name, first_hangs
        self.learnt: dict[str, int] = {}
        self.spawned: set[asyncio.Task[None]] = set()
        self.loops: list[str] = []
        self.relist_seconds = 3600.0

    async def round(self) -> None:
        if self.first_hangs:
            await asyncio.Event().wait()
        self.learnt["first"] = 1

    rollout_round = round

    async def run(self, loop_name: str = "run") -> None:
        self.loops.append(loop_name)
        self.learnt[loop_name] = 1
        heartbeat.expect(f"term-{self.name}-{loop_name}", 1.0)
        self.spawned.add(asyncio.create_task(asyncio.Event().wait()))  # a check in flight
        await asyncio.Event().wait()

    async def run_checks(self) -> None:
        await self.run("checks")

    async def run_rollouts(self) -> None:
        await self.run("rollouts")

    def mark_all(self) -> None:
        self.learnt["marked"] = 1


def test_a_term_starts_past_a_hanging_first_read_and_ends_with_nothing_left(kills: list[int]) -> None:
    """The kopf layer's start and stop (handlers.register): the first reads are bounded inside
    the lease and a hanging one delays only its own loop; losing the Lease cancels every acting
    task, the work they spawned, their heartbeats, and everything the term learnt."""
    async def scenario() -> None:
        clock, lease = FakeClock(), FakeLease()
        timing = election.Timing(lease_duration=0.6, renew_deadline=0.4, retry_period=0.1)
        me = election_module.Elector(lease, timing, identity="a", clock=clock, sleep=clock.sleep,  # type: ignore[arg-type]
                                     pool=Inline())
        scaler, others = Part("scaler", first_hangs=True), Part("others")
        runtime = handlers.Runtime(config=others, view=None, evaluator=others, api=None, scaler=scaler,  # type: ignore[arg-type]
                                   guard=others, snapshots=others, alerter=others, elector=me,
                                   watcher=None, pollers=(others,))
        handlers.register(kopf.OperatorRegistry(), runtime)
        run = asyncio.create_task(me.run())
        await until(lambda: "checks" in others.loops and "rollouts" in others.loops, "loops past the hanging read")
        assert scaler.loops == [], "scaling starts once its own first round ends"
        assert me.acting and lease.renewals > 0
        assert {t.get_name() for t in runtime.acting} >= {"first-scaling", "evaluation-loop", "alerting"}
        spawned = set(others.spawned)
        lease.taken_by("b")
        await until(lambda: not others.learnt and not runtime.acting, "stood down")
        run.cancel()
        await asyncio.sleep(0)
        assert all(task.done() for task in spawned), "spawned work was cancelled"
        assert not scaler.learnt and not others.spawned
        assert not [name for name in heartbeat.expected() if name.startswith("term-")], "no stall reported"
    asyncio.run(scenario())
    assert kills == []


# -- two replicas, one Lease, faults chosen by hypothesis, in virtual time ---------------------

class VirtualTime:
    """One monotonic clock for both replicas; each replica sleeps on it, and a paused replica
    (SIGSTOP, a stall) wakes no earlier than its pause ends."""

    def __init__(self) -> None:
        self.now = 0.0
        self.paused_until: dict[str, float] = {}
        self._sleepers: list[tuple[float, int, str, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def __call__(self) -> float:
        return self.now

    def sleeper(self, who: str) -> typing.Callable[[float], typing.Awaitable[None]]:
        async def sleep(seconds: float) -> None:
            woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            heapq.heappush(self._sleepers, (self.now + seconds, next(self._order), who, woken))
            await woken
        return sleep

    async def run_until(self, end: float, check: typing.Callable[[], None]) -> None:
        while True:
            for _ in range(20):  # let every woken task run to its next sleep
                await asyncio.sleep(0)
            check()
            if not self._sleepers or self._sleepers[0][0] > end:
                self.now = max(self.now, end)
                return
            wake, order, who, woken = heapq.heappop(self._sleepers)
            resume = self.paused_until.get(who, 0.0)
            if resume > wake:
                heapq.heappush(self._sleepers, (resume, order, who, woken))  # still paused
                continue
            self.now = max(self.now, wake)
            woken.set_result(None)


class Partitioned:
    """One replica's way to the shared Lease: refused while that replica is cut off."""

    def __init__(self, lease: FakeLease, cut: typing.Callable[[], bool]) -> None:
        self.lease, self.cut = lease, cut
        self.namespace, self.name = lease.namespace, lease.name

    def read(self) -> election.Record | None:
        if self.cut():
            raise OSError("partitioned")
        return self.lease.read()

    def write(self, *args: typing.Any) -> None:
        if self.cut():
            raise OSError("partitioned")
        self.lease.write(*args)


FAULT = st.tuples(st.floats(0, 90), st.sampled_from(["pause", "partition"]), st.sampled_from(["a", "b"]),
                  st.floats(0.5, 40))


@settings(max_examples=100, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])  # kills: only appended to
@given(faults=st.lists(FAULT, max_size=6), first_hangs=st.booleans())
def test_two_replicas_never_both_pass_the_fence_whatever_pauses_and_partitions(
        faults: list[tuple[float, str, str, float]], first_hangs: bool, kills: list[int]) -> None:
    """Searches for a break of the election's promises under pauses and partitions of either
    replica at any moment: at no instant do both replicas' fences pass; a replica whose fence
    refuses stops acting within one retry period of running again; nobody sends itself SIGTERM;
    and once the faults end, one replica leads and acts within a lease duration and a few retries."""
    async def scenario() -> None:
        clock, lease = VirtualTime(), FakeLease()
        cut: dict[str, tuple[float, float]] = {}
        replicas, actings = {}, {}
        for who in ("a", "b"):
            store = Partitioned(lease, lambda who=who: cut.get(who, (0.0, 0.0))[0] <= clock.now < cut.get(who, (0.0, 0.0))[1])
            acting = Acting()
            if not first_hangs:
                acting.start = _returns  # type: ignore[method-assign]
            replicas[who] = election_module.Elector(store, TIMING, identity=who, clock=clock,  # type: ignore[arg-type]
                                                    sleep=clock.sleeper(who), pool=Inline())
            replicas[who].bind(acting.start, acting.stop)
            actings[who] = acting
        refused_since: dict[str, float] = {}

        def check() -> None:
            passing = [who for who, me in replicas.items() if me.leading()]
            assert len(passing) <= 1, f"two leaders at {clock.now}: {passing}"
            for who, me in replicas.items():
                if me.acting and not me.leading() and clock.paused_until.get(who, 0.0) <= clock.now:
                    since = refused_since.setdefault(who, clock.now)
                    assert clock.now - since <= TIMING.retry_period + 1e-9, f"{who} acts on, fenced, at {clock.now}"
                else:
                    refused_since.pop(who, None)

        runs = [asyncio.create_task(me.run()) for me in replicas.values()]
        end = 0.0
        for at, kind, who, duration in sorted(faults):
            await clock.run_until(at, check)
            if kind == "pause":
                clock.paused_until[who] = max(clock.paused_until.get(who, 0.0), clock.now + duration)
            else:
                cut[who] = (clock.now, clock.now + duration)
            end = max(end, clock.now + duration)
        await clock.run_until(end + TIMING.lease_duration + 4 * TIMING.retry_period, check)
        leading = [who for who, me in replicas.items() if me.leading() and me.acting]
        assert len(leading) == 1, f"after the faults: {leading}"
        for run in runs:
            run.cancel()
    asyncio.run(scenario())
    assert kills == []


async def _returns() -> None:
    """An acting start whose first reads answered: it returns, the loops run on."""


def test_a_start_that_fails_is_unhealthy(kills: list[int]) -> None:
    """Holding the Lease without acting would keep the standbys from acting too: restart."""
    async def scenario() -> None:
        clock, lease = FakeClock(), FakeLease()
        me = election_module.Elector(lease, TIMING, identity="a", clock=clock, sleep=clock.sleep,  # type: ignore[arg-type]
                                     pool=Inline())

        async def broken() -> None:
            raise RuntimeError("a bug in start-up")
        me.bind(broken, Acting().stop)
        run = asyncio.create_task(me.run())
        await until(lambda: bool(kills), "SIGTERM")
        run.cancel()
    asyncio.run(scenario())
    assert kills == [signal.SIGTERM]


def test_the_longest_gap_between_renewals_is_reported(kills: list[int]) -> None:
    """`capliquify_lease_renewal_gap_max_seconds`: one retry period while nothing interferes,
    whatever the first read does (what the integration test reads on the real control plane)."""
    async def scenario() -> None:
        clock, lease, acting = FakeClock(), FakeLease(), Acting()
        me = elector(lease, clock, acting)
        run = asyncio.create_task(me.run())
        await until(lambda: lease.renewals >= 10, "renewals")
        assert metrics.LEASE_RENEWAL_GAP._value.get() == TIMING.retry_period
        run.cancel()
    asyncio.run(scenario())


def test_what_a_term_forgets_covers_every_acting_components_memory() -> None:
    """handlers._leader_state over the real components, built as `capliquify run` builds them:
    every per-object memory a term learns is among what a stand-down clears (a later term
    starts from status, as a fresh process), and nothing the standby needs (view, wiring) is."""
    from controller.adapters import egress
    from controller.adapters import http_check
    from controller.operator import alerter as alerter_module
    from controller.operator import guard as guard_module
    from controller.operator import loop
    from controller.operator import probes as probes_module
    from controller.operator import railway as railway_module
    from controller.operator import runtime as runtime_module
    from controller.operator import scaler as scaler_module
    from controller.operator import snapshots as snapshots_module
    from controller.operator import view as view_module

    async def build() -> list[tuple[object, str]]:
        view = view_module.View()
        evaluator = loop.Evaluator(view, None, 60.0, 4)  # type: ignore[arg-type]
        railway = railway_module.RailwayWatcher(view, evaluator, None, "http://127.0.0.1:9/graphql")  # type: ignore[arg-type]
        scaler = scaler_module.Scaler(view, evaluator, None, None, None)  # type: ignore[arg-type]
        guard = guard_module.Guard(view, evaluator, http_check.HttpChecker(True), None,  # type: ignore[arg-type]
                                   scaler.read_service_metrics)
        snapshots = snapshots_module.Snapshots(view, evaluator, scaler.read_service_metrics)
        alerter = alerter_module.Alerter(view, evaluator, None, snapshots, {"webhook": object()})  # type: ignore[arg-type,dict-item]
        probes = probes_module.ProbeManager(view, evaluator, None)  # type: ignore[arg-type]
        runtime_module.participate(evaluator, railway, scaler, guard, probes, snapshots, alerter)  # as built
        runtime = handlers.Runtime(config=None, view=view, evaluator=evaluator, api=None, scaler=scaler,  # type: ignore[arg-type]
                                   guard=guard, snapshots=snapshots, alerter=alerter,
                                   elector=election_module.Elector(None, TIMING), watcher=None,  # type: ignore[arg-type]
                                   probes=probes, pollers=(railway,))
        assert isinstance(railway._http, egress.GuardedClient)
        return handlers._leader_state(runtime)
    cleared = {(type(owner).__name__, name) for owner, name in asyncio.run(build())}
    must = {("Alerter", "state"), ("Scaler", "records"), ("Scaler", "memory"), ("Scaler", "next_due"),
            ("Scaler", "unsupported"), ("Guard", "services"), ("Guard", "verdicts"), ("Guard", "_tasks"),
            ("Snapshots", "readings"), ("RailwayWatcher", "bindings"), ("RailwayWatcher", "usage"),
            ("RailwayWatcher", "_rolled_back"), ("Evaluator", "dirty"),
            ("Guard", "_in_flight"), ("ProbeManager", "applied"), ("ProbeManager", "_applying"),
            ("ProbeManager", "_tasks")}  # a check cancelled mid-run must not look in flight next term
    assert must <= cleared, must - cleared
    assert not {name for _, name in cleared} & {"contributors", "time_dependent", "registry", "view"}


def test_the_test_only_broken_fence_is_off_by_default_and_lets_a_stale_leader_write(
        kills: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    """CAPLIQUIFY_TEST_BREAK_FENCE exists for the soak's own check (bench/soak.py): unset, a
    replica past its renew deadline is refused; set, the same write goes through."""
    import os
    import subprocess
    import sys
    code = "from controller.operator import election; print(election.BREAK_FENCE)"
    env = {k: v for k, v in os.environ.items() if k != "CAPLIQUIFY_TEST_BREAK_FENCE"}
    assert subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=True).stdout.strip() == "False"
    assert subprocess.run([sys.executable, "-c", code], env={**env, "CAPLIQUIFY_TEST_BREAK_FENCE": "1"},
                          capture_output=True, text=True, check=True).stdout.strip() == "True"
    clock = FakeClock()
    me = elector(FakeLease(), clock, Acting())
    assert not me.leading()
    with pytest.raises(election.NotLeader):
        me.fence("patch")
    monkeypatch.setattr(election_module, "BREAK_FENCE", True)
    me.fence("patch")
    me.fence_send("webhook")


def test_an_api_server_that_drops_the_lease_call_mid_tls_does_not_end_the_election(kills: list[int]) -> None:
    """Found by the soak (issue 26, seed 7): the API server restarted behind a proxy, the Lease
    read failed with urllib3's MaxRetryError (an SSL EOF after three retries), which is no
    OSError: it ended the election task. The replica then never renewed, never stood down and
    never led again, its capliquify_leader still 1. A failed call must be one failed attempt."""
    import urllib3

    class Dropping(FakeLease):
        def read(self) -> election.Record | None:
            if self.failing:
                raise urllib3.exceptions.MaxRetryError(None, "/leases", urllib3.exceptions.SSLError("EOF"))  # type: ignore[arg-type]
            return self.record

    async def scenario() -> None:
        clock, lease, acting = FakeClock(), Dropping(), Acting()
        me = elector(lease, clock, acting)
        run = asyncio.create_task(me.run())
        await until(lambda: me.acting, "leads")
        lease.failing = True
        await until(lambda: acting.stopped == 1 or run.done(), "stands down at its deadline")
        assert not run.done(), run.exception()
        assert not me.acting
        lease.failing = False
        await until(lambda: me.acting and acting.starts == 2, "leads again once the API server answers")
        run.cancel()
    asyncio.run(scenario())
    assert kills == []


def test_a_leader_past_its_renew_deadline_still_hands_the_lease_back_at_shutdown() -> None:
    """A leader starved of CPU (its renew deadline passed, the Lease not yet expired) stops
    acting; at shutdown it still releases the Lease it holds, so the next one need not wait."""
    lease, clock = FakeLease(), FakeClock()
    me = election_module.Elector(lease, TIMING, identity="a", clock=clock, sleep=clock.sleep,  # type: ignore[arg-type]
                                 pool=Inline())
    lease.write("a", election.Step("acquire", 1), None, TIMING.lease_duration)
    me._renewed_at = clock.now
    clock.now += TIMING.renew_deadline + 1  # past the deadline, inside the lease
    assert not me.leading()
    asyncio.run(me.release())
    assert lease.record is not None and lease.record.holder is None

    lease.taken_by("b")  # another holds it: nothing is released
    asyncio.run(me.release())
    assert lease.record.holder == "b"
