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
from controller.core import timestamps

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


REVISIONS_KEPT = 20  # rolledBackRevisions and rollbackRevisions (the CRD's maxItems)
GATES_KEPT = 8


@dataclasses.dataclass(frozen=True)
class Record:
    """One outcome in `status.rollout.history`."""

    revision: str
    phase: str
    reason: str
    time: datetime.datetime

    @classmethod
    def from_status(cls, entry: typing.Any) -> Record | None:
        """None for an entry that is not a record (status is read, never trusted to be well formed)."""
        if not isinstance(entry, typing.Mapping):
            return None
        time = timestamps.or_none(entry.get("time"))
        revision, phase, reason = entry.get("revision"), entry.get("phase"), entry.get("reason", "")
        if time is None or not isinstance(revision, str) or not isinstance(phase, str) or not isinstance(reason, str):
            return None
        return cls(revision, phase, reason, time)

    def to_status(self) -> dict[str, typing.Any]:
        return {"revision": self.revision, "phase": self.phase, "reason": self.reason, "time": timestamps.to_status(self.time)}


@dataclasses.dataclass(frozen=True)
class State:
    """The rollout guard's persisted state (`status.rollout`), typed: read with `from_status`,
    written with `to_status` (kopf's from_storage / for_storage habit). `passedGates` and
    `hooks` absent from status stay absent (None), so a status written before they existed
    does not look changed."""

    revision: str | None = None
    phase: str | None = None
    reason: str = ""
    started_at: datetime.datetime | None = None
    completed_at: datetime.datetime | None = None
    pending_rollback: str | None = None
    rolled_back_revisions: tuple[str, ...] = ()
    rollback_revisions: tuple[str, ...] = ()
    passed_gates: tuple[str, ...] | None = None
    history: tuple[Record, ...] = ()
    # Post-deploy hooks' entries (core/hooks.py advances them), carried as status has them.
    hooks: tuple[typing.Mapping[str, typing.Any], ...] | None = None
    # The pre-deploy gate's status (core/predeploy.py decides it), carried as status has it.
    pre_deploy: typing.Mapping[str, typing.Any] | None = None

    @classmethod
    def from_status(cls, status: typing.Mapping[str, typing.Any] | None) -> State:
        status = status if isinstance(status, typing.Mapping) else {}

        def text(key: str) -> str | None:
            value = status.get(key)
            return value if isinstance(value, str) else None

        def texts(key: str, keep: int) -> tuple[str, ...]:
            value = status.get(key)
            return tuple(v for v in value if isinstance(v, str))[-keep:] if isinstance(value, list) else ()

        gates = status.get("passedGates")
        hooks = status.get("hooks")
        history = status.get("history")
        return cls(
            revision=text("revision"), phase=text("phase"), reason=text("reason") or "",
            started_at=timestamps.or_none(status.get("startedAt")), completed_at=timestamps.or_none(status.get("completedAt")),
            pending_rollback=text("pendingRollback"),
            rolled_back_revisions=texts("rolledBackRevisions", REVISIONS_KEPT),
            rollback_revisions=texts("rollbackRevisions", REVISIONS_KEPT),
            passed_gates=texts("passedGates", GATES_KEPT) if isinstance(gates, list) else None,
            history=tuple(r for r in map(Record.from_status, history[:HISTORY] if isinstance(history, list) else ())
                          if r is not None),
            hooks=tuple(h for h in hooks if isinstance(h, typing.Mapping)) if isinstance(hooks, list) else None,
            pre_deploy=pre_deploy if isinstance(pre_deploy := status.get("preDeploy"), typing.Mapping) else None,
        )

    def to_status(self) -> dict[str, typing.Any]:
        """`status.rollout` as written (a None removes the field under the merge patch)."""
        status: dict[str, typing.Any] = {
            "revision": self.revision, "phase": self.phase, "reason": self.reason,
            "startedAt": timestamps.to_status(self.started_at) if self.started_at else None,
            "completedAt": timestamps.to_status(self.completed_at) if self.completed_at else None,
            "pendingRollback": self.pending_rollback,
            "rolledBackRevisions": list(self.rolled_back_revisions),
            "rollbackRevisions": list(self.rollback_revisions),
            "history": [record.to_status() for record in self.history],
        }
        if self.passed_gates is not None:
            status["passedGates"] = list(self.passed_gates)
        if self.hooks is not None:
            status["hooks"] = [dict(hook) for hook in self.hooks]
        if self.pre_deploy is not None:
            status["preDeploy"] = dict(self.pre_deploy)
        return status


@dataclasses.dataclass(frozen=True)
class Verdict:
    state: State
    rollback: str | None  # the failed revision to roll back now
    event: tuple[str, str, str] | None  # type, reason, message
    condition: conditions.ConditionChange
    create_jobs: tuple[str, ...] = ()  # hook Jobs decided (their names in status) and not seen yet

    @property
    def status(self) -> dict[str, typing.Any]:
        """What the guard writes to `status.rollout`."""
        return self.state.to_status()


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
    previous: State | typing.Mapping[str, typing.Any],
    observed: Analysis,
    now: datetime.datetime,
) -> Verdict:
    """The next state of a workload's rollout, from the previous one (typed, or as status has it)."""
    before = previous if isinstance(previous, State) else State.from_status(previous)
    state = before
    revision = deployment.revision
    event = None
    rollback = None
    create_jobs: tuple[str, ...] = ()
    if revision is None:
        return Verdict(state, None, None, _condition(state.phase, state.reason))

    if revision != state.revision:
        first_sight = state.revision is None
        pending = state.pending_rollback
        if pending is not None and pending != revision:
            # The revision our rollback produced: mark it, so it is never rolled back itself.
            state = dataclasses.replace(state, rollback_revisions=(*state.rollback_revisions, revision)[-REVISIONS_KEPT:],
                                        pending_rollback=None)
        state = dataclasses.replace(state, revision=revision, started_at=now, completed_at=None, passed_gates=())
        if state.hooks:
            state = dataclasses.replace(state, hooks=())  # the earlier revision's Jobs (emptied, not dropped: merge patch)
        if first_sight and deployment.complete:
            state = dataclasses.replace(state, phase=HEALTHY, reason=f"revision {revision} available when first observed")
        else:
            state = dataclasses.replace(state, phase=PROGRESSING, reason=f"revision {revision} rolling out")

    phase = state.phase
    if phase in (PROGRESSING, ANALYZING) and deployment.failure is not None:
        state = dataclasses.replace(state, phase=FAILED, reason=f"revision {revision} {deployment.failure}")
    elif phase == PROGRESSING:
        started = state.started_at or now
        if deployment.deadline_exceeded or (
            not deployment.complete and now - started > datetime.timedelta(seconds=spec.progressDeadlineSeconds)
        ):
            state = dataclasses.replace(state, phase=FAILED, reason=(
                f"ProgressDeadlineExceeded: revision {revision} not available within {spec.progressDeadlineSeconds}s"))
        elif deployment.complete:
            state = dataclasses.replace(state, completed_at=now)
            if spec.analysis.windowSeconds > 0:
                state = dataclasses.replace(state, phase=ANALYZING, reason=(
                    f"revision {revision} available; analysing for {spec.analysis.windowSeconds}s"))
            else:
                state = dataclasses.replace(state, phase=HEALTHY, reason=f"revision {revision} available")
    if state.phase == ANALYZING:
        failure = _analysis_failure(spec.analysis, observed)
        completed = state.completed_at or now
        if failure is None and spec.analysis.gates:
            passed, failure = _gates(spec.analysis, observed, list(state.passed_gates or ()),
                                     (now - completed).total_seconds())
            state = dataclasses.replace(state, passed_gates=tuple(passed[:GATES_KEPT]))
        hooks_done, notes = True, []
        if failure is None and spec.hooks.postDeploy:
            # Post-deploy hooks (core/hooks.py): a Job each, decided here, created by the operator.
            progress = hooks_module.advance(spec.hooks.postDeploy, [dict(h) for h in state.hooks or ()], revision,
                                            observed.hooks or hooks_module.Observed("", "", ""), now)
            state = dataclasses.replace(state, hooks=tuple(progress.entries))
            failure, hooks_done, notes = progress.failure, progress.done, progress.notes
            create_jobs = tuple(progress.create)
        if failure is not None:
            state = dataclasses.replace(state, phase=FAILED, reason=f"analysis of revision {revision}: {failure}")
        elif hooks_done and now - completed >= datetime.timedelta(seconds=spec.analysis.windowSeconds):
            state = dataclasses.replace(state, phase=HEALTHY, reason=(
                f"revision {revision} passed {spec.analysis.windowSeconds}s of analysis"
                + (f" ({'; '.join(notes)})" if notes else "")))

    new_phase = state.phase
    if state.pending_rollback == revision:
        # Decided earlier (maybe before a restart) and the Deployment is still on the bad
        # revision: (re)issue the rollback. Its revision annotation lags the template (the
        # deployment controller writes it later): the actuator reads the template and makes a
        # rollback already made no more (run 15, docs/reliability.md §18).
        rollback = revision
    elif new_phase == FAILED:
        if not spec.autoRollback:
            pass
        elif revision in state.rollback_revisions:
            state = dataclasses.replace(state, reason=_noted(
                state.reason, f"revision {revision} is a rollback; not rolling back again"))
        elif revision in state.rolled_back_revisions:
            pass
        elif deployment.paused:
            state = dataclasses.replace(state, reason=_noted(state.reason, "workload paused; not rolling back"))
        else:
            rollback = revision
            state = dataclasses.replace(state, pending_rollback=revision, rolled_back_revisions=(
                *state.rolled_back_revisions, revision)[-REVISIONS_KEPT:])
    if phase != new_phase or rollback is not None:
        if new_phase in (HEALTHY, FAILED):
            record = Record(revision, ROLLED_BACK if rollback else str(new_phase), state.reason, now)
            latest = state.history[0] if state.history else None
            if latest is None or (latest.revision, latest.phase) != (record.revision, record.phase):
                state = dataclasses.replace(state, history=(record, *state.history)[:HISTORY])
        if rollback is not None and before.pending_rollback != revision:
            event = ("Warning", reasons.ROLLED_BACK, f"{state.reason}; rolling back to the previous revision")
        elif new_phase == FAILED and rollback is None:
            event = ("Warning", reasons.ROLLOUT_FAILED, state.reason)
        elif new_phase == HEALTHY and phase is not None and phase != HEALTHY:
            event = ("Normal", reasons.ROLLOUT_SUCCEEDED, state.reason)
    if rollback is not None:
        state = dataclasses.replace(state, phase=ROLLED_BACK)
    return Verdict(state, rollback, event, _condition(state.phase, state.reason), create_jobs)
