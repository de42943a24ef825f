"""Status fits its schema by construction: strings and lists cut to the CRD's own limits. Pure.

A status patch the API server refuses (422) is refused for ever and wedges the object, so
every value bound for status passes through `fit` with the schema generated from the same
pydantic model: strings longer than maxLength end in "…", lists keep their first maxItems
(status lists are newest first), numbers are clamped to their bounds, and a number that is
not finite (NaN, ±Inf: JSON cannot carry them, and a client spelling them `Infinity` has its
whole patch refused) becomes None — removed under a merge patch, and left out of an object
inside a list (where the API server would prune a null, so a None kept there would differ
from status every round and be written again and again).
"""

from __future__ import annotations

import math
import typing

ELLIPSIS = "…"
INT64 = 2**63 - 1  # the API server's integers: past this a patch is refused, whatever the schema says


def _unknown(value: typing.Any) -> bool:
    return isinstance(value, float) and not math.isfinite(value)


def fit(value: typing.Any, schema: typing.Mapping[str, typing.Any], in_list: bool = False) -> typing.Any:
    if value is None:
        return None
    if isinstance(value, str):
        limit = schema.get("maxLength")
        if limit is not None and len(value) > limit:
            return value[: max(limit - 1, 0)] + ELLIPSIS if limit > 0 else ""
        return value
    if isinstance(value, bool):
        return value
    if _unknown(value):
        return None
    if isinstance(value, (int, float)):
        wide = INT64 if isinstance(value, int) else None  # a float of any finite size is a float64
        low, high = schema.get("minimum", -wide if wide else None), schema.get("maximum", wide)
        if low is not None and value < low:
            return type(value)(low)
        if high is not None and value > high:
            return type(value)(high)
        return value
    if isinstance(value, list):
        limit = schema.get("maxItems")
        items = value if limit is None else value[:limit]
        inner = schema.get("items") or {}
        return [fit(item, inner, True) for item in items if not _unknown(item)]
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        fitted = {}
        for key, item in value.items():
            if in_list and _unknown(item):
                continue  # see above: left out, not None
            if key in properties:
                fitted[key] = fit(item, properties[key], in_list)
            elif isinstance(extra, dict):
                fitted[key] = fit(item, extra, in_list)
            else:
                fitted[key] = fit(item, {}, in_list)  # no schema: still no NaN or Infinity
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
