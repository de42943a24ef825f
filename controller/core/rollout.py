"""The rollout guard: judge a Deployment's current revision and decide on a rollback.

A new revision is Progressing until it is fully available (then Analyzing for
`analysis.windowSeconds`, then Healthy) or until its progress deadline passes (Failed); a
revision its platform reports failed outright (Railway's FAILED/CRASHED) fails at once.
During analysis, error rate, p95 latency and health are held against the limits. A failed
revision is rolled back once (`rolledBackRevisions`), never when it is itself the product
of a rollback (`rollbackRevisions`), never while the Deployment is paused. The intent is
written to status (`pendingRollback`) before acting, so a restart finishes it instead of
losing or repeating it.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing

from controller import reasons
from controller.api import monitoredservice as api
from controller.core import conditions
from controller.core import hooks as hooks_module

HISTORY = 10
PROGRESSING, ANALYZING, HEALTHY, FAILED, ROLLED_BACK = (p.value for p in api.RolloutPhase)


@dataclasses.dataclass(frozen=True)
class DeploymentView:
    revision: str | None
    replicas: int
    updated: int
    available: int
    generation: int
    observed_generation: int
    paused: bool
    deadline_exceeded: bool  # the Deployment's own Progressing=False/ProgressDeadlineExceeded
    # The platform says the revision failed outright (a Railway deployment FAILED or CRASHED):
    # it fails while rolling out or under analysis, without waiting for a deadline or a window.
    failure: str | None = None

    @property
    def complete(self) -> bool:
        return (self.observed_generation >= self.generation and self.updated == self.replicas
                and self.available >= self.replicas)


@dataclasses.dataclass(frozen=True)
class CheckView:
    """One health check as a gate sees it: its verdict and its latest answer's latency."""

    healthy: bool | None
    latency_ms: float | None = None


@dataclasses.dataclass(frozen=True)
class Analysis:
    error_rate: float | None
    latency_p95: float | None
    health: str
    checks: typing.Mapping[str, CheckView] = dataclasses.field(default_factory=dict)  # by check name
    hooks: hooks_module.Observed | None = None  # the service's hook Jobs as read (spec.rollout.hooks)


@dataclasses.dataclass(frozen=True)
class Verdict:
    status: dict[str, typing.Any]
    rollback: str | None  # the failed revision to roll back now
    event: tuple[str, str, str] | None  # type, reason, message
    condition: conditions.ConditionChange
    create_jobs: tuple[str, ...] = ()  # hook Jobs decided (their names in status) and not seen yet


def _stamp(moment: datetime.datetime) -> str:
    return conditions.format_time(moment)


def _parse(text: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def _condition(phase: str | None, reason: str) -> conditions.ConditionChange:
    status = {HEALTHY: "True", FAILED: "False", ROLLED_BACK: "False"}.get(phase or "", "Unknown")
    return conditions.ConditionChange(reasons.ROLLOUT_HEALTHY, status, phase or "NoRollout", reason or "no rollout seen")


def _analysis_failure(spec: api.Analysis, observed: Analysis) -> str | None:
    if observed.error_rate is not None and observed.error_rate > spec.maxErrorRatePercent:
        return f"error rate {observed.error_rate:.1f}% > {spec.maxErrorRatePercent:g}%"
    if observed.latency_p95 is not None and observed.latency_p95 > spec.maxLatencyP95Ms:
        return f"p95 latency {observed.latency_p95:.0f}ms > {spec.maxLatencyP95Ms:g}ms"
    if spec.requireHealthyChecks and observed.health == api.Health.UNHEALTHY.value:
        return "health checks Unhealthy"
    return None


def gate_unmet(gate: api.Gate, checks: typing.Mapping[str, CheckView]) -> str | None:
    """Why `gate`'s criterion does not hold now, or None when it does: at least healthyPercent
    of its checks passing and, with maxLatencyMs, every passing one's latest answer within it."""
    views = [checks.get(name, CheckView(None)) for name in gate.checks]
    passing = [(name, view) for name, view in zip(gate.checks, views, strict=True) if view.healthy]
    if len(passing) * 100 < gate.healthyPercent * len(views):
        undecided = sum(1 for view in views if view.healthy is None)
        return (f"{len(passing)} of {len(views)} check(s) passing, {gate.healthyPercent} % needed"
                + (f" ({undecided} without a verdict yet)" if undecided else ""))
    if gate.maxLatencyMs is not None:
        slow = [(name, view.latency_ms) for name, view in passing
                if view.latency_ms is None or view.latency_ms > gate.maxLatencyMs]
        if slow:
            name, latency = slow[0]
            shown = "no latency" if latency is None else f"{latency:.0f}ms"
            return f"{name} answered in {shown}, over {gate.maxLatencyMs:g}ms"
    return None


def _gates(spec: api.Analysis, observed: Analysis, passed: list[str], elapsed: float) -> tuple[list[str], str | None]:
    """(gates passed so far, why one failed): a gate passes the first time its criterion holds,
    and fails when its timeout comes first."""
    passed = list(passed)
    for gate in spec.gates:
        if gate.name in passed:
            continue
        unmet = gate_unmet(gate, observed.checks)
        if unmet is None:
            passed.append(gate.name)
        elif elapsed >= gate.timeoutSeconds:
            return passed, f"gate {gate.name} not met within {gate.timeoutSeconds}s: {unmet}"
    return passed, None


def _noted(reason: str, note: str) -> str:
    """`reason (note)`, once: a Failed revision is judged again every tick, and a note added
    each time grew the reason (and its status write) without end."""
    suffix = f" ({note})"
    return reason if reason.endswith(suffix) else reason + suffix


def judge(
    spec: api.Rollout,
    deployment: DeploymentView,
    previous: typing.Mapping[str, typing.Any],
    observed: Analysis,
    now: datetime.datetime,
) -> Verdict:
    state = dict(previous)
    state.setdefault("rolledBackRevisions", [])
    state.setdefault("rollbackRevisions", [])
    state.setdefault("history", [])
    revision = deployment.revision
    event = None
    rollback = None
    create_jobs: tuple[str, ...] = ()
    if revision is None:
        return Verdict(state, None, None, _condition(state.get("phase"), state.get("reason", "")))

    if revision != state.get("revision"):
        first_sight = state.get("revision") is None
        pending = state.get("pendingRollback")
        if pending is not None and pending != revision:
            # The revision our rollback produced: mark it, so it is never rolled back itself.
            state["rollbackRevisions"] = [*state["rollbackRevisions"], revision][-20:]
            state["pendingRollback"] = None
        state.update(revision=revision, startedAt=_stamp(now), completedAt=None, passedGates=[])
        if state.get("hooks"):
            state["hooks"] = []  # the earlier revision's Jobs (emptied, not dropped: status is merge-patched)
        if first_sight and deployment.complete:
            state.update(phase=HEALTHY, reason=f"revision {revision} available when first observed")
        else:
            state.update(phase=PROGRESSING, reason=f"revision {revision} rolling out")

    phase = state.get("phase")
    if phase in (PROGRESSING, ANALYZING) and deployment.failure is not None:
        state.update(phase=FAILED, reason=f"revision {revision} {deployment.failure}")
    elif phase == PROGRESSING:
        started = _parse(state.get("startedAt")) or now
        if deployment.deadline_exceeded or (
            not deployment.complete and now - started > datetime.timedelta(seconds=spec.progressDeadlineSeconds)
        ):
            state.update(phase=FAILED, reason=(f"ProgressDeadlineExceeded: revision {revision} not available "
                                               f"within {spec.progressDeadlineSeconds}s"))
        elif deployment.complete:
            state["completedAt"] = _stamp(now)
            if spec.analysis.windowSeconds > 0:
                state.update(phase=ANALYZING, reason=f"revision {revision} available; analysing for "
                                                     f"{spec.analysis.windowSeconds}s")
            else:
                state.update(phase=HEALTHY, reason=f"revision {revision} available")
    if state.get("phase") == ANALYZING:
        failure = _analysis_failure(spec.analysis, observed)
        completed = _parse(state.get("completedAt")) or now
        if failure is None and spec.analysis.gates:
            passed, failure = _gates(spec.analysis, observed, list(state.get("passedGates") or []),
                                     (now - completed).total_seconds())
            state["passedGates"] = passed[:8]
        hooks_done, notes = True, []
        if failure is None and spec.hooks.postDeploy:
            # Post-deploy hooks (core/hooks.py): a Job each, decided here, created by the operator.
            progress = hooks_module.advance(spec.hooks.postDeploy, state.get("hooks") or [], revision,
                                            observed.hooks or hooks_module.Observed("", "", ""), now)
            state["hooks"] = progress.entries
            failure, hooks_done, notes = progress.failure, progress.done, progress.notes
            create_jobs = tuple(progress.create)
        if failure is not None:
            state.update(phase=FAILED, reason=f"analysis of revision {revision}: {failure}")
        elif hooks_done and now - completed >= datetime.timedelta(seconds=spec.analysis.windowSeconds):
            state.update(phase=HEALTHY, reason=f"revision {revision} passed {spec.analysis.windowSeconds}s of analysis"
                                               + (f" ({'; '.join(notes)})" if notes else ""))

    new_phase = state.get("phase")
    if state.get("pendingRollback") == revision:
        # Decided earlier (maybe before a restart) and the Deployment is still on the bad
        # revision: (re)issue the rollback; the patch is idempotent.
        rollback = revision
    elif new_phase == FAILED:
        if not spec.autoRollback:
            pass
        elif revision in state["rollbackRevisions"]:
            state["reason"] = _noted(state["reason"], f"revision {revision} is a rollback; not rolling back again")
        elif revision in state["rolledBackRevisions"]:
            pass
        elif deployment.paused:
            state["reason"] = _noted(state["reason"], "workload paused; not rolling back")
        else:
            rollback = revision
            state["pendingRollback"] = revision
            state["rolledBackRevisions"] = [*state["rolledBackRevisions"], revision][-20:]
    if phase != new_phase or rollback is not None:
        if new_phase in (HEALTHY, FAILED):
            record = {"revision": revision, "phase": ROLLED_BACK if rollback else new_phase,
                      "reason": state["reason"], "time": _stamp(now)}
            latest = state["history"][0] if state["history"] else {}
            if (latest.get("revision"), latest.get("phase")) != (record["revision"], record["phase"]):
                state["history"] = [record, *state["history"]][:HISTORY]
        if rollback is not None and previous.get("pendingRollback") != revision:
            event = ("Warning", reasons.ROLLED_BACK, f"{state['reason']}; rolling back to the previous revision")
        elif new_phase == FAILED and rollback is None:
            event = ("Warning", reasons.ROLLOUT_FAILED, state["reason"])
        elif new_phase == HEALTHY and phase is not None and phase != HEALTHY:
            event = ("Normal", reasons.ROLLOUT_SUCCEEDED, state["reason"])
    if rollback is not None:
        state["phase"] = ROLLED_BACK
    return Verdict(state, rollback, event, _condition(state.get("phase"), state.get("reason", "")), create_jobs)
