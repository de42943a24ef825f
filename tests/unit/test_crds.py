"""The committed CRDs are exactly what the models generate, and are structural."""

from __future__ import annotations

import pathlib

import pytest
import yaml

from controller import crdgen

CRDS = pathlib.Path(__file__).resolve().parents[2] / "crds"


def test_committed_crds_match_the_models() -> None:
    rendered = crdgen.render_all()
    rendered["kustomization.yaml"] = crdgen.render_kustomization(sorted(rendered))
    committed = {path.name: path.read_text() for path in CRDS.glob("*.yaml")}
    assert committed == rendered, "crds/ is stale: run `make crds` and commit the result"


def _walk(node: object, path: str = ""):  # noqa: ANN202 - a generator of (path, node)
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key not in ("default", "enum"):
                yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


@pytest.mark.parametrize("model,info", crdgen.KINDS, ids=[info.kind for _, info in crdgen.KINDS])
def test_schema_is_structural_and_described(model, info) -> None:  # noqa: ANN001
    schema = crdgen.build_schema(model)
    for path, node in _walk(schema):
        assert not {"$ref", "anyOf", "oneOf", "allOf", "$defs", "title", "const"} & node.keys(), path
        assert node.get("additionalProperties") is not False, path
        if path.endswith(".properties") or not path:
            continue
        if "properties" in node or "items" in node:
            assert "type" in node, f"{path} has no type"
    for path, node in _walk(schema["properties"]["spec"]):
        for name, sub in node.get("properties", {}).items():
            assert sub.get("description"), f"spec{path}.{name} has no description"


def test_seed_defaults_reach_the_crd() -> None:
    from controller.api import scalingpolicy

    spec = crdgen.build_schema(scalingpolicy.MODEL)["properties"]["spec"]["properties"]
    assert spec["minReplicas"]["default"] == 2
    assert spec["maxReplicas"]["default"] == 20
    thresholds = {m["type"]: (m["scaleUp"], m["scaleDown"]) for m in spec["metrics"]["default"]}
    assert thresholds == {
        "cpu": (70, 30), "memory": (80, 50), "latencyP95": (2000, 500), "requestQueue": (100, 10), "errorRate": (5, 1),
    }
    assert spec["behavior"]["default"]["scaleDown"]["stabilizationWindowSeconds"] == 300


def test_status_has_no_defaults() -> None:
    for model, _ in crdgen.KINDS:
        status = crdgen.build_schema(model)["properties"]["status"]
        assert not [path for path, node in _walk(status) if "default" in node]


def test_crd_shape() -> None:
    for name, text in crdgen.render_all().items():
        crd = yaml.safe_load(text)
        version = crd["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}, name
        assert crd["spec"]["names"]["categories"] == ["capliquify"], name
        assert crd["spec"]["names"]["shortNames"], name
        assert [c["name"] for c in version["additionalPrinterColumns"]][-2:] == ["Ready", "Age"], name


def test_a_field_without_description_is_refused() -> None:
    import pydantic

    class Bad(pydantic.BaseModel):
        spec: dict = pydantic.Field(description="spec")
        status: dict = pydantic.Field(default_factory=dict, description="status")
        undocumented: int = 0

    with pytest.raises(crdgen.SchemaError, match="undocumented has no description"):
        crdgen.build_schema(Bad)


def test_a_map_key_pattern_is_refused_not_written_as_patternproperties() -> None:
    """The API server refuses a CRD whose schema has patternProperties (not structural): a
    pattern on a map's keys is refused here, at `make crds`, rather than at `kubectl apply`."""
    import typing

    import pydantic

    class Bad(pydantic.BaseModel):
        spec: dict[typing.Annotated[str, pydantic.StringConstraints(pattern="^[a-z]+$")], str] = pydantic.Field(
            description="spec")
        status: dict = pydantic.Field(default_factory=dict, description="status")

    with pytest.raises(crdgen.SchemaError, match="a map key pattern has no structural form"):
        crdgen.build_schema(Bad)
