"""The operator's own alert rules: valid for promtool, unit-tested with it, and naming only
metrics the operator exports."""

from __future__ import annotations

import re
import subprocess

import prometheus_client
import yaml

from controller.operator import metrics  # noqa: F401 - registers the operator's metrics
from tests import conftest

RULES = conftest.REPO / "charts" / "capliquify-operator" / "files" / "rules.yaml"
RULE_TESTS = conftest.REPO / "tests" / "promtool" / "rules_test.yaml"


def test_promtool_checks_the_rules() -> None:
    checked = subprocess.run(["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_rules_fire_and_resolve_as_written() -> None:
    tested = subprocess.run(["promtool", "test", "rules", str(RULE_TESTS)], capture_output=True, text=True,
                            timeout=60)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_rules_name_only_exported_metrics() -> None:
    exported = {sample.name for family in prometheus_client.REGISTRY.collect() for sample in family.samples}
    # A labelled metric has no sample until a label set is used; its family still names it.
    exported |= {family.name + ("_total" if family.type == "counter" else "")
                 for family in prometheus_client.REGISTRY.collect()}
    expressions = [rule["expr"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]
    named = {name for expr in expressions for name in re.findall(r"\bcapliquify_[a-z_]+", expr)}
    assert named and named <= exported, named - exported
