"""The Helm chart lints, renders, and stays in step with manifests/ and crds/."""

from __future__ import annotations

import pathlib

import helm_python as helm
import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "capliquify-operator"


def render(values: dict | None = None) -> list[dict]:
    chart = helm.Chart.load(str(CHART))
    rendered = chart.render(values, name="capliquify", namespace="capliquify-system", is_install=True)
    return [doc for name, text in rendered.items() if name.endswith(".yaml")
            for doc in yaml.safe_load_all(text) if doc]


def by_kind(docs: list[dict], kind: str) -> dict:
    return next(doc for doc in docs if doc["kind"] == kind)


def test_lint_is_clean() -> None:
    report = helm.lint(str(CHART), strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_rbac_matches_kustomize_base() -> None:
    base = [doc for doc in yaml.safe_load_all((REPO / "manifests/base/rbac.yaml").read_text()) if doc]
    assert by_kind(render(), "ClusterRole")["rules"] == by_kind(base, "ClusterRole")["rules"]


def test_committed_admission_policy_is_the_generated_one() -> None:
    from controller import admission

    assert (REPO / "manifests/base/admission.yaml").read_text() == admission.render(), "run make crds"
    assert (CHART / "templates/admission.yaml").read_text() == admission.render_chart(), "run make crds"


def test_admission_policy_matches_kustomize_base_and_can_be_turned_off() -> None:
    base = [doc for doc in yaml.safe_load_all((REPO / "manifests/base/admission.yaml").read_text()) if doc]
    rendered = render()
    assert by_kind(rendered, "ValidatingAdmissionPolicy")["spec"] == by_kind(base, "ValidatingAdmissionPolicy")["spec"]
    # The binding names the release's own policy (release-scoped names; the test below).
    binding = by_kind(rendered, "ValidatingAdmissionPolicyBinding")["spec"]
    assert binding == {**by_kind(base, "ValidatingAdmissionPolicyBinding")["spec"],
                       "policyName": "capliquify-capliquify-operator-author-rights"}
    assert not [d for d in render({"admission": {"enabled": False}}) if d["kind"].startswith("ValidatingAdmission")]


def test_namespaced_mode_grants_the_same_rules_only_in_watched_namespaces() -> None:
    base = [doc for doc in yaml.safe_load_all((REPO / "manifests/base/rbac.yaml").read_text()) if doc]
    rendered = render({"watchNamespaces": ["shop", "billing"]})
    roles = [d for d in rendered if d["kind"] == "Role" and d["metadata"]["name"] == "capliquify-operator"]
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["billing", "shop"]
    assert all(r["rules"] == by_kind(base, "ClusterRole")["rules"] for r in roles)
    assert not [d for d in rendered if d["kind"] in ("ClusterRole", "ClusterRoleBinding")]
    bindings = [d for d in rendered if d["kind"] == "RoleBinding" and d["metadata"]["name"] == "capliquify-operator"]
    assert len(bindings) == 2


def test_leader_election_rbac_and_ha_shape_match_kustomize_base() -> None:
    base = [doc for doc in yaml.safe_load_all((REPO / "manifests/base/rbac.yaml").read_text()) if doc]
    rendered = render()
    election_role = next(d for d in rendered if d["kind"] == "Role" and d["metadata"]["name"].endswith("leader-election"))
    assert election_role["rules"] == by_kind(base, "Role")["rules"]
    deployment = by_kind(rendered, "Deployment")["spec"]
    assert deployment["replicas"] == 2 and deployment["strategy"]["type"] == "RollingUpdate"
    assert "--leader-elect" in deployment["template"]["spec"]["containers"][0]["args"]
    assert by_kind(rendered, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    single = render({"replicas": 1, "leaderElection": {"enabled": False}})
    assert by_kind(single, "Deployment")["spec"]["strategy"]["type"] == "Recreate"
    assert not [d for d in single if d["kind"] in ("Role", "PodDisruptionBudget")]


def test_chart_crds_are_the_generated_ones() -> None:
    generated = {p.name: p.read_text() for p in (REPO / "crds").glob("ops.capliquify.io_*.yaml")}
    in_chart = {p.name: p.read_text() for p in (CHART / "crds").glob("*.yaml")}
    assert in_chart == generated, "run `make crds`"


@pytest.mark.parametrize("values,expected", [
    ({}, ["run", "--log-format=json", "--log-level=INFO", "--resync-seconds=60", "--metrics-port=8080",
          "--health-port=8081"]),
    ({"watchNamespaces": ["a", "b"], "prometheusUrl": "http://prom:9090"},
     ["--prometheus-url=http://prom:9090", "--namespace=a", "--namespace=b"]),
])
def test_deployment_args(values, expected) -> None:  # noqa: ANN001
    args = by_kind(render(values), "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert all(arg in args for arg in expected), args


def test_one_replica_without_election_is_allowed() -> None:
    deployment = by_kind(render({"replicas": 1, "leaderElection": {"enabled": False}}), "Deployment")
    assert deployment["spec"]["replicas"] == 1 and "--leader-elect" not in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_scrape_annotation_follows_metrics_port_and_pod_annotations_override_it() -> None:
    pod = by_kind(render({"metricsPort": 9100}), "Deployment")["spec"]["template"]
    assert pod["metadata"]["annotations"] == {"prometheus.io/scrape": "true", "prometheus.io/port": "9100"}
    assert {"name": "metrics", "containerPort": 9100} in pod["spec"]["containers"][0]["ports"]
    off = by_kind(render({"podAnnotations": {"prometheus.io/scrape": "false", "team": "platform"}}), "Deployment")
    assert off["spec"]["template"]["metadata"]["annotations"] == {
        "prometheus.io/scrape": "false", "prometheus.io/port": "8080", "team": "platform"}


def test_memory_limit_holds_the_benchmarks_peak() -> None:
    """661 MB peak RSS at 10,000 ScalingPolicies + 10,000 MonitoredServices (README, make bench)."""
    units = {"Mi": 2**20, "Gi": 2**30}
    for resources in (by_kind(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"],
                      by_kind([d for d in yaml.safe_load_all((REPO / "manifests/base/deployment.yaml").read_text()) if d],
                              "Deployment")["spec"]["template"]["spec"]["containers"][0]["resources"]):
        limit = resources["limits"]["memory"]
        assert int(limit[:-2]) * units[limit[-2:]] > 661e6 * 1.25, resources


def test_extras_reach_the_pod() -> None:
    values = {"extraArgs": ["--rate-window=5m"], "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
              "imagePullSecrets": [{"name": "registry"}], "priorityClassName": "system-cluster-critical",
              "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
              "affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                  {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["ops"]}]}]}}},
              "serviceAccount": {"annotations": {"iam.example.com/role": "capliquify"}}}
    rendered = render(values)
    pod = by_kind(rendered, "Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"][-1] == "--rate-window=5m"
    assert {"name": "HTTPS_PROXY", "value": "http://proxy:3128"} in container["env"]
    assert pod["imagePullSecrets"] == [{"name": "registry"}] and pod["priorityClassName"] == "system-cluster-critical"
    assert pod["tolerations"] == values["tolerations"] and pod["affinity"] == values["affinity"]
    assert by_kind(rendered, "ServiceAccount")["metadata"]["annotations"] == {"iam.example.com/role": "capliquify"}


def test_cluster_scoped_names_are_the_releases_own() -> None:
    def names(release: str) -> dict[str, str]:
        chart = helm.Chart.load(str(CHART))
        rendered = chart.render(None, name=release, namespace="ops", is_install=True)
        docs = [doc for name, text in rendered.items() if name.endswith(".yaml") for doc in yaml.safe_load_all(text) if doc]
        return {d["kind"]: d["metadata"]["name"] for d in docs
                if d["kind"] in ("ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")} | {
            "roleRef": by_kind(docs, "ClusterRoleBinding")["roleRef"]["name"],
            "policyName": by_kind(docs, "ValidatingAdmissionPolicyBinding")["spec"]["policyName"]}

    assert names("team-a") == {"ClusterRole": "team-a-capliquify-operator", "ClusterRoleBinding": "team-a-capliquify-operator",
                               "roleRef": "team-a-capliquify-operator",
                               "ValidatingAdmissionPolicy": "team-a-capliquify-operator-author-rights",
                               "ValidatingAdmissionPolicyBinding": "team-a-capliquify-operator-author-rights",
                               "policyName": "team-a-capliquify-operator-author-rights"}
    # A release named as the operator keeps manifests/' names for the ClusterRole.
    assert names("capliquify-operator")["ClusterRole"] == "capliquify-operator"


GOLDEN = REPO / "tests" / "golden"
FULL_VALUES = {
    "replicas": 3, "watchNamespaces": ["shop", "billing"], "prometheusUrl": "http://prometheus.monitoring:9090",
    "logFormat": "text", "logLevel": "DEBUG", "egress": {"allowLoopback": True},
    "image": {"tag": "v0.1.0", "pullPolicy": "Always"},
    "scaleTargets": [{"apiGroup": "argoproj.io", "resource": "rollouts"}],
    "leaderElection": {"enabled": True, "leaseDurationSeconds": 30, "renewDeadlineSeconds": 20, "retryPeriodSeconds": 4},
    "monitoring": {"serviceMonitor": {"enabled": True, "interval": "15s", "labels": {"release": "kube-prometheus-stack"}},
                   "prometheusRule": {"enabled": True, "labels": {"release": "kube-prometheus-stack"}}},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "dashboards": {"enabled": True},
    "metricsPort": 9100, "extraArgs": ["--rate-window=5m"], "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy:3128"}],
    "imagePullSecrets": [{"name": "registry"}], "priorityClassName": "system-cluster-critical",
    "serviceAccount": {"annotations": {"iam.example.com/role": "capliquify"}},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
}


def _rendered_text(values: dict | None) -> str:
    chart = helm.Chart.load(str(CHART))
    rendered = chart.render(values, name="capliquify", namespace="capliquify-system", is_install=True)
    return "".join(f"# {name}\n{text.strip()}\n" for name, text in sorted(rendered.items()) if text.strip())


@pytest.mark.parametrize("name,values", [("default", None), ("full", FULL_VALUES)])
def test_render_matches_the_golden_file(name: str, values: dict | None) -> None:
    """What the chart renders, reviewed as a diff: set CAPLIQUIFY_UPDATE_GOLDEN=1 to rewrite."""
    import os

    path = GOLDEN / f"chart-{name}.yaml"
    text = _rendered_text(values)
    if os.environ.get("CAPLIQUIFY_UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
    assert path.read_text() == text, f"the chart renders differently from {path.name}; review, then rewrite it"


@pytest.mark.parametrize("values,field", [
    ({"replicas": "two"}, "/replicas"),
    ({"logFormat": "xml"}, "/logFormat"),
    ({"monitoring": {"serviceMonitr": {"enabled": True}}}, "serviceMonitr"),
    ({"watchNamespaces": ["Not A Namespace"]}, "/watchNamespaces/0"),
    ({"prometheusUrl": "prometheus:9090"}, "/prometheusUrl"),
    # Several replicas without election would all act (scale, roll back, notify) at once.
    ({"replicas": 3, "leaderElection": {"enabled": False}}, "/leaderElection/enabled"),
    ({"extraArgs": ["rate-window=5m"]}, "/extraArgs/0"),
    ({"imagePullSecrets": ["my-registry"]}, "/imagePullSecrets/0"),
])
def test_values_schema_refuses_bad_values_naming_them(values: dict, field: str) -> None:
    with pytest.raises(Exception, match=field):
        render(values)


def test_self_monitoring_ships_the_tested_rule_file() -> None:
    rendered = render(FULL_VALUES)
    rule = by_kind(rendered, "PrometheusRule")
    assert rule["spec"] == yaml.safe_load((CHART / "files" / "rules.yaml").read_text())
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    monitor = by_kind(rendered, "ServiceMonitor")
    service = next(d for d in rendered if d["kind"] == "Service" and d["metadata"]["name"].endswith("-metrics"))
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "interval": "15s"}]
    assert "--allow-loopback-egress" in by_kind(rendered, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert not [d for d in render() if d["kind"] in ("ServiceMonitor", "PrometheusRule")]


def test_dashboards_ship_as_sidecar_configmaps() -> None:
    import json

    maps = [d for d in render(FULL_VALUES) if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard")]
    assert sorted(m["metadata"]["name"] for m in maps) == ["capliquify-operator-dashboard", "capliquify-services-dashboard"]
    for config_map in maps:
        assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
        (name, text), = config_map["data"].items()
        assert json.loads(text) == json.loads((CHART / "dashboards" / name).read_text())
    assert not [d for d in render() if d["kind"] == "ConfigMap"]


def test_hooks_disabled_leave_out_the_jobs_right_and_tell_the_operator() -> None:
    def jobs_rules(docs: list[dict]) -> list[dict]:
        return [r for r in by_kind(docs, "ClusterRole")["rules"] if "jobs" in r.get("resources", [])]

    def args(docs: list[dict]) -> list[str]:
        return by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]

    enabled = render()
    assert jobs_rules(enabled) == [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["create", "get"]}]
    assert "--no-rollout-hooks" not in args(enabled)
    disabled = render({"hooks": {"enabled": False}})
    assert jobs_rules(disabled) == [] and "--no-rollout-hooks" in args(disabled)


def test_cluster_networks_give_the_operator_the_namespace_rule_for_egress() -> None:
    def args(docs: list[dict]) -> list[str]:
        return by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]

    assert not [a for a in args(render()) if a.startswith("--cluster-")]
    given = render({"egress": {"clusterNetworks": ["10.96.0.0/12", "10.244.0.0/16"], "clusterDomain": "corp.local"}})
    assert "--cluster-networks=10.96.0.0/12,10.244.0.0/16" in args(given)
    assert "--cluster-domain=corp.local" in args(given)
