"""The generated CRDs on a real API server: install, printer columns, explain, rejection."""

from __future__ import annotations

import subprocess

import pytest
import yaml

from controller import cli
from tests import conftest

pytestmark = pytest.mark.integration

GROUP = "ops.capliquify.io/v1alpha1"


def test_manifests_apply(cluster) -> None:  # noqa: ANN001
    out = cluster.kubectl("apply", "-k", str(conftest.REPO / "manifests"))
    for expected in ("customresourcedefinition.apiextensions.k8s.io/scalingpolicies.ops.capliquify.io",
                     "serviceaccount/capliquify-operator", "clusterrole.rbac.authorization.k8s.io/capliquify-operator",
                     "deployment.apps/capliquify-operator"):
        assert expected in out


def test_explain_prints_descriptions(cluster) -> None:  # noqa: ANN001
    out = cluster.kubectl("explain", "scalingpolicy.spec.metrics")
    assert "Scale up when ANY metric is above scaleUp" in out
    assert "scaleDown\t<number> -required-" in out
    assert "cpu and memory in percent of request" in out
    assert "Railway service ID." in cluster.kubectl("explain", "msvc.spec.target.railway.serviceId")
    assert "Re-notify a still-firing alert" in cluster.kubectl("explain", "alp.spec.routes.repeatIntervalSeconds")


def _doc(kind: str, spec: dict) -> dict:
    return {"apiVersion": GROUP, "kind": kind, "metadata": {"name": "bad"}, "spec": spec}


SCP = {"targetRef": {"monitoredService": "web"}}
MSVC = {"target": {"kubernetes": {"name": "web"}}}
ALP = {"serviceRef": "web", "rules": [{"name": "R", "metric": "cpu", "threshold": 1}],
       "channels": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/x"}}]}
RAILWAY = {"projectId": "p", "environmentId": "e", "serviceId": "s", "tokenSecretRef": {"name": "t", "key": "k"}}

# (id, object, the field the API server must name, words of the message, also refused offline)
INVALID = [
    ("min-above-max", _doc("ScalingPolicy", {**SCP, "minReplicas": 5, "maxReplicas": 3}),
     "spec.minReplicas", "minReplicas must be <= maxReplicas", True),
    ("inverted-thresholds", _doc("ScalingPolicy", {**SCP, "metrics": [{"type": "cpu", "scaleUp": 30, "scaleDown": 70}]}),
     "spec.metrics[0].scaleDown", "scaleDown must be lower than scaleUp", True),
    ("target-outside-band", _doc("ScalingPolicy", {**SCP, "metrics": [
        {"type": "cpu", "scaleUp": 80, "scaleDown": 60, "target": 90}]}),
     "spec.metrics[0].target", "target must lie within scaleDown..scaleUp", True),
    ("two-targets", _doc("MonitoredService", {"target": {"kubernetes": {"name": "web"}, "railway": RAILWAY}}),
     "spec.target", "exactly one of kubernetes or railway", True),
    ("no-target", _doc("ScalingPolicy", {"targetRef": {}}),
     "spec.targetRef", "exactly one of monitoredService, kubernetes or scale", True),
    ("unknown-metric-type", _doc("ScalingPolicy", {**SCP, "metrics": [{"type": "gpu", "scaleUp": 2, "scaleDown": 1}]}),
     "spec.metrics[0].type", "Unsupported value", True),
    ("negative-interval", _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "api", "http": {"url": "http://127.0.0.1:1/h"}, "intervalSeconds": -5}]}),
     "spec.healthChecks[0].intervalSeconds", "should be greater than or equal to 1", True),
    ("missing-channel", _doc("AlertPolicy", {**ALP, "routes": [{"severity": "critical", "channels": ["pager"]}]}),
     "spec.routes", "must be declared in spec.channels", True),
    ("custom-without-name", _doc("ScalingPolicy", {**SCP, "metrics": [{"type": "custom", "scaleUp": 2, "scaleDown": 1}]}),
     "spec.metrics[0].name", "name is required for type custom", True),
    ("channel-two-kinds", _doc("AlertPolicy", {**ALP, "channels": [
        {"name": "x", "webhook": {"url": "http://127.0.0.1:9/x"}, "alertmanager": {"url": "http://127.0.0.1:9"}}]}),
     "spec.channels[0]", "exactly one of slack, email, sms, webhook, alertmanager", True),
    ("duplicate-metric", _doc("ScalingPolicy", {**SCP, "metrics": [
        {"type": "cpu", "scaleUp": 70, "scaleDown": 30}, {"type": "cpu", "scaleUp": 90, "scaleDown": 10}]}),
     "spec.metrics", "may appear only once", True),
    ("probes-on-railway", _doc("MonitoredService", {"target": {"railway": RAILWAY}, "probes": {"manage": True},
                                                    "healthChecks": [{"name": "a", "http": {"url": "http://127.0.0.1:1/"}}]}),
     "spec.probes.manage", "probes.manage requires a kubernetes target", True),
    ("timeout-over-interval", _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "api", "http": {"url": "http://127.0.0.1:1/h", "timeoutSeconds": 30}, "intervalSeconds": 10}]}),
     "spec.healthChecks[0].http.timeoutSeconds", "must not exceed intervalSeconds", True),
    ("silence-ends-before-start", _doc("AlertPolicy", {**ALP, "silences": [
        {"start": "2026-12-01T10:00:00Z", "end": "2026-12-01T09:00:00Z"}]}),
     "spec.silences[0].end", "end must be after start", True),
    ("bad-phone-number", _doc("AlertPolicy", {**ALP, "channels": [
        {"name": "sms", "sms": {"gatewaySecretRef": {"name": "g", "key": "k"}, "to": ["5550100"]}}]}),
     "spec.channels[0].sms.to[0]", "should match", True),
    ("fallback-without-replicas", _doc("ScalingPolicy", {**SCP, "onMetricsUnavailable": {"action": "Fallback"}}),
     "spec.onMetricsUnavailable.replicas", "replicas is required when action is Fallback", True),
    # Hostile bounds and forms (issue 9): each refused by the schema, naming the field.
    ("absurd-max-replicas", _doc("ScalingPolicy", {**SCP, "maxReplicas": 1000000000}),
     "spec.maxReplicas", "should be less than or equal to 10000", True),
    ("evaluation-interval-zero", _doc("ScalingPolicy", {**SCP, "evaluationIntervalSeconds": 0}),
     "spec.evaluationIntervalSeconds", "should be greater than or equal to 5", True),
    ("equal-thresholds", _doc("ScalingPolicy", {**SCP, "metrics": [{"type": "cpu", "scaleUp": 50, "scaleDown": 50}]}),
     "spec.metrics[0].scaleDown", "scaleDown must be lower than scaleUp", True),
    ("negative-threshold", _doc("ScalingPolicy", {**SCP, "metrics": [{"type": "cpu", "scaleUp": 50, "scaleDown": -1}]}),
     "spec.metrics[0].scaleDown", "should be greater than or equal to 0", True),
    ("seventeen-metrics", _doc("ScalingPolicy", {**SCP, "metrics": [
        {"type": "custom", "name": f"m{i}", "scaleUp": 2, "scaleDown": 1} for i in range(17)]}),
     "spec.metrics", "must have at most 16 items", True),
    ("huge-selector", _doc("AlertPolicy", {**{k: v for k, v in ALP.items() if k != "serviceRef"},
                                           "selector": {"matchLabels": {f"k{i}": "v" for i in range(33)}}}),
     "spec.selector.matchLabels", "must have at most 32 items", True),
    ("silence-matcher-unknown-key", _doc("AlertPolicy", {**ALP, "silences": [
        {"start": "2026-12-01T09:00:00Z", "end": "2026-12-01T10:00:00Z", "matchers": {"namespace": "x"}}]}),
     "spec.silences[0].matchers", "keys must be one of 'rule', 'service', 'severity'", True),
    ("email-recipient-with-crlf", _doc("AlertPolicy", {**ALP, "channels": [
        {"name": "mail", "email": {"smtpSecretRef": {"name": "s", "key": "k"}, "to": ["ops@example.com\r\nBcc: x@y.z"]}}]}),
     "spec.channels[0].email.to[0]", "should match", True),
    ("webhook-file-url", _doc("AlertPolicy", {**ALP, "channels": [{"name": "hook", "webhook": {"url": "file:///etc/passwd"}}]}),
     "spec.channels[0].webhook.url", "should match", True),
    ("railway-endpoint-port-out-of-range", _doc("MonitoredService", {"target": {"railway": {
        **RAILWAY, "endpoint": "http://x:99999/"}}}),
     "spec.target.railway.endpoint", "should match", True),
    ("max-replicas-zero", _doc("ScalingPolicy", {**SCP, "minReplicas": 0, "maxReplicas": 0}),
     "spec.maxReplicas", "should be greater than or equal to 1", True),
    ("negative-min-replicas", _doc("ScalingPolicy", {**SCP, "minReplicas": -1}),
     "spec.minReplicas", "should be greater than or equal to 0", True),
    ("window-over-an-hour", _doc("ScalingPolicy", {**SCP, "behavior": {"scaleDown": {"stabilizationWindowSeconds": 7200}}}),
     "spec.behavior.scaleDown.stabilizationWindowSeconds", "should be less than or equal to 3600", True),
    ("step-policy-of-zero", _doc("ScalingPolicy", {**SCP, "behavior": {"scaleUp": {"policies": [
        {"type": "Pods", "value": 0, "periodSeconds": 15}]}}}),
     "spec.behavior.scaleUp.policies[0].value", "should be greater than or equal to 1", True),
    ("unknown-select-policy", _doc("ScalingPolicy", {**SCP, "behavior": {"scaleUp": {"selectPolicy": "Sometimes"}}}),
     "spec.behavior.scaleUp.selectPolicy", "Unsupported value", True),
    ("predictive-horizon-too-short", _doc("ScalingPolicy", {**SCP, "predictive": {"enabled": True, "horizonSeconds": 5}}),
     "spec.predictive.horizonSeconds", "should be greater than or equal to 30", True),
    ("fallback-outside-bounds", _doc("ScalingPolicy", {**SCP, "maxReplicas": 5,
                                                       "onMetricsUnavailable": {"action": "Fallback", "replicas": 10000}}),
     "spec.onMetricsUnavailable.replicas", "must lie within minReplicas..maxReplicas", True),
    ("custom-name-with-spaces", _doc("ScalingPolicy", {**SCP, "metrics": [
        {"type": "custom", "name": "rm -rf /", "scaleUp": 2, "scaleDown": 1}]}),
     "spec.metrics[0].name", "should match", True),
    ("check-name-with-slash", _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "../etc", "http": {"url": "http://127.0.0.1:1/h"}}]}),
     "spec.healthChecks[0].name", "should match", True),
    ("webhook-url-with-credentials", _doc("AlertPolicy", {**ALP, "channels": [
        {"name": "hook", "webhook": {"url": "http://user:pass@hooks.example/x"}}]}),
     "spec.channels[0].webhook.url", "should match", True),
    ("alertmanager-port-zero", _doc("AlertPolicy", {**ALP, "channels": [
        {"name": "am", "alertmanager": {"url": "http://alertmanager:0"}}]}),
     "spec.channels[0].alertmanager.url", "should match", True),
    ("prometheus-url-with-credentials", _doc("MonitoredService", {**MSVC, "metrics": {"prometheus": {
        "url": "http://admin:hunter2@prometheus:9090"}}}),
     "spec.metrics.prometheus.url", "should match", True),
    # Hosts the HTTP client folds to another address (issue 21): ASCII hosts only, no zone ids.
    ("check-url-fullwidth-loopback", _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "api", "http": {"url": "http://１２７．０．０．１:8080/h", "bodyContains": "x"}}]}),
     "spec.healthChecks[0].http.url", "should match", True),
    ("webhook-url-unicode-digits", _doc("AlertPolicy", {**ALP, "channels": [{"name": "hook", "webhook": {"url": "http://①②⑦.0.0.1/x"}}]}),
     "spec.channels[0].webhook.url", "should match", True),
    ("prometheus-url-ideographic-dots", _doc("MonitoredService", {**MSVC, "metrics": {"prometheus": {
        "url": "http://169。254。169。254/"}}}),
     "spec.metrics.prometheus.url", "should match", True),
    ("alertmanager-url-zone-id", _doc("AlertPolicy", {**ALP, "channels": [{"name": "am", "alertmanager": {"url": "http://[fe80::1%25eth0]:9093"}}]}),
     "spec.channels[0].alertmanager.url", "should match", True),
    # The first hour (issue 24): names that are no object's, statuses that are no HTTP status,
    # list-map keys given twice, a number written as text.
    ("target-name-path", _doc("MonitoredService", {"target": {"kubernetes": {"name": "../x"}}}),
     "spec.target.kubernetes.name", "should match", True),
    ("scaling-target-name-path", _doc("ScalingPolicy", {"targetRef": {"monitoredService": "../x"}}),
     "spec.targetRef.monitoredService", "should match", True),
    ("expect-status-999", _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "api", "http": {"url": "http://127.0.0.1:1/h", "expectStatus": [999]}}]}),
     "spec.healthChecks[0].http.expectStatus[0]", "should be less than or equal to 599", True),
    ("duplicate-check-names", _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "api", "http": {"url": "http://127.0.0.1:1/h"}}, {"name": "api", "http": {"url": "http://127.0.0.1:1/i"}}]}),
     "spec.healthChecks[1]", "Duplicate value", True),
    ("duplicate-rule-names", _doc("AlertPolicy", {**ALP, "rules": [
        {"name": "R", "metric": "cpu", "threshold": 1}, {"name": "R", "metric": "memory", "threshold": 1}]}),
     "spec.rules[1]", "Duplicate value", True),
    ("duplicate-channel-names", _doc("AlertPolicy", {**ALP, "channels": [
        {"name": "hook", "webhook": {"url": "http://127.0.0.1:9/x"}}, {"name": "hook", "webhook": {"url": "http://127.0.0.1:9/y"}}]}),
     "spec.channels[1]", "Duplicate value", True),
    ("integer-as-text", _doc("ScalingPolicy", {**SCP, "minReplicas": "2"}),
     "spec.minReplicas", "must be of type integer", True),
    ("check-of-two-kinds", _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "api", "http": {"url": "http://127.0.0.1:1/h"}, "tcp": {"host": "web", "port": 80}}]}),
     "spec.healthChecks[0]", "exactly one of http, tcp, grpc", True),
    ("secret-key-without-secret", _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "api", "http": {"url": "http://127.0.0.1:1/h", "headers": [{"name": "Authorization", "secretKey": "t"}]}}]}),
     "spec.healthChecks[0].secretName", "secretKey and caSecretKey need secretName", True),
    ("host-header", _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "api", "http": {"url": "http://127.0.0.1:1/h", "headers": [{"name": "host", "value": "elsewhere"}]}}]}),
     "spec.healthChecks[0].http.headers[0].name", "the HTTP client's own", True),
    ("header-with-line-break", _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "api", "http": {"url": "http://127.0.0.1:1/h", "headers": [{"name": "X-A", "value": "a\r\nB: c"}]}}]}),
     "spec.healthChecks[0].http.headers[0].value", "should match", True),
    ("grpc-timeout-over-interval", _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "rpc", "grpc": {"host": "web", "port": 9000, "timeoutSeconds": 20}, "intervalSeconds": 10}]}),
     "spec.healthChecks[0].grpc.timeoutSeconds", "must not exceed intervalSeconds", True),
    ("quorum-zero", _doc("MonitoredService", {**MSVC, "healthyPercent": 0}),
     "spec.healthyPercent", "should be greater than or equal to 1", True),
    # Scale to zero (issue 22): minReplicas 0 was accepted and silently meant 1.
    ("zero-without-activation", _doc("ScalingPolicy", {**SCP, "minReplicas": 0}),
     "spec.minReplicas", "minReplicas 0 needs activation", True),
    ("activation-without-zero", _doc("ScalingPolicy", {**SCP, "minReplicas": 1, "activation": {"type": "requestQueue"}}),
     "spec.activation", "activation applies only with minReplicas 0", True),
    ("activation-on-cpu", _doc("ScalingPolicy", {**SCP, "minReplicas": 0, "activation": {"type": "cpu"}}),
     "spec.activation.type", "cannot wake a workload at zero", True),
]


@pytest.mark.parametrize("doc,field,words,offline", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_objects_are_rejected(cluster, namespace, doc, field, words, offline) -> None:  # noqa: ANN001
    with pytest.raises(subprocess.CalledProcessError) as refused:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
    message = refused.value.stderr
    assert "is invalid" in message, message
    assert f"{field}:" in message, message
    assert words in message, message
    if offline:  # capliquify validate refuses the same object without a cluster (models + the CRDs' CEL)
        assert cli.validate_documents([doc]), f"capliquify validate accepted {doc}"


def test_validate_names_every_field_the_api_server_names(cluster, namespace) -> None:  # noqa: ANN001
    """One object with a type error, a bound, a CEL rule broken and a key given twice: every field
    the API server names in its one answer, `capliquify validate` names too (issue 24)."""
    doc = _doc("MonitoredService", {**MSVC, "healthChecks": [
        {"name": "api", "http": {"url": "http://127.0.0.1:1/h", "timeoutSeconds": 30}, "intervalSeconds": 10},
        {"name": "api", "http": {"url": "http://127.0.0.1:1/i", "timeoutSeconds": "5", "expectStatus": [42]}}]})
    with pytest.raises(subprocess.CalledProcessError) as refused:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(doc))
    named = {field for field in ("spec.healthChecks[0].http.timeoutSeconds", "spec.healthChecks[1].http.timeoutSeconds",
                                 "spec.healthChecks[1].http.expectStatus[0]", "spec.healthChecks[1]")
             if f"{field}:" in refused.value.stderr}
    offline = "\n".join(cli.validate_documents([doc]))
    assert named, refused.value.stderr
    assert all(f"{field}:" in offline for field in named), (named, offline)


def test_valid_minimal_objects_get_seed_defaults(cluster, namespace) -> None:  # noqa: ANN001
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([
        {**_doc("ScalingPolicy", SCP), "metadata": {"name": "minimal"}},
        {**_doc("AlertPolicy", ALP), "metadata": {"name": "minimal"}},
    ]))
    scp = yaml.safe_load(cluster.kubectl("get", "scp", "minimal", "-n", namespace, "-o", "yaml"))["spec"]
    assert (scp["minReplicas"], scp["maxReplicas"]) == (2, 20)
    assert {m["type"]: m["scaleUp"] for m in scp["metrics"]} == {
        "cpu": 70, "memory": 80, "latencyP95": 2000, "requestQueue": 100, "errorRate": 5}
    assert scp["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    alp = yaml.safe_load(cluster.kubectl("get", "alp", "minimal", "-n", namespace, "-o", "yaml"))["spec"]
    assert [(r["severity"], r["repeatIntervalSeconds"]) for r in alp["routes"]] == [
        ("critical", 300), ("warning", 900), ("info", 1800)]
    assert alp["routes"][0]["channelKinds"] == ["slack", "email", "sms"]


def test_each_omitted_behaviour_field_takes_its_direction_default(cluster, namespace) -> None:  # noqa: ANN001
    """As HPA fills each direction: setting one field keeps the direction's other defaults."""
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(
        {**_doc("ScalingPolicy", {**SCP, "behavior": {"scaleDown": {"cooldownSeconds": 0}}}),
         "metadata": {"name": "one-field"}}))
    behavior = yaml.safe_load(cluster.kubectl("get", "scp", "one-field", "-n", namespace, "-o", "yaml"))["spec"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 300
    assert behavior["scaleDown"]["policies"] == [{"type": "Percent", "value": 50, "periodSeconds": 60}]
    assert behavior["scaleUp"]["policies"] == [{"type": "Percent", "value": 100, "periodSeconds": 15},
                                               {"type": "Pods", "value": 4, "periodSeconds": 15}]
    assert behavior["scaleUp"]["cooldownSeconds"] == 0
