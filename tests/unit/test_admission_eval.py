"""The generated admission policy evaluated offline (cel-python, as controller/celcheck.py
does for the CRDs' rules) with an `authorizer` that refuses everything and records what it
was asked: which rules run for which change. Hypothesis draws sets of changes to full-featured
objects; each change's expected effect is written here from what the operator does with the
field, not read from the policy. tests/integration/test_isolation.py runs the real thing."""

from __future__ import annotations

import copy
import functools
import typing

import celpy
import hypothesis
import pytest
import yaml
from celpy import celtypes
from hypothesis import strategies as st

from controller import admission
from controller import reasons

POLICY = next(doc for doc in yaml.safe_load_all(admission.render()) if doc["kind"] == "ValidatingAdmissionPolicy")
ENVIRONMENT = celpy.Environment()
PLURAL = {"MonitoredService": "monitoredservices", "ScalingPolicy": "scalingpolicies", "AlertPolicy": "alertpolicies"}


def _step(key: str, receiver: celtypes.MapType, value: typing.Any) -> celtypes.MapType:
    return celtypes.MapType({**receiver, celtypes.StringType(key): value})


Right = tuple[str, str, str, str]  # resource, subresource, name, verb


class Authorizer:
    """kube-apiserver's `authorizer` library over a fixed set of rights (cel-python evaluates
    both sides of `||`, so which checks ran says nothing; what was refused does)."""

    def __init__(self, rights: typing.Collection[Right]) -> None:
        self.rights = rights
        self.functions: dict[str, typing.Callable[..., typing.Any]] = {
            step: functools.partial(_step, step) for step in ("group", "resource", "subresource", "namespace", "name", "check")}
        self.functions["allowed"] = self._allowed
        # The Kubernetes strings library's substring(start), which cel-python lacks.
        self.functions["substring"] = lambda text, start: celtypes.StringType(text[int(start):])

    def _allowed(self, receiver: celtypes.MapType) -> celtypes.BoolType:
        asked = {str(key): str(value) for key, value in receiver.items()}
        assert asked["namespace"] == "shop"
        right = (asked["resource"], asked.get("subresource", ""), asked.get("name", "*"), asked["check"])
        return celtypes.BoolType(right in self.rights)


CURRENT: list[Authorizer] = []  # the programs are built once; their functions ask the current one


def _current(name: str) -> typing.Callable[..., typing.Any]:
    return lambda *args: CURRENT[-1].functions[name](*args)


@functools.lru_cache(maxsize=None)
def _program(expression: str) -> typing.Any:
    functions = {name: _current(name) for name in ("group", "resource", "subresource", "namespace", "name", "check",
                                                   "allowed", "substring")}
    return ENVIRONMENT.program(ENVIRONMENT.compile(expression), functions=functions)


def admit(obj: dict, old: dict | None, user: str = "u", rights: typing.Collection[Right] = (),
          only: str = "") -> set[str]:
    """The fields named by the rules that refuse `user` (holding `rights`) writing `obj` over `old`."""
    CURRENT.append(Authorizer(rights))
    kind = PLURAL[obj["kind"]]

    activation = {
        "object": celpy.json_to_cel(obj), "oldObject": None if old is None else celpy.json_to_cel(old),
        "request": celpy.json_to_cel({"resource": {"resource": kind}, "userInfo": {"username": user},
                                      "operation": "CREATE" if old is None else "UPDATE"}),
        "authorizer": celtypes.MapType({})}

    def run(expression: str, variables: dict) -> typing.Any:
        return _program(expression).evaluate({**activation, "variables": celtypes.MapType(variables)})

    variables: dict = {}
    for variable in POLICY["spec"]["variables"]:
        variables[celtypes.StringType(variable["name"])] = run(variable["expression"], variables)
    refused = set()
    for rule in POLICY["spec"]["validations"]:
        if not rule["expression"].startswith(f"variables.kind != '{kind}' ||"):
            continue  # the rule's first term holds: evaluating it would only cost time
        if only not in rule["expression"]:
            continue
        if not run(rule["expression"], variables):
            refused.add(str(run(rule["messageExpression"], variables)).split(":")[0])
    return refused


def _meta(name: str) -> dict:
    return {"name": name, "namespace": "shop", "annotations": {"note": "x"}, "labels": {"team": "a"}}


# Full-featured objects, defaults spelled out as the API server stores them.
SERVICE: dict[str, typing.Any] = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService", "metadata": _meta("web"), "spec": {
    "target": {"kubernetes": {"kind": "StatefulSet", "name": "db"}},
    "healthChecks": [{"name": "http", "http": {"url": "http://db:8080/healthz", "expectStatus": [200], "timeoutSeconds": 5},
                      "intervalSeconds": 60, "failureThreshold": 3, "successThreshold": 1, "startPeriodSeconds": 0},
                     {"name": "auth", "secretName": "probe-auth", "intervalSeconds": 60,
                      "http": {"url": "http://db:8080/admin", "headers": [{"name": "Authorization", "secretKey": "t"}]}}],
    "healthyPercent": 100,
    "probes": {"manage": True, "check": "http", "liveness": False},
    "metrics": {"prometheus": {"url": "http://prometheus:9090", "authSecretRef": {"name": "prom", "key": "token"}},
                "queries": {}, "custom": []},
    "slo": {"availabilityPercent": 99.9, "windowSeconds": 3600},
    "rollout": {"autoRollback": True, "progressDeadlineSeconds": 600,
                "analysis": {"windowSeconds": 300, "maxErrorRatePercent": 5, "maxLatencyP95Ms": 2000,
                             "requireHealthyChecks": True}}}}
RAILWAY: dict[str, typing.Any] = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService", "metadata": _meta("api"), "spec": {
    "target": {"railway": {"projectId": "p", "environmentId": "e", "serviceId": "s",
                           "tokenSecretRef": {"name": "railway", "key": "token"}}},
    "healthChecks": [], "probes": {"manage": False}, "metrics": {"queries": {}, "custom": []},
    "slo": {"availabilityPercent": 99.9}, "rollout": {"autoRollback": False}}}
POLICY_DIRECT: dict[str, typing.Any] = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy", "metadata": _meta("db"), "spec": {
    "targetRef": {"kubernetes": {"kind": "StatefulSet", "name": "db"}}, "minReplicas": 1, "maxReplicas": 10,
    "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}], "mode": "Auto"}}
POLICY_VIA: dict[str, typing.Any] = {**copy.deepcopy(POLICY_DIRECT), "metadata": _meta("via"),
              "spec": {**copy.deepcopy(POLICY_DIRECT["spec"]), "targetRef": {"monitoredService": "web"}}}
POLICY_SCALE: dict[str, typing.Any] = {**copy.deepcopy(POLICY_DIRECT), "metadata": _meta("checkout"), "spec": {
    **copy.deepcopy(POLICY_DIRECT["spec"]),
    "targetRef": {"scale": {"apiGroup": "argoproj.io", "resource": "rollouts", "name": "checkout"}}}}
ALERTS: dict[str, typing.Any] = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "AlertPolicy", "metadata": _meta("pager"), "spec": {
    "serviceRef": "web", "sendResolved": True,
    "rules": [{"name": "Down", "metric": "health", "op": "==", "threshold": 0, "severity": "critical"}],
    "channels": [{"name": "slack", "slack": {"webhookSecretRef": {"name": "slack", "key": "url"}}},
                 {"name": "hook", "webhook": {"url": "http://receiver:8080/", "hmacSecretRef": {"name": "hmac", "key": "k"}}},
                 {"name": "mail", "email": {"smtpSecretRef": {"name": "smtp", "key": "s"}, "to": ["a@example.com"]}},
                 {"name": "sms", "sms": {"gatewaySecretRef": {"name": "sms", "key": "s"}, "to": ["+15550100"]}},
                 {"name": "am", "alertmanager": {"url": "http://alertmanager:9093"}}],
    "routes": [{"severity": "critical", "channels": ["slack"]}],
    "silences": []}}

SCALE, ROLLBACK, PROBES = "spec.target.kubernetes", "spec.rollout.autoRollback", "spec.probes.manage"
PROM, TOKEN, ACK = "spec.metrics.prometheus.authSecretRef", "spec.target.railway.tokenSecretRef", \
    f"metadata.annotations[{reasons.ACK_ANNOTATION}]"
CHECK_SECRET = "spec.healthChecks[1].secretName"  # the check whose header value comes from a Secret

# (object, path, new value, the rules that must then ask for the author's right), from what the
# operator does with each field: a field only reported on asks for nothing.
CHANGES: list[tuple[dict, str | tuple[str, ...], typing.Any, set[str]]] = [
    (SERVICE, "metadata.annotations.note", "y", set()),
    (SERVICE, "metadata.labels.team", "b", set()),
    (SERVICE, "metadata.finalizers", ["ops.capliquify.io/finalizer"], set()),
    (SERVICE, "spec.slo.availabilityPercent", 99.0, set()),
    (SERVICE, "spec.target.kubernetes.name", "other", {SCALE, ROLLBACK, PROBES}),
    (SERVICE, "spec.target.kubernetes.kind", "Deployment", {SCALE, ROLLBACK, PROBES}),
    (SERVICE, "spec.metrics.prometheus.url", "http://evil:9090", {SCALE, ROLLBACK, PROM}),
    (SERVICE, "spec.metrics.queries.errorRate", "vector(100)", {SCALE, ROLLBACK}),
    (SERVICE, "spec.rollout.analysis.maxErrorRatePercent", 0, {ROLLBACK}),
    (SERVICE, "spec.healthChecks.0.http.url", "http://db:8080/always-failing", {ROLLBACK, PROBES}),
    (SERVICE, "spec.probes.liveness", True, {PROBES}),
    # A Secret kept while its check changes (another URL) is sent somewhere new: asked again.
    (SERVICE, "spec.healthChecks.1.http.url", "http://evil:1/", {ROLLBACK, PROBES, CHECK_SECRET}),
    (SERVICE, "spec.healthChecks.1.secretName", "another", {ROLLBACK, PROBES, CHECK_SECRET}),
    (SERVICE, "spec.healthyPercent", 80, {ROLLBACK}),  # the verdict a rollback is judged on
    (SERVICE, "spec.rollout.analysis.gates", [{"name": "g", "checks": ["http"], "timeoutSeconds": 60}], {ROLLBACK}),
    (RAILWAY, "spec.target.railway.endpoint", "http://evil:1/graphql", {TOKEN}),
    (RAILWAY, "metadata.annotations.note", "y", set()),
    (RAILWAY, "spec.metrics.queries.cpu", "vector(100)", {TOKEN}),  # what a ScalingPolicy through it scales on
    (RAILWAY, "spec.rollout.autoRollback", True, {TOKEN}),  # a rollback with the token
    (RAILWAY, "spec.slo.availabilityPercent", 99.0, set()),
    (POLICY_DIRECT, "spec.maxReplicas", 100, {"spec.targetRef.kubernetes"}),
    (POLICY_DIRECT, ("metadata", "annotations", reasons.PAUSED_ANNOTATION), "true", set()),
    (POLICY_VIA, "spec.minReplicas", 0, {"spec.targetRef.monitoredService"}),
    (POLICY_SCALE, "spec.maxReplicas", 100, {"spec.targetRef.scale"}),
    (POLICY_SCALE, "spec.targetRef.scale.resource", "inferenceservices", {"spec.targetRef.scale"}),
    (POLICY_SCALE, "metadata.labels.team", "b", set()),
    (POLICY_VIA, "metadata.labels.team", "b", set()),
    (ALERTS, ("metadata", "annotations", reasons.ACK_ANNOTATION), "u: Down/web", set()),
    (ALERTS, ("metadata", "annotations", reasons.ACK_ANNOTATION), "someone-else: Down/web", {ACK}),
    (ALERTS, "spec.rules.0.threshold", 1, set()),
    (ALERTS, "spec.silences", [{"start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z", "matchers": []}], set()),
    (ALERTS, "spec.routes.0.channels", ["slack", "hook"], set()),
    (ALERTS, "spec.channels.1.webhook.url", "http://evil:1/", {"spec.channels[1]"}),  # a signing oracle otherwise
    (ALERTS, "spec.channels.2.email.to", ["evil@example.com"], {"spec.channels[2]"}),
    (ALERTS, "spec.channels.0.slack.webhookSecretRef.name", "another", {"spec.channels[0]"}),
]


def _set(obj: dict, path: str | tuple[str, ...], value: typing.Any) -> None:
    *steps, last = path.split(".") if isinstance(path, str) else path
    for step in steps:
        obj = obj[int(step)] if isinstance(obj, list) else obj.setdefault(step, {})
    if isinstance(obj, list):
        obj[int(last)] = value
    else:
        obj[last] = value


@hypothesis.settings(max_examples=60, deadline=None)
@hypothesis.given(st.sampled_from([SERVICE, RAILWAY, POLICY_DIRECT, POLICY_VIA, POLICY_SCALE, ALERTS]).flatmap(
    lambda base: st.tuples(st.just(base), st.lists(st.sampled_from([c for c in CHANGES if c[0] is base]), unique_by=lambda c: c[1]))))
def test_an_update_asks_for_exactly_the_rights_its_changes_need(drawn: tuple[dict, list]) -> None:
    base, changes = drawn
    new = copy.deepcopy(base)
    for _, path, value, _ in changes:
        _set(new, path, value)
    expected = set().union(*(rules for *_, rules in changes)) if changes else set()
    assert admit(new, base) == expected, [c[1] for c in changes]


@pytest.mark.parametrize("obj,expected", [
    (SERVICE, {SCALE, ROLLBACK, PROBES, PROM, CHECK_SECRET}),
    (RAILWAY, {TOKEN}),
    (POLICY_DIRECT, {"spec.targetRef.kubernetes"}),
    (POLICY_VIA, {"spec.targetRef.monitoredService"}),
    (POLICY_SCALE, {"spec.targetRef.scale"}),
    (ALERTS, {"spec.channels[0]", "spec.channels[1]", "spec.channels[2]", "spec.channels[3]"}),
])
def test_a_create_asks_for_every_right_the_object_uses(obj: dict, expected: set[str]) -> None:
    assert admit(obj, None) == expected


def test_each_right_is_asked_of_the_kind_actually_named() -> None:
    """A StatefulSet is checked against statefulsets (scale, patch) only; rights on a
    Deployment of the same name, or on another name, do not count."""
    statefulset = {("statefulsets", "scale", "db", "update"), ("statefulsets", "", "db", "patch")}
    secrets = {("secrets", "", "prom", "get"), ("secrets", "", "probe-auth", "get")}
    assert admit(SERVICE, None, rights=statefulset | secrets) == set()
    deployment = {("deployments", "scale", "db", "update"), ("deployments", "", "db", "patch"),
                  ("statefulsets", "scale", "other", "update"), *secrets}
    assert admit(SERVICE, None, rights=deployment) == {SCALE, ROLLBACK, PROBES}
    assert admit(SERVICE, None, rights={("statefulsets", "scale", "db", "update"), *secrets}) == {ROLLBACK, PROBES}
    # A health check's Secret: that Secret, by name; another one's right does not count.
    assert admit(SERVICE, None, rights=statefulset | {("secrets", "", "prom", "get"),
                                                      ("secrets", "", "other", "get")}) == {CHECK_SECRET}
    assert admit(POLICY_DIRECT, None, rights={("statefulsets", "scale", "db", "update")}) == set()
    assert admit(POLICY_DIRECT, None, rights={("deployments", "scale", "db", "update")}) == {"spec.targetRef.kubernetes"}
    # Through a service the kind is unknown at admission: the scale of both kinds, every name.
    either = [{("deployments", "scale", "*", "update")}, {("statefulsets", "scale", "*", "update")}]
    for rights in either:
        assert admit(POLICY_VIA, None, rights=rights) == {"spec.targetRef.monitoredService"}
    assert admit(POLICY_VIA, None, rights=either[0] | either[1]) == set()
    # Any /scale: that resource's scale, that name; a Deployment's rights do not count.
    assert admit(POLICY_SCALE, None, rights={("rollouts", "scale", "checkout", "update")}) == set()
    assert admit(POLICY_SCALE, None, rights={("deployments", "scale", "checkout", "update"),
                                             ("rollouts", "scale", "other", "update")}) == {"spec.targetRef.scale"}


@hypothesis.settings(max_examples=150, deadline=None)
@hypothesis.given(user=st.text(min_size=0, max_size=12, alphabet=st.sampled_from("ab:/ ,é")),
                  value=st.text(min_size=1, max_size=16, alphabet=st.sampled_from("ab:/ ,é")),
                  own=st.booleans())
def test_the_ack_rule_in_cel_is_ack_accepted(user: str, value: str, own: bool) -> None:
    """The policy's CEL for the ack, run, says what admission.ack_accepted (property-tested
    against parse_ack in test_admission.py) says."""
    if own:
        value = user + value
    new = copy.deepcopy(ALERTS)
    new["metadata"]["annotations"][reasons.ACK_ANNOTATION] = value
    assert (ACK not in admit(new, ALERTS, user, only="variables.ack")) is admission.ack_accepted(user, value), (user, value)


def _silence(name: str, by: str | None, end: str = "2026-01-02T00:00:00Z") -> dict:
    silence = {"name": name, "start": "2026-01-01T00:00:00Z", "end": end, "matchers": {},
               "labelMatchers": ['service="web"'], "comment": ""}
    return silence if by is None else {**silence, "createdBy": by}


def _with_silences(*silences: dict) -> dict:
    obj = copy.deepcopy(ALERTS)
    obj["spec"]["silences"] = list(silences)
    return obj


def test_a_silence_is_recorded_under_its_writers_name_and_only_what_changed_is_checked() -> None:
    mine, alices = _silence("mine", "u"), _silence("hers", "alice")
    assert admit(_with_silences(mine), ALERTS, "u", only="silences") == set()
    assert admit(_with_silences(mine), None, "u", only="silences") == set()
    assert admit(_with_silences(alices), ALERTS, "u", only="silences") == {"spec.silences[0].createdBy"}
    assert admit(_with_silences(alices), None, "u", only="silences") == {"spec.silences[0].createdBy"}
    assert admit(_with_silences(_silence("anon", None)), ALERTS, "u", only="silences") == set()  # claims no one
    before = _with_silences(alices, _silence("bobs", "bob"))
    # Left as they were, others' silences are kept whoever writes: added to, or one removed
    # (the indexes shift: silences are compared by content, not by place).
    assert admit(_with_silences(alices, _silence("bobs", "bob"), mine), before, "u", only="silences") == set()
    assert admit(_with_silences(_silence("bobs", "bob")), before, "u", only="silences") == set()
    assert admit(_with_silences(mine, alices, _silence("bobs", "bob")), before, "u", only="silences") == set()
    # Changed (its end, its name) while still claiming another author: refused at its index.
    longer = _silence("hers", "alice", end="2027-01-01T00:00:00Z")
    assert admit(_with_silences(longer, _silence("bobs", "bob")), before, "u", only="silences") == {"spec.silences[0].createdBy"}
    assert admit(_with_silences(alices, _silence("renamed", "bob")), before, "u", only="silences") == {"spec.silences[1].createdBy"}
    assert admit(_with_silences(_silence("hers", "u", end="2027-01-01T00:00:00Z")), before, "u", only="silences") == set()
    # Every index up to the schema's bound has its rule.
    full = [_silence(f"s{index}", "u") for index in range(admission.MAX_SILENCES)]
    full[-1] = _silence("last", "alice")
    assert admit(_with_silences(*full), ALERTS, "u", only="silences") == {f"spec.silences[{admission.MAX_SILENCES - 1}].createdBy"}


HOOKS = "spec.rollout.hooks"
HOOKED: dict[str, typing.Any] = copy.deepcopy(SERVICE)
HOOKED["spec"]["target"] = {"kubernetes": {"kind": "Deployment", "name": "web"}}
HOOKED["spec"]["rollout"]["hooks"] = {"postDeploy": [{"name": "smoke", "timeoutSeconds": 60, "failRollout": True, "job": {
    "containers": [{"name": "t", "image": "busybox", "command": ["true"]}], "backoffLimit": 0}}]}


def test_a_hook_needs_the_right_to_create_jobs_in_the_namespace() -> None:
    """A hook is a Job the operator creates for the author: without `create jobs` in the
    namespace, writing one (on create, or a changed hook on update) is refused; other changes
    of a service that has hooks, and a service without hooks, ask nothing of it."""
    rights = {("deployments", "scale", "web", "update"), ("deployments", "", "web", "patch"),
              ("secrets", "", "prom", "get"), ("secrets", "", "probe-auth", "get")}
    assert admit(HOOKED, None, rights=rights) == {HOOKS}
    assert admit(HOOKED, None, rights=rights | {("jobs", "", "*", "create")}) == set()
    assert admit(SERVICE, None, rights=rights, only="'jobs'") == set()
    changed_image = copy.deepcopy(HOOKED)
    changed_image["spec"]["rollout"]["hooks"]["postDeploy"][0]["job"]["containers"][0]["image"] = "evil"
    assert admit(changed_image, HOOKED, rights=rights) == {HOOKS}
    relabelled = copy.deepcopy(HOOKED)
    relabelled["metadata"]["labels"]["team"] = "b"
    relabelled["spec"]["slo"]["availabilityPercent"] = 99.0
    assert admit(relabelled, HOOKED, rights=set()) == set()
    # Removing every hook asks for no right to create Jobs (the rollback rule still asks its own).
    unhooked = copy.deepcopy(HOOKED)
    unhooked["spec"]["rollout"]["hooks"] = {"postDeploy": []}
    assert admit(unhooked, HOOKED, rights=set()) == {ROLLBACK}


PRE_DEPLOY = "spec.rollout.hooks.preDeploy"


def test_a_pre_deploy_hook_needs_the_right_to_patch_the_deployment_it_gates() -> None:
    """A pre-deploy gate pauses, unpauses and restores the Deployment for its author: without
    `patch` on it (and `create jobs`), writing one is refused; a service without one asks nothing."""
    gated = copy.deepcopy(HOOKED)
    gated["spec"]["rollout"]["autoRollback"] = False
    gated["spec"]["rollout"]["hooks"] = {"preDeploy": gated["spec"]["rollout"]["hooks"]["postDeploy"]}
    jobs = {("jobs", "", "*", "create"), ("deployments", "scale", "web", "update"), ("secrets", "", "prom", "get"),
            ("secrets", "", "probe-auth", "get")}
    assert admit(gated, None, rights=jobs, only="preDeploy") == {PRE_DEPLOY}
    assert admit(gated, None, rights=jobs | {("deployments", "", "web", "patch")}, only="preDeploy") == set()
    assert admit(gated, None, rights={("deployments", "", "web", "patch")}, only="'jobs'") == {HOOKS}
    retargeted = copy.deepcopy(gated)
    retargeted["spec"]["target"]["kubernetes"]["name"] = "api"
    assert admit(retargeted, gated, rights=jobs | {("deployments", "", "web", "patch")}, only="preDeploy") == {PRE_DEPLOY}
    assert admit(retargeted, gated, rights=jobs | {("deployments", "", "api", "patch")}, only="preDeploy") == set()
    assert admit(HOOKED, None, rights=jobs | {("deployments", "", "web", "patch")}, only="preDeploy") == set()
