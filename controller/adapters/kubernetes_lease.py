"""The Lease the operator's replicas elect a leader with (coordination.k8s.io/v1)."""

from __future__ import annotations

import datetime
import typing

import kubernetes

from controller.core import election
from controller.core import timestamps

TIMEOUT_SECONDS = 5


class Conflict(Exception):
    """Someone else wrote the Lease first (HTTP 409): read it again."""


class LeaseStore:
    def __init__(self, api_client: kubernetes.client.ApiClient, namespace: str, name: str) -> None:
        self._api: typing.Any = kubernetes.client.CoordinationV1Api(api_client)  # takes plain dicts
        self.namespace, self.name = namespace, name

    def read(self) -> election.Record | None:
        try:
            lease: typing.Any = self._api.read_namespaced_lease(self.name, self.namespace, _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException as error:
            if error.status == 404:
                return None
            raise
        return election.Record(lease.spec.holder_identity, lease.spec.lease_transitions or 0,
                               lease.metadata.resource_version)

    def write(self, me: str, step: election.Step, current: election.Record | None, duration: float) -> None:
        """Create, renew or take the Lease; raises Conflict when it changed since `current`."""
        now = datetime.datetime.now(datetime.timezone.utc)
        spec: dict[str, typing.Any] = {"holderIdentity": me, "leaseDurationSeconds": int(duration), "renewTime": timestamps.to_micro(now),
                "leaseTransitions": step.transitions}
        if step.action != "renew":
            spec["acquireTime"] = timestamps.to_micro(now)
        body: dict[str, typing.Any] = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace}, "spec": spec}
        try:
            if current is None:
                self._api.create_namespaced_lease(self.namespace, body, _request_timeout=TIMEOUT_SECONDS)
            else:
                body["metadata"]["resourceVersion"] = current.version  # optimistic: refused if it moved
                if step.action == "renew":
                    spec.pop("acquireTime", None)
                    body = {"metadata": body["metadata"], "spec": spec}
                    self._api.patch_namespaced_lease(self.name, self.namespace, body, _request_timeout=TIMEOUT_SECONDS)
                else:
                    self._api.replace_namespaced_lease(self.name, self.namespace, body, _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException as error:
            if error.status == 409:
                raise Conflict() from None
            raise

    def release(self, me: str, current: election.Record) -> None:
        """Hand the Lease back on a clean shutdown, so a standby takes over at once."""
        body = {"metadata": {"resourceVersion": current.version}, "spec": {"holderIdentity": None}}
        try:
            self._api.patch_namespaced_lease(self.name, self.namespace, body, _request_timeout=TIMEOUT_SECONDS)
        except kubernetes.client.ApiException:
            pass  # it expires by itself
