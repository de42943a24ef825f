"""Table-driven: what makes each kind Ready, judged against a plain World."""

from __future__ import annotations

import dataclasses

import pytest

from controller import reasons
from controller.core import readiness
from controller.core import world as world_module

WEB = world_module.Workload("Deployment", "shop", "web", replicas=3, ready_replicas=2)
MSVC_WEB = {"metadata": {"name": "web", "labels": {"tier": "prod"}},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}}}}
MSVC_RAILWAY = {"metadata": {"name": "api"}, "spec": {"target": {"railway": {
    "projectId": "p", "environmentId": "e", "serviceId": "s", "tokenSecretRef": {"name": "rw", "key": "token"}}}}}


RAILWAY = world_module.Workload("Railway", "shop", "e/s", replicas=2, ready_replicas=2)
RW_SECRET = {("shop", "rw"): frozenset({"token"})}


def world(workloads=(), services=(), secrets=None, railway_errors=None) -> world_module.World:  # noqa: ANN001
    return world_module.World(
        workloads={(w.namespace, w.kind, w.name): w for w in workloads},
        monitored_services={("shop", s["metadata"]["name"]): s for s in services},
        secrets=dict(secrets or {}),
        platform_errors={(ns, "Railway", name): error for (ns, name), error in (railway_errors or {}).items()},
    )


def ready_of(assessment: readiness.Assessment) -> tuple[str, str]:
    ready = next(c for c in assessment.conditions if c.type == reasons.READY)
    return ready.status, ready.reason


SCP = {"targetRef": {"monitoredService": "web"}}
SCP_DIRECT = {"targetRef": {"kubernetes": {"kind": "Deployment", "name": "web"}}}
ALP = {"serviceRef": "web", "rules": [{"name": "R", "metric": "cpu", "threshold": 1}],
       "channels": [{"name": "s", "slack": {"webhookSecretRef": {"name": "slack", "key": "url"}}}]}

CASES = [
    ("msvc target present", "MonitoredService", MSVC_WEB["spec"], world([WEB]), ("True", reasons.TARGET_FOUND)),
    ("msvc target missing", "MonitoredService", MSVC_WEB["spec"], world(), ("False", reasons.TARGET_NOT_FOUND)),
    ("msvc wrong kind", "MonitoredService",
     {"target": {"kubernetes": {"kind": "StatefulSet", "name": "web"}}}, world([WEB]),
     ("False", reasons.TARGET_NOT_FOUND)),
    ("msvc railway answered", "MonitoredService", MSVC_RAILWAY["spec"],
     world([RAILWAY], secrets=RW_SECRET), ("True", reasons.TARGET_FOUND)),
    ("msvc railway not asked yet", "MonitoredService", MSVC_RAILWAY["spec"],
     world(secrets=RW_SECRET), ("Unknown", reasons.AWAITING_OBSERVATION)),
    ("msvc railway failing", "MonitoredService", MSVC_RAILWAY["spec"],
     world(secrets=RW_SECRET, railway_errors={("shop", "e/s"): "Railway refused the token (HTTP 401)"}),
     ("False", reasons.RAILWAY_UNAVAILABLE)),
    ("msvc railway rate-limited keeps its last state", "MonitoredService", MSVC_RAILWAY["spec"],
     dataclasses.replace(world([RAILWAY], secrets=RW_SECRET), platform_stale={("shop", "Railway", "e/s"): "wait"}),
     ("True", reasons.RAILWAY_RATE_LIMITED)),
    ("msvc railway secret missing", "MonitoredService", MSVC_RAILWAY["spec"],
     world(secrets={("shop", "rw"): None}), ("False", reasons.SECRET_NOT_FOUND)),
    ("msvc railway key missing", "MonitoredService", MSVC_RAILWAY["spec"],
     world(secrets={("shop", "rw"): frozenset({"other"})}), ("False", reasons.SECRET_KEY_MISSING)),
    ("msvc invalid spec", "MonitoredService", {"target": {}}, world(), ("False", reasons.INVALID_SPEC)),
    ("scp via msvc", "ScalingPolicy", SCP, world([WEB], [MSVC_WEB]), ("True", reasons.TARGET_FOUND)),
    ("scp msvc missing", "ScalingPolicy", SCP, world([WEB]), ("False", reasons.MONITORED_SERVICE_NOT_FOUND)),
    ("scp msvc target missing", "ScalingPolicy", SCP, world([], [MSVC_WEB]), ("False", reasons.TARGET_NOT_FOUND)),
    ("scp direct", "ScalingPolicy", SCP_DIRECT, world([WEB]), ("True", reasons.TARGET_FOUND)),
    ("scp direct missing", "ScalingPolicy", SCP_DIRECT, world(), ("False", reasons.TARGET_NOT_FOUND)),
    ("scp via railway msvc", "ScalingPolicy", {"targetRef": {"monitoredService": "api"}},
     world([RAILWAY], [MSVC_RAILWAY]), ("True", reasons.TARGET_FOUND)),
    ("scp via railway msvc not asked yet", "ScalingPolicy", {"targetRef": {"monitoredService": "api"}},
     world([], [MSVC_RAILWAY]), ("Unknown", reasons.AWAITING_OBSERVATION)),
    ("alp ok", "AlertPolicy", ALP, world([], [MSVC_WEB], {("shop", "slack"): frozenset({"url"})}),
     ("True", reasons.SERVICES_SELECTED)),
    ("alp service missing", "AlertPolicy", ALP, world(secrets={("shop", "slack"): frozenset({"url"})}),
     ("False", reasons.MONITORED_SERVICE_NOT_FOUND)),
    ("alp secret missing", "AlertPolicy", ALP, world([], [MSVC_WEB], {("shop", "slack"): None}),
     ("False", reasons.SECRET_NOT_FOUND)),
    ("alp secret not yet looked up", "AlertPolicy", ALP, world([], [MSVC_WEB]), ("True", reasons.SERVICES_SELECTED)),
]


@pytest.mark.parametrize("kind,spec,snapshot,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_ready(kind, spec, snapshot, expected) -> None:  # noqa: ANN001
    assert ready_of(readiness.JUDGES[kind]("shop", spec, snapshot)) == expected


def test_msvc_reports_target_and_replicas() -> None:
    assessment = readiness.monitored_service("shop", MSVC_WEB["spec"], world([WEB]))
    assert assessment.fields == {"target": "Deployment/web", "replicas": {"desired": 3, "ready": 2}}


def test_scp_reports_current_replicas() -> None:
    assessment = readiness.scaling_policy("shop", SCP, world([WEB], [MSVC_WEB]))
    assert assessment.fields == {"target": "Deployment/web", "currentReplicas": 3}


def test_alp_selector_counts_matching_services() -> None:
    spec = {**ALP, "channels": [], "serviceRef": None, "selector": {"matchLabels": {"tier": "prod"}}}
    del spec["serviceRef"]
    other = {"metadata": {"name": "other", "labels": {"tier": "dev"}}, "spec": MSVC_WEB["spec"]}
    assessment = readiness.alert_policy("shop", spec, world([], [MSVC_WEB, other]))
    ready = next(c for c in assessment.conditions if c.type == reasons.READY)
    channels = next(c for c in assessment.conditions if c.type == reasons.CHANNELS_READY)
    assert ready.message == "applies to 1 MonitoredService(s)"
    assert (channels.status, channels.reason) == ("False", reasons.NO_CHANNELS)
    assert assessment.fields == {"ruleCount": 1}


def test_secret_refs() -> None:
    assert readiness.secret_refs("AlertPolicy", ALP) == ["slack"]
    assert readiness.secret_refs("MonitoredService", MSVC_RAILWAY["spec"]) == ["rw"]
    assert readiness.secret_refs("ScalingPolicy", SCP) == []
    assert readiness.secret_refs("AlertPolicy", {"rules": "not a list"}) == []
