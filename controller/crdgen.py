"""Generates CustomResourceDefinitions from the API models (`make crds`).

The pydantic JSON schema is turned into a Kubernetes structural schema: references are
inlined, Optional unions collapsed, default factories evaluated into `default`,
OpenAPI v3.0 spellings used, and every field must carry a description.
"""

from __future__ import annotations

import copy
import pathlib
import typing

import pydantic
import pydantic.json_schema
import yaml

import controller
from controller.api import alertpolicy
from controller.api import common
from controller.api import monitoredservice
from controller.api import scalingpolicy

KINDS: tuple[tuple[type[pydantic.BaseModel], common.KindInfo], ...] = (
    (monitoredservice.MODEL, monitoredservice.KIND),
    (scalingpolicy.MODEL, scalingpolicy.KIND),
    (alertpolicy.MODEL, alertpolicy.KIND),
)
CATEGORY = "capliquify"
_DROPPED_KEYS = ("title",)


class SchemaError(Exception):
    """The models cannot be expressed as a structural schema."""


class _FactoryDefaults(pydantic.json_schema.GenerateJsonSchema):
    """Evaluates default factories so that the seed defaults reach the CRD."""

    def get_default_value(self, schema: typing.Any) -> typing.Any:
        if "default_factory" in schema and not schema.get("default_factory_takes_data"):
            return schema["default_factory"]()
        return super().get_default_value(schema)


def _strip_none(value: typing.Any) -> typing.Any:
    if isinstance(value, dict):
        return {k: _strip_none(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_none(v) for v in value]
    return value


def _resolve(node: typing.Any, defs: dict[str, typing.Any], path: str) -> typing.Any:
    """Inline $ref, collapse Optional, and translate to OpenAPI v3.0 spellings."""
    if isinstance(node, list):
        return [_resolve(item, defs, path) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        node = {**copy.deepcopy(target), **node}
    if "allOf" in node and len(node["allOf"]) == 1:
        node = {**node.pop("allOf")[0], **node}
        return _resolve(node, defs, path)
    if "anyOf" in node:
        variants = [v for v in node.pop("anyOf") if v.get("type") != "null"]
        if len(variants) != 1:
            raise SchemaError(f"{path}: a union of several types is not structural")
        node = {**variants[0], **node}
        return _resolve(node, defs, path)
    for key in _DROPPED_KEYS:
        node.pop(key, None)
    if node.get("additionalProperties") is False:
        del node["additionalProperties"]
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "enum" in node and "type" not in node:
        node["type"] = "string"
    if "patternProperties" in node:  # what pydantic writes for a map key's pattern: not structural either
        raise SchemaError(f"{path}: a map key pattern has no structural form; check the keys with a CEL rule")
    if "propertyNames" in node:  # not structural: the API server takes key rules as CEL instead
        node.setdefault("x-kubernetes-validations", []).extend(_key_rules(node.pop("propertyNames"), path))
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if bound in node and not isinstance(node[bound], bool):
            node[plain] = node.pop(bound)
            node[bound] = True
    if "default" in node:
        if node["default"] is None:
            del node["default"]
        else:
            node["default"] = _strip_none(node["default"])
    result: dict[str, typing.Any] = {}
    for key, value in node.items():
        if key == "properties":
            result[key] = {name: _resolve(sub, defs, f"{path}.{name}") for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            result[key] = _resolve(value, defs, f"{path}[]")
        else:
            result[key] = value
    return result


def _key_rules(names: typing.Mapping[str, typing.Any], path: str) -> list[dict[str, str]]:
    """A map's key constraints (pydantic's propertyNames) as CEL rules on the map."""
    rules = []
    if "maxLength" in names:
        limit = names["maxLength"]
        rules.append({"rule": f"self.all(k, size(k) <= {limit})", "message": f"keys must be at most {limit} characters"})
    if "enum" in names:
        allowed = ", ".join(f"'{v}'" for v in names["enum"])
        rules.append({"rule": f"self.all(k, k in [{allowed}])", "message": f"keys must be one of {allowed}"})
    unknown = set(names) - {"maxLength", "enum", "type"}
    if unknown:
        raise SchemaError(f"{path}: key constraints {sorted(unknown)} have no CEL translation")
    return rules


_KEY_ORDER = ("description", "type", "format", "required", "properties")


def _ordered(node: typing.Any) -> typing.Any:
    """Stable, readable key order: description and type first, then the rest sorted."""
    if isinstance(node, list):
        return [_ordered(item) for item in node]
    if not isinstance(node, dict):
        return node
    first = [k for k in _KEY_ORDER if k in node]
    rest = sorted(k for k in node if k not in _KEY_ORDER)
    return {k: (node[k] if k in ("default", "enum") else _ordered(node[k])) for k in first + rest}


def _drop_defaults(node: typing.Any) -> typing.Any:
    """Status is written by the operator alone; API-server defaulting there only adds noise."""
    if isinstance(node, dict):
        return {k: _drop_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_drop_defaults(v) for v in node]
    return node


_UNDESCRIBED = {".metadata"}


def _check_descriptions(node: dict[str, typing.Any], path: str) -> None:
    for name, sub in node.get("properties", {}).items():
        if not sub.get("description") and f"{path}.{name}" not in _UNDESCRIBED:
            raise SchemaError(f"{path}.{name} has no description (kubectl explain would be empty)")
        _check_descriptions(sub, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        _check_descriptions(node["items"], f"{path}[]")


def build_schema(model: type[pydantic.BaseModel]) -> dict[str, typing.Any]:
    """The openAPIV3Schema of one kind."""
    raw = model.model_json_schema(by_alias=True, schema_generator=_FactoryDefaults)
    defs = raw.pop("$defs", {})
    resolved = _resolve(raw, defs, model.__name__)
    resolved["properties"]["status"] = _drop_defaults(resolved["properties"]["status"])
    resolved["properties"]["status"].pop("default", None)
    properties = {
        "apiVersion": {"type": "string", "description": "API version of the object."},
        "kind": {"type": "string", "description": "Kind of the object."},
        "metadata": {"type": "object"},  # the API server forbids anything more here
        **resolved["properties"],
    }
    schema = {"type": "object", "description": resolved.get("description", ""), "required": ["spec"], "properties": properties}
    _check_descriptions(schema, "")
    return _ordered(schema)


def build_crd(model: type[pydantic.BaseModel], info: common.KindInfo) -> dict[str, typing.Any]:
    """The whole CustomResourceDefinition of one kind."""
    schema = build_schema(model)
    schema["description"] = info.description
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{info.plural}.{controller.API_GROUP}"},
        "spec": {
            "group": controller.API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.kind.lower(),
                "shortNames": list(info.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": controller.API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": column.name,
                            "type": column.type,
                            "jsonPath": column.json_path,
                            "description": column.description,
                            **({"priority": column.priority} if column.priority else {}),
                        }
                        for column in info.printer_columns
                    ],
                    "schema": {"openAPIV3Schema": schema},
                }
            ],
        },
    }


def render_all() -> dict[str, str]:
    """File name -> YAML text for every kind."""
    header = "# Generated by `make crds` from controller/api; do not edit.\n"
    return {
        f"{controller.API_GROUP}_{info.plural}.yaml": header
        + yaml.safe_dump(build_crd(model, info), sort_keys=False, width=120)
        for model, info in KINDS
    }


def render_kustomization(names: typing.Iterable[str]) -> str:
    listing = "".join(f"  - {name}\n" for name in names)
    return (
        "# Generated by `make crds`; do not edit.\n"
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n" + listing
    )


def write_all(directory: pathlib.Path) -> list[pathlib.Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    files = render_all()
    files["kustomization.yaml"] = render_kustomization(sorted(files))
    for name, text in files.items():
        path = directory / name
        path.write_text(text)
        written.append(path)
    return written


def write_chart_crds(chart_crds: pathlib.Path) -> list[pathlib.Path]:
    """Helm installs CRDs from the chart's own crds/ folder: the same generated files."""
    chart_crds.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in render_all().items():
        path = chart_crds / name
        path.write_text(text)
        written.append(path)
    return written
