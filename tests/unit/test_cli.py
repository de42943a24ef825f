from __future__ import annotations

import pathlib

from controller import cli

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "manifests" / "examples"


def test_examples_validate(capsys) -> None:  # noqa: ANN001
    assert cli.main(["validate", *map(str, sorted(EXAMPLES.glob("*.yaml")))]) == 0
    assert "3 object(s) checked, 0 problem(s)" in capsys.readouterr().out


def test_bad_manifest_names_the_field(tmp_path, capsys) -> None:  # noqa: ANN001
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: ops.capliquify.io/v1alpha1\nkind: ScalingPolicy\nmetadata: {name: x}\n"
        "spec: {targetRef: {monitoredService: web}, minReplicas: -1, metrics: [{type: gpu, scaleUp: 1, scaleDown: 0}]}\n"
    )
    assert cli.main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "ScalingPolicy/x: spec.minReplicas" in err
    assert "spec.metrics.0.type" in err
