"""`capliquify validate`: each document checked as the API server would check it, every
problem at once.

The API server refuses an object of our group whose kind or version it does not serve, one
without a valid `metadata.name`, a value of the wrong JSON type (it never coerces `"2"` into
2), a value out of bounds, a list-map with two items under one key, and any CEL rule that
fails. It reports all of them in one answer, so this does too: the models validate in strict
JSON mode (the API server's typing), and the CRD's CEL rules run on the spec as written —
defaulted and typed by the schema — skipping only the rules whose verdict depends on a value
of the wrong type (controller/celcheck.py). Documents of other groups are someone else's
to check and are skipped. Pure: documents in, problems out (one line each).
"""

from __future__ import annotations

import datetime
import difflib
import json
import math
import re
import typing

import pydantic

import controller
from controller import celcheck
from controller import crdgen
from controller.api import common

API_VERSION = f"{controller.API_GROUP}/{controller.API_VERSION}"
MODELS = {info.kind: model for model, info in crdgen.KINDS}
_NAMES = {name.lower(): info.kind for _, info in crdgen.KINDS
          for name in (info.kind, info.plural, *info.short_names)}
# metadata.name of a custom object: a DNS-1123 subdomain (apimachinery's NameIsDNSSubdomain).
OBJECT_NAME = re.compile(common.OBJECT_NAME)
LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")
# A wrong JSON type (or a missing field): rules reaching it cannot be judged. Any other error
# (a bound, a pattern, an enum) leaves a well-typed value the CEL rules can still judge.
# A list over its maxItems is reported and not walked: a rule over it would cost its length again
# (the API server refuses it before any rule runs).
_UNSOUND = ("missing", "int_from_float", "model_type", "model_attributes_type", "dataclass_type", "too_long")


def shown(value: typing.Any, limit: int = 60) -> str:
    """A user's value in a message: one line, bounded (repr escapes newlines and controls)."""
    text = value if isinstance(value, str) and value.isprintable() and len(value) <= limit else repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def guess(kind: str) -> str | None:
    """Our kind a near miss means: `ScalingPolicys`, `scalingpolicy`, `scp`."""
    close = difflib.get_close_matches(kind.lower(), _NAMES, 1, 0.75)
    return _NAMES.get(kind.lower()) or (_NAMES[close[0]] if close else None)


def did_you_mean(kind: str) -> str:
    known = guess(kind)
    return f" (did you mean {known}?)" if known else ""


def flattened(documents: typing.Iterable[typing.Any]) -> list[typing.Any]:
    """The documents with each `kind: List` (what `kubectl get -o yaml` writes) replaced by its
    items, as kubectl apply reads it; at most 10,000 items a list."""
    out: list[typing.Any] = []
    for document in documents:
        items = document.get("items") if isinstance(document, dict) and document.get("kind") == "List" else None
        if isinstance(items, list):
            out.extend(items[:10_000])
        else:
            out.append(document)
    return out


class Result(typing.NamedTuple):
    ours: bool  # a document of our group (or claiming one of our kinds): counted as checked
    problems: list[str]


def check(index: int, document: typing.Any) -> Result:
    """Problems of the `index`th document (0-based), each `Kind/name: where: what`."""
    if document is None:  # an empty document between two `---`: kubectl skips it too
        return Result(False, [])
    if not isinstance(document, dict):
        return Result(False, [f"document {index + 1}: not an object (a mapping of apiVersion, kind, metadata, spec), "
                              f"got a {type(document).__name__}"])
    api_version, kind = document.get("apiVersion"), document.get("kind")
    missing = [f"{key} not set" for key, value in (("apiVersion", api_version), ("kind", kind))
               if not isinstance(value, str) or not value]
    if missing:
        ours = isinstance(kind, str) and kind.lower() in _NAMES or isinstance(api_version, str) and _is_ours(api_version)
        return Result(bool(ours), [f"document {index + 1}: {', '.join(missing)}"
                                   + (did_you_mean(kind) if isinstance(kind, str) and kind not in MODELS else "")])
    assert isinstance(api_version, str) and isinstance(kind, str)
    group, _, version = api_version.rpartition("/")
    metadata = document.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    label = f"{shown(kind, 40)}/{shown(name, 80) if isinstance(name, str) and name else f'#{index + 1}'}"
    if _is_ours(api_version):
        if group != controller.API_GROUP:
            return Result(True, [f"{label}: unknown group {shown(group)} (did you mean {controller.API_GROUP}?)"])
        if kind not in MODELS:
            known = guess(kind)
            # Its spec as the kind it was surely meant to be: the next round of fixes, shown now.
            meant = [f"{label} (as {known}): {p}" for p in spec_problems(known, document.get("spec"))] if known else []
            return Result(True, [f"{label}: no matches for kind {shown(kind)} in version {shown(api_version)}"
                                 + did_you_mean(kind), *meant])
        if version != controller.API_VERSION:
            return Result(True, [f"{label}: no matches for kind {kind} in version {shown(api_version)} "
                                 f"(served: {API_VERSION})"])
    elif kind in MODELS:
        return Result(True, [f"{label}: {kind} is served as apiVersion {API_VERSION}, not {shown(api_version)}"])
    else:
        return Result(False, [])
    problems = [f"{label}: {key}: unknown field" for key in document if key not in TOP_LEVEL]
    problems += [f"{label}: {p}" for p in _metadata_problems(metadata)]
    problems += [f"{label}: {p}" for p in spec_problems(kind, document.get("spec"), "spec" in document)]
    return Result(True, problems)


def _is_ours(api_version: str) -> bool:
    """Our group, or a near miss of it (`ops.capliqufy.io/v1alpha1`)."""
    group = api_version.rpartition("/")[0]
    return group == controller.API_GROUP or bool(group) and difflib.SequenceMatcher(None, group, controller.API_GROUP).ratio() >= 0.85


def _metadata_problems(metadata: typing.Any) -> list[str]:
    if metadata is None:
        return ["metadata.name: Required value"]
    if not isinstance(metadata, dict):
        return [f"metadata: must be an object, got {shown(metadata)}"]
    problems = []
    name, generate = metadata.get("name"), metadata.get("generateName")
    if name is None and generate is None:
        problems.append("metadata.name: Required value")
    if name is not None and not (isinstance(name, str) and len(name) <= 253 and OBJECT_NAME.fullmatch(name)):
        problems.append(f"metadata.name: Invalid value: {shown(name)}: must be lower case letters, digits, '-' "
                        "and '.', start and end with a letter or digit, at most 253 characters")
    if generate is not None and not (isinstance(generate, str) and len(generate) <= 243
                                     and OBJECT_NAME.fullmatch(generate.rstrip("-.") or "-")):
        problems.append(f"metadata.generateName: Invalid value: {shown(generate)}: not a valid name prefix")
    namespace = metadata.get("namespace")
    if namespace is not None and not (isinstance(namespace, str) and len(namespace) <= 63 and LABEL.fullmatch(namespace)):
        problems.append(f"metadata.namespace: Invalid value: {shown(namespace)}: must be a DNS label "
                        "(lower case letters, digits and '-', at most 63)")
    return problems


def spec_problems(kind: str, spec: typing.Any, present: bool = True) -> list[str]:
    """Every problem of one kind's spec as written (YAML types: timestamps become text, as
    kubectl sends them)."""
    if not present or spec is None:
        return ["spec: Required value"]
    schema = celcheck.SPEC_SCHEMAS[kind]
    try:
        spec = _clipped(schema, _as_json(spec))
        text = json.dumps({"spec": spec}, allow_nan=False)
    except ValueError as error:
        return [f"spec: {error}"]
    try:
        MODELS[kind].model_validate_json(text, strict=True)
        errors: list[typing.Any] = []
    except pydantic.ValidationError as error:
        errors = list(error.errors(include_url=False))
    problems, cross_field, unsound = [], [], set()
    for detail in errors:
        where = tuple(part for part in detail["loc"] if isinstance(part, int) or "[" not in str(part))
        if detail["type"].endswith("_type") or detail["type"] in _UNSOUND:
            unsound.add(where)
        if detail["type"] == "value_error":  # a model validator: the twin of a CEL rule, reported once
            cross_field.append((where, detail["msg"].removeprefix("Value error, ")))
            continue
        problems.append(f"{celcheck.render(where)}: {_message(detail)}")
    stored = celcheck.defaulted(schema, spec)
    rules = celcheck.raw_violations(schema, stored, ("spec",), frozenset(unsound))
    problems += [p for p in rules if p not in problems]
    messages = [rule.split(": ", 1)[1] for rule in rules]
    problems += [f"{celcheck.render(where)}: {message}" for where, message in cross_field
                 if not any(m.startswith(message) or message.startswith(m) for m in messages)]
    problems += celcheck.duplicate_keys(schema, stored, ("spec",))
    return problems


def _message(detail: typing.Mapping[str, typing.Any]) -> str:
    if detail["type"] == "extra_forbidden":
        return "unknown field"
    if detail["type"] == "missing":
        return "Required value"
    value = detail.get("input")
    if isinstance(value, (dict, list)) or detail["type"] in ("string_too_long", "too_long"):
        return detail["msg"]
    return f"{detail['msg']} (got {shown(json.dumps(value))})"


def _clipped(schema: typing.Mapping[str, typing.Any], value: typing.Any) -> typing.Any:
    """`value` with every list over its schema's maxItems cut to one item past it: the bound is
    still reported, and 100,000 items cost what 17 do (each would be validated, defaulted and
    walked by every rule, for a list the API server refuses whole)."""
    if isinstance(value, list):
        bound = schema.get("maxItems")
        kept = value if bound is None else value[:bound + 1]
        return [_clipped(schema.get("items") or {}, item) for item in kept]
    if isinstance(value, dict):
        properties = schema.get("properties")
        extra = schema.get("additionalProperties")
        bound = schema.get("maxProperties")
        items = list(value.items()) if bound is None else list(value.items())[:bound + 1]  # a map, as a list
        return {key: _clipped((properties or {}).get(key) or (extra if isinstance(extra, dict) else {}), item)
                for key, item in items}
    return value


def _as_json(value: typing.Any) -> typing.Any:
    """YAML's types as JSON: kubectl sends a timestamp as the text written, keys as strings."""
    if isinstance(value, dict):
        return {str(key): _as_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_as_json(item) for item in value]
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a JSON number")
    if isinstance(value, (bytes, set)):
        raise ValueError(f"a YAML {type(value).__name__} has no JSON form")
    return value
