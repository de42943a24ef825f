"""Railway's public GraphQL API: read a service instance and its metrics, set its replicas
(per region when it runs in several), roll a failed deployment back.

Through the guarded client (adapters/egress.py), every request within a total deadline. Every document
sent is one of the constants below; a unit test validates each against Railway's published
schema, and the local simulator validates every request it receives.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import hashlib
import json
import math
import re
import time
import typing

import aiohttp

from controller.adapters import boundary
from controller.adapters import budget
from controller.adapters import egress
from controller.core import numbers
from controller.core import railway_config
from controller.core import railway_regions
from controller.core import ratelimit
from controller.core import timestamps

DEFAULT_ENDPOINT = "https://backboard.railway.com/graphql/v2"
DEADLINE_SECONDS = 20.0  # the whole request: connect, send, every byte of the answer
BODY_LIMIT = budget.RAILWAY_ANSWER  # a poll's answer is a few KiB; the cap is from the memory budget
MAX_REPLICAS = 10_000  # the CRDs' maxReplicas bound, far past Railway's own cap (50): more is a malformed answer
F = typing.TypeVar("F", bound=typing.Callable[..., typing.Any])

# The selections the documents below share, so that a poll asks exactly what the separate
# queries ask.
_INSTANCE_FIELDS = """
  serviceInstance(environmentId: $environmentId, serviceId: $serviceId) {
    serviceName
    numReplicas
    latestDeployment { id status meta }
  }"""
# Everything the service's metrics need: cpu and memory against their limits, and Railway's
# own HTTP metrics (p95 latency in ms, request counts by status code).
_USAGE_FIELDS = """
  metrics(environmentId: $environmentId, serviceId: $serviceId, startDate: $startDate,
          measurements: [CPU_USAGE, CPU_LIMIT, MEMORY_USAGE_GB, MEMORY_LIMIT_GB], sampleRateSeconds: 30) {
    measurement
    values { ts value }
  }
  httpDurationMetrics(environmentId: $environmentId, serviceId: $serviceId, startDate: $startDate,
                      endDate: $endDate, stepSeconds: 60) {
    samples { ts p95 }
  }
  httpMetricsGroupedByStatus(environmentId: $environmentId, serviceId: $serviceId, startDate: $startDate,
                             endDate: $endDate, stepSeconds: 60) {
    statusCode
    samples { ts value }
  }"""
_WINDOW_VARIABLES = "$environmentId: String!, $serviceId: String!, $startDate: DateTime!, $endDate: DateTime!"

INSTANCE = f"""
query CapliquifyServiceInstance($environmentId: String!, $serviceId: String!) {{{_INSTANCE_FIELDS}
}}
"""

SET_REPLICAS = """
mutation CapliquifySetReplicas($environmentId: String!, $serviceId: String!, $replicas: Int!) {
  serviceInstanceUpdate(environmentId: $environmentId, serviceId: $serviceId, input: {numReplicas: $replicas})
  serviceInstanceRedeploy(environmentId: $environmentId, serviceId: $serviceId)
}
"""

# Several regions: the whole merged map, as Railway's CLI (`railway scale`) sends it, then the
# deploy that applies it. serviceInstanceUpdate touches this one service only; an environment
# patch (environmentPatchCommit) would be a document against the environment's whole config,
# whose schema the published GraphQL schema does not carry (nothing could validate it here).
SET_REGIONS = """
mutation CapliquifySetRegions($environmentId: String!, $serviceId: String!, $multiRegionConfig: JSON!) {
  serviceInstanceUpdate(environmentId: $environmentId, serviceId: $serviceId,
                        input: {multiRegionConfig: $multiRegionConfig})
  serviceInstanceRedeploy(environmentId: $environmentId, serviceId: $serviceId)
}
"""

# The rollout guard: a service's recent deployments, and a rollback to one of them.
DEPLOYMENTS = """
query CapliquifyDeployments($environmentId: String!, $serviceId: String!) {
  deployments(first: 20, input: {environmentId: $environmentId, serviceId: $serviceId}) {
    edges { node { id status canRollback createdAt } }
  }
}
"""

ROLLBACK = """
mutation CapliquifyRollback($id: String!) {
  deploymentRollback(id: $id)
}
"""

METRICS = f"""
query CapliquifyMetrics({_WINDOW_VARIABLES}) {{{_USAGE_FIELDS}
}}
"""

# What a poll asks, in one request: the instance and everything its metrics need.
POLL = f"""
query CapliquifyPoll({_WINDOW_VARIABLES}) {{{_INSTANCE_FIELDS}{_USAGE_FIELDS}
}}
"""

# `capliquify railway import`: every service of an environment, with what a policy set needs.
ENVIRONMENT = """
query CapliquifyEnvironment($environmentId: String!, $projectId: String) {
  environment(id: $environmentId, projectId: $projectId) {
    name
    serviceInstances {
      edges {
        node {
          serviceId
          serviceName
          numReplicas
          healthcheckPath
          healthcheckTimeout
          domains { serviceDomains { domain } customDomains { domain } }
        }
      }
    }
  }
}
"""

# The instance's configuration a MonitoredService may manage (core/railway_config.py): read
# before anything is sent (a steady state sends nothing). serviceInstanceLimits is Railway's
# merged limits (plan defaults included), a JSON scalar read as {"memoryGB", "vCPUs"}; asked
# only when the spec sets resources.
CONFIG = """
query CapliquifyInstanceConfig($environmentId: String!, $serviceId: String!, $limits: Boolean!) {
  serviceInstance(environmentId: $environmentId, serviceId: $serviceId) {
    healthcheckPath
    healthcheckTimeout
    preDeployCommand
    sleepApplication
  }
  serviceInstanceLimits(environmentId: $environmentId, serviceId: $serviceId) @include(if: $limits)
}
"""

# What differs, in one request: the instance's settings (ServiceInstanceUpdateInput: only the
# fields that differ), its resources (ServiceInstanceLimitsUpdateInput), each only when needed.
# No redeploy: these are what the service's next deploy uses (its deploy health check and
# pre-deploy command are deploy-time settings; a configuration change is no reason to deploy).
CONFIGURE = """
mutation CapliquifyConfigure($environmentId: String!, $serviceId: String!, $input: ServiceInstanceUpdateInput!,
                             $limits: ServiceInstanceLimitsUpdateInput!, $update: Boolean!, $resize: Boolean!) {
  serviceInstanceUpdate(environmentId: $environmentId, serviceId: $serviceId, input: $input) @include(if: $update)
  serviceInstanceLimitsUpdate(input: $limits) @include(if: $resize)
}
"""

DOCUMENTS = {"instance": INSTANCE, "set_replicas": SET_REPLICAS, "set_regions": SET_REGIONS, "metrics": METRICS,
             "poll": POLL, "environment": ENVIRONMENT, "deployments": DEPLOYMENTS, "rollback": ROLLBACK,
             "config": CONFIG, "configure": CONFIGURE}
FAILED_STATUSES = frozenset({"FAILED", "CRASHED"})  # a deployment that failed outright
MUTATION = re.compile(r"\s*mutation\s+(\w+)")  # a document with an effect, and its operation's name


class RailwayError(Exception):
    """A request that did not succeed; the text is stable (it may end up in a condition).

    `executed` says what a caller may assume of a mutation: False, Railway certainly executed
    nothing (never sent, never connected, refused before executing: the token, a rate limit);
    None, it may have (an answer cut off, a timeout after the request left, an error status,
    GraphQL `errors`): whoever counts steps must count it as made."""

    def __init__(self, message: str, executed: bool | None = None) -> None:
        super().__init__(message)
        self.executed = executed


class RailwayTokenRefused(RailwayError):
    """Railway refused the token (401/403): it may have been rotated. Nothing was executed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, executed=False)


class RailwayRateLimited(RailwayError):
    """Not sent (or refused with 429): the token's budget, or Railway itself, says wait. Nothing
    was executed, so the same request later is neither lost nor doubled."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Railway is rate-limiting this token: next request in {math.ceil(seconds)} s", executed=False)
        self.seconds = seconds


class RailwayPartialAnswer(RailwayError):
    """An answer that arrived in part: cut off mid-body or reset after its headers, JSON that
    stops short, or `data` with fields null beside `errors`. Nothing in it is taken in (a poll
    keeps no half of it), and a mutation's effect is unknown (Railway may have executed it)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"Railway's answer was partial: {message}"[:300], executed=None)


class RateLimiter:
    """One request budget per token, shared by every service, poll and scale that uses it: a
    token bucket (`per_second`, bursts of `burst`), paused for as long as Railway asks (429 with
    Retry-After, or X-RateLimit-Remaining 0 until X-RateLimit-Reset). A request that would wait
    more than QUEUE_SECONDS is not sent: it fails as RailwayRateLimited and its caller tries
    again on its next round."""

    QUEUE_SECONDS = 2.0
    PRUNE_SECONDS = 60.0  # how often idle buckets are forgotten

    def __init__(self, per_second: float = 5.0, burst: float = 10.0,
                 clock: typing.Callable[[], float] = time.monotonic, wall: typing.Callable[[], float] = time.time,
                 sleep: typing.Callable[[float], typing.Awaitable[None]] = asyncio.sleep) -> None:
        self.per_second, self.burst = per_second, burst
        self.clock, self.wall, self.sleep = clock, wall, sleep  # sleep: how a wait passes (a test's clock)
        self._buckets: dict[str, ratelimit.Bucket] = {}
        self._pruned_at = clock()

    @staticmethod
    def key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()[:16]  # the token itself is never a key

    def _bucket(self, key: str) -> ratelimit.Bucket:
        return self._buckets.get(key) or ratelimit.full(self.burst, self.per_second, self.clock())

    def prune(self) -> None:
        """Forgets idle buckets (ratelimit.idle: a new one would act the same), so tokens no
        longer used, or rotated, or whose Secret is gone, hold no memory."""
        now = self.clock()
        self._pruned_at = now
        for key in [key for key, bucket in self._buckets.items() if ratelimit.idle(bucket, now)]:
            del self._buckets[key]

    def held(self) -> int:
        """Buckets in memory (the tokens used within the last minute or so, and paused ones)."""
        return len(self._buckets)

    async def acquire(self, key: str) -> None:
        if self.clock() - self._pruned_at >= self.PRUNE_SECONDS:
            self.prune()  # at most once a minute: one pass over the tokens in use
        while True:
            bucket, wait = ratelimit.take(self._bucket(key), self.clock())
            self._buckets[key] = bucket
            if wait <= 0:
                return
            if wait > self.QUEUE_SECONDS:
                raise RailwayRateLimited(wait)
            await self.sleep(wait)

    def note(self, key: str, status: int, headers: typing.Mapping[str, str]) -> float | None:
        """Takes in an answer's rate-limit headers; returns the pause Railway asked for, if any."""
        wait = ratelimit.server_wait(status, headers, self.wall())
        if wait:
            self._buckets[key] = ratelimit.block(self._bucket(key), self.clock(), wait)
        return wait

    def limited_for(self, key: str) -> float:
        """Seconds until this token may send again because Railway asked for a pause (0: may)."""
        bucket = self._buckets.get(key)
        return max(0.0, bucket.blocked_until - self.clock()) if bucket else 0.0


@dataclasses.dataclass(frozen=True)
class Instance:
    name: str
    replicas: int | None
    deployment_id: str | None
    deployment_status: str | None
    regions: typing.Mapping[str, int] = dataclasses.field(default_factory=dict)  # {} : one region


@dataclasses.dataclass(frozen=True)
class ServiceSummary:
    """One service of an environment, as `railway import` reads it."""

    service_id: str
    name: str
    replicas: int | None
    healthcheck_path: str | None
    healthcheck_timeout: int | None
    domains: tuple[str, ...]
    # The instance's configuration (`config`, read separately): limits per replica, pre-deploy command.
    memory_gb: float | None = None
    vcpus: float | None = None
    pre_deploy_command: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Usage:
    """Latest cpu and memory in percent of the service's limits, with the sample time; and the
    latest HTTP step's p95 latency (ms) and share of 5xx answers (percent; 0 when idle)."""

    cpu: float | None
    memory: float | None
    sampled_at: datetime.datetime | None
    latency_p95: float | None = None
    error_rate: float | None = None
    http_sampled_at: datetime.datetime | None = None


class RailwayClient:
    """One token against one endpoint, through the guarded client: the address checked is the
    address connected to, every request has a total deadline and a body limit."""

    def __init__(self, endpoint: str, token: str, client: egress.GuardedClient, limiter: RateLimiter | None = None,
                 fence: typing.Callable[[str], None] = lambda _: None, agent: str = "capliquify-operator") -> None:
        self.endpoint = endpoint
        # Called immediately before every mutation leaves (after any rate-limit wait): raises
        # when this replica may no longer act (the operator's leadership fence).
        self._fence = fence
        self._client = client
        # The User-Agent names the replica (as on its API server requests): Railway's side, or a
        # soak's request log, can tell which replica sent what.
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "User-Agent": agent}
        self._limiter = limiter
        self._key = RateLimiter.key(token)
        self._token = token  # cut out of Railway's words before they become an error's text

    async def _call(self, document: str, variables: typing.Mapping[str, typing.Any]) -> dict[str, typing.Any]:
        if self._limiter is not None:
            await self._limiter.acquire(self._key)
        mutation = MUTATION.match(document)
        if mutation is not None:
            # Every mutation, by its operation type (no call site can forget): at the call, as
            # the wait above may have outlasted leadership.
            self._fence(f"Railway {mutation.group(1)}")
        try:
            response = await self._client.request(
                "POST", self.endpoint, deadline=DEADLINE_SECONDS, body_limit=BODY_LIMIT,
                json={"query": document, "variables": dict(variables)}, headers=self._headers)
        except egress.EgressRefused as refused:
            raise RailwayError(f"endpoint refused by the egress policy: {refused}", executed=False) from None
        except asyncio.TimeoutError:
            raise RailwayError(f"Railway did not finish answering within {DEADLINE_SECONDS:g}s") from None
        except (aiohttp.ClientConnectorError, ValueError):  # no connection: nothing was sent
            raise RailwayError(f"cannot connect to {self.endpoint}", executed=False) from None
        except aiohttp.ClientError as cut:  # sent; the answer ended early (or never came)
            raise RailwayPartialAnswer(f"the connection ended before the answer did ({type(cut).__name__})") from None
        status = response.status
        pause = self._limiter.note(self._key, status, response.headers) if self._limiter is not None else None
        if status == 429:
            raise RailwayRateLimited(pause or 1.0)
        if response.truncated:
            raise RailwayError(f"the answer is larger than {BODY_LIMIT // 1024} KiB")
        if status in (401, 403):
            raise RailwayTokenRefused(f"Railway refused the token (HTTP {status})")
        try:
            body = json.loads(response.body)
        except (ValueError, UnicodeDecodeError):
            if status == 200:  # a GraphQL answer that stops short
                raise RailwayPartialAnswer("HTTP 200 from Railway, not JSON (cut short, or not GraphQL's)") from None
            raise RailwayError(f"HTTP {status} from Railway, not JSON") from None
        if not isinstance(body, dict):
            raise RailwayError(f"HTTP {status} from Railway, not a GraphQL answer")
        errors = body.get("errors")
        if errors:
            texts = "; ".join(str(e.get("message")) if isinstance(e, dict) else "an error" for e in
                              (errors if isinstance(errors, list) else [errors]))
            # Railway's words go to conditions, Events and logs: never the token, whatever it echoes.
            texts = texts.replace(self._token, "[token]") if self._token else texts
            data = body.get("data")
            if isinstance(data, dict) and data:  # some fields answered, some null: never half taken in
                nulls = sorted(str(field) for field, value in data.items() if value is None)
                raise RailwayPartialAnswer(f"{', '.join(nulls) or 'some fields'} null with errors: {texts}")
            raise RailwayError(texts[:300])  # `errors` alone (or data null): whatever ran is unknown
        if status >= 300 or not isinstance(body.get("data"), dict):
            raise RailwayError(f"HTTP {status} from Railway")
        return typing.cast(dict[str, typing.Any], body["data"])

    async def instance(self, environment_id: str, service_id: str) -> Instance:
        answer = await self._call(INSTANCE, {"environmentId": environment_id, "serviceId": service_id})
        return _parsed(self._instance_from)(answer.get("serviceInstance"), environment_id, service_id)

    async def poll(self, environment_id: str, service_id: str, now: datetime.datetime) -> tuple[Instance, Usage]:
        """The instance and its usage in one request (one spend of the token's budget; and a
        rate limit cannot leave a poll with one half and not the other)."""
        answer = await self._call(POLL, {"environmentId": environment_id, "serviceId": service_id,
                                         **_window(now)})
        return _poll_answer(answer, environment_id, service_id)

    @staticmethod
    def _instance_from(data: object, environment_id: str, service_id: str) -> Instance:
        if not isinstance(data, dict):
            raise RailwayError(f"Railway knows no service {service_id} in environment {environment_id}")
        deployment = data.get("latestDeployment")
        deployment = deployment if isinstance(deployment, dict) else {}
        replicas = data.get("numReplicas")
        if replicas is not None:
            try:  # JSON's int only, and a count a workload can have (10**400 is not one)
                replicas = numbers.integer(replicas if not isinstance(replicas, str) else None, 0, MAX_REPLICAS)
            except numbers.NumberError:
                raise RailwayError("malformed answer: numReplicas is not a count") from None
        name, deployment_id, status = data.get("serviceName"), deployment.get("id"), deployment.get("status")
        return Instance(name if isinstance(name, str) and name else service_id, replicas,
                        deployment_id if isinstance(deployment_id, str) else None,
                        status if isinstance(status, str) else None,
                        railway_regions.from_meta(deployment.get("meta")))

    async def environment(self, project_id: str, environment_id: str) -> tuple[str, list[ServiceSummary]]:
        """The environment's name and its services (a malformed entry is an error, not a guess)."""
        data = (await self._call(ENVIRONMENT, {"environmentId": environment_id, "projectId": project_id})).get("environment")
        return _parsed(self._environment_from)(data, project_id, environment_id)

    @staticmethod
    def _environment_from(data: object, project_id: str, environment_id: str) -> tuple[str, list[ServiceSummary]]:
        if not isinstance(data, dict):
            raise RailwayError(f"Railway knows no environment {environment_id} in project {project_id}")
        instances = data.get("serviceInstances")
        edges = instances.get("edges") if isinstance(instances, dict) else None
        if not isinstance(edges, list):
            raise RailwayError("malformed answer: serviceInstances is not a list")
        services = []
        for edge in edges:
            node = edge.get("node") if isinstance(edge, dict) else None
            if not isinstance(node, dict) or not isinstance(node.get("serviceId"), str) or not isinstance(
                    node.get("serviceName"), str):
                raise RailwayError("malformed answer: a service instance without id or name")
            replicas, timeout, path = node.get("numReplicas"), node.get("healthcheckTimeout"), node.get("healthcheckPath")
            domains: dict[str, typing.Any] = node["domains"] if isinstance(node.get("domains"), dict) else {}
            names = tuple(d["domain"] for kind in ("customDomains", "serviceDomains") for d in domains.get(kind) or []
                          if isinstance(d, dict) and isinstance(d.get("domain"), str))
            services.append(ServiceSummary(
                node["serviceId"], node["serviceName"], _count(replicas, 0, MAX_REPLICAS),
                path if isinstance(path, str) and path.startswith("/") else None,
                _count(timeout, 1, 86400), names))
        return str(data.get("name") or environment_id), services

    async def set_replicas(self, environment_id: str, service_id: str, replicas: int,
                           regions: typing.Mapping[str, int] | None = None) -> None:
        """Railway applies instance settings with a deploy: update, then redeploy. With several
        regions the count goes per region (`regions`, the whole map), never to numReplicas,
        which would fold them into one."""
        ids = {"environmentId": environment_id, "serviceId": service_id}
        if regions:
            await self._call(SET_REGIONS, {**ids, "multiRegionConfig": {
                region: {"numReplicas": count} for region, count in sorted(regions.items())}})
        else:
            await self._call(SET_REPLICAS, {**ids, "replicas": replicas})

    async def configured(self, environment_id: str, service: ServiceSummary) -> ServiceSummary:
        """The service with its instance's limits and pre-deploy command (for `railway import`);
        limits Railway does not report stay unset."""
        observed = await self.config(environment_id, service.service_id, True)
        return dataclasses.replace(service, memory_gb=observed.memory_gb if observed.limits_known else None,
                                   vcpus=observed.vcpus if observed.limits_known else None,
                                   pre_deploy_command=observed.pre_deploy_command)

    async def config(self, environment_id: str, service_id: str, limits: bool) -> railway_config.Observed:
        """The instance's configuration as Railway reports it (its limits only when `limits`)."""
        answer = await self._call(CONFIG, {"environmentId": environment_id, "serviceId": service_id, "limits": limits})
        return _parsed(_config_of)(answer, service_id, limits)

    async def configure(self, environment_id: str, service_id: str, instance: typing.Mapping[str, typing.Any],
                        limits: typing.Mapping[str, float]) -> None:
        """Sends the instance settings and limits that differ (nothing when neither does)."""
        if not instance and not limits:
            return
        ids = {"environmentId": environment_id, "serviceId": service_id}
        await self._call(CONFIGURE, {**ids, "input": dict(instance), "limits": {**ids, **limits},
                                     "update": bool(instance), "resize": bool(limits)})

    async def rollback(self, environment_id: str, service_id: str, failed_id: str) -> str:
        """Roll the failed deployment back to the newest earlier one Railway can roll back to;
        its id, or "" when the failed one is no longer the newest (a rollback, ours or anyone's,
        or a new deploy came after it: nothing to do, so a repeated intent never rolls back twice)."""
        answer = await self._call(DEPLOYMENTS, {"environmentId": environment_id, "serviceId": service_id})
        deployments = _parsed(_deployments)(answer.get("deployments"))
        if not deployments or deployments[0]["id"] != failed_id:
            return ""
        earlier = next((d for d in deployments[1:] if d["canRollback"] is True), None)
        if earlier is None:
            raise RailwayError(f"no deployment before {failed_id} can be rolled back to")
        await self._call(ROLLBACK, {"id": earlier["id"]})
        return str(earlier["id"])

    async def usage(self, environment_id: str, service_id: str, now: datetime.datetime) -> Usage:
        return _parsed(_usage_of)(await self._call(METRICS, {"environmentId": environment_id, "serviceId": service_id,
                                                             **_window(now)}))


def _malformed(error: Exception) -> typing.NoReturn:
    raise RailwayError(f"malformed answer: {boundary.describe(error)}") from None


def _parsed(parse: F) -> F:
    """`parse` inside the request's boundary: whatever an answer makes it raise is this
    request's RailwayError (one service's `10**400` once stopped every service's poll)."""
    return boundary.contained("parsing a Railway answer", _malformed, (RailwayError,))(parse)


@boundary.contained("parsing a Railway answer", _malformed, (RailwayError,))
def _poll_answer(answer: typing.Mapping[str, typing.Any], environment_id: str, service_id: str) -> tuple[Instance, Usage]:
    return RailwayClient._instance_from(answer.get("serviceInstance"), environment_id, service_id), _usage_of(answer)


def _config_of(answer: typing.Mapping[str, typing.Any], service_id: str, limits: bool) -> railway_config.Observed:
    """A malformed setting reads as unset (and is then sent again: Railway's answer shows it);
    limits that are not finite numbers read as unknown (nothing is sent for them)."""
    data = answer.get("serviceInstance")
    if not isinstance(data, dict):
        raise RailwayError(f"Railway knows no service {service_id}")
    path, timeout, command = data.get("healthcheckPath"), data.get("healthcheckTimeout"), data.get("preDeployCommand")
    if isinstance(command, str):
        command = [command]  # a JSON field: one command may come as a string
    commands = (tuple(command) if isinstance(command, list) and all(isinstance(c, str) for c in command)
                and len(command) <= 64 else None)
    memory = vcpus = None
    known = False
    if limits:
        merged = answer.get("serviceInstanceLimits")
        if isinstance(merged, dict):
            memory, vcpus = _finite(merged.get("memoryGB")), _finite(merged.get("vCPUs"))
            known = memory is not None and vcpus is not None
    sleep = data.get("sleepApplication")
    return railway_config.Observed(path if isinstance(path, str) else None, _count(timeout, 0, 86400),
                                   commands or None, memory, vcpus, known,
                                   sleep if isinstance(sleep, bool) else None)  # anything else reads as unset


def _deployments(connection: typing.Any) -> list[dict[str, typing.Any]]:
    """Newest first (by createdAt, whatever order the answer came in); a malformed entry is an
    error, not a guess (the newest must be known for certain before rolling back)."""
    edges = connection.get("edges") if isinstance(connection, dict) else None
    if not isinstance(edges, list):
        raise RailwayError("malformed answer: deployments is not a list")
    found = []
    for edge in edges:
        node = edge.get("node") if isinstance(edge, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get("id"), str) or not isinstance(node.get("createdAt"), str):
            raise RailwayError("malformed answer: a deployment without id or creation time")
        created = timestamps.or_none(node["createdAt"])
        if created is None:
            raise RailwayError("malformed answer: a deployment's creation time is not a time")
        found.append({**node, "created": created})
    return sorted(found, key=lambda d: d["created"], reverse=True)


def _window(now: datetime.datetime) -> dict[str, str]:
    return {"startDate": timestamps.to_status(now - datetime.timedelta(minutes=5)), "endDate": timestamps.to_status(now)}


def _usage_of(results: typing.Mapping[str, typing.Any]) -> Usage:
    metrics = results.get("metrics")
    if not isinstance(metrics, list):
        raise RailwayError("malformed answer: metrics is not a list")
    latency, errors, http_at = http_from(results.get("httpDurationMetrics"), results.get("httpMetricsGroupedByStatus"))
    return dataclasses.replace(usage_from(metrics), latency_p95=latency, error_rate=errors, http_sampled_at=http_at)


def usage_from(results: typing.Sequence[typing.Mapping[str, typing.Any]]) -> Usage:
    """Percent of limit from the latest CPU/memory usage and limit samples."""
    latest: dict[str, tuple[int, float]] = {}
    for result in results:
        if not isinstance(result, dict) or not isinstance(result.get("values"), list):
            continue  # a malformed measurement reads as absent
        points = [point for value in result["values"] if (point := _point(value)) is not None]
        if points:
            latest[str(result.get("measurement"))] = max(points)

    def percent(usage: str, limit: str) -> float | None:
        if usage not in latest or limit not in latest or latest[limit][1] <= 0:
            return None
        # Finite parts can still overflow (1e308 / 1e-300): a result past float's range is absent.
        return numbers.finite_or_none(round(100 * latest[usage][1] / latest[limit][1], 3))

    stamps = [ts for ts, _ in latest.values()]
    sampled = numbers.epoch(max(stamps)) if stamps else None
    return Usage(percent("CPU_USAGE", "CPU_LIMIT"), percent("MEMORY_USAGE_GB", "MEMORY_LIMIT_GB"), sampled)


def http_from(
    durations: typing.Any, by_status: typing.Any,
) -> tuple[float | None, float | None, datetime.datetime | None]:
    """(p95 ms, percent of 5xx, time) of the latest step that has data; malformed parts read as absent."""
    latency_points = [(ts, p95) for sample in _samples(durations)
                      if (ts := _int(sample.get("ts"))) is not None and (p95 := _finite(sample.get("p95"))) is not None]
    counts: dict[int, list[float]] = {}  # ts -> [all, 5xx]
    groups = by_status if isinstance(by_status, list) else []
    for group in groups:
        code = _int(group.get("statusCode")) if isinstance(group, dict) else None
        if code is None:
            continue
        for sample in _samples(group):
            ts, value = _int(sample.get("ts")), _finite(sample.get("value"))
            if ts is None or value is None or value < 0:
                continue
            total = counts.setdefault(ts, [0.0, 0.0])
            total[0] += value
            if code >= 500:
                total[1] += value
    latency = max(latency_points)[1] if latency_points else None
    errors = None
    if counts:
        all_requests, failed = counts[max(counts)]
        # Sums of finite counts can overflow to inf (and inf / inf is NaN): then it is absent.
        errors = numbers.finite_or_none(round(100 * failed / all_requests, 3) if all_requests > 0 else 0.0)
    stamps = [ts for ts, _ in latency_points] + list(counts)
    at = numbers.epoch(max(stamps)) if stamps else None
    return latency, errors, at


def _samples(result: typing.Any) -> list[typing.Mapping[str, typing.Any]]:
    samples = result.get("samples") if isinstance(result, dict) else None
    return [sample for sample in samples if isinstance(sample, dict)] if isinstance(samples, list) else []


def _int(value: typing.Any) -> int | None:
    """A JSON int that is a time datetime can hold (ts) or a status code; else absent."""
    if isinstance(value, str):
        return None  # JSON's int only (core/numbers also reads decimal texts: not here)
    try:
        return numbers.integer(value, 0, int(numbers.MAX_EPOCH))
    except numbers.NumberError:
        return None


def _count(value: typing.Any, lo: int, hi: int) -> int | None:
    """A JSON int in [lo, hi] (a count, a timeout), else absent: `10**400` replicas imported
    as maxReplicas would be an object the API server refuses."""
    try:
        return numbers.integer(value if not isinstance(value, str) else None, lo, hi)
    except numbers.NumberError:
        return None


def _finite(value: typing.Any) -> float | None:
    """A JSON number (never text) that is finite; `10**400` is absent, not an OverflowError."""
    return None if isinstance(value, str) else numbers.finite_or_none(value)


def _point(value: typing.Any) -> tuple[int, float] | None:
    """(ts, value) of a well-formed sample: finite numbers, a timestamp within datetime's range."""
    if not isinstance(value, dict):
        return None
    try:
        ts = int(numbers.finite(value.get("ts"), 0.0, numbers.MAX_EPOCH, "ts"))
        return ts, numbers.finite(value.get("value"))
    except numbers.NumberError:
        return None
