"""Status fits its schema by construction (issue 9): a property test over the status models."""

from __future__ import annotations

import random
import typing

import pydantic
import pytest

from controller import crdgen
from controller.core import bounded

STATUS_MODELS = {info.kind: model.model_fields["status"].annotation for model, info in crdgen.KINDS}
SCHEMAS = {info.kind: crdgen.build_schema(model)["properties"]["status"] for model, info in crdgen.KINDS}


def hostile(schema: typing.Mapping[str, typing.Any], rng: random.Random, depth: int = 0) -> typing.Any:
    """A value of the schema's shape, but with every string and list far past its limits."""
    kind = schema.get("type")
    if "enum" in schema:
        return rng.choice(schema["enum"])
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2026-11-30T01:00:00Z"
        return "x" * ((schema.get("maxLength") or 64) * rng.choice((1, 2, 50)) + rng.randint(0, 3))
    if kind == "integer":
        return rng.choice((0, 7, 10**12))
    if kind == "number":
        return rng.choice((0.0, 1e300, 3.5))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "array":
        count = (schema.get("maxItems") or 5) + rng.randint(0, 30) if depth < 3 else 1
        return [hostile(schema.get("items") or {}, rng, depth + 1) for _ in range(min(count, 600))]
    if kind == "object" or "properties" in schema:
        return {k: hostile(v, rng, depth + 1) for k, v in (schema.get("properties") or {}).items()
                if rng.random() < 0.9 or k in schema.get("required", ())}
    return "x"


def within(value: typing.Any, schema: typing.Mapping[str, typing.Any], path: str = "status") -> list[str]:
    problems = []
    if isinstance(value, str) and schema.get("maxLength") is not None and len(value) > schema["maxLength"]:
        problems.append(f"{path}: {len(value)} > maxLength {schema['maxLength']}")
    if isinstance(value, list):
        if schema.get("maxItems") is not None and len(value) > schema["maxItems"]:
            problems.append(f"{path}: {len(value)} > maxItems {schema['maxItems']}")
        for index, item in enumerate(value):
            problems += within(item, schema.get("items") or {}, f"{path}[{index}]")
    if isinstance(value, dict):
        for key, item in value.items():
            problems += within(item, (schema.get("properties") or {}).get(key) or {}, f"{path}.{key}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if schema.get("maximum") is not None and value > schema["maximum"]:
            problems.append(f"{path}: {value} > maximum")
    return problems


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
@pytest.mark.parametrize("seed", range(20))
def test_any_status_fitted_to_its_schema_fits_the_schema_and_the_model(kind: str, seed: int) -> None:
    rng = random.Random(seed)
    raw = hostile(SCHEMAS[kind], rng)
    fitted = bounded.fit_fields(raw, SCHEMAS[kind])
    assert within(fitted, SCHEMAS[kind]) == []
    try:
        STATUS_MODELS[kind].model_validate(fitted)  # type: ignore[union-attr]
    except pydantic.ValidationError as error:
        too_long = [e for e in error.errors() if e["type"] in ("string_too_long", "too_long")]
        assert not too_long, too_long


def test_a_fitted_message_is_cut_with_a_mark_and_stable() -> None:
    schema = {"type": "string", "maxLength": 10}
    assert bounded.fit("0123456789abc", schema) == "012345678…"
    assert bounded.fit(bounded.fit("0123456789abc", schema), schema) == "012345678…"  # no rewrite next round
