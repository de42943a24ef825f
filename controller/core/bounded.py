"""Status fits its schema by construction: strings and lists cut to the CRD's own limits. Pure.

A status patch the API server refuses (422) is refused for ever and wedges the object, so
every value bound for status passes through `fit` with the schema generated from the same
pydantic model: strings longer than maxLength end in "…", lists keep their first maxItems
(status lists are newest first), numbers are clamped to their bounds.
"""

from __future__ import annotations

import typing

ELLIPSIS = "…"


def fit(value: typing.Any, schema: typing.Mapping[str, typing.Any]) -> typing.Any:
    if value is None:
        return None
    if isinstance(value, str):
        limit = schema.get("maxLength")
        if limit is not None and len(value) > limit:
            return value[: max(limit - 1, 0)] + ELLIPSIS if limit > 0 else ""
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and value < low:
            return type(value)(low)
        if high is not None and value > high:
            return type(value)(high)
        return value
    if isinstance(value, list):
        limit = schema.get("maxItems")
        items = value if limit is None else value[:limit]
        inner = schema.get("items") or {}
        return [fit(item, inner) for item in items]
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        fitted = {}
        for key, item in value.items():
            if key in properties:
                fitted[key] = fit(item, properties[key])
            elif isinstance(extra, dict):
                fitted[key] = fit(item, extra)
            else:
                fitted[key] = item
        limit = schema.get("maxProperties")
        if limit is not None and len(fitted) > limit:
            fitted = dict(list(fitted.items())[:limit])
        return fitted
    return value


def fit_fields(fields: typing.Mapping[str, typing.Any], status_schema: typing.Mapping[str, typing.Any]
               ) -> dict[str, typing.Any]:
    """Top-level status fields, each fitted to its property's schema."""
    properties = status_schema.get("properties") or {}
    return {key: fit(value, properties.get(key) or {}) for key, value in fields.items()}
