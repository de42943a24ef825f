from __future__ import annotations

import pydantic
import pytest

from controller.api import monitoredservice as api
from controller.core import probes
from controller.core import world

CHECK = {"name": "api", "http": {"url": "http://web.shop.svc:8080/healthz?deep=1", "timeoutSeconds": 2},
         "intervalSeconds": 5, "failureThreshold": 3, "successThreshold": 2}


def spec(**probe_settings: object) -> api.MonitoredServiceSpec:
    return api.MonitoredServiceSpec.model_validate({
        "target": {"kubernetes": {"name": "web"}},
        "healthChecks": [CHECK, {"name": "tls", "http": {"url": "https://web.shop.svc/ready"}}],
        "probes": {"manage": True, **probe_settings},
    })


SPEC = spec()
DESIRED = probes.derive(SPEC)
WEB_BARE = world.Container("web", None, None)
# As the API server returns them after applying DESIRED: defaults filled in.
WEB_DEFAULTED = world.Container(
    "web", {**DESIRED["readinessProbe"], "httpGet": {**DESIRED["readinessProbe"]["httpGet"]}},
    {**DESIRED["livenessProbe"], "terminationGracePeriodSeconds": None})
WEB_OTHER = world.Container("web", {"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "periodSeconds": 10}, None)
DIGEST = probes.digest("web", DESIRED)


def test_derive_maps_the_check_to_probes() -> None:
    assert DESIRED == {
        "readinessProbe": {"httpGet": {"path": "/healthz?deep=1", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 5,
                           "timeoutSeconds": 2, "failureThreshold": 3, "successThreshold": 2},
        "livenessProbe": {"httpGet": {"path": "/healthz?deep=1", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 5,
                          "timeoutSeconds": 2, "failureThreshold": 6, "successThreshold": 1},
    }


@pytest.mark.parametrize("settings,expected_get,has_liveness", [
    ({"check": "tls"}, {"path": "/ready", "port": 443, "scheme": "HTTPS"}, True),
    ({"port": 9000}, {"path": "/healthz?deep=1", "port": 9000, "scheme": "HTTP"}, True),
    ({"liveness": False}, {"path": "/healthz?deep=1", "port": 8080, "scheme": "HTTP"}, False),
], ids=["named-check-https", "port-override", "readiness-only"])
def test_derive_options(settings, expected_get, has_liveness) -> None:  # noqa: ANN001
    derived = probes.derive(spec(**settings))
    assert derived["readinessProbe"]["httpGet"] == expected_get
    assert ("livenessProbe" in derived) is has_liveness


def test_check_must_be_declared() -> None:
    with pytest.raises(pydantic.ValidationError, match="probes.check must name one of healthChecks"):
        spec(check="nope")


def plan(containers, generation=1, current=None, has_condition=False, given=SPEC):  # noqa: ANN001, ANN201
    return probes.plan(given, "Deployment", "web", containers, generation, current, has_condition)


# (containers, generation, status.probes) -> (applies?, condition reason or None, reverts, stopped)
CASES = [
    ("first-apply", [WEB_BARE], 1, None, True, None, 0, False),
    ("already-in-sync-recorded", [WEB_DEFAULTED], 2, None, False, "ProbesInSync", 0, False),
    ("own-apply-not-seen-yet", [WEB_BARE], 2, {"container": "web", "desired": DIGEST, "appliedGeneration": 2}, False, None, None, None),
    ("reverted-once", [WEB_OTHER], 3, {"container": "web", "desired": DIGEST, "appliedGeneration": 2, "reverts": 0}, True, None, 1, False),
    ("reverted-third-time-stops", [WEB_OTHER], 7, {"container": "web", "desired": DIGEST, "appliedGeneration": 6, "reverts": 2}, False, "ProbesReverted", 3, True),
    ("stopped-stays-stopped", [WEB_OTHER], 9, {"container": "web", "desired": DIGEST, "appliedGeneration": 6, "reverts": 3, "stopped": True}, False, "ProbesReverted", None, None),
    ("new-desired-rearms", [WEB_OTHER], 9, {"container": "web", "desired": "0ld", "appliedGeneration": 6, "reverts": 3, "stopped": True}, True, None, 0, False),
]


@pytest.mark.parametrize("containers,generation,current,applies,reason,reverts,stopped",
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_plan(containers, generation, current, applies, reason, reverts, stopped) -> None:  # noqa: ANN001
    decided = plan(containers, generation, current)
    if not applies and reason is None:
        assert decided is None
        return
    assert (decided.apply is not None) is applies
    assert (decided.condition.reason if decided.condition else None) == reason
    if reverts is not None:
        assert decided.fields["probes"]["reverts"] == reverts and decided.fields["probes"]["stopped"] is stopped


def test_apply_body_carries_only_owned_fields() -> None:
    decided = plan([WEB_BARE])
    assert decided.apply == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                             "spec": {"template": {"spec": {"containers": [{"name": "web", **DESIRED}]}}}}
    assert decided.event[:2] == ("Normal", "ProbesUpdated")


def test_in_sync_twice_is_the_same_record() -> None:
    """A second reconcile finds nothing to write: the record it derives is what status holds."""
    first = plan([WEB_DEFAULTED], 2).fields["probes"]
    assert plan([WEB_DEFAULTED], 5, first).fields["probes"] == first


def test_unmanaged_clears_only_what_it_wrote() -> None:
    unmanaged = api.MonitoredServiceSpec.model_validate({"target": {"kubernetes": {"name": "web"}}})
    assert plan([WEB_BARE], given=unmanaged) is None
    decided = plan([WEB_BARE], given=unmanaged, has_condition=True)
    assert decided.fields == {"probes": None} and decided.condition.reason == "NotManaged"


def test_named_container_must_exist() -> None:
    decided = plan([world.Container("sidecar", None, None)], given=spec(container="web"))
    assert decided.apply is None and decided.condition.reason == "ContainerNotFound"
    assert decided.condition.message == "Deployment web has no container web"
