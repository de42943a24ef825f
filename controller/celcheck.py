"""The CRDs' own CEL rules, evaluated offline: `capliquify validate` refuses what the API server refuses.

The rules are read from the CRD schema generated from the models (the very text the API
server compiles) and evaluated with cel-python on the object as the API server sees it —
defaults applied, numbers typed by the schema — so a rule never needs a hand-written twin to
be checked before `kubectl apply`.
"""

from __future__ import annotations

import copy
import functools
import json
import typing

import celpy
from celpy import celtypes

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


# ---- A spec as written, before the models have accepted it -------------------------------------
#
# `capliquify validate` reports every problem at once, as the API server does: a type error
# in one field must not hide a CEL rule broken elsewhere. So the rules run on the spec as
# written, defaulted and typed by the schema, with each ill-typed value standing as a CEL
# error: CEL's `||` and `&&` absorb an error when the other side decides, so a rule is
# judged whenever its verdict does not depend on the ill-typed value, and skipped when it does.

Location = tuple[typing.Union[str, int], ...]


def defaulted(schema: typing.Mapping[str, typing.Any], value: typing.Any) -> typing.Any:
    """`value` as the API server stores it: the schema's defaults applied to absent fields
    (recursively, defaults included), fields the schema does not know pruned, numbers of
    `type: number` made floats. Plain JSON in, plain JSON out."""
    if isinstance(value, dict):
        properties = schema.get("properties")
        if properties is None:  # a free-form map (additionalProperties) keeps every key
            extra = schema.get("additionalProperties")
            child: typing.Mapping[str, typing.Any] = extra if isinstance(extra, dict) else {}
            return {key: defaulted(child, item) for key, item in value.items()}
        filled = {name: copy.deepcopy(sub["default"]) for name, sub in properties.items()
                  if name not in value and "default" in sub}
        filled.update({key: item for key, item in value.items() if key in properties})
        return {key: defaulted(properties[key], item) for key, item in filled.items()}
    if isinstance(value, list):
        return [defaulted(schema.get("items") or {}, item) for item in value]
    if schema.get("type") == "number" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _cel(value: typing.Any, where: Location, unsound: frozenset[Location]) -> typing.Any:
    if where in unsound:
        return celpy.CELEvalError(f"ill-typed value at {where}")
    if isinstance(value, dict):
        return celtypes.MapType({celtypes.StringType(k): _cel(v, (*where, k), unsound) for k, v in value.items()})
    if isinstance(value, list):
        return celtypes.ListType([_cel(v, (*where, i), unsound) for i, v in enumerate(value)])
    return celpy.json_to_cel(value)


def render(where: Location) -> str:
    """`spec.metrics[0].type`, as the API server names a field."""
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in where).removeprefix(".")


def raw_violations(schema: typing.Mapping[str, typing.Any], value: typing.Any, where: Location,
                   unsound: frozenset[Location]) -> list[str]:
    """`path: message` for each rule that fails on `value` (already `defaulted`); a rule whose
    evaluation fails where `unsound` (locations of type errors, already reported) reaches is skipped."""
    found = []
    tainted = any(bad[:len(where)] == where for bad in unsound)
    for rule in schema.get("x-kubernetes-validations") or []:
        try:
            verdict = _program(rule["rule"]).evaluate({"self": _cel(value, where, unsound)})
        except Exception:  # an evaluation error: a refusal, unless an ill-typed value caused it
            verdict = None
        if isinstance(verdict, celtypes.BoolType) and verdict:
            continue
        if verdict is None and tainted:
            continue
        found.append(f"{render(where)}{rule.get('fieldPath', '')}: {rule['message']}")
    if where in unsound:
        return found
    if isinstance(value, dict):
        properties = schema.get("properties")
        for key, item in value.items():
            child = properties.get(key) if properties is not None else schema.get("additionalProperties")
            if isinstance(child, dict):
                found += raw_violations(child, item, (*where, key), unsound)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += raw_violations(schema.get("items") or {}, item, (*where, index), unsound)
    return found


def duplicate_keys(schema: typing.Mapping[str, typing.Any], value: typing.Any, where: Location) -> list[str]:
    """Items of a `x-kubernetes-list-type: map` list sharing their keys (or equal items of a
    `set`), as the API server refuses them: `spec.healthChecks[1]: Duplicate value: {"name": "a"}`."""
    found: list[str] = []
    if isinstance(value, list) and len(value) > schema.get("maxItems", len(value)):
        return found  # over its bound: reported as such, and not walked (the API server stops there too)
    if isinstance(value, list):
        seen: set[str] = set()
        kind = schema.get("x-kubernetes-list-type")
        keys = schema.get("x-kubernetes-list-map-keys") or []
        for index, item in enumerate(value):
            if kind == "map" and isinstance(item, dict) and all(k in item for k in keys):
                identity: typing.Any = {k: item[k] for k in keys}
            elif kind == "set":
                identity = item
            else:
                identity = None
            if identity is not None:
                text = json.dumps(identity, sort_keys=True)
                if text in seen:
                    found.append(f"{render((*where, index))}: Duplicate value: {text[:300]}")
                seen.add(text)
            found += duplicate_keys(schema.get("items") or {}, item, (*where, index))
    elif isinstance(value, dict):
        properties = schema.get("properties")
        for key, item in value.items():
            child = properties.get(key) if properties is not None else schema.get("additionalProperties")
            if isinstance(child, dict):
                found += duplicate_keys(child, item, (*where, key))
    return found
