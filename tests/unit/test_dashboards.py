"""The committed dashboards are what controller/dashboards.py generates, and their queries parse."""

from __future__ import annotations

import json
import subprocess

import pytest

from controller import dashboards


@pytest.mark.parametrize("name", sorted(dashboards.DASHBOARDS))
def test_committed_dashboard_is_fresh(name: str) -> None:
    committed = (dashboards.DIRECTORY / name).read_text()
    assert committed == dashboards.render(name), f"{name} is stale: run `make dashboards`"


@pytest.mark.parametrize("name", sorted(dashboards.DASHBOARDS))
def test_every_panel_has_a_query_with_its_own_ref(name: str) -> None:
    document = json.loads(dashboards.render(name))
    for panel in document["panels"]:
        if panel["type"] == "row":
            continue
        refs = [target["refId"] for target in panel["targets"]]
        assert refs and len(set(refs)) == len(refs) and all(refs), panel["title"]


def test_queries_are_valid_promql(tmp_path) -> None:  # noqa: ANN001
    """promtool parses each query (as a recording rule, its cheapest check)."""
    rules = [{"record": f"capliquify:dashboard_query:{index}", "expr": dashboards.concrete(expr)}
             for index, expr in enumerate(q for name in dashboards.DASHBOARDS
                                          for q in dashboards.queries(json.loads(dashboards.render(name))))]
    path = tmp_path / "queries.yaml"
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))
    checked = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert len(rules) == 23
