"""The documents say what the code does (issue 24 found them apart): metric names and where they
are served, flag defaults, field descriptions `kubectl explain` prints, the outbox's bounds, and
what the simulator does with a custom metric. Each test reads the text and the code."""

from __future__ import annotations

import argparse
import pathlib
import re

import prometheus_client
import pytest

from controller import cli
from controller import crdgen
from controller.operator import metrics
from controller.operator import object_metrics

REPO = pathlib.Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()
DOCS = {path.name: path.read_text() for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]}
SUFFIXES = ("_total", "_bucket", "_count", "_sum", "_created")


def _families() -> set[str]:
    """Every family the operator registers (counters by their exposed `_total` name)."""
    assert metrics.LEADER is not None  # imported for its registrations
    names = {family.name + ("_total" if family.type == "counter" else "")
             for family in prometheus_client.REGISTRY.collect() if family.name.startswith("capliquify_")}
    return names | {family[0] for family in object_metrics.FAMILIES}


def _base(name: str) -> str:
    for suffix in SUFFIXES[1:]:
        name = name.removesuffix(suffix)
    return name


def test_every_documented_metric_exists() -> None:
    families = _families()
    unknown = {f"{doc}: {name}" for doc, text in DOCS.items() for name in re.findall(r"\bcapliquify_[a-z0-9_]*[a-z0-9]", text)
               if name not in families and _base(name) not in families}
    assert unknown == set()


def test_the_readme_names_every_metric_the_operator_serves() -> None:
    endpoints = README.split("**Operator endpoints.**", 1)[1].split("\n\n", 1)[0]
    assert sorted(name for name in _families() if f"`{name}`" not in endpoints) == []


def test_the_health_port_serves_no_series() -> None:
    """kopf's liveness endpoint serves /healthz alone: every series is on --metrics-port."""
    endpoints = README.split("**Operator endpoints.**", 1)[1].split("\n\n", 1)[0]
    health = endpoints.split("`--health-port`", 1)[1]
    assert "capliquify_" not in health, health
    for doc, text in DOCS.items():
        for said in re.finditer(r"--health-port|health port", text, re.IGNORECASE):
            rest = text[said.end():].split(". ", 1)[0]
            assert "capliquify_" not in rest, (doc, rest)


def _defaults() -> dict[str, object]:
    defaults: dict[str, object] = {}

    def walk(parser: argparse.ArgumentParser) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)
            for option in action.option_strings:
                defaults.setdefault(option, action.default)

    walk(cli.build_parser())
    return defaults


def test_flag_defaults_in_the_docs_are_the_parsers() -> None:
    """`--flag` (N) or `--flag` (default N) in any document is the flag's default."""
    defaults = _defaults()
    said = [(doc, flag, value) for doc, text in DOCS.items()
            for flag, value in re.findall(r"`(--[a-z-]+)` \((?:default )?([0-9][0-9.]*[a-z]*)[,)]", text)]
    assert len(said) >= 6  # the pattern still finds what the documents say
    wrong = [(doc, flag, value, defaults.get(flag)) for doc, flag, value in said
             if flag not in defaults or str(value) not in (str(defaults[flag]), f"{defaults[flag]:g}"
                                                          if isinstance(defaults[flag], (int, float)) else "")]
    assert wrong == []


def _description(kind: str, path: str) -> str:
    node = next(crdgen.build_schema(model) for model, info in crdgen.KINDS if info.kind == kind)
    for part in path.split("."):
        node = node["items"] if part == "[]" else node["properties"][part]
    return str(node["description"])


def test_a_template_field_names_every_placeholder_its_default_uses() -> None:
    """`kubectl explain alertpolicy.spec.rules.summary` lists what the default text itself uses."""
    from controller.api import alertpolicy

    default = alertpolicy.Rule.model_fields["summary"].default
    description = _description("AlertPolicy", "spec.rules.[].summary")
    assert [p for p in re.findall(r"\{\{\w+\}\}", default) if p not in description] == []


def test_the_outbox_bound_is_the_documented_one() -> None:
    from controller.core import outbox

    assert f"up to {outbox.PENDING_LIMIT} pending" in DOCS["alerting.md"]
    assert str(outbox.PENDING_LIMIT) in _description("AlertPolicy", "status.deliveries")
    assert "every pending one" not in DOCS["alerting.md"]


def test_a_custom_metric_in_the_simulator_is_no_series() -> None:
    """docs/scaling.md: the plant has no custom metric, which decides nothing: the policy decides
    as it would without it (a held scale-down would show as more replica-hours)."""
    from controller.api import scalingpolicy
    from controller.sim import closedloop
    from controller.sim import plant
    from controller.sim import traces

    cpu = {"type": "cpu", "scaleUp": 70, "scaleDown": 30}
    custom = {"type": "custom", "name": "jobs", "scaleUp": 10, "scaleDown": 1}
    runs = []
    for metrics_ in ([cpu], [cpu, custom]):
        spec = scalingpolicy.ScalingPolicySpec.model_validate(
            {"targetRef": {"monitoredService": "web"}, "minReplicas": 2, "maxReplicas": 20, "metrics": metrics_})
        policy = closedloop.PolicyController(spec)
        closedloop.compare([policy], traces.built_in("step"), plant.Model(), 2, 20)
        runs.append(policy.reasons)
    assert any("->" in reason and int(reason.split("->")[1].split()[0]) < int(reason.split("->")[0])
               for _, reason in runs[0]), "the trace must scale down for this test to mean anything"
    assert [at for at, _ in runs[0]] == [at for at, _ in runs[1]]
    assert "no series" in DOCS["scaling.md"].split("A custom\nmetric", 1)[1][:200]


@pytest.mark.parametrize("text", ["One replica (Recreate) serves a cluster"])
def test_no_comment_says_what_the_shipped_manifests_no_longer_do(text: str) -> None:
    hits = [str(path) for path in (REPO / "controller").rglob("*.py") if text in path.read_text()]
    assert hits == []
