"""Safety in a shared cluster, on the real control plane (issue 9)."""

from __future__ import annotations

import asyncio
import json
import string
import subprocess
import time
import typing

import hypothesis
import kubernetes
import pytest
import yaml
from hypothesis import strategies as st

from controller import admission
from controller import reasons
from controller.adapters import kubernetes_api
from controller.api import matchers
from controller.core import alerting
from controller.operator import loop
from controller.operator import scaler as scaler_module
from controller.operator import view as view_module
from controller.plugin import main as plugin_main
from localcluster import hostile
from localcluster import operator as operator_module
from tests import conftest
from tests.integration.test_scaling import HEAVY_RATE
from tests.integration.test_scaling import replicas

pytestmark = pytest.mark.integration
GROUP = "ops.capliquify.io/v1alpha1"


def msvc(prometheus_url: str, name: str = "web") -> dict:
    return {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": name},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                     "metrics": {"prometheus": {"url": prometheus_url}}}}


def policy(name: str = "web", target: str = "web") -> dict:
    return {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": name},
            "spec": {"targetRef": {"monitoredService": target}, "minReplicas": 2, "maxReplicas": 6,
                     "evaluationIntervalSeconds": 5,
                     "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}],
                     "onMetricsUnavailable": {"action": "Hold", "staleAfterSeconds": 15}}}


def test_a_policy_deleted_behind_the_watch_never_scales(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    """The view still holds a ScalingPolicy the API server has deleted (a watch gap): the
    scaler asks before it acts, as the operator's own ServiceAccount, and forgets it."""
    operator_factory().stop()  # installs the operator's RBAC; no operator runs during this test
    policy = {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "web", "namespace": namespace},
              "spec": {"targetRef": {"kubernetes": {"name": "web"}}}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(policy))
    stale = json.loads(cluster.kubectl("get", "scp", "web", "-n", namespace, "-o", "json"))
    cluster.kubectl("delete", "scp", "web", "-n", namespace)

    kubeconfig = cluster.service_account_kubeconfig(operator_module.OPERATOR_NAMESPACE, operator_module.OPERATOR_ACCOUNT)
    api = kubernetes_api.KubeApi(kubernetes_api.load_config(str(kubeconfig)), lambda verb: None)
    view = view_module.View()
    key, _ = view.upsert(stale)
    scaler = scaler_module.Scaler(view, loop.Evaluator(view, api, 60.0, 4), api, scale=None, default_prometheus=None)  # type: ignore[arg-type]
    assert asyncio.run(scaler._still_exists(key, stale)) is False
    assert key not in view.objects

    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(policy))  # recreated under the same name
    deadline = time.monotonic() + 10
    while json.loads(cluster.kubectl("get", "scp", "web", "-n", namespace, "-o", "json"))["metadata"]["uid"] == \
            stale["metadata"]["uid"] and time.monotonic() < deadline:
        time.sleep(0.2)
    view.upsert(stale)
    assert asyncio.run(scaler._still_exists(key, stale)) is False, "a new object of the same name is not the old one"
    fresh = json.loads(cluster.kubectl("get", "scp", "web", "-n", namespace, "-o", "json"))
    assert asyncio.run(scaler._still_exists(key, fresh)) is True


def test_one_tenants_broken_endpoints_do_not_stall_another(cluster, namespace, demo_stack, operator_factory) -> None:  # noqa: ANN001
    """Namespace B's Prometheus answers `{}` and its Railway endpoint drips its answer a byte at
    a time; namespace A's policy still scales on time and A's metrics keep being sampled; B's
    objects say why on their conditions."""
    garbage = hostile.HostileServer(hostile.http_reply(b"{}"))
    drip = hostile.HostileServer(hostile.http_reply(b'{"data": {"serviceInstance": null}}' + b" " * 4000), 0.5)
    other = f"{namespace}-b"
    cluster.kubectl("create", "namespace", other)
    try:
        b_objects: list[dict] = [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"labels": {"app": "web"}},
                                   "spec": {"containers": [{"name": "web", "image": "demo/web:1"}]}}}},
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "railway"}, "stringData": {"token": "b-token"}},
        ]
        for index in range(4):
            b_objects += [
                msvc(f"{garbage.url}/", name=f"web-{index}"),
                policy(name=f"web-{index}", target=f"web-{index}"),
                {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": f"rail-{index}"},
                 "spec": {"target": {"railway": {
                     "projectId": "p", "environmentId": "e", "serviceId": f"s{index}",
                     "tokenSecretRef": {"name": "railway", "key": "token"}, "endpoint": f"{drip.url}/graphql"}}}},
            ]
        cluster.kubectl("apply", "-n", other, "-f", "-", input=yaml.safe_dump_all(b_objects))
        cluster.kubectl("apply", "-n", namespace, "-f", "-",
                        input=yaml.safe_dump_all([msvc(demo_stack.prometheus.url), policy()]))
        operator_factory("--rate-window=10s", "--metrics-interval-seconds=5", "--railway-interval-seconds=2",
                         "--allow-loopback-egress")

        def sampled_at() -> str | None:
            status = json.loads(cluster.kubectl("get", "msvc", "web", "-n", namespace, "-o", "json")).get("status", {})
            return (status.get("metrics") or {}).get("sampledAt")

        cluster.wait_for(lambda: sampled_at() is not None, 60, "A's first metrics snapshot")
        demo_stack.start_load(HEAVY_RATE)
        started = time.monotonic()
        stamps = {sampled_at()}
        while time.monotonic() - started < 90 and replicas(cluster, namespace) < 4:
            stamps.add(sampled_at())
            time.sleep(2)
        assert replicas(cluster, namespace) >= 4, "A scaled up while B's endpoints misbehaved"
        assert time.monotonic() - started < 90
        stamps.add(sampled_at())
        assert len(stamps) >= 2, "A's metrics kept being sampled"

        def b_condition(kind: str, name: str, type_: str) -> dict:
            conditions = json.loads(cluster.kubectl("get", kind, name, "-n", other, "-o", "json")).get(
                "status", {}).get("conditions", [])
            return next((c for c in conditions if c["type"] == type_), {})

        cluster.wait_for(lambda: b_condition("scp", "web-0", "ScalingActive").get("reason") == "MetricsUnavailable",
                         60, "B's policy says its metrics are unavailable")
        assert "HTTP 200: no error text" in b_condition("scp", "web-0", "ScalingActive")["message"]
        cluster.wait_for(lambda: "did not finish answering" in b_condition("msvc", "rail-0", "Ready").get("message", ""),
                         90, "B's Railway service says its endpoint is too slow")
    finally:
        garbage.close()
        drip.close()
        cluster.kubectl("delete", "namespace", other, "--wait=false")


def test_authors_cannot_reach_beyond_their_own_rights(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    """The ValidatingAdmissionPolicy in manifests/: a user who may write our resources but not
    scale a workload or read a Secret cannot make the operator do it for them."""
    operator_factory().stop()  # installs manifests/ (CRDs, RBAC, the admission policy)
    user = f"alice-{namespace[-5:]}"
    editor = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "capliquify-editor"},
         "rules": [{"apiGroups": ["ops.capliquify.io"], "resources": ["*"], "verbs": ["*"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "capliquify-editor"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "capliquify-editor"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "someone-elses"}, "stringData": {"token": "s3cret"}},
    ]
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(editor))
    scaling = {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "web"},
               "spec": {"targetRef": {"kubernetes": {"name": "web"}}}}
    railway = {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "api"},
               "spec": {"target": {"railway": {"projectId": "p", "environmentId": "e", "serviceId": "s",
                                               "tokenSecretRef": {"name": "someone-elses", "key": "token"}}}}}
    slack = {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "leak"},
             "spec": {"serviceRef": "api", "rules": [{"name": "R", "metric": "cpu", "threshold": 1}],
                      "channels": [{"name": "s", "slack": {"webhookSecretRef": {"name": "someone-elses", "key": "token"}}}]}}

    def refused_as_user(doc: dict) -> str:
        deadline = time.monotonic() + 30  # the policy compiles shortly after it is created
        while True:
            try:
                cluster.kubectl("apply", "--as", user, "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
            except subprocess.CalledProcessError as refused:
                return refused.stderr
            cluster.kubectl("delete", doc["kind"].lower(), doc["metadata"]["name"], "-n", namespace)
            assert time.monotonic() < deadline, f"{user} was admitted: {doc}"
            time.sleep(1)

    assert "may not update the scale of Deployment web" in refused_as_user(scaling)
    assert "may not read Secret someone-elses" in refused_as_user(railway)
    assert "spec.channels[0]: " + user + " may not read Secret someone-elses" in refused_as_user(slack)

    # With the right to scale, the same user is admitted; the cluster's admin always is.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "scaler"},
         "rules": [{"apiGroups": ["apps"], "resources": ["deployments/scale"], "verbs": ["update", "patch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "scaler"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "scaler"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}]))
    cluster.wait_for(lambda: _admitted(cluster, user, namespace, scaling), 30, "admitted with the right to scale")
    # A health check's Secret (its header values, its CA bundle) is sent for the author: the
    # author must be allowed to read it (issue 24), whichever check of the list names it.
    probed = {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "probed"},
              "spec": {"target": {"kubernetes": {"name": "web"}}, "healthChecks": [
                  {"name": "plain", "tcp": {"host": "web", "port": 80}},
                  {"name": "auth", "secretName": "someone-elses", "http": {
                      "url": "http://web/h", "headers": [{"name": "Authorization", "secretKey": "token"}]}}]}}
    assert f"spec.healthChecks[1].secretName: {user} may not read Secret someone-elses" in refused_as_user(probed)
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(railway))


def _admitted(cluster, user: str, namespace: str, doc: dict) -> bool:  # noqa: ANN001
    try:
        cluster.kubectl("apply", "--as", user, "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
    except subprocess.CalledProcessError:
        return False
    return True


# -- Issue 21: admission covers every field that makes the operator act for the author, and
# -- only fields that changed; an ack is recorded under the requesting user's name.

def _grant(cluster, namespace: str, name: str, subject: dict, rules: list[dict]) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": name}, "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": name},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", **subject}]}]))


def _user(name: str) -> dict:
    return {"kind": "User", "name": name}


EDIT_OURS = [{"apiGroups": ["ops.capliquify.io"], "resources": ["*"], "verbs": ["*"]}]


def _scale(resource: str, *names: str) -> list[dict]:
    return [{"apiGroups": ["apps"], "resources": [f"{resource}/scale"], "verbs": ["update", "patch"],
             **({"resourceNames": list(names)} if names else {})}]


def _as(cluster, user: str, namespace: str, doc: dict) -> str:  # noqa: ANN001
    """What the API server answers `user` applying `doc` (server-side dry run: nothing is
    written, admission runs with the stored object as oldObject): "" when admitted."""
    try:
        cluster.kubectl("apply", "--dry-run=server", "--as", user, "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
    except subprocess.CalledProcessError as refused:
        assert "denied request" in refused.stderr or "ValidatingAdmissionPolicy" in refused.stderr, refused.stderr
        return refused.stderr
    return ""


def _service(name: str, workload: str, kind: str = "Deployment", **spec: typing.Any) -> dict:
    return {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": name},
            "spec": {"target": {"kubernetes": {"kind": kind, "name": workload}},
                     "metrics": {"prometheus": {"url": "http://127.0.0.1:9/"}}, **spec}}


def test_rollback_retarget_and_kind_need_the_authors_rights_on_that_workload(cluster, namespace) -> None:  # noqa: ANN001
    """autoRollback needs `patch` on the workload (what `kubectl rollout undo` needs); naming a
    workload in a MonitoredService, or re-targeting one a ScalingPolicy uses, needs `update` on
    that workload's scale; a StatefulSet is checked against statefulsets/scale only."""
    alice, sam = f"alice-{namespace[-5:]}", f"sam-{namespace[-5:]}"
    _grant(cluster, namespace, "alice", _user(alice), EDIT_OURS + _scale("deployments", "web"))
    _grant(cluster, namespace, "sam", _user(sam), EDIT_OURS + _scale("statefulsets"))
    cluster.wait_for(lambda: _as(cluster, alice, namespace, _service("mine", "web")) == "", 30, "alice's grant")

    # autoRollback: alice may scale web but not patch it.
    rollback = _service("mine", "web", rollout={"autoRollback": True})
    cluster.wait_for(lambda: "spec.rollout.autoRollback" in _as(cluster, alice, namespace, rollback), 30,
                     "the policy refuses autoRollback")  # a new policy compiles shortly after it is created
    assert f"spec.rollout.autoRollback: {alice} may not patch Deployment web" in _as(cluster, alice, namespace, rollback)
    # An admin's service with autoRollback: alice may not re-point what its analysis judges on
    # (her own Prometheus, forcing a failure), but may change what only reports (slo).
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(_service("guarded", "web", rollout={
        "autoRollback": True})))
    forced = _service("guarded", "web", rollout={"autoRollback": True})
    forced["spec"]["metrics"]["prometheus"]["url"] = "http://127.0.0.1:10/"
    assert "spec.rollout.autoRollback" in _as(cluster, alice, namespace, forced)
    reporting = _service("guarded", "web", rollout={"autoRollback": True}, slo={"availabilityPercent": 99})
    assert _as(cluster, alice, namespace, reporting) == ""

    # Re-targeting a service an admin's ScalingPolicy scales through: the NEW target is checked.
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
        _service("shared", "web"), {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "shared"},
                                    "spec": {"targetRef": {"monitoredService": "shared"}}}]))
    refused = _as(cluster, alice, namespace, _service("shared", "payments"))
    assert f"spec.target.kubernetes: {alice} may not update the scale of Deployment payments" in refused
    assert _as(cluster, alice, namespace, _service("shared", "web", slo={"availabilityPercent": 99})) == ""

    # A StatefulSet is checked against statefulsets/scale, a Deployment against deployments/scale.
    assert "may not update the scale of StatefulSet db" in _as(cluster, alice, namespace, _service("db", "db", "StatefulSet"))
    assert _as(cluster, sam, namespace, _service("db", "db", "StatefulSet")) == ""
    assert "may not update the scale of Deployment web" in _as(cluster, sam, namespace, _service("db", "web"))
    direct = {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "db"},
              "spec": {"targetRef": {"kubernetes": {"kind": "StatefulSet", "name": "db"}}}}
    assert _as(cluster, sam, namespace, direct) == ""
    assert "may not update the scale of StatefulSet db" in _as(cluster, alice, namespace, direct)
    # Through a MonitoredService the kind is not known at admission: both kinds' scale is needed.
    via = {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "via"},
           "spec": {"targetRef": {"monitoredService": "db"}}}
    for user in (alice, sam):
        assert "spec.targetRef.monitoredService" in _as(cluster, user, namespace, via)
    both = f"ops-{namespace[-5:]}"
    _grant(cluster, namespace, "ops", _user(both), EDIT_OURS + _scale("deployments") + _scale("statefulsets"))
    cluster.wait_for(lambda: _as(cluster, both, namespace, via) == "", 30, "admitted with the scale of both kinds")


def test_an_on_call_user_acks_under_their_own_name_only(cluster, namespace) -> None:  # noqa: ANN001
    """An on-call user holding only `patch` on AlertPolicies (no Secret rights) acks with the
    plugin; their name, as the API server knows them, is what is recorded; an ack claiming
    another name is refused naming the field. Then the real CEL is compared with
    admission.ack_accepted over generated user names and values."""
    olga = f"olga-{namespace[-5:]}"
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook"}, "stringData": {"url": "http://127.0.0.1:9/"}},
        {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "pager"},
         "spec": {"serviceRef": "web", "rules": [{"name": "Down", "metric": "health", "op": "==", "threshold": 0}],
                  "channels": [{"name": "s", "slack": {"webhookSecretRef": {"name": "hook", "key": "url"}}}]}}]))
    _grant(cluster, namespace, "oncall", _user(olga),
           [{"apiGroups": ["ops.capliquify.io"], "resources": ["alertpolicies"], "verbs": ["patch"]}])

    def ack_annotation() -> str:
        return json.loads(cluster.kubectl("get", "alp", "pager", "-n", namespace, "-o", "json"))[
            "metadata"].get("annotations", {}).get(reasons.ACK_ANNOTATION, "")

    def plugin_ack() -> bool:
        try:
            conftest.kubectl_capliquify(cluster, "ack", "alp/pager", "Down/web", "--as", olga, "-n", namespace)
        except AssertionError:  # RBAC caches the new binding a moment later
            return False
        return True

    cluster.wait_for(plugin_ack, 30, "olga acks")
    assert alerting.parse_ack(ack_annotation()) == (olga, frozenset({"Down/web"}))

    as_olga = plugin_main.Cluster(str(cluster.kubeconfig), None, olga)
    with pytest.raises(kubernetes.client.ApiException) as refused:
        as_olga.annotate("alp", namespace, "pager", reasons.ACK_ANNOTATION, "alice: Down/web")
    assert f"metadata.annotations[{reasons.ACK_ANNOTATION}]" in (refused.value.body or "")
    assert f"as {olga} write" in (refused.value.body or "")
    assert alerting.parse_ack(ack_annotation())[0] == olga

    # The CEL the API server runs against the Python rule, on generated names and values (server-
    # side dry runs as each user; any authenticated user may patch AlertPolicies here).
    _grant(cluster, namespace, "anyone-acks", {"kind": "Group", "name": "system:authenticated"},
           [{"apiGroups": ["ops.capliquify.io"], "resources": ["alertpolicies"], "verbs": ["patch"]}])
    current = ack_annotation()
    # Header values lose surrounding spaces on the wire: names are generated without them.
    names = st.text(st.sampled_from(string.ascii_letters + ":/@#. ,-"), min_size=1, max_size=20).filter(
        lambda name: name == name.strip())
    seen: list[tuple[str, str, bool]] = []

    @hypothesis.settings(max_examples=80, deadline=None, database=None)
    @hypothesis.given(user=names, value=st.one_of(
        names, st.builds(lambda user, alert: f"{user}: {alert}", names, st.sampled_from(["Down/web", "Down:x/web", ""])),
        st.builds(lambda a, b: a + b, names, names)), claim_own=st.booleans())
    def same_verdict(user: str, value: str, claim_own: bool) -> None:
        if claim_own:
            value = user + value[value.rfind(":"):] if ":" in value else user
        hypothesis.assume(value not in ("", current))
        body = {"metadata": {"annotations": {reasons.ACK_ANNOTATION: value}}}
        try:
            plugin_main.Cluster(str(cluster.kubeconfig), None, user).custom.patch_namespaced_custom_object(
                "ops.capliquify.io", "v1alpha1", namespace, "alertpolicies", "pager", body, dry_run="All")
            admitted = True
        except kubernetes.client.ApiException as error:
            assert reasons.ACK_ANNOTATION in (error.body or ""), error.body
            admitted = False
        seen.append((user, value, admitted))
        assert admitted == admission.ack_accepted(user, value), (user, value)

    cluster.wait_for(lambda: not _dry_run_ack_admitted(cluster, namespace, "x", "y: Down/web"), 30, "anyone's grant")
    same_verdict()
    assert any(admitted for *_, admitted in seen) and not all(admitted for *_, admitted in seen)
    assert any(":" in user and admitted for user, _, admitted in seen), "names holding ':' can ack"


def _dry_run_ack_admitted(cluster, namespace: str, user: str, value: str) -> bool:  # noqa: ANN001
    try:
        plugin_main.Cluster(str(cluster.kubeconfig), None, user).custom.patch_namespaced_custom_object(
            "ops.capliquify.io", "v1alpha1", namespace, "alertpolicies", "pager",
            {"metadata": {"annotations": {reasons.ACK_ANNOTATION: value}}}, dry_run="All")
    except kubernetes.client.ApiException as error:
        if error.status == 403 and reasons.ACK_ANNOTATION not in (error.body or ""):
            return True  # RBAC has not seen the grant yet: not the policy's answer; wait
        return False
    return True


def test_an_on_call_user_silences_under_their_own_name_and_unsilences(cluster, namespace, operator_factory,
                                                                     tmp_path) -> None:  # noqa: ANN001
    """A user holding only `get` and `patch` on AlertPolicies silences a service with the
    plugin: their name is recorded, the alert that fires meanwhile sends nothing; `unsilence`
    lets it notify. A silence claiming another author is refused naming the field."""
    from localcluster import prometheus as prometheus_module
    from localcluster import receivers

    olga = f"olga-{namespace[-5:]}"
    http = receivers.HttpReceiver()
    prometheus = prometheus_module.Prometheus(tmp_path / "prometheus", [], scrape_seconds=5)
    prometheus.start()
    try:
        def signal(value: int) -> None:
            cluster.kubectl("patch", "msvc", "web", "-n", namespace, "--type=merge", "-p", json.dumps(
                {"spec": {"metrics": {"custom": [{"name": "down", "query": f"vector({value})"}]}}}))

        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
             "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                      "template": {"metadata": {"labels": {"app": "web"}},
                                   "spec": {"containers": [{"name": "web", "image": "example/app:1"}]}}}},
            {"apiVersion": GROUP, "kind": "MonitoredService", "metadata": {"name": "web"},
             "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": "web"}},
                      "metrics": {"prometheus": {"url": prometheus.url},
                                  "custom": [{"name": "down", "query": "vector(0)"}]}}},
            {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "pager"},
             "spec": {"serviceRef": "web",
                      "rules": [{"name": "Down", "metric": "custom", "customName": "down", "threshold": 0.5,
                                 "severity": "critical"}],
                      "channels": [{"name": "page", "webhook": {"url": f"{http.url}/page"}}],
                      "defaultRoute": {"channels": ["page"], "repeatIntervalSeconds": 3600}, "routes": []}}]))
        _grant(cluster, namespace, "oncall", _user(olga),
               [{"apiGroups": ["ops.capliquify.io"], "resources": ["alertpolicies"], "verbs": ["get", "patch"]}])
        operator_factory("--metrics-interval-seconds=2", "--alert-interval-seconds=1", "--allow-loopback-egress")

        def alp() -> dict:
            return json.loads(cluster.kubectl("get", "alp", "pager", "-n", namespace, "-o", "json"))

        def plugin(*args: str) -> bool:
            try:
                conftest.kubectl_capliquify(cluster, *args, "--as", olga, "-n", namespace)
            except AssertionError:  # RBAC caches the new binding a moment later
                return False
            return True

        cluster.wait_for(lambda: plugin("silence", "alp/pager", "--matcher", "service=web", "--for", "1h",
                                        "--name", "deploy", "--comment", "deploying"), 30, "olga silences")
        [silence] = alp()["spec"]["silences"]
        assert (silence["name"], silence["createdBy"], silence["labelMatchers"]) == ("deploy", olga, ["service=web"])

        signal(1)
        cluster.wait_for(lambda: any(a.get("state") == "Firing" for a in alp().get("status", {}).get("alerts", [])),
                         60, "the alert firing")
        time.sleep(5)  # several evaluations while firing and silenced
        assert http.delivered("/page") == []

        assert plugin("unsilence", "alp/pager", "deploy")
        assert alp()["spec"].get("silences") == []
        cluster.wait_for(lambda: len(http.delivered("/page")) >= 1, 30, "the alert notified once unsilenced")

        # Written by hand, a silence claiming another author is refused; one's own is not.
        as_olga = plugin_main.Cluster(str(cluster.kubeconfig), None, olga)
        forged = {"name": "forged", "createdBy": "alice", "start": "2026-01-01T00:00:00Z",
                  "end": "2099-01-01T00:00:00Z", "labelMatchers": ["service=web"]}
        with pytest.raises(kubernetes.client.ApiException) as refused:
            as_olga.json_patch("alp", namespace, "pager", [{"op": "add", "path": "/spec/silences/-", "value": forged}])
        assert "spec.silences[0].createdBy" in (refused.value.body or "")
        assert f"as {olga} write createdBy: {olga}" in (refused.value.body or "")
        as_olga.json_patch("alp", namespace, "pager",
                           [{"op": "add", "path": "/spec/silences/-", "value": {**forged, "createdBy": olga}}])
        # Another user changing nothing of it keeps it (only new or changed silences are checked).
        cluster.kubectl("patch", "alp", "pager", "-n", namespace, "--type=merge", "-p",
                        json.dumps({"spec": {"sendResolved": False}}))
        assert [s["createdBy"] for s in alp()["spec"]["silences"]] == [olga]

        # The CEL cost at its largest: every one of the most silences, each as large as the schema
        # lets it be, changed at once (each rule compares its silence with every old one).
        def largest(end: str, by: str | None) -> list[dict]:
            return [{"name": f"s{index}", "start": "2026-01-01T00:00:00Z", "end": end, "comment": "c" * 1024,
                     "labelMatchers": [f"l{m}=" + "v" * (matchers.MAX_LENGTH - 3) for m in range(8)],
                     **({"createdBy": by} if by else {})} for index in range(admission.MAX_SILENCES)]

        cluster.kubectl("patch", "alp", "pager", "-n", namespace, "--type=merge", "-p",
                        json.dumps({"spec": {"silences": largest("2099-01-01T00:00:00Z", None)}}))
        patch = [{"op": "replace", "path": "/spec/silences", "value": largest("2098-01-01T00:00:00Z", olga)}]
        as_olga.custom.patch_namespaced_custom_object(
            "ops.capliquify.io", "v1alpha1", namespace, "alertpolicies", "pager", patch, dry_run="All",
            _content_type="application/json-patch+json")
        patch[0]["value"][-1]["createdBy"] = "alice"
        with pytest.raises(kubernetes.client.ApiException) as refused:
            as_olga.custom.patch_namespaced_custom_object(
                "ops.capliquify.io", "v1alpha1", namespace, "alertpolicies", "pager", patch, dry_run="All",
                _content_type="application/json-patch+json")
        assert f"spec.silences[{admission.MAX_SILENCES - 1}].createdBy" in (refused.value.body or ""), refused.value.body
    finally:
        prometheus.stop()
        http.stop()


def test_the_policy_type_checks_and_fits_the_cel_cost_budget_at_its_largest(cluster, namespace) -> None:  # noqa: ANN001
    """The API server type-checks the policy against the CRDs' schemas (a misspelt field is a
    warning there, not an error) and charges every `authorizer` check at run time: the
    largest objects, each rule asking its right, are admitted for someone holding them all."""
    def warnings() -> list | None:
        status = json.loads(cluster.kubectl("get", "validatingadmissionpolicy", admission.NAME, "-o", "json")).get(
            "status") or {}
        return None if "typeChecking" not in status else status["typeChecking"].get("expressionWarnings") or []

    cluster.wait_for(lambda: warnings() is not None, 60, "the policy type-checked")
    assert warnings() == []

    channels = [{"name": f"c{index}", "slack": {"webhookSecretRef": {"name": f"hook-{index}", "key": "url"}}}
                for index in range(admission.MAX_CHANNELS)]
    largest = [
        {"apiVersion": GROUP, "kind": "AlertPolicy", "metadata": {"name": "wide", "annotations": {
            reasons.ACK_ANNOTATION: "capliquify-admin: Down/web"}},
         "spec": {"serviceRef": "web", "rules": [{"name": "Down", "metric": "health", "op": "==", "threshold": 0}],
                  "channels": channels}},
        _service("everything", "web", kind="StatefulSet", rollout={"autoRollback": True},
                 healthChecks=[{"name": "http", "http": {"url": "http://127.0.0.1:9/healthz"}}],
                 probes={"manage": True, "check": "http"}),
        {"apiVersion": GROUP, "kind": "ScalingPolicy", "metadata": {"name": "via"},
         "spec": {"targetRef": {"monitoredService": "everything"}}},
    ]
    largest[1]["spec"]["metrics"]["prometheus"]["authSecretRef"] = {"name": "prom", "key": "token"}
    out = cluster.kubectl("apply", "--dry-run=server", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(largest))
    assert out.count("(server dry run)") == 3, out
