"""Is an object's spec actionable in this cluster? Pure judgement behind `Ready`.

The schema has already refused what it can; this checks what only the cluster can
answer: the target workload exists, the referenced MonitoredService exists, the
referenced Secrets exist and carry the key.
"""

from __future__ import annotations

import dataclasses
import typing

import pydantic

from controller import reasons
from controller.api import alertpolicy
from controller.api import common
from controller.api import monitoredservice
from controller.api import scalingpolicy
from controller.core import conditions
from controller.core import platform
from controller.core import platforms
from controller.core import world as world_module


@dataclasses.dataclass(frozen=True)
class Assessment:
    """Status fields and conditions the core decided for one object."""

    fields: dict[str, typing.Any]
    conditions: tuple[conditions.ConditionChange, ...]
    # Written only while absent: starting values of fields other parts of the operator own
    # (health, firing), so printer columns read "Unknown"/0 rather than blank from the start.
    initial: dict[str, typing.Any] = dataclasses.field(default_factory=dict)


def combine(
    assessment: Assessment, fields: typing.Mapping[str, typing.Any], changes: typing.Iterable[conditions.ConditionChange]
) -> Assessment:
    return Assessment({**assessment.fields, **fields}, (*assessment.conditions, *changes), assessment.initial)


def _ready(status: bool, reason: str, message: str) -> conditions.ConditionChange:
    return conditions.ConditionChange(reasons.READY, "True" if status else "False", reason, message)


def _invalid(error: pydantic.ValidationError) -> Assessment:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return Assessment({}, (_ready(False, reasons.INVALID_SPEC, f"spec.{where}: {first['msg']}"),))


def _secret_problem(
    ref: common.SecretKeyRef, namespace: str, world: world_module.World, purpose: str
) -> tuple[str, str] | None:
    key = (namespace, ref.name)
    if key not in world.secrets:
        return None
    keys = world.secrets[key]
    if keys is None:
        return reasons.SECRET_NOT_FOUND, f"Secret {ref.name} ({purpose}) not found"
    if ref.key not in keys:
        return reasons.SECRET_KEY_MISSING, f"Secret {ref.name} ({purpose}) has no key {ref.key}"
    return None


_MSVC_INITIAL = {"health": monitoredservice.Health.UNKNOWN.value}
_ALP_INITIAL = {"firing": 0}


SpecInput = typing.Union[typing.Mapping[str, typing.Any], pydantic.BaseModel, pydantic.ValidationError]
ModelT = typing.TypeVar("ModelT", bound=pydantic.BaseModel)


def _parse(spec: SpecInput, model: type[ModelT]) -> ModelT | pydantic.ValidationError:
    """A spec as given: raw (parsed here), already parsed (cached by the caller), or refused."""
    if isinstance(spec, (model, pydantic.ValidationError)):
        return spec
    try:
        return model.model_validate(spec)
    except pydantic.ValidationError as error:
        return error


def monitored_service(namespace: str, spec: SpecInput, world: world_module.World) -> Assessment:
    parsed = _parse(spec, monitoredservice.MonitoredServiceSpec)
    if isinstance(parsed, pydantic.ValidationError):
        return _invalid(parsed)
    target = parsed.target
    ref = platforms.of_service(target)
    fields: dict[str, typing.Any] = {"target": ref.display}
    for secret, purpose in platforms.of(ref).secrets(target):
        problem = _secret_problem(secret, namespace, world, purpose)
        if problem:
            return Assessment(fields, (_ready(False, *problem),), _MSVC_INITIAL)
    found, ready = platforms.of(ref).judge(namespace, ref, world)
    fields["replicas"] = {"desired": found.replicas, "ready": found.ready_replicas} if found else {}
    return Assessment(fields, (ready,), _MSVC_INITIAL)


def _monitored_target(
    msvc: typing.Mapping[str, typing.Any],
) -> monitoredservice.Target | None:
    try:
        return monitoredservice.Target.model_validate(msvc.get("spec", {}).get("target", {}))
    except pydantic.ValidationError:
        return None


def scaling_policy(namespace: str, spec: SpecInput, world: world_module.World) -> Assessment:
    parsed = _parse(spec, scalingpolicy.ScalingPolicySpec)
    if isinstance(parsed, pydantic.ValidationError):
        return _invalid(parsed)
    target_ref = platforms.of_policy(parsed.targetRef)
    if target_ref is None:
        msvc_name = parsed.targetRef.monitoredService or ""
        msvc = world.monitored_services.get((namespace, msvc_name))
        if msvc is None:
            return Assessment(
                {"target": f"MonitoredService/{msvc_name}"},
                (_ready(False, reasons.MONITORED_SERVICE_NOT_FOUND, f"MonitoredService {msvc_name} not found"),),
            )
        target = _monitored_target(msvc)
        if target is None:
            return Assessment(
                {"target": f"MonitoredService/{msvc_name}"},
                (_ready(False, reasons.MONITORED_SERVICE_NOT_READY, f"MonitoredService {msvc_name} has no valid target"),),
            )
        target_ref = platforms.of_service(target)
    return _policy_target(namespace, target_ref, world)


def _policy_target(namespace: str, ref: platform.Ref, world: world_module.World) -> Assessment:
    found, ready = platforms.of(ref).judge(namespace, ref, world)
    fields: dict[str, typing.Any] = {"target": ref.display}
    if found is not None and found.replicas is not None:
        fields["currentReplicas"] = found.replicas
    return Assessment(fields, (ready,))


def _channel_secret_refs(channel: alertpolicy.Channel) -> list[tuple[common.SecretKeyRef, str]]:
    refs: list[tuple[common.SecretKeyRef, str]] = []
    if channel.slack:
        refs.append((channel.slack.webhookSecretRef, f"channel {channel.name}"))
    if channel.email:
        refs.append((channel.email.smtpSecretRef, f"channel {channel.name}"))
    if channel.sms:
        refs.append((channel.sms.gatewaySecretRef, f"channel {channel.name}"))
    if channel.webhook and channel.webhook.hmacSecretRef:
        refs.append((channel.webhook.hmacSecretRef, f"channel {channel.name}"))
    if channel.pagerduty:
        refs.append((channel.pagerduty.routingKeySecretRef, f"channel {channel.name}"))
    if channel.opsgenie:
        refs.append((channel.opsgenie.apiKeySecretRef, f"channel {channel.name}"))
    if channel.teams:
        refs.append((channel.teams.webhookSecretRef, f"channel {channel.name}"))
    return refs


def secret_refs(kind: str, spec: SpecInput) -> list[str]:
    """Names of the Secrets an object references (to look up before judging it)."""
    if kind == monitoredservice.KIND.kind:
        msvc = _parse(spec, monitoredservice.MonitoredServiceSpec)
        if isinstance(msvc, monitoredservice.MonitoredServiceSpec):
            ref = platforms.of_service(msvc.target)
            return sorted({secret.name for secret, _ in platforms.of(ref).secrets(msvc.target)})
    if kind == alertpolicy.KIND.kind:
        alp = _parse(spec, alertpolicy.AlertPolicySpec)
        if isinstance(alp, alertpolicy.AlertPolicySpec):
            return sorted({ref.name for channel in alp.channels for ref, _ in _channel_secret_refs(channel)})
    return []


def selected_services(
    namespace: str, parsed: alertpolicy.AlertPolicySpec, world: world_module.World
) -> list[str]:
    if parsed.serviceRef is not None:
        return [parsed.serviceRef] if (namespace, parsed.serviceRef) in world.monitored_services else []
    wanted = (parsed.selector.matchLabels if parsed.selector else {}).items()
    return sorted(
        name
        for (ns, name), obj in world.monitored_services.items()
        if ns == namespace and wanted <= (obj.get("metadata", {}).get("labels") or {}).items()
    )


def alert_policy(namespace: str, spec: SpecInput, world: world_module.World) -> Assessment:
    parsed = _parse(spec, alertpolicy.AlertPolicySpec)
    if isinstance(parsed, pydantic.ValidationError):
        return _invalid(parsed)
    fields: dict[str, typing.Any] = {"ruleCount": len(parsed.rules)}
    problems = [
        problem
        for channel in parsed.channels
        for ref, purpose in _channel_secret_refs(channel)
        if (problem := _secret_problem(ref, namespace, world, purpose))
    ]
    if problems:
        channels_ready = conditions.ConditionChange(
            reasons.CHANNELS_READY, "False", problems[0][0], "; ".join(message for _, message in problems)
        )
    elif not parsed.channels:
        channels_ready = conditions.ConditionChange(
            reasons.CHANNELS_READY, "False", reasons.NO_CHANNELS, "no channels declared: alerts are recorded only"
        )
    else:
        channels_ready = conditions.ConditionChange(
            reasons.CHANNELS_READY, "True", reasons.CHANNELS_RESOLVED, f"{len(parsed.channels)} channel(s) resolved"
        )
    if parsed.serviceRef is not None and (namespace, parsed.serviceRef) not in world.monitored_services:
        ready = _ready(False, reasons.MONITORED_SERVICE_NOT_FOUND, f"MonitoredService {parsed.serviceRef} not found")
    elif problems:
        ready = _ready(False, problems[0][0], problems[0][1])
    else:
        selected = selected_services(namespace, parsed, world)
        ready = _ready(True, reasons.SERVICES_SELECTED, f"applies to {len(selected)} MonitoredService(s)")
    return Assessment(fields, (ready, channels_ready), _ALP_INITIAL)


SPEC_MODELS: dict[str, type[pydantic.BaseModel]] = {
    monitoredservice.KIND.kind: monitoredservice.MonitoredServiceSpec,
    scalingpolicy.KIND.kind: scalingpolicy.ScalingPolicySpec,
    alertpolicy.KIND.kind: alertpolicy.AlertPolicySpec,
}
JUDGES: dict[str, typing.Callable[[str, SpecInput, world_module.World], Assessment]] = {
    monitoredservice.KIND.kind: monitored_service,
    scalingpolicy.KIND.kind: scaling_policy,
    alertpolicy.KIND.kind: alert_policy,
}
