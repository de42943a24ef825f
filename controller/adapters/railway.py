"""Railway's public GraphQL API: read a service instance and its metrics, set its replicas.

Blocking (requests): called through asyncio.to_thread, always with a timeout. Every document
sent is one of the constants below; a unit test validates each against Railway's published
schema, and the local simulator validates every request it receives.
"""

from __future__ import annotations

import dataclasses
import datetime
import typing

import socket
import urllib.parse

import requests

from controller.core import health

DEFAULT_ENDPOINT = "https://backboard.railway.com/graphql/v2"
TIMEOUT_SECONDS = (5, 15)

INSTANCE = """
query CapliquifyServiceInstance($environmentId: String!, $serviceId: String!) {
  serviceInstance(environmentId: $environmentId, serviceId: $serviceId) {
    serviceName
    numReplicas
    latestDeployment { id status }
  }
}
"""

SET_REPLICAS = """
mutation CapliquifySetReplicas($environmentId: String!, $serviceId: String!, $replicas: Int!) {
  serviceInstanceUpdate(environmentId: $environmentId, serviceId: $serviceId, input: {numReplicas: $replicas})
  serviceInstanceRedeploy(environmentId: $environmentId, serviceId: $serviceId)
}
"""

METRICS = """
query CapliquifyMetrics($environmentId: String!, $serviceId: String!, $startDate: DateTime!) {
  metrics(environmentId: $environmentId, serviceId: $serviceId, startDate: $startDate,
          measurements: [CPU_USAGE, CPU_LIMIT, MEMORY_USAGE_GB, MEMORY_LIMIT_GB], sampleRateSeconds: 30) {
    measurement
    values { ts value }
  }
}
"""

DOCUMENTS = {"instance": INSTANCE, "set_replicas": SET_REPLICAS, "metrics": METRICS}


class RailwayError(Exception):
    """A request that did not succeed; the text is stable (it may end up in a condition)."""


@dataclasses.dataclass(frozen=True)
class Instance:
    name: str
    replicas: int | None
    deployment_id: str | None
    deployment_status: str | None


@dataclasses.dataclass(frozen=True)
class Usage:
    """Latest cpu and memory in percent of the service's limits, with the sample time."""

    cpu: float | None
    memory: float | None
    sampled_at: datetime.datetime | None


class RailwayClient:
    def __init__(self, endpoint: str, token: str, allow_loopback: bool = False) -> None:
        self.endpoint = endpoint
        self.allow_loopback = allow_loopback
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.headers.update({"Authorization": f"Bearer {token}", "Content-Type": "application/json"})

    def _refusal(self) -> str | None:
        """The egress guard of health checks, for the endpoint the token is sent to."""
        parts = urllib.parse.urlsplit(self.endpoint)
        try:
            infos = socket.getaddrinfo(parts.hostname or "", parts.port or 443, type=socket.SOCK_STREAM)
        except OSError:
            return None  # requests reports the resolution failure itself
        return next((r for info in infos if (r := health.refused_address(info[4][0], self.allow_loopback))), None)

    def _call(self, document: str, variables: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
        refusal = self._refusal()
        if refusal is not None:
            raise RailwayError(f"endpoint refused by the egress policy: {refusal}")
        try:
            response = self._session.post(self.endpoint, json={"query": document, "variables": dict(variables)},
                                          timeout=TIMEOUT_SECONDS)
        except requests.Timeout:
            raise RailwayError(f"{self.endpoint} did not answer in time") from None
        except requests.RequestException:
            raise RailwayError(f"cannot connect to {self.endpoint}") from None
        if response.status_code in (401, 403):
            raise RailwayError(f"Railway refused the token (HTTP {response.status_code})")
        try:
            body = response.json()
        except ValueError:
            raise RailwayError(f"HTTP {response.status_code} from Railway, not JSON") from None
        if body.get("errors"):
            raise RailwayError("; ".join(str(e.get("message")) for e in body["errors"])[:300])
        if response.status_code >= 300 or not isinstance(body.get("data"), dict):
            raise RailwayError(f"HTTP {response.status_code} from Railway")
        return body["data"]

    def instance(self, environment_id: str, service_id: str) -> Instance:
        data = self._call(INSTANCE, {"environmentId": environment_id, "serviceId": service_id})["serviceInstance"]
        deployment = data.get("latestDeployment") or {}
        return Instance(data.get("serviceName") or service_id, data.get("numReplicas"), deployment.get("id"),
                        deployment.get("status"))

    def set_replicas(self, environment_id: str, service_id: str, replicas: int) -> None:
        """Railway applies instance settings with a deploy: update, then redeploy."""
        self._call(SET_REPLICAS, {"environmentId": environment_id, "serviceId": service_id, "replicas": replicas})

    def usage(self, environment_id: str, service_id: str, now: datetime.datetime) -> Usage:
        start = (now - datetime.timedelta(minutes=5)).astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        results = self._call(METRICS, {"environmentId": environment_id, "serviceId": service_id, "startDate": start})
        return usage_from(results["metrics"])


def usage_from(results: typing.Sequence[typing.Mapping[str, typing.Any]]) -> Usage:
    """Percent of limit from the latest CPU/memory usage and limit samples."""
    latest: dict[str, tuple[int, float]] = {}
    for result in results:
        values = result.get("values") or []
        if values:
            point = max(values, key=lambda v: v["ts"])
            latest[result["measurement"]] = (int(point["ts"]), float(point["value"]))

    def percent(usage: str, limit: str) -> float | None:
        if usage not in latest or limit not in latest or latest[limit][1] <= 0:
            return None
        return round(100 * latest[usage][1] / latest[limit][1], 3)

    stamps = [ts for ts, _ in latest.values()]
    sampled = datetime.datetime.fromtimestamp(max(stamps), tz=datetime.timezone.utc) if stamps else None
    return Usage(percent("CPU_USAGE", "CPU_LIMIT"), percent("MEMORY_USAGE_GB", "MEMORY_LIMIT_GB"), sampled)
