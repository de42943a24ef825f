"""The kopf layer: start-up, shutdown and the health probe; watch events feed the view and
wake the evaluation loop.

kopf watches nothing (no resource handler is registered): the operator lists each kind once
and watches on from that listing itself (adapters/kubernetes_watch.py), which at 10,000 objects
saves kopf's second listing and its per-object workers. kopf therefore adds no finalizer and
writes no annotations, so objects delete cleanly whether or not the operator is running.
"""

from __future__ import annotations

import asyncio
import collections.abc
import functools
import logging
import time
import typing

import kopf

from controller.adapters import kubernetes_api
from controller.operator import alerter as alerter_module
from controller.operator import heap
from controller.operator import heartbeat
from controller.operator import metrics
from controller.operator import pools
from controller.operator import runtime as runtime_module
from controller.operator import view as view_module

logger = logging.getLogger(__name__)
CUSTOM_KINDS = tuple(kubernetes_api.PLURALS)
STOP_SECONDS = 5.0  # acting tasks that do not end this long after cancellation: unhealthy


# The typed Runtime and its Poller are the composition root's (operator/runtime.py); named here
# too, as the kopf layer's input.
Runtime = runtime_module.Runtime
Poller = runtime_module.Poller


def _on_event(runtime: Runtime, raw_event: typing.Mapping[str, typing.Any]) -> None:
    obj = raw_event["object"]
    view = runtime.view
    if raw_event.get("type") == "DELETED":
        key, changed = view.remove(obj), True
    else:
        key, changed = view.upsert(obj)
    kind, namespace, _ = key
    if kind in CUSTOM_KINDS:  # leader and standby alike: the per-kind index makes this O(1)
        metrics.WATCHED_OBJECTS.labels(kind).set(len(view.of_kind(kind)))
    metrics.WATCH_EVENTS.labels(kind, "changed" if changed else "unchanged").inc()
    if not changed:
        return
    if kind in CUSTOM_KINDS and raw_event.get("type") != "DELETED":
        runtime.evaluator.mark(key)
    if kind not in CUSTOM_KINDS or kind == "MonitoredService":
        runtime.evaluator.mark(*view.dependents(key))


def _kinds_and_namespaces(runtime: Runtime) -> list[tuple[str, str | None]]:
    namespaces: tuple[str | None, ...] = runtime.config.namespaces or (None,)
    return [(kind, namespace) for kind in (*view_module.WORKLOAD_KINDS, view_module.HPA_KIND, *CUSTOM_KINDS)
            for namespace in namespaces]


async def _list_into_view(runtime: Runtime, kind: str, namespace: str | None) -> str:
    """Lists (kind, namespace) page by page into the view (one page in memory at a time) and
    makes the view match it: an object deleted while a watch was broken stops acting; whatever
    changed is judged again. Returns the listing's resourceVersion, for a watch to carry on from."""
    changed: set[view_module.Key] = set()
    present: set[view_module.Key] = set()
    token: str | None = None
    while True:
        page, token, version = await pools.run(pools.KUBE, runtime.api.list_page, kind, namespace, token)
        page_changed, page_present = runtime.view.absorb(page)
        changed |= page_changed
        present |= page_present
        del page
        if not token:
            break
    removed = runtime.view.drop_absent(kind, namespace, present)
    for key in removed:
        logger.info("%s %s/%s is gone (missed by the watch): forgotten", *key)
    for key in changed | removed:
        if kind in CUSTOM_KINDS and key not in removed:
            runtime.evaluator.mark(key)
        runtime.evaluator.mark(*runtime.view.dependents(key))
    return version


async def _warm_up(runtime: Runtime) -> dict[tuple[str, str | None], str]:
    """List everything once before the first judgement, so that nothing is judged against a
    half-filled view (which would flap Ready and post false Warnings). Returns each listing's
    resourceVersion: the watches carry on from there, so this is the only listing."""
    versions = {}
    started = time.monotonic()
    for kind, namespace in _kinds_and_namespaces(runtime):
        versions[kind, namespace] = await _list_into_view(runtime, kind, namespace)
    logger.info("view warmed up in %.1f s: %d custom objects, %d workloads", time.monotonic() - started,
                len(runtime.view.objects), len(runtime.view.world.workloads))
    runtime.evaluator.count_watched()  # a standby says so too: its view is warm
    runtime.evaluator.mark_all()
    return versions


WARM_UP_PAUSES = (0.5, 1.0, 2.0, 4.0)  # then every 4 s: an API server restart is seconds, not kopf's 60


async def _warm_up_until_done(runtime: Runtime, pause: typing.Callable[[float], typing.Awaitable[None]] = asyncio.sleep,
                              ) -> dict[tuple[str, str | None], str]:
    """The first listing, tried again within seconds until it succeeds. A replica started while
    the API server restarts (the soak's kill fault beside an apiserver-restart: run 15) failed
    it once, and kopf retries a failed startup activity 60 s later, with a traceback: a minute
    without a view or a liveness answer (a kubelet restarts such a pod). One line per failure."""
    for attempt in range(1_000_000):
        try:
            return await _warm_up(runtime)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - any failed listing: list again from the start
            wait = WARM_UP_PAUSES[min(attempt, len(WARM_UP_PAUSES) - 1)]
            logger.warning("warming up the view failed (%s): listing again in %.1f s", type(error).__name__, wait)
            await pause(wait)
    raise RuntimeError("unreachable")


async def _catch_up(runtime: Runtime) -> bool:
    """A new term's view made at least as new as the moment it took the Lease (issue 26): a
    standby's watches can lag far behind on a slow link, and what the previous leader wrote
    just before it stopped (a scale step's intent, an alert's outbox) must be in the view
    before this term decides from it, or it steps again within the period or fires the same
    alert under a second key. Every kind listed afresh (a quorum read); the view keeps the
    newer of what it holds and what is listed. Bounded by the renew deadline: past it, or on
    a failed listing, the term acts on the view as its watches left it (said in the log)."""
    started = time.monotonic()

    async def relist_all() -> None:
        for kind, namespace in _kinds_and_namespaces(runtime):
            await _list_into_view(runtime, kind, namespace)
    try:
        await asyncio.wait_for(relist_all(), timeout=runtime.elector.timing.renew_deadline)
    except Exception as error:  # a failed or slow listing: the watches' view, as before
        logger.warning("catching up at takeover failed (%s): acting on the view the watches left", type(error).__name__)
        return False
    logger.info("view caught up at takeover in %.1f s", time.monotonic() - started)
    return True


async def _alerting(runtime: Runtime, caught_up: bool) -> None:
    """The alerter's rounds, from AlertPolicies listed in this term: a term that alerted from a
    broken watch's view decided from status its predecessor had replaced, and its status write
    then replaced the predecessor's firings (issue 26's soak, run 14: 10 resolutions never sent).
    After a failed catch-up the AlertPolicies alone are listed again, until a listing succeeds;
    meanwhile nothing is judged, written or sent for them."""
    while not caught_up:
        try:
            for kind, namespace in _kinds_and_namespaces(runtime):
                if kind == alerter_module.KIND:
                    await _list_into_view(runtime, kind, namespace)
            caught_up = True
        except Exception as error:  # the API server is down or slow: alerting waits for it
            logger.warning("listing AlertPolicies for this term failed (%s): alerting waits for a listing",
                           type(error).__name__)
            await asyncio.sleep(runtime.elector.timing.retry_period)
    await runtime.alerter.run()


async def _relist(runtime: Runtime) -> None:
    """Every `relist_seconds`, list each kind again: a safety net under the watches."""
    while True:
        await asyncio.sleep(runtime.config.relist_seconds)
        for kind, namespace in _kinds_and_namespaces(runtime):
            try:
                await _list_into_view(runtime, kind, namespace)
            except Exception as error:  # a failed list keeps the view as it is
                logger.warning("re-list of %s failed: %s", kind, type(error).__name__)


def _watches(runtime: Runtime, versions: dict[tuple[str, str | None], str]) -> list[asyncio.Task[None]]:
    """One watch per (kind, namespace), from its warm-up listing on, feeding the view."""
    def watch(kind: str, namespace: str | None, since: str) -> typing.Coroutine[typing.Any, typing.Any, None]:
        return runtime.watcher.watch(kind, namespace, since,
                                     relist=functools.partial(_list_into_view, runtime, kind, namespace),
                                     on_event=functools.partial(_on_event, runtime))
    return [asyncio.create_task(watch(kind, namespace, since), name=f"watch-{kind}-{namespace or 'all'}")
            for (kind, namespace), since in versions.items()]


async def _after(first: asyncio.Task[None], loop_: typing.Callable[[], typing.Awaitable[None]]) -> None:
    """A loop that starts once its first round ends (however late, however it ended): never two
    rounds of one kind at once. Cancelling this cancels the first round too."""
    try:
        await first
    except Exception as error:  # a slow or failing source only delays its own part
        logger.warning("%s did not complete: %s", first.get_name(), type(error).__name__)
    await loop_()


def _leader_state(runtime: Runtime) -> list[tuple[object, str]]:
    """Every container the acting components hold empty before anything ran: what they learn
    while leading (decisions, probe history, the alert outbox, tasks spawned). A replica that
    stops acting clears them all, so a later term never judges from a stale term's memory; a
    container added to a component later is covered without naming it here."""
    containers = (collections.abc.MutableMapping, collections.abc.MutableSet, collections.abc.MutableSequence)
    owners = (runtime.evaluator, runtime.scaler, runtime.guard, runtime.snapshots, runtime.alerter, *runtime.pollers,
              runtime.probes)
    return [(owner, name) for owner in owners if owner is not None
            for name, value in vars(owner).items() if isinstance(value, containers) and not len(value)]


def liveness(runtime: Runtime) -> str:
    """/healthz: "leading" or "standby" while every loop runs and comes round; raises saying
    which one stopped or stalled. Called from the health server's thread too: it only reads."""
    # The election task ends by itself without --leader-elect (it only starts the loops).
    stopped = [task.get_name() for task in [*runtime.tasks, *runtime.acting] if task.done()
               and not (task.get_name() == "leader-election" and not runtime.elector.enabled)
               and not task.get_name().startswith("first-")]  # a first round ends by design
    if not runtime.tasks or stopped:
        raise RuntimeError(f"not running: {', '.join(stopped) or 'loops not started'}")
    stalled = heartbeat.stalled()
    if stalled:
        raise RuntimeError(f"stalled: {', '.join(stalled)} made no progress for minutes")
    return "leading" if runtime.elector.acting else "standby"


def register(registry: kopf.OperatorRegistry, runtime: Runtime) -> None:
    @kopf.on.login(registry=registry)
    def login(**_: typing.Any) -> kopf.ConnectionInfo:
        # kopf gets the very credentials our own client uses (kubeconfig or in-cluster).
        configuration = runtime.api.configuration
        return kopf.ConnectionInfo(
            server=configuration.host,
            ca_path=configuration.ssl_ca_cert,
            insecure=not configuration.verify_ssl,
            token=kubernetes_api.bearer_token(configuration),
            certificate_path=configuration.cert_file,
            private_key_path=configuration.key_file,
        )

    async def start_acting() -> None:
        """A task of its own once this replica holds the Lease (at once without --leader-elect):
        the renewal never waits for it."""
        runtime.heartbeats_before = heartbeat.expected()
        caught_up = await _catch_up(runtime)  # what the previous leader wrote is in the view before any decision
        # Scaling, metrics and rollouts read first, so that each object's first verdict
        # (readiness, the scaling decision, metrics, the rollout's phase) is one status write
        # rather than two (issue 10). Bounded well inside the lease: after the deadline
        # everything is judged anyway, and a first read still in flight (one tenant's hanging
        # Prometheus) delays only its own loop's start, never the others' (issue 21).
        started = time.monotonic()
        firsts = {name: asyncio.create_task(first, name=f"first-{name}") for name, first in (
            ("scaling", runtime.scaler.round()), ("metrics", runtime.snapshots.round()),
            ("rollouts", runtime.guard.rollout_round()))}
        runtime.acting += firsts.values()
        _, pending = await asyncio.wait(firsts.values(), timeout=runtime.elector.timing.first_round_deadline)
        logger.info("first scaling, metrics and rollout read in %.1f s%s", time.monotonic() - started,
                    f" ({', '.join(sorted(t.get_name() for t in pending))} still reading)" if pending else "")
        runtime.evaluator.mark_all()  # judge everything the warm view holds, now as the leader
        runtime.acting += [
            asyncio.create_task(runtime.evaluator.run(), name="evaluation-loop"),
            asyncio.create_task(_after(firsts["scaling"], runtime.scaler.run), name="scaling-loop"),
            asyncio.create_task(runtime.guard.run_checks(), name="health-checks"),
            asyncio.create_task(_after(firsts["rollouts"], runtime.guard.run_rollouts), name="rollout-guard"),
            asyncio.create_task(_after(firsts["metrics"], runtime.snapshots.run), name="metrics-snapshots"),
            asyncio.create_task(_alerting(runtime, caught_up), name="alerting"),
            asyncio.create_task(_relist(runtime), name="relist"),
            *(asyncio.create_task(poller.run(), name=poller.name) for poller in runtime.pollers),
        ]

    leader_state = _leader_state(runtime)  # taken now, before anything has run

    async def stop_acting() -> bool:
        """The Lease is lost: cancel every acting task and forget what this term learnt, so a
        later term starts from status as a fresh process would. False when a task would not stop."""
        tasks, runtime.acting = runtime.acting, []
        for task in tasks:
            task.cancel()
        pending: set[asyncio.Task[None]] = set()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_SECONDS)
        heartbeat.forget(*(heartbeat.expected() - runtime.heartbeats_before))  # not stalls: stopped
        for owner, name in leader_state:
            container = getattr(owner, name)
            for item in list(container) if isinstance(container, (set, list)) else ():
                if isinstance(item, asyncio.Task):
                    item.cancel()  # work a loop spawned (a health check in flight) stops with it
            container.clear()
        return not pending

    runtime.elector.bind(start_acting, stop_acting)

    @kopf.on.startup(registry=registry)
    async def start(**_: typing.Any) -> None:
        # Leader and standby alike keep the view warm: a takeover starts from a full view.
        versions = await _warm_up_until_done(runtime)
        heap.freeze("warm-up")
        runtime.tasks = [*_watches(runtime, versions),
                         asyncio.create_task(runtime.elector.run(), name="leader-election"),
                         asyncio.create_task(heap.keep_frozen(), name="heap")]

    @kopf.on.cleanup(registry=registry)
    async def stop(**_: typing.Any) -> None:
        alerting = next((task for task in runtime.acting if task.get_name() == "alerting"), None)
        if alerting is not None and not alerting.done():
            try:  # the round in flight finishes and its outcomes reach status
                await asyncio.wait_for(runtime.alerter.stop(), timeout=20)
            except asyncio.TimeoutError:
                logger.warning("alerting did not finish within 20 s of shutdown")
        for task in [*runtime.tasks, *runtime.acting]:
            task.cancel()
        await runtime.elector.release()
        await runtime.aclose()  # everything it owns, the last built first

    @kopf.on.probe(registry=registry, id="loops")
    def loops_alive(**_: typing.Any) -> str:
        return liveness(runtime)
