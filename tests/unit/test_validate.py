"""`capliquify validate` checks each document as the API server would (controller/validation.py):
kinds and versions of our group, metadata.name, strict JSON types, bounds, list-map keys and
CEL rules, every problem at once."""

from __future__ import annotations

import copy

import pytest

from controller import validation

V = "ops.capliquify.io/v1alpha1"
SCP = {"apiVersion": V, "kind": "ScalingPolicy", "metadata": {"name": "web"},
       "spec": {"targetRef": {"monitoredService": "web"}, "minReplicas": 2, "maxReplicas": 10,
                "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]}}
MSVC = {"apiVersion": V, "kind": "MonitoredService", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"target": {"kubernetes": {"name": "web"}},
                 "healthChecks": [{"name": "live", "http": {"url": "http://web/healthz"}}]}}
ALP = {"apiVersion": V, "kind": "AlertPolicy", "metadata": {"name": "web"},
       "spec": {"serviceRef": "web", "rules": [{"name": "R", "metric": "cpu", "threshold": 1}],
                "channels": [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/x"}}]}}


def problems(document: object) -> list[str]:
    return validation.check(0, document).problems


def edited(base: dict, **spec: object) -> dict:
    document = copy.deepcopy(base)
    document["spec"].update(spec)
    return document


@pytest.mark.parametrize("document", [SCP, MSVC, ALP], ids=["scp", "msvc", "alp"])
def test_good_objects_pass(document: dict) -> None:
    assert validation.check(0, document) == (True, [])


def test_a_misspelled_kind_is_refused_with_a_guess_and_checked_as_the_guess() -> None:
    document = {**edited(SCP, maxReplicas=-5), "kind": "ScalingPolicys"}
    found = problems(document)
    assert found[0] == ("ScalingPolicys/web: no matches for kind ScalingPolicys in version ops.capliquify.io/v1alpha1 "
                        "(did you mean ScalingPolicy?)")
    assert any("(as ScalingPolicy): spec.maxReplicas: Input should be greater than or equal to 1 (got -5)" in p
               for p in found)
    assert "did you mean MonitoredService?" in problems({**MSVC, "kind": "monitoredservice"})[0]
    assert "did you mean" not in problems({**MSVC, "kind": "Gadget"})[0]


@pytest.mark.parametrize("api_version,words", [
    ("ops.capliquify.io/v1beta1", "no matches for kind ScalingPolicy in version ops.capliquify.io/v1beta1"),
    ("apps/v1", "ScalingPolicy is served as apiVersion ops.capliquify.io/v1alpha1, not apps/v1"),
    ("ops.capliqufy.io/v1alpha1", "unknown group ops.capliqufy.io (did you mean ops.capliquify.io?)"),
    ("", "apiVersion not set"),
])
def test_wrong_api_versions_are_refused(api_version: str, words: str) -> None:
    result = validation.check(0, {**SCP, "apiVersion": api_version})
    assert result.ours
    assert any(words in p for p in result.problems), result.problems


def test_other_groups_are_not_ours() -> None:
    assert validation.check(0, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}) == (False, [])
    assert validation.check(0, None) == (False, [])
    assert problems(["a", "list"]) == ["document 1: not an object (a mapping of apiVersion, kind, metadata, spec), got a list"]


@pytest.mark.parametrize("metadata,words", [
    (None, "metadata.name: Required value"),
    ({}, "metadata.name: Required value"),
    ({"name": "Web_1"}, "metadata.name: Invalid value: Web_1"),
    ({"name": "../x"}, "metadata.name: Invalid value: ../x"),
    ({"name": "a" * 254}, "metadata.name: Invalid value"),
    ({"name": "web", "namespace": "Shop"}, "metadata.namespace: Invalid value: Shop"),
    ("web", "metadata: must be an object"),
])
def test_metadata_name_is_required_and_valid(metadata: object, words: str) -> None:
    document = {key: value for key, value in SCP.items() if key != "metadata"}
    if metadata is not None:
        document["metadata"] = metadata
    assert any(words in p for p in problems(document)), problems(document)


def test_generate_name_stands_for_a_name() -> None:
    assert problems({**SCP, "metadata": {"generateName": "web-"}}) == []


@pytest.mark.parametrize("field,value,words", [
    ("minReplicas", "2", 'ScalingPolicy/web: spec.minReplicas: Input should be a valid integer (got "2")'),
    ("minReplicas", 2.0, "ScalingPolicy/web: spec.minReplicas: Input should be a valid integer (got 2.0)"),
    ("minReplicas", True, "ScalingPolicy/web: spec.minReplicas: Input should be a valid integer (got true)"),
    ("maxReplicas", None, "ScalingPolicy/web: spec.maxReplicas: Input should be a valid integer (got null)"),
    ("probes", {"manage": "yes"}, 'MonitoredService/web: spec.probes.manage: Input should be a valid boolean (got "yes")'),
])
def test_types_are_strict_as_the_api_servers(field: str, value: object, words: str) -> None:
    assert words in problems(edited(MSVC if field == "probes" else SCP, **{field: value}))


def test_every_problem_at_once() -> None:
    """A type error does not hide a bound, a CEL rule or a duplicate elsewhere in the spec."""
    document = edited(SCP, minReplicas="2", maxReplicas=-5, metrics=[
        {"type": "cpu", "scaleUp": 30, "scaleDown": 70},
        {"type": "cpu", "scaleUp": "x", "scaleDown": 10},
    ])
    found = [p.removeprefix("ScalingPolicy/web: ") for p in problems(document)]
    assert 'spec.minReplicas: Input should be a valid integer (got "2")' in found
    assert "spec.maxReplicas: Input should be greater than or equal to 1 (got -5)" in found
    assert 'spec.metrics[1].scaleUp: Input should be a valid number (got "x")' in found
    assert ("spec.metrics[0].scaleDown: scaleDown must be lower than scaleUp (the gap between them is the hold band)"
            in found)
    assert "spec.metrics: each metric type (and custom name) may appear only once" in found
    # minReplicas <= maxReplicas depends on the ill-typed minReplicas: not judged, not invented.
    assert not any("minReplicas must be" in p for p in found)
    # The pydantic twin of a CEL rule is not reported a second time.
    assert sum("scaleDown must be lower than scaleUp" in p for p in found) == 1


def test_a_rule_is_judged_when_the_ill_typed_value_cannot_change_its_verdict() -> None:
    document = edited(MSVC, probes={"manage": True}, target={"railway": {"projectId": 5}})
    found = [p.removeprefix("MonitoredService/web: ") for p in problems(document)]
    assert any("spec.target.railway.projectId: Input should be a valid string" in p for p in found)
    # `probes.manage requires a kubernetes target` holds or fails whatever projectId is.
    assert "spec.probes.manage: probes.manage requires a kubernetes target" in found


def test_numbers_are_typed_by_the_schema() -> None:
    """An integer written where the schema says number compares with a float in CEL (the API
    server types it so): no int-against-double error is taken for a refusal."""
    assert problems(edited(SCP, metrics=[{"type": "cpu", "scaleUp": 70, "scaleDown": 30.5, "target": 50}])) == []


def test_defaults_apply_before_the_rules() -> None:
    """intervalSeconds defaults to 60: a timeout of 61 breaks the rule though neither is written."""
    check = {"name": "live", "http": {"url": "http://web/", "timeoutSeconds": 60}}
    assert problems(edited(MSVC, healthChecks=[check])) == []
    check = {"name": "live", "http": {"url": "http://web/", "timeoutSeconds": 30}, "intervalSeconds": 10}
    assert problems(edited(MSVC, healthChecks=[check])) == [
        "MonitoredService/web: spec.healthChecks[0].http.timeoutSeconds: http.timeoutSeconds must not exceed intervalSeconds"]


@pytest.mark.parametrize("base,field,items,where", [
    (MSVC, "healthChecks", [{"name": "a", "http": {"url": "http://web/"}}] * 2, "spec.healthChecks[1]"),
    (ALP, "rules", [{"name": "R", "metric": "cpu", "threshold": 1}, {"name": "R", "metric": "memory", "threshold": 2}],
     "spec.rules[1]"),
    (ALP, "channels", [{"name": "hook", "webhook": {"url": "http://127.0.0.1:9/x"}},
                       {"name": "hook", "webhook": {"url": "http://127.0.0.1:9/y"}}], "spec.channels[1]"),
])
def test_list_map_keys_are_unique(base: dict, field: str, items: list, where: str) -> None:
    found = problems(edited(base, **{field: items}))
    assert any(p.endswith(f"{where}: Duplicate value: " + '{"name": "' + items[0]["name"] + '"}') for p in found), found


def test_target_names_and_statuses_are_valid() -> None:
    found = problems(edited(MSVC, target={"kubernetes": {"name": "../x"}}))
    assert any("spec.target.kubernetes.name: String should match pattern" in p for p in found), found
    found = problems(edited(MSVC, healthChecks=[{"name": "a", "http": {"url": "http://web/", "expectStatus": [200, 999]}}]))
    assert any("spec.healthChecks[0].http.expectStatus[1]: Input should be less than or equal to 599 (got 999)" in p
               for p in found), found


def test_unknown_fields_and_missing_spec() -> None:
    assert "ScalingPolicy/web: spec.minReplica: unknown field" in problems(edited(SCP, minReplica=2))
    assert "ScalingPolicy/web: specs: unknown field" in problems({**SCP, "specs": {}})
    assert problems({key: value for key, value in SCP.items() if key != "spec"}) == ["ScalingPolicy/web: spec: Required value"]


def test_yaml_timestamps_are_sent_as_text() -> None:
    import datetime

    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    silence = {"start": at, "end": at + datetime.timedelta(hours=1), "matchers": {"rule": "R"}}
    found = problems(edited(ALP, silences=[silence]))
    assert found == [], found


def test_a_name_with_control_characters_is_shown_on_one_line() -> None:
    found = problems({**SCP, "metadata": {"name": "web\n\x1b[31mred"}})
    assert all("\n" not in p and "\x1b" not in p for p in found)


@pytest.mark.parametrize("target_ref", [{"monitoredService": "../x"}, {"kubernetes": {"name": "web/../../x"}}])
def test_a_scaling_target_is_a_valid_object_name(target_ref: dict) -> None:
    assert any("String should match pattern" in p for p in problems(edited(SCP, targetRef=target_ref)))


def test_a_list_over_its_bound_is_reported_and_not_walked() -> None:
    """100,000 health checks: one line for the bound, answered in well under a second (a rule per
    item, or a duplicate per item, would be 100,000 lines and minutes)."""
    import time

    checks = [{"name": "a", "http": {"url": "http://web/", "timeoutSeconds": 90}}] * 100_000
    started = time.monotonic()
    found = problems(edited(MSVC, healthChecks=checks))
    assert time.monotonic() - started < 5
    assert any("spec.healthChecks: List should have at most 16 items" in p for p in found), found[:3]
    assert len(found) < 10, found[:10]


def test_a_map_over_its_bound_is_cut_too() -> None:
    import time

    labels = {f"k{i}": "v" for i in range(100_000)}
    started = time.monotonic()
    found = problems(edited(ALP, rules=[{"name": "R", "metric": "cpu", "threshold": 1, "labels": labels}]))
    assert time.monotonic() - started < 5
    assert any("spec.rules[0].labels" in p for p in found) and len(found) < 10, found[:10]


def test_a_list_of_objects_is_checked_item_by_item() -> None:
    """`kubectl get scp -o yaml` writes a v1 List: its items are what kubectl apply sends."""
    listing = {"apiVersion": "v1", "kind": "List", "items": [SCP, edited(SCP, maxReplicas=-5)]}
    results = [validation.check(i, d) for i, d in enumerate(validation.flattened([listing]))]
    assert [r.ours for r in results] == [True, True]
    assert results[0].problems == [] and any("spec.maxReplicas" in p for p in results[1].problems)


def test_a_key_written_twice_is_refused_as_kubectl_refuses_it() -> None:
    from controller.core import bounded_yaml

    with pytest.raises(bounded_yaml.YamlRefused, match="line 3: mapping key 'minReplicas' already defined at line 2"):
        bounded_yaml.load_all("spec:\n  minReplicas: 2\n  minReplicas: 3\n", unique_keys=True)
    # A merge key and a shared anchor are not repetitions; without the option PyYAML's last wins.
    text = "base: &b {a: 1}\nuse:\n  <<: *b\n  b: 2\nagain: *b\n"
    assert bounded_yaml.load_all(text, unique_keys=True)[0]["use"] == {"a": 1, "b": 2}
    assert bounded_yaml.load_all("a: 1\na: 2\n") == [{"a": 2}]
