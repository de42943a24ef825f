"""Condition types and Event reasons: the one place they are spelled."""

from __future__ import annotations

# Condition types.
READY = "Ready"
HEALTHY = "Healthy"
METRICS_AVAILABLE = "MetricsAvailable"
ROLLOUT_HEALTHY = "RolloutHealthy"
PROBES_MANAGED = "ProbesManaged"
ABLE_TO_SCALE = "AbleToScale"
SCALING_ACTIVE = "ScalingActive"
SCALING_LIMITED = "ScalingLimited"
CHANNELS_READY = "ChannelsReady"
RAILWAY_CONFIGURED = "RailwayConfigured"

# Reasons, used both on conditions and as Event reasons.
TARGET_FOUND = "TargetFound"
TARGET_NOT_FOUND = "TargetNotFound"
MONITORED_SERVICE_NOT_FOUND = "MonitoredServiceNotFound"
MONITORED_SERVICE_NOT_READY = "MonitoredServiceNotReady"
SECRET_NOT_FOUND = "SecretNotFound"
SECRET_KEY_MISSING = "SecretKeyMissing"
SERVICES_SELECTED = "ServicesSelected"
CHANNELS_RESOLVED = "ChannelsResolved"
NO_CHANNELS = "NoChannels"
INVALID_SPEC = "InvalidSpec"

# Scaling (HPA-compatible condition reasons come from the core; these are ours).
SCALED_UP = "ScaledUp"
SCALED_DOWN = "ScaledDown"
WOULD_SCALE_UP = "WouldScaleUp"
WOULD_SCALE_DOWN = "WouldScaleDown"
FAILED_RESCALE = "FailedRescale"
CONFLICTING_AUTOSCALER = "ConflictingAutoscaler"
PAUSED = "Paused"
INVALID_METRIC_QUERY = "InvalidMetricQuery"
METRICS_UNAVAILABLE = "MetricsUnavailable"
# A metric whose source answered but never had a series for this workload (ScalingActive and
# MetricsAvailable): it is named, and it does not hold a scale-down as a lost metric does.
NO_SERIES = "NoSeries"
# Scale to zero (ScalingPolicy spec.activation, minReplicas 0): the Events of 1 -> 0 and 0 -> 1,
# and ScalingActive's reason while idle at zero (True: the activation metric is read; HPA says
# False ScalingDisabled at zero, and KEDA's ScaledObject Active=False).
SCALED_TO_ZERO = "ScaledToZero"
ACTIVATED = "Activated"
IDLE_AT_ZERO = "IdleAtZero"
# A workload scaled to zero by hand under a policy without activation: scaling is disabled
# (HPA's own reason and rule: the operator does not fight a deliberate scale to zero).
SCALING_DISABLED = "ScalingDisabled"

# MonitoredService: health, metrics, probes, rollouts.
EGRESS_REFUSED = "EgressRefused"
ROLLED_BACK = "RolledBack"
ROLLOUT_FAILED = "RolloutFailed"
ROLLOUT_SUCCEEDED = "RolloutSucceeded"
ROLLBACK_FAILED = "RollbackFailed"
PROBES_IN_SYNC = "ProbesInSync"
PROBES_UPDATED = "ProbesUpdated"
PROBES_REVERTED = "ProbesReverted"
CONTAINER_NOT_FOUND = "ContainerNotFound"
NOT_MANAGED = "NotManaged"
PROBES_APPLY_FAILED = "ProbesApplyFailed"
METRICS_READ = "MetricsRead"
NO_DATA = "NoData"
UNSUPPORTED_TARGET = "UnsupportedTarget"
RAILWAY_UNAVAILABLE = "RailwayUnavailable"
RAILWAY_RATE_LIMITED = "RailwayRateLimited"  # Ready stays True on the last known state
AWAITING_OBSERVATION = "AwaitingObservation"
# A Railway instance's configuration (core/railway_config.py).
RAILWAY_CONFIG_IN_SYNC = "RailwayConfigInSync"
RAILWAY_CONFIG_APPLIED = "RailwayConfigApplied"  # the Event of a change Railway accepted
RAILWAY_CONFIG_REFUSED = "RailwayConfigRefused"
RAILWAY_CONFIG_UNREADABLE = "RailwayConfigUnreadable"
RAILWAY_CONFIG_CONFLICT = "RailwayConfigConflict"

# AlertPolicy.
ALERT_FIRING = "AlertFiring"
ALERT_RESOLVED = "AlertResolved"
DELIVERY_FAILED = "DeliveryFailed"

# Annotations under the API group.
ANNOTATION_PREFIX = "ops.capliquify.io"
PAUSED_ANNOTATION = f"{ANNOTATION_PREFIX}/paused"
ACK_ANNOTATION = f"{ANNOTATION_PREFIX}/ack"
FINALIZER = f"{ANNOTATION_PREFIX}/finalizer"

# The name this operator writes as (field manager, Event source).
COMPONENT = "capliquify-operator"
# The field manager of the probes it applies (GitOps tools can ignore exactly these fields).
PROBES_FIELD_MANAGER = "capliquify-operator-probes"
