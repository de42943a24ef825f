"""A local Railway: a GraphQL server that validates every document against Railway's
published schema (`localcluster/railway_schema/`, MIT, origin in its LICENSE; graphql-core) and simulates the state the
operator reads and changes: service instances (replicas, per region when `regions` is set),
their deployments (statuses, `canRollback`, rollbacks) and their metrics.

Documents that do not validate are answered with GraphQL errors, as Railway would, and
recorded in `invalid` so tests can assert there were none. POST /control sets a service's
CPU demand (`loadVcpu`, spread over its replicas), memory usage, HTTP latency and errors,
starts a deployment (`deploy`: its status and the error rate its code answers with) or
moves the latest deployment to a status (`deploymentStatus`).

Every request is logged in `requests` (when, the client's User-Agent, the operation, the
mutation's service and replica count, how it was answered), and every replica count a deploy
applied in `changes` (when, service, before, after), so a soak can tell who changed what, when.
`partial_every` / `partial_kind` answer every n-th request partially (PARTIAL_KINDS): cut off
mid-body or reset after the headers (after executing it), JSON cut short, `errors` only (nothing
executed), or `data` with its last field null and `errors` (that field not executed).

Deployments as Railway keeps them: the newest is `latestDeployment` whatever its status; a
deployment that succeeds replaces the active one (which becomes REMOVED) and its code is what
answers (`errorPercent`); one that FAILED leaves the active one serving; a rollback is a new
deployment of an earlier one's code. Only deployments that once succeeded can be rolled back to.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import gzip
import json
import pathlib
import re
import socket
import struct
import threading
import time
import typing
import uuid

import graphql
from aiohttp import web

from localcluster import cluster as cluster_module

# Partial answers the simulator can give (`partial_kind`): what a client must never take in.
PARTIAL_KINDS = ("cut-body", "reset-after-headers", "truncated-json", "errors-only", "null-data")
REQUEST_LOG_KEPT = 100_000  # an hour's soak sends ~20,000; past this the oldest go
OPERATION = re.compile(r"\s*(query|mutation)\s+(\w+)")  # a document's operation type and name

# The project's own copy (a clone alone must run its tests): origin and licence beside it.
SCHEMA_PATH = pathlib.Path(__file__).resolve().parent / "railway_schema" / "schema.json.gz"


def load_schema(path: pathlib.Path = SCHEMA_PATH) -> graphql.GraphQLSchema:
    data = json.loads(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_text())
    data = data.get("data", data)
    # The published schema deprecates Team.id while Node.id is not: graphql-core refuses that
    # one finding; clearing the deprecation accepts it.
    for type_ in data["__schema"]["types"]:
        if type_["name"] == "Team":
            for field in type_.get("fields") or []:
                if field["name"] == "id":
                    field["isDeprecated"], field["deprecationReason"] = False, None
    return graphql.build_client_schema(data)


@dataclasses.dataclass
class Service:
    """A service whose demand (`load_vcpu`) spreads over its replicas, so scaling relieves it."""

    name: str
    replicas: int = 1
    pending_replicas: int | None = None  # set by serviceInstanceUpdate, applied by the next deploy
    cpu_limit: float = 1.0  # vCPU per replica
    memory_limit_gb: float = 1.0  # per replica
    load_vcpu: float = 0.4
    memory_usage_gb: float = 0.3  # per replica
    p95_ms: float = 120.0  # Railway's HTTP metrics: p95 latency of the last step
    requests_per_step: float = 600.0
    error_percent: float = 0.0  # share of 5xx answers
    deployments: list[dict[str, typing.Any]] = dataclasses.field(default_factory=list)
    healthcheck_path: str | None = None
    healthcheck_timeout: int | None = None
    domains: tuple[str, ...] = ()
    regions: dict[str, int] = dataclasses.field(default_factory=dict)  # {}: legacy single region
    pending_regions: dict[str, int] | None = None
    pre_deploy_command: list[str] | None = None
    sleep_application: bool = False  # Serverless: Railway sleeps the service when idle, wakes it on a request
    limits_error: str = ""  # serviceInstanceLimits answers this GraphQL error (a Railway that cannot tell)

    @property
    def cpu_usage(self) -> float:
        """Average vCPU per replica, as Railway reports a service."""
        return self.load_vcpu / max(self.replicas, 1)


class RailwaySimulator:
    def __init__(self, token: str, environment_id: str = "env-1", environment_name: str = "production") -> None:
        self.schema = load_schema()
        self.token = token
        self.environment_id = environment_id
        self.environment_name = environment_name
        self.services: dict[str, Service] = {}
        # Where metric timestamps and deployment times come from: a test that compares runs
        # made seconds apart gives it a fixed instant.
        self.clock: typing.Callable[[], float] = time.time
        self.documents: list[str] = []
        self.invalid: list[tuple[str, list[str]]] = []
        self.port = cluster_module.free_port()
        # Injected rate limiting: every `refuse_every`-th request is answered 429 with
        # Retry-After `retry_after` (0: off). `arrivals` records each request's time and whether
        # it was refused, so tests can measure the client's request rate.
        self.refuse_every = 0
        self.retry_after = 2
        self.arrivals: list[tuple[float, bool]] = []
        # Every deploymentRollback executed: (time, service id, deployment rolled back to). The
        # answer to one can be held back `rollback_answer_delay` seconds after it took effect
        # (a caller that dies meanwhile never learns it succeeded).
        self.rollbacks: list[tuple[float, str, str]] = []
        # Injected GraphQL errors inside an HTTP 200: the next `failing_metrics` requests that ask
        # for metrics get an error on that field and the rest of their data (a partial answer).
        self.failing_metrics = 0
        self.rollback_answer_delay = 0.0
        # Injected refusal of configuration mutations (serviceInstanceUpdate of anything but
        # replicas, serviceInstanceLimitsUpdate): the GraphQL error's message, or "" (accepted).
        self.refuse_config = ""
        # Injected partial answers: every `partial_every`-th request (0: off) is answered as
        # `partial_kind` (one of PARTIAL_KINDS) says.
        self.partial_every = 0
        self.partial_kind = "cut-body"
        self._seen = 0  # requests counted for partial_every
        # The request log and the replica changes (see the module's text); bounded.
        self.requests: list[dict[str, typing.Any]] = []
        self.changes: list[tuple[float, str, int, int]] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._loop: typing.Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/graphql/v2"

    def add_service(self, service_id: str, name: str, replicas: int = 1, **settings: typing.Any) -> Service:
        service = Service(name, replicas, **settings)
        if service.regions:
            service.replicas = sum(service.regions.values())
        self.services[service_id] = service
        self._deploy(service_id, "SUCCESS", service.error_percent)
        return service

    def _deploy(self, service_id: str, status: str, error_percent: float, rollback_of: str | None = None
                ) -> dict[str, typing.Any]:
        service = self.services[service_id]
        deployment = {"id": str(uuid.uuid4()), "status": status, "serviceId": service_id, "createdAt": self.clock(),
                      "canRollback": False, "errorPercent": error_percent, "rollbackOf": rollback_of}
        service.deployments.append(deployment)
        if status == "SUCCESS":
            self._activate(service, deployment)
        return deployment

    @staticmethod
    def _activate(service: Service, deployment: dict[str, typing.Any]) -> None:
        for other in service.deployments:
            if other is not deployment and other["status"] == "SUCCESS":
                other["status"] = "REMOVED"
        deployment["status"], deployment["canRollback"] = "SUCCESS", True
        service.error_percent = deployment["errorPercent"]

    @staticmethod
    def _meta(service: Service) -> dict[str, typing.Any]:
        """The deployment manifest as Railway's CLI reads it: per-region counts when the service
        has regions, else only the legacy count."""
        deploy: dict[str, typing.Any] = {"numReplicas": service.replicas}
        if service.regions:
            deploy["multiRegionConfig"] = {region: {"numReplicas": n} for region, n in service.regions.items()}
        return {"serviceManifest": {"deploy": deploy}}

    def _active(self, service: Service) -> dict[str, typing.Any]:
        return next((d for d in reversed(service.deployments) if d["status"] == "SUCCESS"), service.deployments[-1])

    # -- resolvers (graphql-core's default resolver calls these with info and the arguments) --
    def _instance(self, environmentId: str, serviceId: str) -> Service:  # noqa: N803 - GraphQL names
        if environmentId != self.environment_id or serviceId not in self.services:
            raise graphql.GraphQLError("ServiceInstance not found")
        return self.services[serviceId]

    def root(self) -> dict[str, typing.Any]:
        simulator = self

        def service_instance(_: typing.Any, __: typing.Any, environmentId: str, serviceId: str) -> dict:  # noqa: N803
            service = simulator._instance(environmentId, serviceId)
            latest = service.deployments[-1]
            return {"serviceName": service.name, "numReplicas": service.replicas,
                    "healthcheckPath": service.healthcheck_path, "healthcheckTimeout": service.healthcheck_timeout,
                    "preDeployCommand": service.pre_deploy_command, "sleepApplication": service.sleep_application,
                    "latestDeployment": {"id": latest["id"], "status": latest["status"],
                                         "meta": simulator._meta(service), "createdAt": _iso(latest["createdAt"])}}

        def limits(_: typing.Any, __: typing.Any, environmentId: str, serviceId: str) -> dict:  # noqa: N803
            service = simulator._instance(environmentId, serviceId)
            if service.limits_error:
                raise graphql.GraphQLError(service.limits_error)
            return {"memoryGB": service.memory_limit_gb, "vCPUs": service.cpu_limit}

        def limits_update(_: typing.Any, __: typing.Any, input: dict) -> bool:  # noqa: A002
            service = simulator._instance(input["environmentId"], input["serviceId"])
            if simulator.refuse_config:
                raise graphql.GraphQLError(simulator.refuse_config)
            # Per replica, as the metrics report the limits (CPU_LIMIT, MEMORY_LIMIT_GB).
            if input.get("memoryGB") is not None:
                service.memory_limit_gb = float(input["memoryGB"])
            if input.get("vCPUs") is not None:
                service.cpu_limit = float(input["vCPUs"])
            return True

        def deployments(_: typing.Any, __: typing.Any, input: dict, first: int | None = None,  # noqa: A002
                        **___: typing.Any) -> dict:
            service = simulator._instance(input.get("environmentId") or "", input.get("serviceId") or "")
            newest = list(reversed(service.deployments))[:first or 100]
            return {"edges": [{"cursor": d["id"], "node": {
                "id": d["id"], "status": d["status"], "canRollback": d["canRollback"],
                "createdAt": _iso(d["createdAt"])}}
                for d in newest], "pageInfo": {"hasNextPage": False, "hasPreviousPage": False}}

        def rollback(_: typing.Any, __: typing.Any, id: str) -> bool:  # noqa: A002
            found = [(service_id, d) for service_id, service in simulator.services.items()
                     for d in service.deployments if d["id"] == id]
            if not found or not found[0][1]["canRollback"]:
                raise graphql.GraphQLError("Deployment cannot be rolled back to")
            service_id, target = found[0]
            simulator._deploy(service_id, "SUCCESS", target["errorPercent"], rollback_of=id)
            simulator.rollbacks.append((time.monotonic(), service_id, id))
            return True

        def metrics(_: typing.Any, __: typing.Any, measurements: list[str], startDate: typing.Any,  # noqa: N803
                    environmentId: str | None = None, serviceId: str | None = None, **___: typing.Any) -> list:
            service = simulator._instance(environmentId or "", serviceId or "")
            if simulator.failing_metrics > 0:
                simulator.failing_metrics -= 1
                raise graphql.GraphQLError("Problem processing request")
            now = int(simulator.clock())
            values = {"CPU_USAGE": service.cpu_usage, "CPU_LIMIT": service.cpu_limit,
                      "MEMORY_USAGE_GB": service.memory_usage_gb, "MEMORY_LIMIT_GB": service.memory_limit_gb}
            return [{"measurement": m, "values": [{"ts": now - 30, "value": values.get(m, 0.0)},
                                                    {"ts": now, "value": values.get(m, 0.0)}]}
                    for m in measurements]

        def steps(now: int) -> list[int]:
            return [now - now % 60 - 60, now - now % 60]

        def http_duration(_: typing.Any, __: typing.Any, environmentId: str, serviceId: str,  # noqa: N803
                          **___: typing.Any) -> dict:
            service = simulator._instance(environmentId, serviceId)
            return {"samples": [{"ts": ts, "p50": service.p95_ms / 2, "p90": service.p95_ms * 0.9, "p95": service.p95_ms,
                                 "p99": service.p95_ms * 1.5} for ts in steps(int(simulator.clock()))]}

        def http_by_status(_: typing.Any, __: typing.Any, environmentId: str, serviceId: str,  # noqa: N803
                           **___: typing.Any) -> list:
            service = simulator._instance(environmentId, serviceId)
            failed = service.requests_per_step * service.error_percent / 100
            stamps = steps(int(simulator.clock()))
            return [{"statusCode": code, "samples": [{"ts": ts, "value": value} for ts in stamps]}
                    for code, value in ((200, service.requests_per_step - failed), (503, failed))]

        def update(_: typing.Any, __: typing.Any, environmentId: str, serviceId: str, input: dict) -> bool:  # noqa: A002, N803
            service = simulator._instance(environmentId, serviceId)
            settings = {"healthcheckPath", "healthcheckTimeout", "preDeployCommand", "sleepApplication"} & set(input)
            if settings and simulator.refuse_config:
                raise graphql.GraphQLError(simulator.refuse_config)
            # Deploy-time settings: reported at once, used by the next deploy.
            if "healthcheckPath" in settings:
                service.healthcheck_path = input["healthcheckPath"]
            if "healthcheckTimeout" in settings:
                service.healthcheck_timeout = input["healthcheckTimeout"]
            if "preDeployCommand" in settings:
                service.pre_deploy_command = input["preDeployCommand"]
            if "sleepApplication" in settings:
                service.sleep_application = bool(input["sleepApplication"])
            if input.get("numReplicas") is not None:
                service.pending_replicas = int(input["numReplicas"])
            if input.get("multiRegionConfig") is not None:
                service.pending_regions = _regions(service.regions, input["multiRegionConfig"])
            return True

        def redeploy(_: typing.Any, __: typing.Any, environmentId: str, serviceId: str) -> bool:  # noqa: N803
            service = simulator._instance(environmentId, serviceId)
            before = service.replicas
            if service.pending_replicas is not None:
                service.replicas, service.pending_replicas = service.pending_replicas, None
            if service.pending_regions is not None:
                service.regions, service.pending_regions = service.pending_regions, None
                service.replicas = sum(service.regions.values())
            if service.replicas != before:
                simulator.changes.append((time.time(), serviceId, before, service.replicas))
                del simulator.changes[:-REQUEST_LOG_KEPT]
            simulator._deploy(serviceId, "SUCCESS", simulator._active(service)["errorPercent"])
            return True

        def environment(_: typing.Any, __: typing.Any, id: str, projectId: str | None = None) -> dict:  # noqa: A002, N803
            if id != simulator.environment_id:
                raise graphql.GraphQLError("Environment not found")
            return {"name": simulator.environment_name, "serviceInstances": {"edges": [
                {"node": {"serviceId": service_id, "serviceName": service.name, "numReplicas": service.replicas,
                          "healthcheckPath": service.healthcheck_path, "healthcheckTimeout": service.healthcheck_timeout,
                          "domains": {"serviceDomains": [{"domain": d} for d in service.domains], "customDomains": []}}}
                for service_id, service in simulator.services.items()]}}

        return {"serviceInstance": service_instance, "metrics": metrics, "serviceInstanceUpdate": update,
                "serviceInstanceLimits": limits, "serviceInstanceLimitsUpdate": limits_update,
                "environment": environment,
                "httpDurationMetrics": http_duration, "httpMetricsGroupedByStatus": http_by_status,
                "serviceInstanceRedeploy": redeploy, "deployments": deployments, "deploymentRollback": rollback}

    # -- HTTP ------------------------------------------------------------------------------
    def _log(self, agent: str, body: typing.Any, answer: str) -> None:
        """One request into the log: who (User-Agent), when, which operation, what it asked."""
        body = body if isinstance(body, dict) else {}
        source = body.get("query") if isinstance(body.get("query"), str) else ""
        variables = body.get("variables") if isinstance(body.get("variables"), dict) else {}
        named = OPERATION.match(source)
        entry: dict[str, typing.Any] = {"at": time.time(), "agent": agent, "answer": answer,
                                        "operation": named.group(2) if named else "",
                                        "mutation": bool(named and named.group(1) == "mutation"),
                                        "service": variables.get("serviceId")}
        if variables.get("replicas") is not None:
            entry["replicas"] = variables["replicas"]
        if isinstance(variables.get("multiRegionConfig"), dict):
            entry["regions"] = variables["multiRegionConfig"]
        with self._lock:
            self.requests.append(entry)
            del self.requests[:-REQUEST_LOG_KEPT]

    async def _graphql(self, request: web.Request) -> web.StreamResponse:
        agent = request.headers.get("User-Agent", "")[:120]
        try:
            body = json.loads(await request.read())
        except ValueError:
            body = None
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self._log(agent, body, "401")
            return web.json_response({"errors": [{"message": "Not Authorized"}]}, status=401)
        with self._lock:
            refused = bool(self.refuse_every) and (len(self.arrivals) + 1) % self.refuse_every == 0
            self.arrivals.append((time.monotonic(), refused))
            self._seen += 0 if refused else 1
            partial = (self.partial_kind if not refused and self.partial_every and self._seen % self.partial_every == 0
                       else "")
        if refused:  # before anything is executed, as a rate limiter in front of the API would
            self._log(agent, body, "429")
            return web.json_response({"errors": [{"message": "Too many requests"}]}, status=429,
                                     headers={"Retry-After": str(self.retry_after)})
        if not isinstance(body, dict):
            self._log(agent, body, "400")
            return web.json_response({"errors": [{"message": "the body is not a JSON object"}]}, status=400)
        source = body.get("query") or ""
        with self._lock:
            self.documents.append(source)
        try:
            document = graphql.parse(source)
        except graphql.GraphQLError as error:
            self.invalid.append((source, [error.message]))
            self._log(agent, body, "invalid")
            return web.json_response({"errors": [{"message": error.message}]}, status=400)
        problems = graphql.validate(self.schema, document)
        if problems:
            self.invalid.append((source, [p.message for p in problems]))
            self._log(agent, body, "invalid")
            return web.json_response({"errors": [{"message": p.message} for p in problems]}, status=400)
        self._log(agent, body, partial or "ok")
        if partial == "errors-only":  # refused before anything was executed (GraphQL: no `data`)
            return web.json_response({"errors": [{"message": "Problem processing request"}]})
        variables = body.get("variables") or {}
        fields = self.root()
        keys = _root_keys(document, variables)
        mutation = any(isinstance(d, graphql.OperationDefinitionNode) and d.operation == graphql.OperationType.MUTATION
                       for d in document.definitions)
        # null-data: the last root field fails (a mutation's is never executed) and is null.
        failing = keys[-1] if partial == "null-data" and keys and mutation else None
        resolved: dict[str, typing.Any] = {}

        def resolve(root: typing.Any, info: graphql.GraphQLResolveInfo, **args: typing.Any) -> typing.Any:
            if info.parent_type in (self.schema.query_type, self.schema.mutation_type):
                if info.path.key == failing:
                    raise graphql.GraphQLError("Problem processing request")
                value = resolved[str(info.path.key)] = fields[info.field_name](root, info, **args)
                return value
            return graphql.default_field_resolver(root, info, **args)

        with self._lock:
            rollbacks = len(self.rollbacks)
            result = graphql.execute(self.schema, document, variable_values=variables, field_resolver=resolve)
            rolled_back = len(self.rollbacks) > rollbacks
        if rolled_back and self.rollback_answer_delay:
            await asyncio.sleep(self.rollback_answer_delay)
        payload: dict[str, typing.Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [{"message": e.message} for e in result.errors]
        if partial == "null-data" and keys:
            # The rest of the data and the last field null (a mutation's results are Booleans).
            data = ({key: resolved.get(key) for key in keys} if mutation else dict(result.data or {}))
            data[keys[-1]] = None
            payload = {"data": data, "errors": [{"message": "Problem processing request", "path": [keys[-1]]}]}
        raw = json.dumps(payload).encode()
        if partial == "truncated-json":  # a whole HTTP answer whose JSON stops half-way
            return web.Response(body=raw[: len(raw) // 2], content_type="application/json")
        if partial in ("cut-body", "reset-after-headers"):  # executed; its answer never arrives whole
            answer = web.StreamResponse()
            answer.content_type, answer.content_length = "application/json", len(raw)
            await answer.prepare(request)
            await answer.write(raw[: len(raw) // 2] if partial == "cut-body" else b"")
            transport = request.transport
            if transport is not None:
                if partial == "reset-after-headers":
                    sock = transport.get_extra_info("socket")
                    if sock is not None:  # RST instead of FIN
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    transport.abort()
                else:
                    transport.close()
            return answer
        return web.json_response(payload)

    async def _control(self, request: web.Request) -> web.Response:
        body = await request.json()
        service = self.services[body["serviceId"]]
        service.load_vcpu = float(body.get("loadVcpu", service.load_vcpu))
        service.memory_usage_gb = float(body.get("memoryGb", service.memory_usage_gb))
        service.p95_ms = float(body.get("p95Ms", service.p95_ms))
        service.error_percent = float(body.get("errorPercent", service.error_percent))
        with self._lock:
            if "deploy" in body:
                deploy = body["deploy"]
                self._deploy(body["serviceId"], deploy.get("status", "SUCCESS"),
                             float(deploy.get("errorPercent", self._active(service)["errorPercent"])))
            if "deploymentStatus" in body:
                latest = service.deployments[-1]
                if body["deploymentStatus"] == "SUCCESS":
                    self._activate(service, latest)
                else:
                    latest["status"] = body["deploymentStatus"]
        return web.json_response({"ok": True, "latestDeployment": service.deployments[-1]["id"]})

    def start(self) -> "RailwaySimulator":
        ready = threading.Event()

        def serve() -> None:
            self._loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/graphql/v2", self._graphql)
            app.router.add_post("/control", self._control)
            self._runner = web.AppRunner(app, access_log=None)
            self._loop.run_until_complete(self._runner.setup())
            self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
            ready.set()
            self._loop.run_forever()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat()


def _root_keys(document: graphql.DocumentNode, variables: typing.Mapping[str, typing.Any]) -> list[str]:
    """The response keys of the operation's root fields that run (@include/@skip applied)."""
    operation = next(d for d in document.definitions if isinstance(d, graphql.OperationDefinitionNode))
    def condition(directive: graphql.DirectiveNode) -> bool:
        given = next((a.value for a in directive.arguments or () if a.name.value == "if"), None)
        if isinstance(given, graphql.VariableNode):
            return bool(variables.get(given.name.value))
        return isinstance(given, graphql.BooleanValueNode) and given.value

    keys = []
    for node in operation.selection_set.selections:
        if not isinstance(node, graphql.FieldNode):
            continue
        directives = {d.name.value: condition(d) for d in node.directives or ()}
        if directives.get("include") is False or directives.get("skip") is True:
            continue
        keys.append(node.alias.value if node.alias else node.name.value)
    return keys


def _regions(current: dict[str, int], config: typing.Any) -> dict[str, int]:
    """A multiRegionConfig merged over the current regions, as Railway applies one: a region
    mapped to null is removed; anything malformed is refused (never half applied)."""
    if not isinstance(config, dict):
        raise graphql.GraphQLError("multiRegionConfig must be an object")
    merged = dict(current)
    for region, entry in config.items():
        if entry is None:
            merged.pop(region, None)
            continue
        count = entry.get("numReplicas") if isinstance(entry, dict) else None
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 50:
            raise graphql.GraphQLError(f"invalid numReplicas for region {region}")
        merged[region] = count
    merged = {region: n for region, n in merged.items() if n > 0}
    if sum(merged.values()) > 50:
        raise graphql.GraphQLError("a maximum of 50 total replicas is supported across all regions")
    return merged


# The platform's production environment (its four-service table): id, name, replicas, memory GB
# and vCPUs per replica, health path, public. Railway's deploy health check has the platform's
# 10 s timeout (railway.production.toml); web and the API gateway have public domains.
PLATFORM_SERVICES = (("svc-web", "web", 3, 4.0, 4.0, "/api/health", True),
                     ("svc-api", "api", 2, 2.0, 2.0, "/health", True),
                     ("svc-worker", "worker", 2, 2.0, 2.0, "/worker/health", False),
                     ("svc-scheduler", "scheduler", 1, 1.0, 1.0, "/scheduler/health", False))
# The replica range of each, which Railway does not hold: `capliquify railway import --replicas`.
PLATFORM_RANGES = ("web=2-10", "api=2-5", "worker=1-5", "scheduler=1-2")


def add_platform_services(simulator: RailwaySimulator) -> None:
    """The platform's production environment as PLATFORM_SERVICES says."""
    for service_id, name, replicas, memory_gb, vcpus, path, public in PLATFORM_SERVICES:
        simulator.add_service(service_id, name, replicas=replicas, memory_limit_gb=memory_gb, cpu_limit=vcpus,
                              healthcheck_path=path, healthcheck_timeout=10,
                              domains=(f"{name}-production.up.railway.app",) if public else ())
