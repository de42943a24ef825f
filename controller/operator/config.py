"""Operator-wide settings (flags and environment), not CRDs."""

from __future__ import annotations

import dataclasses
import logging
import typing

import kopf

from controller import reasons
from controller.adapters import railway


@dataclasses.dataclass(frozen=True)
class OperatorConfig:
    namespaces: tuple[str, ...] = ()  # empty: every namespace
    kubeconfig: str | None = None
    prometheus_url: str | None = None
    metrics_port: int = 8080
    health_port: int = 8081
    resync_seconds: float = 60.0
    relist_seconds: float = 300.0
    write_concurrency: int = 32  # at 10,000 first verdicts, in-flight writes absorb the loop's pauses
    log_format: str = "text"  # text | json
    allow_loopback_checks: bool = False
    # Custom queries and query overrides sent to prometheus_url too (targets.TENANT_QUERIES_RULE):
    # every tenant then reads every namespace's series there. Off unless the platform team says so.
    allow_tenant_queries_on_default_prometheus: bool = False
    rate_window: str = "2m"
    metrics_interval_seconds: float = 30.0
    alert_interval_seconds: float = 5.0
    railway_endpoint: str = railway.DEFAULT_ENDPOINT
    railway_interval_seconds: float = 15.0
    # The cluster's Service and pod networks: inside them a tenant reaches only names of its own
    # namespace (core/egress.ClusterNetworks). Empty: no namespace rule for egress.
    cluster_networks: tuple[str, ...] = ()
    cluster_domain: str = "cluster.local"

    @property
    def clusterwide(self) -> bool:
        return not self.namespaces


class NoDiffBase(kopf.DiffBaseStorage):
    """No "last handled" essence at all. kopf builds one (a deep copy of the whole body) for
    every watch event to diff it for on.create/on.update handlers; this operator registers
    only on.event handlers, which never read a diff. At 10,000 objects those copies were a
    millisecond per event: tens of CPU seconds at start-up, and a standby's steady cost."""

    def build(self, *, body: kopf.Body, extra_fields: typing.Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        raise AssertionError("only on.event handlers are registered: kopf never stores a diff base")


def kopf_settings(config: OperatorConfig) -> kopf.OperatorSettings:
    """Explicit kopf settings: our prefixes, timeouts, quiet posting, no peering, no scanning."""
    settings = kopf.OperatorSettings()
    settings.persistence.finalizer = reasons.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=reasons.ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = NoDiffBase()
    # Our Events are posted by the evaluation loop; kopf posts only its own failures.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = reasons.COMPONENT
    # Replicas elect their leader over our own Lease (operator/election.py); kopf's peering would
    # be a second, unfenced election writing annotations for nothing.
    settings.peering.standalone = True
    # The CRDs must exist at start-up; no list/watch of CRDs or namespaces is needed (least privilege).
    settings.scanning.disabled = True
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    return settings
