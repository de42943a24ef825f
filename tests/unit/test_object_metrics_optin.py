"""The per-object series (every tenant's objects, by name) are opt-in (issue 21): the operator
serves them only with --object-metrics, the chart passes it only when asked (objectMetrics) or
when its dashboards, which read them, are installed; the plain manifests never do."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from tests.unit import test_chart

REPO = pathlib.Path(__file__).resolve().parents[2]


def args_of(values: dict | None) -> list[str]:
    deployment = test_chart.by_kind(test_chart.render(values), "Deployment")
    return deployment["spec"]["template"]["spec"]["containers"][0]["args"]


@pytest.mark.parametrize("values,served", [
    (None, False),
    ({"objectMetrics": True}, True),
    ({"dashboards": {"enabled": True}}, True),
    ({"objectMetrics": False, "monitoring": {"serviceMonitor": {"enabled": True}}}, False),
])
def test_the_chart_asks_for_the_per_object_series_only_when_told(values: dict | None, served: bool) -> None:
    assert ("--object-metrics" in args_of(values)) == served


def test_the_plain_manifests_do_not_serve_them() -> None:
    documents = list(yaml.safe_load_all((REPO / "manifests" / "base" / "deployment.yaml").read_text()))
    deployment = next(d for d in documents if d and d.get("kind") == "Deployment")
    assert "--object-metrics" not in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_the_operator_does_not_serve_them_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    from controller import cli

    seen: list[bool] = []
    monkeypatch.setattr(cli, "_run", lambda args: seen.append(args.object_metrics) or 0)
    monkeypatch.delenv("CAPLIQUIFY_OBJECT_METRICS", raising=False)
    assert cli.main(["run"]) == 0 and cli.main(["run", "--object-metrics"]) == 0
    assert seen == [False, True]
