"""Pre-deploy hooks: a gate on a Deployment's pod template (pure).

The operator keeps a gated Deployment paused (`spec.paused: true`), so a change of its pod
template does not roll out. It records the digests of the templates it approved
(`status.rollout.preDeploy.approved`, newest first; on adoption the current one, without a
Job). A template whose digest is not approved is a candidate: its hooks' Jobs are decided
(their names in status before they are created, core/hooks.py), and when each has succeeded
the digest is approved and the Deployment unpaused; the rollout then proceeds and is judged as
any other (core/rollout.py), and the Deployment is paused again once the rollout has completed
and its verdict is settled. A required hook's failure (or timeout) restores the approved
template and fails the gate. A template approved earlier (a rollback to it) passes without a
Job. The operator applies the actions (operator/guard.py, adapters/kubernetes_gate.py).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import typing

from controller import reasons
from controller.api import monitoredservice as api
from controller.core import hooks as hooks_module

APPROVED, GATING, RELEASING, FAILED = (p.value for p in api.PreDeployPhase)
APPROVED_KEPT = 10  # the CRD's maxItems
SHOWN = 12  # a digest's prefix in a reason
PAUSE, UNPAUSE, RESTORE = "pause", "unpause", "restore"
POD_TEMPLATE_HASH = "pod-template-hash"


def template_digest(template: typing.Any) -> str:
    """sha256 of the canonical JSON of a pod template (keys sorted, no spaces). A ReplicaSet's
    template carries the `pod-template-hash` label the deployment controller added: it is left
    out, so a ReplicaSet's template digests as the Deployment template it was made from."""
    template = template if isinstance(template, dict) else {}
    labels = (template.get("metadata") or {}).get("labels")
    if isinstance(labels, dict) and POD_TEMPLATE_HASH in labels:
        template = {**template, "metadata": {**template["metadata"],
                                             "labels": {k: v for k, v in labels.items() if k != POD_TEMPLATE_HASH}}}
    return hashlib.sha256(json.dumps(template, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class GateView:
    """The Deployment as the gate sees it."""

    digest: str | None  # of spec.template (None: not read)
    paused: bool
    complete: bool  # updated == replicas == available, observedGeneration current
    settled: bool  # the rollout guard's verdict on the current revision is final (not Progressing/Analyzing)
    uid: str = ""  # the Deployment's


@dataclasses.dataclass(frozen=True)
class Decision:
    status: dict[str, typing.Any]  # status.rollout.preDeploy
    action: str | None  # PAUSE, UNPAUSE (the approved digest), RESTORE (to approved[0])
    create: tuple[str, ...] = ()  # Jobs decided and not seen yet (created after their intent is in status)
    event: tuple[str, str, str] | None = None  # type, reason, message
    failure: str | None = None  # the gate failed: the rollout's condition says so


def _short(digest: str) -> str:
    return digest[:SHOWN]


def decide(hooks: typing.Sequence[api.Hook], previous: typing.Mapping[str, typing.Any] | None, view: GateView,
           observed: hooks_module.Observed, now: datetime.datetime) -> Decision:
    """The gate's next status and the one action the operator takes now."""
    status: dict[str, typing.Any] = dict(previous) if isinstance(previous, typing.Mapping) else {}
    approved = [d for d in status.get("approved") or [] if isinstance(d, str)][:APPROVED_KEPT]
    phase, candidate = status.get("phase"), status.get("candidate")
    entries = [dict(h) for h in status.get("hooks") or [] if isinstance(h, typing.Mapping)]
    digest = view.digest
    if digest is None:
        return Decision(status, None)
    settle = PAUSE if not view.paused and view.complete and view.settled else None
    if not approved or status.get("deployment") != view.uid:
        # Adoption (of a Deployment first met, recreated or re-targeted): what runs now is
        # approved as it is (no Job), and paused once its rollout is over.
        return Decision({"phase": APPROVED if view.paused or settle else RELEASING,
                         "reason": f"template {_short(digest)} approved on adoption", "approved": [digest],
                         "candidate": None, "hooks": [], "deployment": view.uid}, settle)
    if digest in approved:
        first = approved[0]
        approved = [digest, *(d for d in approved if d != digest)][:APPROVED_KEPT]
        if phase == FAILED:
            # Restored (or put back by someone): the failure stays said until the next template.
            return Decision({**status, "approved": approved, "candidate": None}, settle, failure=str(status.get("reason")))
        reason = str(status.get("reason") or "")
        if phase == GATING:
            reason = f"template {_short(digest)} is approved; candidate {_short(str(candidate))} withdrawn before its hooks finished"
        elif digest != first:
            reason = f"template {_short(digest)} approved earlier (a rollback to it)"
        paused = view.paused or settle == PAUSE
        return Decision({**status, "phase": APPROVED if paused else RELEASING, "reason": reason, "approved": approved,
                         "candidate": None, **({"hooks": []} if phase == GATING else {})}, settle)
    # A template not approved: gated.
    if candidate != digest:
        entries, phase = [], GATING
    elif phase == FAILED:
        # Its hook failed: restore the approved template until the Deployment is back on it.
        return Decision(status, RESTORE, failure=str(status.get("reason")))
    progress = hooks_module.advance(hooks, entries, digest, observed, now)
    status = {**status, "candidate": digest, "hooks": progress.entries, "approved": approved}
    if progress.failure is not None:
        reason = (f"pre-deploy {progress.failure}; template {_short(digest)} not rolled out, restoring "
                  f"{_short(approved[0])}")[:1024]
        return Decision({**status, "phase": FAILED, "reason": reason}, RESTORE,
                        event=("Warning", reasons.ROLLOUT_FAILED, reason), failure=reason)
    if progress.done:
        reason = (f"template {_short(digest)} approved by its pre-deploy hooks; rolling out"
                  + (f" ({'; '.join(progress.notes)})" if progress.notes else ""))
        return Decision({**status, "phase": RELEASING, "reason": reason, "candidate": None,
                         "approved": [digest, *approved][:APPROVED_KEPT]}, UNPAUSE)
    reason = f"template {_short(digest)} waits for its pre-deploy hooks"
    return Decision({**status, "phase": GATING, "reason": reason}, None if view.paused else PAUSE,
                    create=tuple(progress.create))
