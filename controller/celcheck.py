"""The CRDs' own CEL rules, evaluated offline: `capliquify validate` refuses what the API server refuses.

The rules are read from the CRD schema generated from the models (the very text the API
server compiles) and evaluated with cel-python on the object as the API server sees it —
defaults applied, numbers typed by the schema — so a rule never needs a hand-written twin to
be checked before `kubectl apply`.
"""

from __future__ import annotations

import functools
import typing

import celpy

from controller import crdgen

SPEC_SCHEMAS = {info.kind: crdgen.build_schema(model)["properties"]["spec"] for model, info in crdgen.KINDS}


@functools.lru_cache(maxsize=None)
def _program(rule: str) -> typing.Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(rule))


def _holds(rule: str, value: typing.Any) -> bool:
    try:
        return bool(_program(rule).evaluate({"self": celpy.json_to_cel(value)}))
    except Exception:  # an evaluation error is a refusal at the API server too
        return False


def violations(schema: typing.Mapping[str, typing.Any], value: typing.Any, path: str) -> list[str]:
    """`path: message` for every rule that does not hold, depth first as the API server reports."""
    found = []
    for rule in schema.get("x-kubernetes-validations") or []:
        if not _holds(rule["rule"], value):
            found.append(f"{path}{rule.get('fieldPath', '')}: {rule['message']}")
    if isinstance(value, dict):
        for key, item in value.items():
            child = (schema.get("properties") or {}).get(key)
            if child is not None:
                found += violations(child, item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += violations(schema.get("items") or {}, item, f"{path}[{index}]")
    return found


def spec_violations(kind: str, spec: typing.Mapping[str, typing.Any]) -> list[str]:
    """CEL violations of a spec that already passed the models (defaults applied, JSON types)."""
    return violations(SPEC_SCHEMAS[kind], spec, "spec")
