"""The scaling round: batched metric reads, pure decisions, actuation, records.

Every tick, the ScalingPolicies that are due are evaluated together: their metrics are read
through the metric-source seam in one batch (operator/sources.py: Prometheus sends each
distinct query once for all of them, the metrics API lists each namespace once), the core decides per policy, the
scale subresource is patched where the decision says so, and the outcome is handed to the
evaluation loop, which writes status only when it changed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
import typing

import kubernetes

from controller.adapters import actuator
from controller.adapters import actuator_scale
from controller.adapters import boundary
from controller.adapters import kubernetes_api
from controller.adapters import metric_source
from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import actuation
from controller.core import scaling
from controller.core import scaling_status
from controller.core import selectors
from controller.core import snapshot
from controller.core import targets
from controller.core import world as world_module
from controller.operator import loop
from controller.operator import metrics
from controller.operator import per_object
from controller.operator import view as view_module
from controller.operator import heartbeat
from controller.operator import pools
from controller.operator import seasonal as seasonal_module
from controller.operator import sources as sources_module

logger = logging.getLogger(__name__)
TICK_SECONDS = 1.0
DECISION_CHUNK = 200  # decisions started between two yields to the loop
KIND = scalingpolicy.KIND.kind


class Scaler:
    def __init__(
        self,
        view: view_module.View,
        evaluator: loop.Evaluator,
        api: kubernetes_api.KubeApi,
        scale: actuator.Actuators,  # where replicas are set: the actuator of the target's platform
        default_prometheus: str | None,
        metric_sources: sources_module.Sources | None = None,
        clock: typing.Callable[[], datetime.datetime] = loop.utcnow,
        leading: typing.Callable[[], bool] = lambda: True,
        seasonal: seasonal_module.SeasonalHistories | None = None,
    ) -> None:
        self.leading = leading
        # The seasonal forecast's range queries (spec.predictive.seasonal), in the background.
        self.seasonal = seasonal or seasonal_module.SeasonalHistories(view, None)
        self.view, self.evaluator, self.api, self.scale = view, evaluator, api, scale
        self.default_prometheus = default_prometheus
        self.sources = metric_sources or sources_module.Sources({})
        self.clock = clock
        self.started_at = clock()
        # Per object (uid), not per name: a policy made again under its name starts with no
        # decision in status, no stabilization window and no cooldown of the old one.
        self.records: per_object.PerObject[scaling_status.Record] = per_object.PerObject(view)
        self.unsupported: per_object.PerObject[str] = per_object.PerObject(view)
        self.memory: per_object.PerObject[scaling.State] = per_object.PerObject(view)
        # The step about to be made, in status before the scale call; one refused, taken out
        # of it again (scaling_status.pending: intent first, issue 26).
        self.intents: per_object.PerObject[scaling.ScaleEvent] = per_object.PerObject(view)
        self.withdrawn: per_object.PerObject[scaling.ScaleEvent] = per_object.PerObject(view)
        # When each intent another leader left without its record was first read (_first_read).
        self.first_reads: per_object.PerObject[dict[tuple[str, int, int], datetime.datetime]] = per_object.PerObject(view)
        self.next_due: dict[view_module.Key, float] = {}

    # -- status contribution (called by the evaluation loop, the one writer) ---------------
    def contribute(self, key: view_module.Key, current: loop.Status) -> loop.Contribution:
        if key[0] != KIND:
            return None
        if key in self.unsupported:
            return {}, scaling_status.unsupported(self.unsupported[key])
        record = self.records.get(key)
        contribution = None if record is None else scaling_status.assess(record, current)
        intent, withdrawn = self.intents.get(key), self.withdrawn.get(key)
        if intent is None and withdrawn is None:
            return contribution
        fields, changes = contribution if contribution is not None else ({}, [])
        return {**fields, **scaling_status.pending({**current, **fields}, intent, withdrawn)}, changes

    # -- the loop ------------------------------------------------------------------------
    async def run(self) -> None:
        heartbeat.expect("scaling", TICK_SECONDS)
        while True:
            heartbeat.beat("scaling")
            await asyncio.sleep(TICK_SECONDS)
            try:
                await self.round()
            except Exception:  # a bad round must not end scaling
                logger.exception("scaling round failed")

    def _due(self) -> list[view_module.Key]:
        now = time.monotonic()
        due = []
        for key in self.view.of_kind(KIND):
            try:
                if self.next_due.get(key, 0.0) > now:
                    continue
                if not self.evaluator.is_ready(key):
                    continue  # readiness says why (target missing, invalid spec)
                due.append(key)
            except Exception as failure:  # this tenant's problem alone
                boundary.failed(failure, "scaling", key)
        return due

    async def round(self) -> None:
        due = self._due()
        if not due:
            return
        for key in [k for k in self.records if k not in self.view.objects]:
            self._forget(key)
        started = time.perf_counter()
        specs: dict[view_module.Key, scalingpolicy.ScalingPolicySpec] = {}
        resolved: dict[view_module.Key, targets.Target] = {}
        for key in due:
            try:
                spec = self.view.valid(key, scalingpolicy.ScalingPolicySpec)
                if spec is None:
                    continue  # readiness reports InvalidSpec
                # Due times sit on a grid of the interval, so policies sharing an interval share a
                # round (and its queries), however their first evaluations were spread.
                interval = spec.evaluationIntervalSeconds
                self.next_due[key] = (time.monotonic() // interval + 1) * interval
                target = self._target(key, spec)
                if isinstance(target, str):
                    self.unsupported[key] = target
                    self.evaluator.mark(key)
                    continue
                self.unsupported.pop(key, None)
                specs[key], resolved[key] = spec, target
            except Exception as failure:  # this tenant's problem alone
                boundary.failed(failure, "scaling", key)

        owners = self._owners_by_workload(specs, resolved)
        self.seasonal.refresh(specs, resolved)  # starts the due range queries; never waits for them
        # Each policy is decided as soon as its samples are in (operator/sources.py, on_owner):
        # a namespace whose Prometheus hangs delays its own decisions, not the round's.
        arrived: list[tuple[view_module.Key, dict[scaling.MetricKey, scaling.Sample]]] = []
        wake = asyncio.Event()

        def ready(owner: typing.Hashable, got: dict[scaling.MetricKey, scaling.Sample]) -> None:
            arrived.append((typing.cast(view_module.Key, owner), got))
            wake.set()

        reading = asyncio.ensure_future(self.sources.read([
            self._request(key, metric_key, resolved[key])
            for key, spec in specs.items() for metric_key in scaling.read_keys(spec)],
            on_owner=ready))
        decisions: list[asyncio.Task[None]] = []
        begun: set[view_module.Key] = set()
        try:
            while True:
                # Started in chunks with a yield between: 10,000 decisions at once held the loop
                # for seconds (status writes, watch events and health checks waited behind them).
                while arrived:
                    batch, arrived[:] = arrived[:DECISION_CHUNK], arrived[DECISION_CHUNK:]
                    for key, got in batch:
                        try:
                            if key in specs and key not in begun:
                                begun.add(key)
                                decisions.append(asyncio.create_task(
                                    self._decide_and_act(key, specs[key], resolved[key], got, owners)))
                        except Exception as failure:  # each decision is contained too (_decide_and_act)
                            boundary.failed(failure, "scaling", key)
                    await asyncio.sleep(0)
                if reading.done():
                    samples = reading.result()
                    arrived += [(key, samples.get(key, {})) for key in specs if key not in begun]  # never told
                    if not arrived:
                        break
                    continue
                wake.clear()
                woken = asyncio.ensure_future(wake.wait())
                await asyncio.wait({reading, woken}, return_when=asyncio.FIRST_COMPLETED)
                woken.cancel()
        except BaseException:
            reading.cancel()
            for task in decisions:
                task.cancel()
            raise
        await asyncio.gather(*decisions)
        metrics.SCALING_ROUND_SECONDS.observe(time.perf_counter() - started)

    def _request(self, owner: typing.Hashable, metric: scaling.MetricKey, target: targets.Target) -> metric_source.Request:
        workload = self.view.world.workloads.get(target.workload_key)
        return metric_source.Request(owner, metric, target, workload.selector if workload else selectors.Selector())

    async def read_service_metrics(
        self, services: typing.Sequence[tuple[view_module.Key, monitoredservice.MonitoredServiceSpec]],
        metric_keys: typing.Sequence[scaling.MetricKey] | None = None,
    ) -> dict[view_module.Key, dict[scaling.MetricKey, scaling.Sample]]:
        """The same seam for MonitoredServices (rollout analysis, snapshots); `metric_keys`
        None reads every metric some source can answer for each service."""
        requests = []
        for key, spec in services:
            target = targets.of_service(key[1], spec, self.default_prometheus)
            wanted = metric_keys if metric_keys is not None else [
                m for m in snapshot.metric_keys(target.custom) if target.choose(m[0])[0] is not None]
            requests += [self._request(key, metric, target) for metric in wanted]
        samples = await self.sources.read(requests)
        return {key: samples.get(key, {}) for key, _ in services}

    def _target(self, key: view_module.Key, spec: scalingpolicy.ScalingPolicySpec) -> targets.Target | str:
        namespace = key[1]

        def service(name: str) -> monitoredservice.MonitoredServiceSpec | str:
            msvc_key = (monitoredservice.KIND.kind, namespace, name)
            if msvc_key not in self.view.objects:
                return f"MonitoredService {name} not found"
            parsed = self.view.valid(msvc_key, monitoredservice.MonitoredServiceSpec)
            return parsed if parsed is not None else f"MonitoredService {name} is invalid"

        return targets.of_policy(namespace, spec, service, self.default_prometheus)

    def _owners_by_workload(
        self, specs: dict[view_module.Key, scalingpolicy.ScalingPolicySpec], resolved: dict[view_module.Key, targets.Target]
    ) -> dict[tuple[str, str, str], list[str]]:
        """Every ScalingPolicy (due or not) by the workload it scales, for conflict detection."""
        owners: dict[tuple[str, str, str], list[str]] = {}
        for key, target in resolved.items():
            owners.setdefault(target.workload_key, []).append(key[2])
        for key in self.view.of_kind(KIND):
            try:
                if key in resolved:
                    continue
                spec = self.view.valid(key, scalingpolicy.ScalingPolicySpec)
                if spec is None:
                    continue
                other = self._target(key, spec)
                if isinstance(other, targets.Target):
                    owners.setdefault(other.workload_key, []).append(key[2])
            except Exception as failure:  # this tenant's problem alone
                boundary.failed(failure, "scaling", key)
        return owners

    @boundary.contained("a scaling decision", lambda error: metrics.RECONCILE_ERRORS.labels(KIND).inc())
    async def _decide_and_act(
        self, key: view_module.Key, spec: scalingpolicy.ScalingPolicySpec, target: targets.Target,
        samples: dict[scaling.MetricKey, scaling.Sample], owners: dict[tuple[str, str, str], list[str]],
    ) -> None:
        obj = self.view.objects.get(key)
        workload = self.view.world.workloads.get(target.workload_key)
        if obj is None or workload is None or workload.replicas is None:
            return
        now = self.clock()
        current_status = obj.get("status") or {}
        state = scaling_status.state_from_status(current_status, self.started_at, self.memory.get(key),
                                                 self._first_read(key, current_status, now, workload))
        if spec.predictive.seasonal.enabled:  # a range answer that arrived since joins the history
            state = dataclasses.replace(state, seasonal=self.seasonal.merged(key, spec, state.seasonal))
        outcome = scaling.decide(spec, workload.replicas, samples, state, now, ready=workload.ready_replicas,
                                 limits=workload.limits)
        self.memory[key] = dataclasses.replace(state, recommendations=outcome.recommendations, history=outcome.history,
                                               seen=scaling.seen_after(state, outcome.metrics),
                                               idle_since=outcome.idle_since, seasonal=outcome.seasonal,
                                               forecast=outcome.forecast)
        failed_history = self.seasonal.error(key)
        if outcome.forecast is not None and not outcome.forecast.trusted and failed_history:
            outcome = dataclasses.replace(outcome, forecast=dataclasses.replace(
                outcome.forecast, message=f"{outcome.forecast.message}; {seasonal_module.FAILED}{failed_history}"))

        workload_name = f"{target.kind}/{target.name}"
        verdict = actuation.judge(
            spec, outcome, workload_name, self.view.world.autoscalers.get(target.workload_key),
            [name for name in owners.get(target.workload_key, []) if name != key[2]],
            (obj.get("metadata") or {}).get("annotations") or {}, current_status.get("lastDecision") or {})
        record = scaling_status.Record(outcome, now, verdict.dry_run, verdict.blocked_reason, verdict.blocked_message)
        if verdict.act:
            if not self.leading():
                return  # fenced: a replica that does not hold the Lease never actuates
            if not await self._still_exists(key, obj):
                return  # deleted (the watch may not have said so): it never acts again
            # Intent first (issue 26): the step is in status.scaleEvents before the scale call, so
            # a successor counts it even if this replica is paused or killed before its record is
            # written. Not written (API server down, fenced): no scale.
            step = scaling.ScaleEvent(now, outcome.current, outcome.desired)
            self.intents[key] = step
            self.withdrawn.pop(key, None)
            if not await self.evaluator.reconcile_now(key):
                self.intents.pop(key, None)
                return
            try:
                written = await self.scale.set_replicas(target.kind, target.namespace, target.name, outcome.desired)
            except self.scale.errors as error:
                self.intents.pop(key, None)  # refused or unknown: status says which from here
                why = actuator.describe(error)
                logger.warning("scaling %s failed: %s", key, why)
                failure = actuation.failed(workload_name, outcome, why)
                # AbleToScale False FailedRescale until the next decision (HPA: FailedUpdateScale).
                record = dataclasses.replace(record, blocked_reason=failure.reason, blocked_message=failure.message)
                if _refused(error):
                    self.withdrawn[key] = step  # not a step: out of the period again (if this write lands)
                else:
                    # Its outcome is unknown (an answer cut off, a timeout after the request left):
                    # it may have landed as late as its failure came back, so it counts from then
                    # (its intent, stamped when decided, replaced), as a step counts from its landing.
                    failed_at = max(now, self.clock())
                    record = dataclasses.replace(record, unknown=scaling.ScaleEvent(
                        failed_at, outcome.current, outcome.desired))
                    self._remember(key, scaling.ScaleEvent(failed_at, outcome.current, outcome.desired, decided=now,
                                                           certain=False))
                await self.evaluator.post_event(obj, failure, now)
                self.records[key] = record
                self.evaluator.mark(key)
                return
            except BaseException:
                self.intents.pop(key, None)
                raise
            self.intents.pop(key, None)  # made: the record below says so
            # The step counts from when its scale landed, as HPA's: stamped at the decision, a
            # scale that took seconds to land let the next one follow it within the period (the
            # one-hour soak, run 14).
            landed = max(now, self.clock())
            record = dataclasses.replace(record, actuated=True, landed=landed)
            # The step counts against its period at once, not when its status write lands (issue 26).
            self._remember(key, scaling.ScaleEvent(landed, outcome.current, outcome.desired, decided=now))
            if target.kind not in view_module.WORKLOAD_KINDS and workload.replicas != written:
                # A polled target: no watch event tells the next round what was written (it
                # would step twice from the old count); its next poll confirms it.
                self.view.world.workloads[target.workload_key] = dataclasses.replace(workload, replicas=written,
                                                                                     changed_at=landed)
            metrics.SCALE_EVENTS.labels(outcome.direction).inc()
            if verdict.done is not None:
                await self.evaluator.post_event(obj, verdict.done, now)
        elif verdict.event is not None:
            await self.evaluator.post_event(obj, verdict.event, now)
        previous_record = self.records.get(key)
        self.records[key] = record
        if previous_record is None or record.actuated or verdict.new or _signature(previous_record) != _signature(record):
            self.evaluator.mark(key)  # steady state: nothing for the status to say, no reconcile

    def _first_read(self, key: view_module.Key, status: typing.Mapping[str, typing.Any],
                    now: datetime.datetime, workload: world_module.Workload) -> dict[tuple[str, int, int], datetime.datetime]:
        """When each intent in status that no record confirmed (another leader's, stopped between
        its scale and its record) counts as landed (issue 26), on this replica's clock only: when
        it first saw the workload run the intent's count (Workload.changed_at: a warm standby's
        watch event or poll answer, a cold successor's first read; the count had changed by
        then), else when it first read the intent. Never by a platform's stamp of the change
        (managedFields, Railway's createdAt): another clock's, and one behind counted a step
        older than it landed (test_review_findings 23)."""
        known = self.first_reads.get(key) or {}
        reads = {}
        changed = workload.changed_at
        for event in scaling_status.unconfirmed(status, self.memory.get(key)):
            step = scaling_status.step_key(event)
            if changed is not None and workload.replicas == event.to_replicas:
                reads[step] = changed  # this replica saw its count then: it had landed by then, if made
            else:
                reads[step] = known.get(step, now)
        # A step stamped in this replica's future (another replica's clock ahead), confirmed or
        # not: it had happened when first read, and counts from then for as long as status has it.
        for event in scaling_status.recorded(status):
            step = scaling_status.step_key(event)
            first = known.get(step, now)
            if event.time > first:
                reads[step] = min(reads.get(step, first), first)
        if not reads:
            self.first_reads.pop(key, None)
        elif reads != known:
            self.first_reads[key] = reads
        return reads

    def _remember(self, key: view_module.Key, step: scaling.ScaleEvent) -> None:
        """A step (made, or whose outcome is unknown) counts against its period at once."""
        remembered = self.memory.get(key)
        if remembered is not None:
            self.memory[key] = dataclasses.replace(remembered, events=(step, *remembered.events)[:20])

    async def _still_exists(self, key: view_module.Key, obj: typing.Mapping[str, typing.Any]) -> bool:
        """Before a scale (rare, never repeated in steady state): is this policy still the one
        the API server has? A policy deleted during a watch gap must not scale again."""
        uid = (obj.get("metadata") or {}).get("uid")
        try:
            current = await pools.run(pools.KUBE, self.api.current_uid, KIND, key[1], key[2])
        except kubernetes.client.ApiException as error:
            logger.warning("cannot confirm %s before scaling: %s", key, error.status)
            return False
        if current is None or (uid and current != uid):
            logger.info("%s/%s is gone or was recreated: forgotten, not scaled", key[1], key[2])
            self.view.remove({"kind": KIND, "metadata": {"namespace": key[1], "name": key[2]}})
            self._forget(key)
            return False
        return True

    def _forget(self, key: view_module.Key) -> None:
        for store in (self.records, self.memory, self.next_due, self.unsupported, self.intents, self.withdrawn,
                      self.first_reads):
            store.pop(key, None)
        self.seasonal.forget(key)


def _refused(error: Exception) -> bool:
    """Whether a failed scale certainly changed nothing: the API server answered 4xx, the call
    was never made, or the platform says it executed nothing (`executed` False: Railway's 429,
    a token refused, no connection). Anything else (a 5xx, a timeout after the request left, an
    answer cut off) may have scaled: it counts, the conservative side. A refused one left in
    the period would loosen the next step the other way (a phantom step down let a step up of
    two, after a 429 storm)."""
    status = getattr(error, "status", None)
    return (isinstance(status, int) and 400 <= status < 500) or getattr(error, "executed", None) is False or isinstance(
        error, (actuator.Unsupported, actuator_scale.ScaleError))


def _signature(record: scaling_status.Record) -> tuple[typing.Any, ...]:
    """What of a record can change status (values within a band cannot)."""
    outcome = record.outcome
    return (outcome.direction, outcome.current, outcome.desired, outcome.able_to_scale, outcome.scaling_active,
            outcome.scaling_limited, outcome.recommendation, tuple(v.band for v in outcome.metrics),
            record.blocked_reason, record.blocked_message, record.dry_run,
            (outcome.forecast.trusted, outcome.forecast.reason, seasonal_module.FAILED in outcome.forecast.message)
            if outcome.forecast else None)
