"""Types shared by the three kinds: conditions, Secret references, the model base."""

from __future__ import annotations

import datetime
import enum
import typing

import pydantic


class ApiModel(pydantic.BaseModel):
    """Base of every API type: camelCase on the wire, unknown fields refused.

    Unknown fields are refused so that a typo in a manifest validated offline by
    `capliquify validate` fails the same way the API server's pruning would hide it.
    """

    model_config = pydantic.ConfigDict(extra="forbid", populate_by_name=True, use_enum_values=True)



# An http(s) URL with a host, a port within 1–65535 when given, no user info and no white
# space. Which addresses it may reach is the egress policy's call (core/egress.py), at send time.
# The host is ASCII letters, digits, dots, hyphens and underscores, or a bracketed IPv6
# literal without a zone: the HTTP client folds Unicode hosts (IDNA/NFKC: `①②⑦.0.0.1`,
# `１２７．０．０．１` are 127.0.0.1 to it), so an object never stores a host that reads as one
# thing and connects to another; percent signs (encoding, zone ids) are refused for the same reason.
_PORT = r"([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
HTTP_URL = r"^https?://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:" + _PORT + r")?([/?#][^\s]*)?$"

# An object's name as the API server requires it (a DNS-1123 subdomain): a reference to a
# workload or a MonitoredService by any other name (`../x`) can never resolve, so it is refused.
OBJECT_NAME = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"


def field(description: str, default: typing.Any = ..., **kwargs: typing.Any) -> typing.Any:
    """A field with a mandatory description (the CRD generator refuses a field without one)."""
    if "default_factory" in kwargs:
        return pydantic.Field(description=description, **kwargs)
    return pydantic.Field(default, description=description, **kwargs)


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, typing.Any]:
    """One CEL rule for `x-kubernetes-validations`, as the API server evaluates it."""
    validation: dict[str, typing.Any] = {"rule": rule, "message": message}
    if field_path:
        validation["fieldPath"] = field_path
    return validation


def require_exactly_one(model: pydantic.BaseModel, *names: str) -> None:
    """The pydantic twin of a CEL exactly-one rule, so offline validation and the pure core
    refuse what the API server refuses (a test checks both on the same bad objects)."""
    present = [name for name in names if getattr(model, name) is not None]
    if len(present) != 1:
        raise ValueError(f"exactly one of {', '.join(names)} is required (got {len(present)})")


class ConditionStatus(str, enum.Enum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(ApiModel):
    """A Kubernetes-style condition; `lastTransitionTime` changes only when `status` flips."""

    type: str = field("Type of the condition, e.g. Ready.", max_length=64)
    status: ConditionStatus = field("True, False or Unknown.")
    reason: str = field("CamelCase reason for the last transition.", max_length=128)
    message: str = field("Human-readable explanation.", default="", max_length=4096)
    lastTransitionTime: datetime.datetime = field("When status last changed.")
    observedGeneration: int = field("The .metadata.generation the condition was computed from.", default=0, ge=0)


class SecretKeyRef(ApiModel):
    """A key of a Secret in the same namespace; secrets are referenced, never inlined."""

    name: str = field("Name of the Secret in the object's namespace.", min_length=1, max_length=253)
    key: str = field("Key within the Secret's data.", min_length=1, max_length=253)


class BaseStatus(ApiModel):
    """Fields every kind's status carries."""

    observedGeneration: int = field("The .metadata.generation last acted upon.", default=0, ge=0)
    conditions: list[Condition] = field(
        "Current conditions; every kind has Ready.",
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
        max_length=16,
    )


class PrinterColumn(typing.NamedTuple):
    name: str
    type: str
    json_path: str
    description: str
    priority: int = 0


class KindInfo(typing.NamedTuple):
    """What the CRD needs beyond the schema: names, printer columns."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    description: str
    printer_columns: tuple[PrinterColumn, ...]


def ready_column() -> PrinterColumn:
    return PrinterColumn("Ready", "string", '.status.conditions[?(@.type=="Ready")].status', "Ready condition.")


def age_column() -> PrinterColumn:
    return PrinterColumn("Age", "date", ".metadata.creationTimestamp", "Time since creation.")
