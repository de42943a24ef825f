"""AlertPolicy evaluation and delivery: the pure state machine, an outbox in status, notifiers.

Every interval each AlertPolicy is evaluated against what the operator already knows of its
services (metric snapshots, health, rollbacks; no extra queries). New notifications enter
the delivery log as Pending and that status is written *before* anything is sent; a
delivery is marked Sent after. A restart therefore re-sends only what may not have gone out
(with the same idempotency key) and re-decides nothing. On shutdown the round in progress
finishes and its outcomes are written, so a graceful restart neither drops nor doubles.

Judging never waits for the API server (issue 26's soak, run 14): a round steps every policy's
alerts in memory; the writes it calls for (the outbox before a send, the transitions' Events)
and the sends that follow run per policy beside the next rounds, a few of a namespace at a time.
Whatever memory holds Pending that status does not is written again at the next round until it
is: a write refused by the fence for a moment, or failed, never leaves a decision in memory only.
"""

from __future__ import annotations

import asyncio
import datetime
import functools
import itertools
import logging
import typing

import kubernetes

from controller import reasons
from controller.adapters import boundary
from controller.adapters import kubernetes_api
from controller.adapters import notifiers
from controller.adapters import notify
from controller.adapters import shares
from controller.api import alertpolicy as api
from controller.api import common
from controller.api import monitoredservice
from controller.core import alert_events
from controller.core import alerting
from controller.core import election
from controller.core import outbox
from controller.core import readiness
from controller.core import routing
from controller.core import status as status_module
from controller.core import timestamps
from controller.operator import loop
from controller.operator import metrics
from controller.operator import per_object
from controller.operator import snapshots as snapshots_module
from controller.operator import view as view_module
from controller.operator import heartbeat
from controller.operator import pools

logger = logging.getLogger(__name__)
KIND = api.KIND.kind
STATUS_FIELDS = ("alerts", "firing", "lastAck", "deliveries", "lastNotified", "groups")
# A round waits at most this long for its deliveries (one HTTP delivery's deadline and a
# little): a namespace of hanging receivers must not hold every other namespace's next round.
# A delivery still going on goes on; it is not started again while it does.
DELIVERY_WAIT_SECONDS = notify.TIMEOUT_SECONDS + 2.0
NAMESPACES_AT_ONCE = 16  # namespaces judged side by side in a round (each one's policies in turn)
# A namespace's policies written (outbox, Events) and sent at once, beside the rounds: one
# policy's slow write never holds its neighbours' (run 14: 20 firing together, 0.5-1.5 s a write),
# and one namespace holds at most this many of the evaluator's shared write slots.
WRITES_PER_NAMESPACE = 4
EVENTS_KEPT = 2 * alert_events.EVENTS_PER_ROUND  # a policy's transition Events waiting for their write


class Alerter:
    def __init__(self, view: view_module.View, evaluator: loop.Evaluator, api_: kubernetes_api.KubeApi,
                 snapshots: snapshots_module.Snapshots, registry: typing.Mapping[str, notify.Notifier],
                 interval_seconds: float = 5.0,
                 clock: typing.Callable[[], datetime.datetime] = loop.utcnow,
                 leading: typing.Callable[[], bool] = lambda: True,
                 burn_rate: typing.Callable[[str, str, str, int, int], float | None] = lambda *_: None) -> None:
        self.view, self.evaluator, self.api, self.snapshots = view, evaluator, api_, snapshots
        self.burn_rate = burn_rate  # (namespace, service, budget, long s, short s) -> multi-window burn rate
        self.leading = leading
        self.registry = registry
        self.interval_seconds = interval_seconds
        self.clock = clock
        # Per object (uid), not per name: a policy made again under its name (or a namespace
        # recreated by someone else) inherits no alerts and no pending deliveries of the old one.
        self.state: per_object.PerObject[dict[str, typing.Any]] = per_object.PerObject(view)
        self._round = asyncio.Lock()
        self._sending: dict[str, asyncio.Task[None]] = {}  # delivery key -> its attempt in flight
        self._writing: dict[view_module.Key, asyncio.Task[None]] = {}  # policy -> its write and sends in flight
        # The same tasks and the sends: cancelled when a term ends (a stand-down cancels the tasks
        # of sets and lists, not of dicts), so no send goes on without the Lease and the next term
        # never sends a key beside its last term's attempt (the delivery stays Pending in status).
        self._tasks: set[asyncio.Task[None]] = set()
        # Transition Events, posted after the outbox write: they die with their object, as alerts do.
        self._events: per_object.PerObject[list[status_module.EventSpec]] = per_object.PerObject(view)
        self._slots: dict[str, asyncio.Semaphore] = {}  # namespace -> WRITES_PER_NAMESPACE
        self._stopping = False

    def contribute(self, key: view_module.Key, current: loop.Status) -> loop.Contribution:
        if key[0] != KIND or key not in self.state:
            return None
        return dict(self.state[key]), []

    async def run(self) -> None:
        heartbeat.expect("alerting", self.interval_seconds)
        while True:
            heartbeat.beat("alerting")
            await asyncio.sleep(self.interval_seconds)
            try:
                async with self._round:
                    if self._stopping:
                        return  # no round may start (and send) after shutdown has begun
                    await self.judge()
                    self.write()  # beside the next rounds: judging never waits for a write
            except Exception:  # one bad round must not end alerting
                logger.exception("alerting round failed")

    async def stop(self) -> None:
        """Let the round in flight finish, then write what it changed (graceful restarts)."""
        async with self._round:
            self._stopping = True
            # Writes and deliveries the rounds left going: their outcomes too.
            going = [*self._writing.values(), *self._sending.values()]
            if going:
                _, late = await asyncio.wait(going, timeout=DELIVERY_WAIT_SECONDS)
                for task in late:  # Pending in status for whoever leads next: never left running
                    task.cancel()
                if late:
                    await asyncio.wait(late, timeout=1.0)
            for key in list(self.state):
                try:
                    await self.evaluator.reconcile_now(key)
                except Exception as failure:  # this tenant's problem alone
                    boundary.failed(failure, "alerting at shutdown", key)

    async def round(self) -> None:
        """One round to its end: judge every policy, then write, post and send what it called
        for, waiting for the deliveries at most DELIVERY_WAIT_SECONDS (the loop does not wait)."""
        await self.judge()
        self.write()
        if self._writing:
            await asyncio.wait(list(self._writing.values()))
        if self._sending:
            await asyncio.wait(list(self._sending.values()), timeout=DELIVERY_WAIT_SECONDS)

    async def judge(self) -> None:
        """Steps every policy's alerts in memory; no API call is awaited here."""
        now = self.clock()
        for key in [k for k in self.state if k not in self.view.objects]:
            del self.state[key]
        for key in [k for k in self._events if k not in self.view.objects]:
            del self._events[key]
        policies = sorted(self.view.of_kind(KIND).items(), key=_namespace_of)
        by_namespace = {namespace: list(group) for namespace, group in itertools.groupby(policies, key=_namespace_of)}
        for namespace in [n for n in self._slots if n not in by_namespace]:
            del self._slots[namespace]
        # Namespaces side by side, each one's policies in turn (their evaluation runs off the loop).
        lanes = asyncio.Semaphore(NAMESPACES_AT_ONCE)
        await asyncio.gather(*(self._namespace_round(policies, now, lanes) for policies in by_namespace.values()))

    async def _namespace_round(self, policies: typing.Sequence[tuple[view_module.Key, typing.Mapping[str, typing.Any]]],
                               now: datetime.datetime, lanes: asyncio.Semaphore) -> None:
        async with lanes:
            for key, obj in policies:
                try:
                    spec = self.view.valid(key, api.AlertPolicySpec)
                    if spec is None:
                        continue
                    await self._evaluate(key, obj, spec, now)
                    # The loop runs between policies too (an invalid one, skipped above, costs nothing).
                    await asyncio.sleep(0)
                except Exception as failure:  # this tenant's problem alone
                    boundary.failed(failure, "alerting", key, lambda _: metrics.RECONCILE_ERRORS.labels(KIND).inc())

    def write(self) -> None:
        """Starts, for each policy with something to write or send and nothing in flight, its
        outbox write, its Events and the sends that status then holds (`_write`)."""
        now = self.clock()
        for key in list(self.state):
            try:
                if key in self._writing or not (key in self._events or self.unwritten(key) or self._due_unsent(key, now)):
                    continue
                task = asyncio.create_task(self._write(key))
                self._writing[key] = task
                self._tasks.add(task)
                task.add_done_callback(functools.partial(self._written, key))
            except Exception as failure:  # this tenant's problem alone
                boundary.failed(failure, "alerting", key, lambda _: metrics.RECONCILE_ERRORS.labels(KIND).inc())

    def _written(self, key: view_module.Key, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._writing.get(key) is task:
            del self._writing[key]

    def unwritten(self, key: view_module.Key) -> bool:
        """Whether memory holds a Pending delivery that status does not: decided, not yet
        written (or its write was refused or failed), so not yet to be sent."""
        pending = {d.get("key") for d in (self.state.get(key) or {}).get("deliveries") or []
                   if d.get("outcome") == outbox.PENDING}
        if not pending:
            return False
        written = {d.get("key") for d in ((self.view.objects.get(key) or {}).get("status") or {}).get("deliveries") or []}
        return not pending <= written

    def _due_unsent(self, key: view_module.Key, now: datetime.datetime) -> bool:
        return any(d["key"] not in self._sending for d in self._persisted_due(key, now))

    @boundary.contained("alerting", lambda error: metrics.RECONCILE_ERRORS.labels(KIND).inc())
    async def _write(self, key: view_module.Key) -> None:
        """One policy: its outbox into status (if memory holds more than status), then its
        transitions' Events (best effort), then the sends status holds (none of a write refused
        or failed: it is tried again at the next round, `write` finds it unwritten)."""
        slots = self._slots.setdefault(key[1], asyncio.Semaphore(WRITES_PER_NAMESPACE))
        async with slots:
            if self.unwritten(key):
                await self.evaluator.reconcile_now(key)  # refused or failed: the next round writes it
            obj, events = self.view.objects.get(key), self._events.pop(key, [])
            if obj is None:
                return  # deleted meanwhile: nothing of it is posted or sent
            for event in events:
                try:
                    await self.evaluator.post_event(obj, event, self.clock())
                except Exception as failure:  # best effort: a refused or reset Event loses no notice
                    boundary.failed(failure, "an alert Event", key)
            spec = self.view.valid(key, api.AlertPolicySpec)
            if spec is not None:
                self._dispatch_now([(key, spec, delivery) for delivery in self._persisted_due(key, self.clock())])

    def _dispatch_now(self, sends: list[tuple[view_module.Key, api.AlertPolicySpec, dict[str, typing.Any]]]
                      ) -> list[asyncio.Task[None]]:
        """Starts each delivery not already in flight; each finishes on its own (and writes its outcome)."""
        started = []
        for key, spec, delivery in sends:
            if delivery["key"] in self._sending:
                continue  # its last attempt is still in flight (past an earlier round's wait)
            task = asyncio.create_task(self._deliver(key, spec, delivery))
            self._sending[delivery["key"]] = task
            self._tasks.add(task)
            task.add_done_callback(functools.partial(self._sent, delivery["key"]))
            started.append(task)
        return started

    async def _dispatch(self, sends: list[tuple[view_module.Key, api.AlertPolicySpec, dict[str, typing.Any]]]) -> None:
        """Starts each delivery not already in flight and waits for them at most
        DELIVERY_WAIT_SECONDS; one still going finishes on its own (and writes its outcome)."""
        started = self._dispatch_now(sends)
        if started:
            await asyncio.wait(started, timeout=DELIVERY_WAIT_SECONDS)

    def _sent(self, name: str, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if self._sending.get(name) is task:
            del self._sending[name]
        if not task.cancelled() and task.exception() is not None:
            logger.warning("delivery %s failed: %s", name, type(task.exception()).__name__)

    async def _evaluate(self, key: view_module.Key, obj: typing.Mapping[str, typing.Any],
                        spec: api.AlertPolicySpec, now: datetime.datetime) -> None:
        """Advance the alerts in memory; what they call for is written by `write`."""
        current = obj.get("status") or {}
        base = self.state.get(key) or {name: current.get(name) for name in STATUS_FIELDS}
        ack = ((obj.get("metadata") or {}).get("annotations") or {}).get(reasons.ACK_ANNOTATION)
        evaluate = functools.partial(
            alerting.evaluate, spec, self._observe(key[1], spec, now), base.get("alerts") or [], ack,
            base.get("lastAck"), now, obj["metadata"].get("uid", ""), namespace=key[1], policy=key[2],
            groups=base.get("groups") or [])
        # Off the loop: one policy over thousands of services is seconds of CPU; the loop keeps
        # its slices of the GIL meanwhile (Lease renewals, watches, every other tenant).
        result = await pools.run(pools.ALERTING, evaluate)
        if key not in self.view.objects:
            return  # deleted meanwhile: nothing of it is kept or sent
        # A delivery may have completed while this policy was evaluated: its outcome stands.
        latest = self.state.get(key) or base
        deliveries = outbox.enqueue(latest.get("deliveries") or [], result.notifications, now)
        fields = {"alerts": result.alerts, "firing": result.firing, "lastAck": result.last_ack, "groups": result.groups,
                  "deliveries": deliveries, "lastNotified": outbox.last_sent(deliveries) or latest.get("lastNotified")}
        self.state[key] = fields
        events = alert_events.transition_events(result.transitions)
        if events:
            waiting = self._events.setdefault(key, [])
            waiting += events
            del waiting[:-EVENTS_KEPT]
        # The outbox must be in status before anything in it is sent: `write` does that at once;
        # any other change is written by the evaluation loop.
        if not self.unwritten(key) and fields != {name: latest.get(name) for name in STATUS_FIELDS}:
            self.evaluator.mark(key)

    def _persisted_due(self, key: view_module.Key, now: datetime.datetime) -> list[dict[str, typing.Any]]:
        written = {d.get("key") for d in ((self.view.objects.get(key) or {}).get("status") or {}).get("deliveries") or []
                   if d.get("outcome") == outbox.PENDING}
        return [d for d in outbox.due((self.state.get(key) or {}).get("deliveries") or [], now) if d["key"] in written]

    def _observe(self, namespace: str, spec: api.AlertPolicySpec, now: datetime.datetime
                 ) -> list[alerting.Observation]:
        observations = []
        stale_after = datetime.timedelta(seconds=3 * self.snapshots.interval_seconds)
        windows = alerting.burn_rate_windows(spec)  # once per policy, not per service (on the loop)
        for name in readiness.selected_services(namespace, spec, self.view.world):
            msvc = self.view.world.monitored_services.get((namespace, name)) or {}
            reading = self.snapshots.readings.get((monitoredservice.KIND.kind, namespace, name))
            fresh = reading is not None and reading.samples is not None and now - reading.time <= stale_after
            observation = alerting.observe(name, msvc.get("status") or {},
                                           reading.samples if fresh and reading else None, now)
            burn = {alerting.burn_rate_name(slo, long_seconds, short_seconds):
                    self.burn_rate(namespace, name, slo, long_seconds, short_seconds)
                    for slo, long_seconds, short_seconds in windows}
            observations.append(alerting.Observation(name, {**observation.values, **burn}))
        return observations

    @boundary.contained("a delivery", lambda error: metrics.RECONCILE_ERRORS.labels(KIND).inc())
    async def _deliver(self, key: view_module.Key, spec: api.AlertPolicySpec, delivery: dict[str, typing.Any]) -> None:
        if not self.leading():
            return  # fenced: it stays Pending in the outbox for whoever holds the Lease
        channel = next((c for c in spec.channels if c.name == delivery["channel"]), None)
        now = self.clock()
        error: str | None
        if channel is None:
            error = f"channel {delivery['channel']} is no longer declared"
        else:
            try:
                error = await self._send(key, spec, channel, delivery, now)
            except election.NotLeader:
                # Refused at the call (leadership ended during the Secret read or the wait for
                # a connection): nothing left, nothing failed; Pending for whoever holds the Lease.
                logger.info("delivery %s not sent: this replica no longer leads", delivery["key"])
                return
        metrics.NOTIFICATIONS.labels(notifiers.kind_of(channel) if channel else "unknown",
                                     "sent" if error is None else "failed").inc()
        state = self.state.get(key)
        if state is None:
            return
        state["deliveries"] = outbox.complete(state["deliveries"], delivery["key"], error, self.clock())
        state["lastNotified"] = outbox.last_sent(state["deliveries"]) or state.get("lastNotified")
        final: dict[str, typing.Any] = next((d for d in state["deliveries"] if d["key"] == delivery["key"]), {})
        if final.get("outcome") == outbox.FAILED and (obj := self.view.objects.get(key)) is not None:
            await self.evaluator.post_event(obj, status_module.EventSpec(
                "Warning", reasons.DELIVERY_FAILED,
                f"{delivery['kind']} of {delivery['alert']} to {delivery['channel']} failed after "
                f"{final.get('attempt')} attempts: {error}"), now)
        self.evaluator.mark(key)

    async def _send(self, key: view_module.Key, spec: api.AlertPolicySpec, channel: api.Channel,
                    delivery: dict[str, typing.Any], now: datetime.datetime) -> str | None:
        rule, _, service = delivery["alert"].partition("/")
        rule_spec = next((r for r in spec.rules if r.name == rule), None)
        # The alert's labels and annotations as the rule says now (status keeps neither).
        labels = routing.alert_labels(rule_spec, service, key[1], key[2]) if rule_spec is not None else {}
        matched = routing.match(spec, labels) if rule_spec is not None else []
        if delivery.get("group"):  # a group's notification: its route is named by the group's key
            matched = [r for r in routing.walk(spec) if delivery["group"].startswith(r.path + "{")]
            labels = alerting.group_labels(delivery["group"])
        message = notify.Message(
            alerting.Notification(delivery["key"], channel.name, delivery["kind"], rule, service, delivery["severity"],
                                  delivery["summary"], timestamps.from_status(delivery.get("firedAt") or delivery["time"]),
                                  group=delivery.get("group") or "", alerts=tuple(delivery.get("alerts") or ())),
            namespace=key[1], policy=key[2], sent_at=now,
            valid_for=datetime.timedelta(seconds=3 * (matched[0].repeat if matched else routing.DEFAULT_REPEAT_SECONDS)),
            labels=labels, annotations=alerting.rule_annotations(rule_spec, service) if rule_spec is not None else {},
            members=tuple(alerting.group_members(spec, delivery.get("alerts") or [], key[1], key[2])))

        async def secret(ref: common.SecretKeyRef) -> str:
            try:
                value = await pools.run(pools.KUBE, self.api.secret_value, key[1], ref.name, ref.key)
            except kubernetes.client.ApiException as error:
                raise notify.DeliveryError(f"Secret {ref.name}: {error.status} {error.reason}") from None
            if value is None:
                raise notify.DeliveryError(f"Secret {ref.name} has no key {ref.key}")
            return value

        try:
            with shares.tenant(key[1]):  # its connections come from its namespace's share
                await self.registry[notifiers.kind_of(channel)].send(channel, message, secret)
        except election.NotLeader:
            raise  # the fence, not a failure of this delivery
        except notify.DeliveryError as error:
            logger.warning("delivery %s failed: %s", delivery["key"], error)
            return str(error)
        except Exception as error:  # a notifier's bug is this delivery's failure, never the round's
            logger.warning("delivery %s failed unexpectedly: %s", delivery["key"], type(error).__name__)
            return f"unexpected {type(error).__name__} in the {notifiers.kind_of(channel)} notifier"
        return None


def _namespace_of(item: tuple[view_module.Key, typing.Any]) -> str:
    return item[0][1]
