"""MonitoredService guardian: operator-side health checks and the rollout guard.

Health checks run on a heap of due times with bounded concurrency; their verdicts live in
memory and reach status only on transitions. The rollout guard judges each target that can
be rolled back (its platform offers rollback: core/platforms.py) every tick with the pure core
and rolls back through the actuator of its platform (adapters/actuator.py), after its intent
is in status (so a restart neither loses nor repeats it).
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import datetime
import functools
import heapq
import logging
import time
import typing
import zlib

from controller import reasons
from controller.adapters import boundary
from controller.adapters import budget
from controller.adapters import http_check
from controller.adapters import shares
from controller.api import alertpolicy
from controller.api import monitoredservice as api
from controller.core import conditions
from controller.core import health
from controller.core import rollout
from controller.core import platforms
from controller.core import predeploy
from controller.core import scaling
from controller.core import hooks as hooks_module
from controller.core import status as status_module
from controller.core import targets
from controller.core import timestamps
from controller.operator import loop
from controller.operator import metrics
from controller.operator import per_object
from controller.operator import view as view_module
from controller.operator import heartbeat

logger = logging.getLogger(__name__)
KIND = api.KIND.kind
TICK_SECONDS = 1.0
SPREAD_SECONDS = 10.0


@dataclasses.dataclass
class ServiceHealth:
    states: dict[str, health.CheckState] = dataclasses.field(default_factory=dict)
    refused: dict[str, str] = dataclasses.field(default_factory=dict)
    # (time, ok) of every probe, for availability and burn rates; bounded in time (6 h) and count.
    outcomes: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=50000))
    # (time, ms) of every passing probe, for the latency SLO; bounded the same way.
    latencies: collections.deque = dataclasses.field(default_factory=lambda: collections.deque(maxlen=50000))


RETAINED_OUTCOMES_SECONDS = 6 * 3600  # the longest burn-rate window


class RollbackTarget(typing.Protocol):
    """Rolls a workload's failed revision back: the actuators' registry (adapters/actuator.py)."""

    errors: tuple[type[Exception], ...]  # what a failed rollback raises

    def supports(self, kind: str) -> bool: ...

    async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str: ...


class HookJobs(typing.Protocol):
    """Creates and reads the Jobs of post-deploy hooks (adapters/kubernetes_jobs.py)."""

    errors: tuple[type[Exception], ...]  # a failed read or create: tried again on the next tick
    refused: type[Exception]  # a create refused for good: the hook has failed

    async def read(self, namespace: str, name: str) -> hooks_module.JobView: ...

    async def create(self, namespace: str, body: dict[str, typing.Any]) -> bool: ...


class DeploymentGate(typing.Protocol):
    """Pauses, unpauses and restores a Deployment for its pre-deploy gate (adapters/kubernetes_gate.py)."""

    errors: tuple[type[Exception], ...]  # a failed read or patch: decided again on the next tick

    async def pause(self, namespace: str, name: str, uid: str, paused: bool, digest: str) -> bool: ...

    async def restore(self, namespace: str, name: str, uid: str, approved: str) -> str: ...


HOOKS_DISABLED = "hooks are disabled in this operator (--no-rollout-hooks; the chart's hooks.enabled)"
# A Job there could name the operator's own ServiceAccount and run with its rights.
OWN_NAMESPACE = "hooks do not run in the operator's own namespace (its ServiceAccount is there)"


class Guard:
    def __init__(
        self, view: view_module.View, evaluator: loop.Evaluator, checker: http_check.HttpChecker, rollback: RollbackTarget,
        read_metrics: typing.Callable[..., typing.Awaitable[dict]], concurrency: int = 256,
        clock: typing.Callable[[], datetime.datetime] = loop.utcnow, jobs: HookJobs | None = None,
        own_namespace: str | None = None, gate: DeploymentGate | None = None,
    ) -> None:
        self.view, self.evaluator, self.checker, self.rollbacks = view, evaluator, checker, rollback
        self.gate = gate  # None: pre-deploy hooks cannot gate here, and a service that has some fails them
        self.jobs = jobs  # None: hooks are disabled, and a service that has some fails them
        self.own_namespace = own_namespace  # the operator's (hooks are refused there)
        # Hook Jobs the API server refused to create, by service: job name -> why (the next judge reads it).
        self.refused_jobs: per_object.PerObject[dict[str, str]] = per_object.PerObject(view)
        self.read_metrics = read_metrics
        self.clock = clock
        # Kept per object (by uid), not per name: a service deleted and created again under the
        # same name starts with no probe history and no verdict, and deleted ones cost nothing.
        self.services: per_object.PerObject[ServiceHealth] = per_object.PerObject(view)
        self.verdicts: per_object.PerObject[rollout.Verdict] = per_object.PerObject(view)
        self._heap: list[tuple[float, view_module.Key, str]] = []
        self._scheduled: set[tuple[view_module.Key, str]] = set()
        # Places for probes in flight; one namespace holds at most its share (a namespace of
        # slow endpoints waits behind itself, others' checks run on time).
        self._probes = shares.FairShares(concurrency, min(concurrency, budget.HEALTH_PER_NAMESPACE))
        self._tasks: set[asyncio.Task[None]] = set()
        # Checks whose previous run has not finished (waiting for a place, or probing): a due
        # run of one of them is skipped, never started beside it (669 probes were pending
        # after 20 s of slow endpoints when each due time started a new one).
        self._in_flight: set[tuple[view_module.Key, str]] = set()

    # -- status ------------------------------------------------------------------------
    def burn_rate(self, namespace: str, name: str, budget: str, long_seconds: int, short_seconds: int) -> float | None:
        """The multi-window burn of a service's error budget, availability ("burnRate") or latency
        ("latencyBurnRate"), from its health checks (alerting reads it)."""
        key = (KIND, namespace, name)
        service = self.services.get(key)
        spec = self.view.valid(key, api.MonitoredServiceSpec) if key in self.view.objects else None
        if service is None or spec is None:
            return None
        if budget == alertpolicy.AlertMetric.LATENCY_BURN_RATE.value:
            if spec.slo.latencyP95Ms is None:
                return None
            return health.multi_window_latency_burn(list(service.latencies), self.clock(), long_seconds,
                                                    short_seconds, spec.slo.latencyP95Ms)
        return health.multi_window_burn(list(service.outcomes), self.clock(), long_seconds, short_seconds,
                                        spec.slo.availabilityPercent)

    def checked_services(self) -> list[view_module.Key]:
        """Services whose status moves with time (availability and latency over their SLO window)."""
        return [key for key in self.services if key in self.view.objects]

    def contribute(self, key: view_module.Key, current: loop.Status) -> loop.Contribution:
        if key[0] != KIND:
            return None
        spec = self.view.valid(key, api.MonitoredServiceSpec)
        if spec is None:
            return None
        fields: dict[str, typing.Any] = {}
        changes: list[conditions.ConditionChange] = []
        service = self.services.get(key)
        if spec.healthChecks and service is not None:
            now = self.clock()
            states = [service.states.get(check.name, health.CheckState()) for check in spec.healthChecks]
            availability = health.availability(list(service.outcomes), now, spec.slo.windowSeconds)
            verdict, why = health.overall(states, spec.healthyPercent)
            fields["health"] = verdict
            fields["availabilityPercent"] = availability
            fields["latencyWithinSloPercent"] = None if spec.slo.latencyP95Ms is None else health.latency_within(
                list(service.latencies), now, spec.slo.windowSeconds, spec.slo.latencyP95Ms)
            fields["checks"] = [
                {k: v for k, v in {
                    "name": check.name, "healthy": state.healthy,
                    "lastTransitionTime": timestamps.to_status(state.since) if state.since else None,
                    "message": service.refused.get(check.name, state.message),
                }.items() if v is not None}
                for check, state in zip(spec.healthChecks, states, strict=False)
            ]
            if service.refused:
                name, reason = next(iter(service.refused.items()))
                changes.append(conditions.ConditionChange(
                    reasons.HEALTHY, "Unknown", reasons.EGRESS_REFUSED, f"check {name} refused by the egress policy: {reason}"))
            else:
                status = {health.HEALTHY: "True", health.UNKNOWN: "Unknown"}.get(verdict, "False")
                changes.append(conditions.ConditionChange(reasons.HEALTHY, status, verdict, why))
        rollout_verdict = self.verdicts.get(key)
        if rollout_verdict is not None:
            fields["rollout"] = rollout_verdict.status
            changes.append(rollout_verdict.condition)
        return (fields, changes) if fields or changes else None

    # -- health checks -------------------------------------------------------------------
    def _schedule_new(self) -> None:
        now = time.monotonic()
        for key in list(self.view.of_kind(KIND)):
            try:
                spec = self.view.valid(key, api.MonitoredServiceSpec)
                if spec is None:
                    continue
                for check in spec.healthChecks:
                    if (key, check.name) not in self._scheduled:
                        self._scheduled.add((key, check.name))
                        heapq.heappush(self._heap, (now + _spread(key, check), key, check.name))
            except Exception as failure:  # this tenant's problem alone
                boundary.failed(failure, "health-check schedule", key)

    async def run_checks(self) -> None:
        last_sync = 0.0
        heartbeat.expect("health-checks", TICK_SECONDS)
        while True:
            heartbeat.beat("health-checks")
            now = time.monotonic()
            if now - last_sync >= TICK_SECONDS:
                self._schedule_new()
                last_sync = now
            while self._heap and self._heap[0][0] <= now:
                due, key, name = heapq.heappop(self._heap)
                check = self._check(key, name)
                if check is None:
                    self._scheduled.discard((key, name))
                    continue
                # Drift-free, but never a burst of catch-up probes after a stall.
                following = due + check.intervalSeconds
                heapq.heappush(self._heap, (following if following > now else now + check.intervalSeconds, key, name))
                if (key, name) in self._in_flight:
                    metrics.HEALTH_CHECKS_SKIPPED.inc()
                    continue
                self._in_flight.add((key, name))
                task = asyncio.create_task(self._probe(key, check, due))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(functools.partial(self._finished, (key, name)))
            wait = min(self._heap[0][0] - time.monotonic(), TICK_SECONDS) if self._heap else TICK_SECONDS
            await asyncio.sleep(max(wait, 0.005))

    def _finished(self, run: tuple[view_module.Key, str], _: asyncio.Task[None]) -> None:
        self._in_flight.discard(run)

    def _check(self, key: view_module.Key, name: str) -> api.HealthCheck | None:
        if key not in self.view.objects:
            return None
        spec = self.view.valid(key, api.MonitoredServiceSpec)
        if spec is None:
            return None
        return next((c for c in spec.healthChecks if c.name == name), None)

    async def _probe(self, key: view_module.Key, check: api.HealthCheck, due: float) -> None:
        service = self.services.setdefault(key, ServiceHealth())
        async with self._probes.hold(key[1]):
            metrics.HEALTH_CHECK_LAG.observe(max(0.0, time.monotonic() - due))
            try:
                with shares.tenant(key[1]):
                    result = await self.checker.probe(check)
            except http_check.EgressRefused as refused:
                if service.refused.get(check.name) != str(refused):
                    service.refused[check.name] = str(refused)
                    self.evaluator.mark(key)
                return
        if service.refused.pop(check.name, None) is not None:
            self.evaluator.mark(key)
        metrics.HEALTH_PROBES.labels("ok" if result.ok else "failed").inc()
        now = self.clock()
        service.outcomes.append((now, result.ok))
        if result.ok and result.latency_ms is not None:
            service.latencies.append((now, result.latency_ms))
        oldest = now - datetime.timedelta(seconds=RETAINED_OUTCOMES_SECONDS)
        for history in (service.outcomes, service.latencies):
            while history and history[0][0] < oldest:
                history.popleft()  # kept for the longest burn-rate window, no longer
        before = service.states.get(check.name, health.CheckState())
        after = health.apply_probe(check, before, result, now)
        service.states[check.name] = after
        if after.healthy != before.healthy:
            self.evaluator.mark(key)

    # -- rollout guard -------------------------------------------------------------------
    async def run_rollouts(self) -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS * 2)
            try:
                await self.rollout_round()
            except Exception:
                logger.exception("rollout round failed")

    async def rollout_round(self) -> None:
        self.services.prune()  # every 2 s, so what deleted services held goes soon after them
        self.verdicts.prune()
        self.refused_jobs.prune()
        candidates = []
        for key, obj in list(self.view.of_kind(KIND).items()):
            try:
                # Ready as written, or as readiness judges it before a first write: so the first
                # verdict carries the rollout too (one status write per object at start-up).
                if not self.evaluator.is_ready(key):
                    continue
                spec = self.view.valid(key, api.MonitoredServiceSpec)
                if spec is None:
                    continue
                kind, name, _ = targets.workload_of(spec)  # every 2 s: not the whole Target
                if not self.rollbacks.supports(kind):
                    continue
                workload = self.view.world.workloads.get((key[1], kind, name))
                if workload is not None and workload.revision is not None:
                    candidates.append((key, obj, spec, workload))
            except Exception as failure:  # one service's object is its own problem
                boundary.failed(failure, "rollout guard", key)
        analysing = [c for c in candidates if ((c[1].get("status") or {}).get("rollout") or {}).get("phase") == "Analyzing"
                     or ((verdict := self.verdicts.get(c[0])) is not None and verdict.state.phase == "Analyzing")]
        samples = await self.read_metrics([(c[0], c[2]) for c in analysing],
                                          (("errorRate", None), ("latencyP95", None))) if analysing else {}
        for key, obj, spec, workload in candidates:
            try:
                await self._judge(key, obj, spec, workload, samples.get(key, {}))
            except Exception as failure:  # a failure judging one never skips the rest
                boundary.failed(failure, "rollout guard", key)

    async def _judge(self, key: view_module.Key, obj: typing.Mapping[str, typing.Any], spec: api.MonitoredServiceSpec,
                     workload: typing.Any, samples: dict[scaling.MetricKey, scaling.Sample]) -> None:
        now = self.clock()
        view = rollout.DeploymentView(
            revision=workload.revision, replicas=workload.replicas or 0, updated=workload.updated_replicas,
            available=workload.available_replicas, generation=workload.generation,
            observed_generation=workload.observed_generation, paused=workload.paused,
            deadline_exceeded=workload.deadline_exceeded, failure=workload.failure)
        current = (obj.get("status") or {}).get("rollout") or {}
        previous = self.verdicts.get(key)
        # The only writer of status.rollout is this guard: its memory is never behind status.
        base = previous.state if previous is not None else rollout.State.from_status(current)
        service = self.services.get(key)
        health_verdict = health.UNKNOWN
        checks: dict[str, rollout.CheckView] = {}
        if service is not None and spec.healthChecks:
            states = [service.states.get(c.name, health.CheckState()) for c in spec.healthChecks]
            health_verdict = health.overall(states, spec.healthyPercent)[0]
            # The verification gates judge groups of checks by name (core/rollout.gate_unmet).
            checks = {c.name: rollout.CheckView(s.healthy, s.latency_ms) for c, s in zip(spec.healthChecks, states, strict=True)}
        observed = rollout.Analysis(
            error_rate=_value(samples.get(("errorRate", None))), latency_p95=_value(samples.get(("latencyP95", None))),
            health=health_verdict, checks=checks,
            hooks=await self._hook_jobs(key, obj, workload, base) if spec.rollout.hooks.postDeploy else None)
        verdict = rollout.judge(spec.rollout, view, base, observed, now)
        decision = None
        if spec.rollout.hooks.preDeploy and platforms.offers(workload.kind).gate:
            decision = predeploy.decide(spec.rollout.hooks.preDeploy, base.pre_deploy, predeploy.GateView(
                workload.template_digest, workload.paused, view.complete,
                verdict.state.phase not in (rollout.PROGRESSING, rollout.ANALYZING) and verdict.rollback is None
                and verdict.state.pending_rollback is None, str(workload.uid or "")),
                await self._hook_jobs(key, obj, workload, base, (base.pre_deploy or {}).get("hooks") or ()), now)
            condition = verdict.condition
            if decision.failure is not None:
                condition = conditions.ConditionChange(reasons.ROLLOUT_HEALTHY, "False", rollout.FAILED, decision.failure)
            elif decision.status.get("phase") == predeploy.GATING:
                condition = conditions.ConditionChange(reasons.ROLLOUT_HEALTHY, "Unknown", rollout.PROGRESSING,
                                                       str(decision.status.get("reason")))
            verdict = dataclasses.replace(verdict, state=dataclasses.replace(verdict.state, pre_deploy=decision.status),
                                          condition=condition)
        elif (base.pre_deploy or {}).get("approved") and platforms.offers(workload.kind).gate and await self._ungate(key, workload):
            # The hooks were removed: the Deployment is unpaused (above) and the gate forgotten.
            verdict = dataclasses.replace(verdict, state=dataclasses.replace(
                verdict.state, pre_deploy=dict.fromkeys(("phase", "reason", "approved", "candidate", "hooks", "deployment"))))
        changed = previous is None or previous.state != verdict.state or previous.condition != verdict.condition
        self.verdicts[key] = verdict
        if verdict.create_jobs:
            # Intent first: the Jobs' names must be in status before they are created, so a
            # restart or a new leader finds them and creates none twice (AlreadyExists is ours).
            persisted = {entry.get("job") for entry in current.get("hooks") or []}
            if set(verdict.create_jobs) <= persisted or await self.evaluator.reconcile_now(key):
                await self._create_jobs(key, obj, spec.rollout.hooks.postDeploy, verdict.create_jobs,
                                        verdict.state.hooks or (), str(verdict.state.revision))
        if decision is not None:
            await self._gate(key, obj, spec, workload, current, decision, now)
        event = verdict.event
        if verdict.rollback is not None:
            # Intent first: status must say pendingRollback before the target is touched.
            if current.get("pendingRollback") != verdict.rollback:
                if not await self.evaluator.reconcile_now(key):
                    return
            if event is not None:
                # Announced once the intent is in status, before the call: a process that dies
                # during the call has still said what it started (its successor only finishes it).
                await self.evaluator.post_event(obj, status_module.EventSpec(*event), now)
                event = None
            try:
                to_revision = await self.rollbacks.rollback(workload.kind, key[1], workload.name, verdict.rollback)
            except self.rollbacks.errors as error:
                logger.warning("rollback of %s failed: %s", key, error)
                await self.evaluator.post_event(obj, status_module.EventSpec(
                    "Warning", reasons.ROLLBACK_FAILED, f"revision {verdict.rollback}: {error}"), now)
                return
            if to_revision:
                metrics.ROLLBACKS.inc()
                logger.info("rolled back %s %s/%s from revision %s to %s", workload.kind, key[1], workload.name,
                            verdict.rollback, to_revision)
        if event is not None:
            await self.evaluator.post_event(obj, status_module.EventSpec(*event), now)
        if changed:
            self.evaluator.mark(key)


    async def _gate(self, key: view_module.Key, obj: typing.Mapping[str, typing.Any], spec: api.MonitoredServiceSpec,
                    workload: typing.Any, current: typing.Mapping[str, typing.Any], decision: predeploy.Decision,
                    now: datetime.datetime) -> None:
        """Applies the pre-deploy gate's decision, each step after its intent is in status (the
        Jobs' names before they are created, the approval before the unpause, the failure before
        the restore). When status could not be written, nothing is done: the next tick decides again."""
        written = current.get("preDeploy") or {}
        persisted = {entry.get("job") for entry in written.get("hooks") or []}
        needs_status = (bool(decision.create) and not set(decision.create) <= persisted) or (
            decision.action in (predeploy.UNPAUSE, predeploy.RESTORE)
            and (written.get("phase"), written.get("approved")) != (decision.status.get("phase"),
                                                                    decision.status.get("approved")))
        if needs_status and not await self.evaluator.reconcile_now(key):
            return
        if decision.event is not None:
            await self.evaluator.post_event(obj, status_module.EventSpec(*decision.event), now)
        digest, uid = str(workload.template_digest or ""), str(workload.uid or "")
        approved = (decision.status.get("approved") or [""])[0]
        if decision.action is not None and self.gate is None:
            logger.warning("pre-deploy gate of %s: no gate in this operator", key)
        elif decision.action is not None and self.gate is not None:
            try:
                if decision.action == predeploy.RESTORE:
                    restored = await self.gate.restore(key[1], workload.name, uid, approved)
                    if restored:
                        logger.info("pre-deploy gate of %s: %s %s restored to revision %s", key, workload.kind, workload.name,
                                    restored)
                else:
                    paused = decision.action == predeploy.PAUSE
                    if await self.gate.pause(key[1], workload.name, uid, paused, digest):
                        logger.info("pre-deploy gate of %s: %s %s %s", key, workload.kind, workload.name,
                                    "paused" if paused else "unpaused")
            except self.gate.errors as error:  # decided again on the next tick
                logger.warning("pre-deploy gate of %s: %s failed: %s", key, decision.action, error)
                if decision.action == predeploy.RESTORE:
                    await self.evaluator.post_event(obj, status_module.EventSpec(
                        "Warning", reasons.ROLLBACK_FAILED, f"restoring the approved template: {error}"[:1024]), now)
        if decision.create:
            await self._create_jobs(key, obj, spec.rollout.hooks.preDeploy, decision.create,
                                    tuple(decision.status.get("hooks") or ()), digest)

    async def _ungate(self, key: view_module.Key, workload: typing.Any) -> bool:
        """Unpauses a Deployment whose service no longer has pre-deploy hooks (True when it is)."""
        if self.gate is None or not workload.paused:
            return True
        try:
            return await self.gate.pause(key[1], workload.name, str(workload.uid or ""), False,
                                         str(workload.template_digest or ""))
        except self.gate.errors as error:  # tried again on the next tick
            logger.warning("pre-deploy gate of %s: unpausing failed: %s", key, error)
            return False

    async def _hook_jobs(self, key: view_module.Key, obj: typing.Mapping[str, typing.Any], workload: typing.Any,
                         state: rollout.State, entries: typing.Any = None) -> hooks_module.Observed:
        """The hook Jobs of `entries` (the current revision's post-deploy hooks by default) as
        read now (those not yet finished), and those the API server refused to create."""
        refused = self.refused_jobs.get(key) or {}
        current = {entry.get("job") for entry in (*(state.hooks or ()), *((state.pre_deploy or {}).get("hooks") or ()))
                   if isinstance(entry, typing.Mapping)}
        if any(name not in current for name in refused):
            # Only the current revision's refusals are read again: a workload rolled out again and
            # again with a hook the API server always refuses kept one entry per revision.
            refused = {name: why for name, why in refused.items() if name in current}
            if refused:
                self.refused_jobs[key] = refused
            else:
                self.refused_jobs.pop(key, None)
        jobs: dict[str, hooks_module.JobView] = {}
        for entry in (state.hooks or ()) if entries is None else entries:
            if not isinstance(entry, typing.Mapping):
                continue
            name = entry.get("job")
            if not isinstance(name, str) or entry.get("phase") not in (hooks_module.PENDING, hooks_module.RUNNING):
                continue
            if name in refused:
                jobs[name] = hooks_module.JobView(found=False, refused=refused[name])
            elif self.jobs is None:
                jobs[name] = hooks_module.JobView(found=False, refused=HOOKS_DISABLED)
            elif key[1] == self.own_namespace:
                jobs[name] = hooks_module.JobView(found=False, refused=OWN_NAMESPACE)
            else:
                try:
                    jobs[name] = await self.jobs.read(key[1], name)
                except self.jobs.errors as error:  # not read this tick: the hook keeps its phase
                    logger.warning("reading hook Job %s/%s failed: %s", key[1], name, error)
        meta = obj.get("metadata") or {}
        return hooks_module.Observed(str(meta.get("name") or key[2]), str(meta.get("uid") or ""),
                                     str(workload.uid or ""), jobs)

    async def _create_jobs(self, key: view_module.Key, obj: typing.Mapping[str, typing.Any],
                           hooks: typing.Sequence[api.Hook], create: typing.Sequence[str],
                           entries: typing.Sequence[typing.Mapping[str, typing.Any]], revision: str) -> None:
        if self.jobs is None or key[1] == self.own_namespace:
            return  # judged failed (HOOKS_DISABLED, OWN_NAMESPACE) on the next tick
        meta = obj.get("metadata") or {}
        by_job = {entry["job"]: entry["name"] for entry in entries}
        hooks_by_name = {hook.name: hook for hook in hooks}
        # One service's Jobs (at most 4), inside the boundary rollout_round holds for this service.
        for job in create:
            hook = hooks_by_name.get(by_job.get(job, ""))
            if hook is None:
                continue
            body = hooks_module.job_manifest(hook, job, key[1], str(meta.get("name") or key[2]),
                                             str(meta.get("uid") or ""), revision)
            try:
                created = await self.jobs.create(key[1], body)
            except self.jobs.refused as refusal:
                self.refused_jobs.setdefault(key, {})[job] = str(refusal)
                self.evaluator.mark(key)
                continue
            except self.jobs.errors as error:  # tried again on the next tick, until the hook's timeout
                logger.warning("creating hook Job %s/%s failed: %s", key[1], job, error)
                continue
            logger.info("hook %s of %s: Job %s %s", hook.name, key, job, "created" if created else "exists already")


def _spread(key: view_module.Key, check: api.HealthCheck) -> float:
    """A stable offset for a check's first probe, so thousands of checks created together
    do not stay in lockstep (each later probe is due one interval after the previous)."""
    digest = zlib.crc32(f"{key}/{check.name}".encode())
    return (digest % 1000) / 1000 * min(check.intervalSeconds, SPREAD_SECONDS)


def _value(sample: scaling.Sample | None) -> float | None:
    return sample.value if sample is not None else None

