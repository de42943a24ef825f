"""MonitoredService: a workload, its health checks, its metrics and its rollout guard."""

from __future__ import annotations

import datetime
import enum
import re
import typing

import pydantic

from controller.api import common

NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class KubernetesTarget(common.ApiModel):
    kind: typing.Literal["Deployment", "StatefulSet"] = common.field("Kind of the workload.", default="Deployment")
    name: str = common.field("Name of the workload in this namespace.", min_length=1, max_length=253,
                             pattern=common.OBJECT_NAME)


class RailwayResources(common.ApiModel):
    """The instance's resources per replica: Railway's serviceInstanceLimitsUpdate (memoryGB, vCPUs)."""

    model_config = pydantic.ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        common.cel("has(self.memoryGB) || has(self.vCPUs)", "resources needs memoryGB or vCPUs"),
    ]})

    memoryGB: float | None = common.field(
        "Memory of each replica in GB; Railway's current limit is left as it is when unset.", default=None, gt=0,
        le=1024)
    vCPUs: float | None = common.field(
        "vCPUs of each replica; Railway's current limit is left as it is when unset.", default=None, gt=0, le=256)

    @pydantic.model_validator(mode="after")
    def _something(self) -> "RailwayResources":
        if self.memoryGB is None and self.vCPUs is None:
            raise ValueError("resources needs memoryGB or vCPUs")  # the CEL rule's twin
        return self


class RailwayDeployHealthCheck(common.ApiModel):
    """Railway's own health check of a new deployment (the instance's healthcheckPath and
    healthcheckTimeout): the deployment goes live only once the path answers 200."""

    path: str = common.field("Path Railway requests on a new deployment, e.g. /health.", min_length=1,
                             max_length=1024, pattern=r"^/[!-~]*$")
    timeoutSeconds: int | None = common.field(
        "How long Railway waits for the path to answer 200 before it fails the deployment; Railway's current "
        "value is left as it is when unset.", default=None, ge=1, le=3600)


class RailwayTarget(common.ApiModel):
    projectId: str = common.field("Railway project ID.", min_length=1, max_length=64)
    environmentId: str = common.field("Railway environment ID.", min_length=1, max_length=64)
    serviceId: str = common.field("Railway service ID.", min_length=1, max_length=64)
    tokenSecretRef: common.SecretKeyRef = common.field("Secret holding a Railway API token.")
    endpoint: str | None = common.field(
        "GraphQL endpoint; the operator's --railway-endpoint when unset.", default=None, max_length=2048,
        pattern=common.HTTP_URL,
    )
    # The instance's configuration, kept as written (only what differs from Railway's is sent);
    # an unset field is not managed. Applied with the service's next deploy, as Railway applies
    # instance settings.
    resources: RailwayResources | None = common.field("The instance's memory and vCPUs per replica.", default=None)
    deployHealthCheck: RailwayDeployHealthCheck | None = common.field(
        "Railway's health check of each new deployment (a deployment that never passes it fails).", default=None)
    preDeployCommand: list[typing.Annotated[str, pydantic.StringConstraints(
        min_length=1, max_length=1024, pattern=r"^[^\r\n\x00]*$")]] | None = common.field(
        "Commands Railway runs before each deployment starts (e.g. the database migration); one that fails "
        "fails the deployment.", default=None, min_length=1, max_length=8)
    sleepApplication: bool | None = common.field(
        "Railway's Serverless: true lets Railway sleep the service after 10 minutes without outbound traffic and "
        "wake it on the next request (how a Railway service scales to zero: Railway has no zero replicas); false "
        "keeps it awake.", default=None)


class Target(common.ApiModel):
    """Exactly one of kubernetes / railway."""

    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel(
                    "has(self.kubernetes) != has(self.railway)",
                    "target needs exactly one of kubernetes or railway",
                )
            ]
        }
    )

    kubernetes: KubernetesTarget | None = common.field("A Deployment or StatefulSet.", default=None)
    railway: RailwayTarget | None = common.field("A Railway service, for teams off-cluster.", default=None)

    @pydantic.model_validator(mode="after")
    def _one_target(self) -> "Target":
        common.require_exactly_one(self, "kubernetes", "railway")
        return self


# An HTTP header name (RFC 9110 token); the headers the client itself writes are refused, as
# a probe that set them would lie about its own request.
HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$"
RESERVED_HEADERS = ("host", "content-length", "transfer-encoding", "connection", "te", "upgrade")
DNS_NAME = r"^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$"
# A host to connect to: a DNS name or an IP literal (which the egress guard judges before any lookup).
HOST = r"^([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*|\[?[0-9A-Fa-f:.]+\]?)$"


class Header(common.ApiModel):
    """One request header: a literal value, or a key of the check's Secret (never logged)."""

    model_config = pydantic.ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        common.cel("has(self.value) != has(self.secretKey)", "a header needs exactly one of value or secretKey"),
        common.cel("!self.name.matches('(?i)^(" + "|".join(RESERVED_HEADERS) + ")$')",
                   "this header is the HTTP client's own", ".name"),
    ]})

    name: str = common.field("Header name, e.g. Authorization.", min_length=1, max_length=128, pattern=HEADER_NAME)
    value: str | None = common.field("A literal value (visible to whoever reads the object).", default=None,
                                     max_length=1024, pattern=r"^[^\r\n\x00]*$")
    secretKey: str | None = common.field(
        "Key of the check's Secret (secretName) whose value is sent; it is never logged or written to status.",
        default=None, min_length=1, max_length=253)

    @pydantic.model_validator(mode="after")
    def _one_value(self) -> "Header":
        common.require_exactly_one(self, "value", "secretKey")
        if self.name.lower() in RESERVED_HEADERS:
            raise ValueError("this header is the HTTP client's own")
        return self


class Tls(common.ApiModel):
    caSecretKey: str | None = common.field(
        "Key of the check's Secret (secretName) holding the PEM CA bundle the server's certificate must chain to; "
        "the system's CAs when unset.", default=None, min_length=1, max_length=253)
    serverName: str | None = common.field(
        "Name the certificate must carry, also sent as SNI; the URL's (or host's) name when unset.", default=None,
        max_length=253, pattern=DNS_NAME)


class HttpCheck(common.ApiModel):
    model_config = pydantic.ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        common.cel("!has(self.tls) || self.url.startsWith('https://')", "tls needs an https URL", ".tls"),
    ]})

    url: str = common.field(
        "URL to request; http or https.", min_length=1, max_length=2048, pattern=common.HTTP_URL
    )
    method: typing.Literal["GET", "HEAD", "POST", "OPTIONS"] = common.field(
        "HTTP method (a POST sends no body).", default="GET")
    headers: list[Header] = common.field(
        "Request headers.", default_factory=list, max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    tls: Tls | None = common.field("TLS settings of an https URL.", default=None)
    expectStatus: list[typing.Annotated[int, pydantic.Field(ge=100, le=599)]] = common.field(
        "Status codes counted as success (HTTP statuses, 100-599).", default_factory=lambda: [200], min_length=1, max_length=20
    )
    bodyContains: str | None = common.field("Substring the body must contain.", default=None, max_length=1024)
    timeoutSeconds: int = common.field("Per-request timeout.", default=5, ge=1, le=60)

    @pydantic.model_validator(mode="after")
    def _tls_on_https(self) -> "HttpCheck":
        if self.tls is not None and not self.url.startswith("https://"):
            raise ValueError("tls needs an https URL")
        return self


class TcpCheck(common.ApiModel):
    host: str = common.field("Host name or IP address to connect to.", min_length=1, max_length=253, pattern=HOST)
    port: int = common.field("TCP port.", ge=1, le=65535)
    timeoutSeconds: int = common.field("Connect timeout.", default=5, ge=1, le=60)


class GrpcCheck(common.ApiModel):
    host: str = common.field("Host name or IP address of the gRPC server.", min_length=1, max_length=253, pattern=HOST)
    port: int = common.field("Port of the gRPC server.", ge=1, le=65535)
    service: str = common.field(
        "Service name asked about (grpc.health.v1.Health/Check); empty asks about the server as a whole.",
        default="", max_length=253, pattern=r"^[A-Za-z0-9_.\-/]*$")
    tls: Tls | None = common.field("Connect with TLS (plaintext HTTP/2 when unset).", default=None)
    timeoutSeconds: int = common.field("Deadline of the call.", default=5, ge=1, le=60)


class HealthCheck(common.ApiModel):
    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel("[has(self.http), has(self.tcp), has(self.grpc)].filter(x, x).size() == 1",
                           "a health check needs exactly one of http, tcp, grpc"),
                common.cel(
                    "!has(self.http) || self.http.timeoutSeconds <= self.intervalSeconds",
                    "http.timeoutSeconds must not exceed intervalSeconds",
                    ".http.timeoutSeconds",
                ),
                common.cel("!has(self.tcp) || self.tcp.timeoutSeconds <= self.intervalSeconds",
                           "tcp.timeoutSeconds must not exceed intervalSeconds", ".tcp.timeoutSeconds"),
                common.cel("!has(self.grpc) || self.grpc.timeoutSeconds <= self.intervalSeconds",
                           "grpc.timeoutSeconds must not exceed intervalSeconds", ".grpc.timeoutSeconds"),
                common.cel("has(self.secretName) || ((!has(self.http) || ((!has(self.http.headers) || "
                           "self.http.headers.all(h, !has(h.secretKey))) && (!has(self.http.tls) || "
                           "!has(self.http.tls.caSecretKey)))) && (!has(self.grpc) || !has(self.grpc.tls) || "
                           "!has(self.grpc.tls.caSecretKey)))",
                           "secretKey and caSecretKey need secretName", ".secretName"),
            ]
        }
    )

    name: str = common.field("Name of the check, unique in the service.", min_length=1, max_length=63, pattern=NAME_PATTERN)
    http: HttpCheck | None = common.field("An HTTP request.", default=None)
    tcp: TcpCheck | None = common.field("A TCP connection (it passes when the connection is accepted).", default=None)
    grpc: GrpcCheck | None = common.field(
        "A gRPC health check (grpc.health.v1.Health/Check over HTTP/2); it passes when the answer is SERVING.",
        default=None)
    secretName: str | None = common.field(
        "Secret in this namespace the check's header values (headers[].secretKey) and CA bundle (tls.caSecretKey) "
        "are read from; its author must be allowed to read it.", default=None, max_length=253, pattern=common.OBJECT_NAME)
    intervalSeconds: int = common.field("Time between probes.", default=60, ge=1, le=3600)
    failureThreshold: int = common.field("Consecutive failures before the check is failing.", default=3, ge=1, le=100)
    successThreshold: int = common.field("Consecutive successes before it is passing again.", default=1, ge=1, le=100)
    startPeriodSeconds: int = common.field(
        "Failures within this long of the first probe do not count until the check first passes (a slow start).",
        default=0, ge=0, le=3600,
    )

    @pydantic.model_validator(mode="after")
    def _one_kind(self) -> "HealthCheck":
        common.require_exactly_one(self, "http", "tcp", "grpc")
        if self.timeout_seconds > self.intervalSeconds:
            kind = "http" if self.http else "tcp" if self.tcp else "grpc"
            raise ValueError(f"{kind}.timeoutSeconds must not exceed intervalSeconds")
        tls = self.http.tls if self.http else self.grpc.tls if self.grpc else None
        if self.secretName is None and ((self.http and any(h.secretKey for h in self.http.headers))
                                        or (tls is not None and tls.caSecretKey)):
            raise ValueError("secretKey and caSecretKey need secretName")
        return self

    @property
    def timeout_seconds(self) -> int:
        probe = self.http or self.tcp or self.grpc
        return probe.timeoutSeconds if probe is not None else 5


class Probes(common.ApiModel):
    """Probes derived from a health check and kept in place with server-side apply.

    GitOps users who declare probes in Git leave `manage` false (the default); see
    docs/monitoredservice.md for tools that should ignore the operator's field manager.
    """

    manage: bool = common.field(
        "Derive readiness and liveness probes of the target's container from a health check.", default=False
    )
    container: str | None = common.field(
        "Container whose probes are managed; the first container when unset.", default=None, max_length=63
    )
    check: str | None = common.field(
        "Health check the probes are derived from; the first one when unset.", default=None, max_length=63
    )
    port: int | None = common.field(
        "Container port the probes call; the health check URL's port when unset.", default=None, ge=1, le=65535
    )
    liveness: bool = common.field(
        "Also manage the liveness probe (failureThreshold doubled, so a slow pod is taken out of "
        "rotation well before it is restarted).", default=True
    )


class PrometheusSource(common.ApiModel):
    url: str = common.field("Prometheus base URL.", min_length=1, max_length=2048, pattern=common.HTTP_URL)
    authSecretRef: common.SecretKeyRef | None = common.field(
        "Secret with a bearer token sent as Authorization.", default=None
    )


class Queries(common.ApiModel):
    """PromQL per metric; each defaults to a query for common exporters when unset.

    A query returns one series per pod or one value; `$namespace` and `$workload` are
    replaced before it is sent.
    """

    cpu: str | None = common.field(
        "CPU in percent of request over the workload's pods (the default query sums usage and requests of every "
        "pod the workload label matches, ready or not).", default=None, max_length=4096)
    memory: str | None = common.field("Memory in percent of request.", default=None, max_length=4096)
    latencyP95: str | None = common.field("p95 latency in milliseconds.", default=None, max_length=4096)
    errorRate: str | None = common.field("Errors in percent of requests.", default=None, max_length=4096)
    requestRate: str | None = common.field("Requests per second.", default=None, max_length=4096)
    requestQueue: str | None = common.field("Requests waiting.", default=None, max_length=4096)


class CustomQuery(common.ApiModel):
    name: str = common.field(
        "Metric name, referenced by ScalingPolicy and AlertPolicy as custom.",
        min_length=1,
        max_length=63,
        pattern=r"^[a-zA-Z_][a-zA-Z0-9_]*$",
    )
    query: str = common.field("PromQL returning one value.", min_length=1, max_length=4096)
    unit: str = common.field("Unit shown in status and messages.", default="", max_length=32)


class MetricSourceName(str, enum.Enum):
    PROMETHEUS = "prometheus"
    METRICS_API = "metrics-api"
    RAILWAY = "railway"


class Metrics(common.ApiModel):
    source: MetricSourceName | None = common.field(
        "Where cpu and memory come from: prometheus, metrics-api (metrics.k8s.io, as HPA reads them; a "
        "kubernetes target only) or railway (Railway's own metrics, latencyP95 and errorRate too; a railway target "
        "only). Unset: Railway's own for a railway target, else Prometheus when one is configured, else the "
        "metrics API. Every other metric is read from Prometheus.", default=None)
    prometheus: PrometheusSource | None = common.field(
        "Prometheus to query; the operator's --prometheus-url when unset, the metrics API for cpu/memory when neither.",
        default=None,
    )
    queries: Queries = common.field("Overrides of the default queries.", default_factory=Queries)
    custom: list[CustomQuery] = common.field(
        "Extra named queries.",
        default_factory=list,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


class Slo(common.ApiModel):
    availabilityPercent: float = common.field("Target availability of the health checks.", default=99.9, gt=0, le=100)
    latencyP95Ms: float | None = common.field(
        "Target p95 latency in milliseconds, measured by the health checks: 95 % of passing probes must answer "
        "within it. Reported as status.latencyWithinSloPercent; AlertPolicy rules on latencyBurnRate alert on "
        "its error budget.", default=None, gt=0)
    windowSeconds: int = common.field(
        "Window over which availability is computed.", default=3600, ge=60, le=30 * 86400
    )


class Gate(common.ApiModel):
    """A verification gate: a group of health checks (endpoints) that must meet a criterion
    within a time of the revision becoming available, or the rollout fails."""

    name: str = common.field("Name of the gate, unique in the analysis.", min_length=1, max_length=63, pattern=NAME_PATTERN)
    checks: list[typing.Annotated[str, pydantic.StringConstraints(max_length=63)]] = common.field(
        "The group's endpoints: names of spec.healthChecks.", min_length=1, max_length=16)
    timeoutSeconds: int = common.field(
        "The criterion must hold within this long of the revision becoming available (at most the analysis "
        "window); once it has, the gate has passed.", ge=1, le=86400)
    healthyPercent: int = common.field(
        "Share of the group's checks that must be passing: 100 is all healthy, 80 admits one failing of five.",
        default=100, ge=1, le=100)
    maxLatencyMs: float | None = common.field(
        "Also every passing check's latest answer must come within this many milliseconds (a latency bound).",
        default=None, gt=0)


class Analysis(common.ApiModel):
    model_config = pydantic.ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        common.cel("!has(self.gates) || self.gates.all(g, g.timeoutSeconds <= self.windowSeconds)",
                   "a gate's timeoutSeconds must not exceed windowSeconds (gates are judged during the window)", ".gates"),
    ]})

    windowSeconds: int = common.field("How long a completed rollout is watched.", default=300, ge=0, le=86400)
    maxErrorRatePercent: float = common.field("Fail when error rate exceeds this.", default=5, ge=0, le=100)
    maxLatencyP95Ms: float = common.field("Fail when p95 latency exceeds this.", default=2000, gt=0)
    requireHealthyChecks: bool = common.field("Fail when health checks fail during the window.", default=True)
    gates: list[Gate] = common.field(
        "Verification gates: groups of health checks, each with its timeout and criterion; a gate not passed "
        "by its timeout fails the rollout (and rolls it back with autoRollback).", default_factory=list, max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})

    @pydantic.model_validator(mode="after")
    def _gates_in_window(self) -> "Analysis":
        if any(gate.timeoutSeconds > self.windowSeconds for gate in self.gates):
            raise ValueError("a gate's timeoutSeconds must not exceed windowSeconds (gates are judged during the window)")
        return self


# A hook's name goes into its Job's name (with the service's and a digest: core/hooks.job_name).
HOOK_NAME_MAX = 30
ENV_NAME = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"  # what the API server accepts for an env var name
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
# No backslash: it is also written inside a CEL string literal.
LABEL_KEY = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"


class HookEnv(common.ApiModel):
    model_config = pydantic.ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        common.cel("has(self.value) != has(self.secretKeyRef)", "an env var needs exactly one of value or secretKeyRef"),
    ]})

    name: str = common.field("Variable name.", min_length=1, max_length=128, pattern=ENV_NAME)
    value: str | None = common.field("A literal value (visible to whoever reads the object).", default=None,
                                     max_length=4096)
    secretKeyRef: common.SecretKeyRef | None = common.field(
        "A key of a Secret in this namespace, read by the kubelet when the pod starts (the operator never reads "
        "it).", default=None)

    @pydantic.model_validator(mode="after")
    def _one_value(self) -> "HookEnv":
        common.require_exactly_one(self, "value", "secretKeyRef")
        return self


class HookResources(common.ApiModel):
    requests: dict[typing.Literal["cpu", "memory", "ephemeral-storage"], typing.Annotated[
        str, pydantic.StringConstraints(max_length=32, pattern=QUANTITY)]] = common.field(
        "Requests, e.g. {cpu: 100m, memory: 128Mi}.", default_factory=dict, max_length=3)
    limits: dict[typing.Literal["cpu", "memory", "ephemeral-storage"], typing.Annotated[
        str, pydantic.StringConstraints(max_length=32, pattern=QUANTITY)]] = common.field(
        "Limits.", default_factory=dict, max_length=3)


class HookContainer(common.ApiModel):
    name: str = common.field("Container name.", min_length=1, max_length=63, pattern=NAME_PATTERN)
    image: str = common.field("Image to run.", min_length=1, max_length=512, pattern=r"^[^\s]+$")
    command: list[typing.Annotated[str, pydantic.StringConstraints(max_length=4096)]] = common.field(
        "Entrypoint (the image's when empty).", default_factory=list, max_length=32)
    args: list[typing.Annotated[str, pydantic.StringConstraints(max_length=4096)]] = common.field(
        "Arguments.", default_factory=list, max_length=32)
    env: list[HookEnv] = common.field(
        "Environment variables.", default_factory=list, max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    workingDir: str | None = common.field("Working directory.", default=None, max_length=1024)
    resources: HookResources = common.field("Requests and limits.", default_factory=HookResources)


class HookJob(common.ApiModel):
    """The subset of a batch/v1 JobSpec a hook may set; the operator adds the rest (restartPolicy
    Never, activeDeadlineSeconds from timeoutSeconds, a TTL, labels and an owner reference)."""

    # Key patterns as CEL (a structural schema has no patternProperties), with their pydantic twin.
    model_config = pydantic.ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        common.cel(f"!has(self.podLabels) || self.podLabels.all(k, k.matches('{LABEL_KEY}'))",
                   "a pod label key is [prefix/]name (a DNS subdomain, then letters, digits, '-', '_', '.')", ".podLabels"),
        common.cel(f"!has(self.podAnnotations) || self.podAnnotations.all(k, k.matches('{LABEL_KEY}'))",
                   "a pod annotation key is [prefix/]name (a DNS subdomain, then letters, digits, '-', '_', '.')",
                   ".podAnnotations"),
    ]})

    containers: list[HookContainer] = common.field(
        "The pod's containers; the Job succeeds when they all exit 0.", min_length=1, max_length=4,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    serviceAccountName: str | None = common.field(
        "ServiceAccount of this namespace the pod runs as; the namespace's default one when unset (never the "
        "operator's).", default=None, max_length=253, pattern=common.OBJECT_NAME)
    backoffLimit: int = common.field("Retries of a failed pod before the Job fails.", default=0, ge=0, le=6)
    podLabels: dict[typing.Annotated[str, pydantic.StringConstraints(max_length=253)],
                    typing.Annotated[str, pydantic.StringConstraints(max_length=63)]] = common.field(
        "Labels of the pod (the operator's own are added).", default_factory=dict, max_length=16)
    podAnnotations: dict[typing.Annotated[str, pydantic.StringConstraints(max_length=253)],
                         typing.Annotated[str, pydantic.StringConstraints(max_length=1024)]] = common.field(
        "Annotations of the pod.", default_factory=dict, max_length=16)

    @pydantic.model_validator(mode="after")
    def _keys(self) -> "HookJob":
        for what, keys in (("label", self.podLabels), ("annotation", self.podAnnotations)):
            if any(re.fullmatch(LABEL_KEY[1:-1], key) is None for key in keys):
                raise ValueError(f"a pod {what} key is [prefix/]name (a DNS subdomain, then letters, digits, '-', '_', '.')")
        return self


class Hook(common.ApiModel):
    name: str = common.field("Name of the hook, unique among the service's hooks.", min_length=1,
                             max_length=HOOK_NAME_MAX, pattern=NAME_PATTERN)
    job: HookJob = common.field("The Job run for each new revision.")
    timeoutSeconds: int = common.field(
        "The Job must succeed within this long of the revision becoming available (at most the analysis "
        "window); it is also the Job's activeDeadlineSeconds.", default=300, ge=1, le=3600)
    failRollout: bool = common.field(
        "A failure or timeout fails the rollout (and rolls it back with autoRollback); false: it is reported only.",
        default=True)


class Hooks(common.ApiModel):
    """Jobs run for each new revision of a Kubernetes target (docs/monitoredservice.md, "Hooks")."""

    postDeploy: list[Hook] = common.field(
        "Run once per new revision when it is fully available, during the analysis window; the revision passes "
        "only when each has succeeded.", default_factory=list, max_length=4,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})
    preDeploy: list[Hook] = common.field(
        "Run for each new pod template before it rolls out: the operator keeps the Deployment paused and "
        "unpauses it for a template only once each of these has succeeded; a failure restores the approved "
        "template (docs/monitoredservice.md, \"Pre-deploy hooks\").", default_factory=list, max_length=4,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})


class Rollout(common.ApiModel):
    model_config = pydantic.ConfigDict(json_schema_extra={"x-kubernetes-validations": [
        common.cel("!has(self.hooks) || !has(self.hooks.postDeploy) || self.hooks.postDeploy.all(h, h.timeoutSeconds <= "
                   "(has(self.analysis) && has(self.analysis.windowSeconds) ? self.analysis.windowSeconds : 300))",
                   "a hook's timeoutSeconds must not exceed analysis.windowSeconds (hooks run during the window)",
                   ".hooks.postDeploy"),
    ]})

    autoRollback: bool = common.field(
        "Roll back a failed rollout to the previous revision (a Railway service: to the newest earlier "
        "deployment Railway can roll back to).", default=False)
    progressDeadlineSeconds: int = common.field(
        "A rollout that does not progress within this time has failed.", default=600, ge=30, le=86400
    )
    analysis: Analysis = common.field("Post-rollout analysis window.", default_factory=Analysis)
    hooks: Hooks = common.field("Jobs run for each new revision (a Kubernetes target only).", default_factory=Hooks)

    @pydantic.model_validator(mode="after")
    def _hooks_in_window(self) -> "Rollout":
        if any(hook.timeoutSeconds > self.analysis.windowSeconds for hook in self.hooks.postDeploy):
            raise ValueError("a hook's timeoutSeconds must not exceed analysis.windowSeconds (hooks run during the window)")
        return self


class MonitoredServiceSpec(common.ApiModel):
    model_config = pydantic.ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                common.cel(
                    "!has(self.probes) || !self.probes.manage || has(self.target.kubernetes)",
                    "probes.manage requires a kubernetes target",
                    ".probes.manage",
                ),
                common.cel(
                    "!has(self.probes) || !self.probes.manage || (has(self.healthChecks) && self.healthChecks.size() > 0)",
                    "probes.manage requires at least one healthCheck to derive probes from",
                    ".probes.manage",
                ),
                common.cel(
                    "!has(self.metrics) || !has(self.metrics.source) || self.metrics.source != 'metrics-api' "
                    "|| has(self.target.kubernetes)",
                    "metrics.source metrics-api requires a kubernetes target",
                    ".metrics.source",
                ),
                common.cel(
                    "!has(self.metrics) || !has(self.metrics.source) || self.metrics.source != 'railway' "
                    "|| has(self.target.railway)",
                    "metrics.source railway requires a railway target",
                    ".metrics.source",
                ),
                common.cel(
                    "!has(self.rollout) || !has(self.rollout.analysis) || !has(self.rollout.analysis.gates) || "
                    "self.rollout.analysis.gates.all(g, g.checks.all(c, has(self.healthChecks) && "
                    "self.healthChecks.exists(h, h.name == c)))",
                    "every gate's checks must name healthChecks",
                    ".rollout.analysis.gates",
                ),
                common.cel(
                    "!has(self.rollout) || !has(self.rollout.hooks) || ((!has(self.rollout.hooks.postDeploy) || "
                    "self.rollout.hooks.postDeploy.size() == 0) && (!has(self.rollout.hooks.preDeploy) || "
                    "self.rollout.hooks.preDeploy.size() == 0)) || (has(self.target.kubernetes) && "
                    "(!has(self.target.kubernetes.kind) || self.target.kubernetes.kind == 'Deployment'))",
                    "rollout.hooks run Jobs for a Deployment's revisions: they need a kubernetes Deployment target",
                    ".rollout.hooks",
                ),
                common.cel(
                    "!has(self.probes) || !has(self.probes.check) || "
                    "(has(self.healthChecks) && self.healthChecks.exists(c, c.name == self.probes.check))",
                    "probes.check must name one of healthChecks",
                    ".probes.check",
                ),
            ]
        }
    )

    target: Target = common.field("The workload that is watched.")
    healthChecks: list[HealthCheck] = common.field(
        "Operator-side active checks.",
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    healthyPercent: int = common.field(
        "The service is Healthy while at least this share of its health checks pass (a quorum of "
        "endpoints: 80 admits one failing check of five); Degraded below it while any passes; Unhealthy when none "
        "does.", default=100, ge=1, le=100)
    probes: Probes = common.field("Reconcile container probes of a Kubernetes target.", default_factory=Probes)
    metrics: Metrics = common.field("Where the service's metrics come from.", default_factory=Metrics)
    slo: Slo = common.field("Service level objectives.", default_factory=Slo)
    rollout: Rollout = common.field("How rollouts are guarded.", default_factory=Rollout)

    @pydantic.model_validator(mode="after")
    def _probes_derivable(self) -> "MonitoredServiceSpec":
        # Twins of the CEL rules above, so `capliquify validate` and the core refuse the same.
        if self.probes.manage and self.target.kubernetes is None:
            raise ValueError("probes.manage requires a kubernetes target")
        if self.probes.manage and not self.healthChecks:
            raise ValueError("probes.manage requires at least one healthCheck to derive probes from")
        if self.probes.check is not None and self.probes.check not in {c.name for c in self.healthChecks}:
            raise ValueError("probes.check must name one of healthChecks")
        if any(name not in {c.name for c in self.healthChecks} for gate in self.rollout.analysis.gates for name in gate.checks):
            raise ValueError("every gate's checks must name healthChecks")
        hooked = self.rollout.hooks.postDeploy or self.rollout.hooks.preDeploy
        if hooked and (self.target.kubernetes is None or self.target.kubernetes.kind != "Deployment"):
            raise ValueError("rollout.hooks run Jobs for a Deployment's revisions: they need a kubernetes Deployment target")
        if self.metrics.source == MetricSourceName.METRICS_API and self.target.kubernetes is None:
            raise ValueError("metrics.source metrics-api requires a kubernetes target")
        if self.metrics.source == MetricSourceName.RAILWAY and self.target.railway is None:
            raise ValueError("metrics.source railway requires a railway target")
        return self


class Health(str, enum.Enum):
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"
    UNHEALTHY = "Unhealthy"
    UNKNOWN = "Unknown"


class CheckStatus(common.ApiModel):
    """Written on transitions only; live probe results are on the operator's /metrics."""

    name: str = common.field("Check name.")
    healthy: bool | None = common.field("Passing per thresholds; absent before the first verdict.", default=None)
    lastTransitionTime: datetime.datetime | None = common.field("When `healthy` last changed.", default=None)
    message: str = common.field("Outcome of the probe that caused the last transition.", default="", max_length=1024)


class MetricsSnapshot(common.ApiModel):
    cpu: float | None = common.field("Percent of request.", default=None)
    memory: float | None = common.field("Percent of request.", default=None)
    latencyP95: float | None = common.field("Milliseconds.", default=None)
    errorRate: float | None = common.field("Percent of requests.", default=None)
    requestRate: float | None = common.field("Requests per second.", default=None)
    requestQueue: float | None = common.field("Requests waiting.", default=None)
    custom: dict[str, float] = common.field("Custom queries by name.", default_factory=dict, max_length=16)
    sampledAt: datetime.datetime | None = common.field("When the values were sampled.", default=None)
    source: MetricSourceName | None = common.field("The source cpu and memory were read from.", default=None)


class ReplicaCounts(common.ApiModel):
    desired: int | None = common.field("Replicas the workload asks for.", default=None, ge=0)
    ready: int | None = common.field("Replicas that are ready.", default=None, ge=0)


class RolloutPhase(str, enum.Enum):
    PROGRESSING = "Progressing"
    ANALYZING = "Analyzing"
    HEALTHY = "Healthy"
    FAILED = "Failed"
    ROLLED_BACK = "RolledBack"


class RolloutRecord(common.ApiModel):
    revision: str = common.field("The revision: a Deployment's revision number, or a Railway deployment's id.")
    phase: RolloutPhase = common.field("Outcome.")
    reason: str = common.field("Why.", default="", max_length=1024)
    time: datetime.datetime = common.field("When the phase was reached.")


class HookPhase(str, enum.Enum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class HookStatus(common.ApiModel):
    name: str = common.field("The hook (spec.rollout.hooks.postDeploy[].name).")
    job: str = common.field("The Job's name in this namespace (fixed per service, workload, revision and hook).")
    phase: HookPhase = common.field("Pending (decided, not yet seen created), Running, Succeeded or Failed.")
    reason: str = common.field("Why the phase.", default="", max_length=1024)
    startedAt: datetime.datetime | None = common.field("When the hook was decided.", default=None)


class PreDeployPhase(str, enum.Enum):
    APPROVED = "Approved"
    GATING = "Gating"
    RELEASING = "Releasing"
    FAILED = "Failed"


Digest = typing.Annotated[str, pydantic.StringConstraints(max_length=64)]


class PreDeployStatus(common.ApiModel):
    phase: PreDeployPhase | None = common.field(
        "Approved (the Deployment is on an approved template and kept paused), Gating (a new template waits "
        "for its pre-deploy hooks), Releasing (an approved template rolls out, unpaused), Failed (a template's "
        "hook failed; the approved template is restored).", default=None)
    reason: str = common.field("Why the phase.", default="", max_length=1024)
    approved: list[Digest] = common.field(
        "sha256 digests of approved pod templates (the canonical JSON of spec.template), newest first; the "
        "first is the one the Deployment is kept on.", default_factory=list, max_length=10)
    candidate: Digest | None = common.field("The digest of the template waiting for its hooks.", default=None)
    deployment: str | None = common.field(
        "The uid of the Deployment the approvals are of (another one, recreated or re-targeted, is adopted anew).",
        default=None, max_length=64)
    hooks: list[HookStatus] = common.field(
        "The candidate's (or the last one's) hooks: each Job's name is recorded here before it is created.",
        default_factory=list, max_length=4)


class RolloutStatus(common.ApiModel):
    revision: str | None = common.field("Current revision.", default=None)
    phase: RolloutPhase | None = common.field("Phase of the current revision.", default=None)
    reason: str = common.field("Why the phase.", default="", max_length=1024)
    startedAt: datetime.datetime | None = common.field("When the current revision was first seen.", default=None)
    completedAt: datetime.datetime | None = common.field("When it became fully available.", default=None)
    rolledBackRevisions: list[str] = common.field(
        "Revisions already rolled back (never twice).", default_factory=list, max_length=20
    )
    rollbackRevisions: list[str] = common.field(
        "Revisions created by the operator's own rollbacks (a rollback is never rolled back).",
        default_factory=list, max_length=20,
    )
    pendingRollback: str | None = common.field(
        "A revision the operator has decided to roll back; written before acting, so a restart "
        "finishes the rollback instead of losing or repeating it.", default=None,
    )
    passedGates: list[typing.Annotated[str, pydantic.StringConstraints(max_length=63)]] = common.field(
        "Verification gates the current revision has passed (kept across a restart).", default_factory=list,
        max_length=8)
    hooks: list[HookStatus] = common.field(
        "The current revision's hooks: each Job's name is recorded here before it is created, so a restart or "
        "a new leader finds it instead of creating another.", default_factory=list, max_length=4)
    history: list[RolloutRecord] = common.field("Recent outcomes, newest first.", default_factory=list, max_length=10)
    preDeploy: PreDeployStatus | None = common.field(
        "The pre-deploy gate (spec.rollout.hooks.preDeploy): the approved templates and the candidate's hooks.",
        default=None)


class ProbesStatus(common.ApiModel):
    container: str = common.field("Container whose probes are managed.")
    desired: str = common.field("Digest of the probes the operator applies (changes when the spec does).")
    appliedGeneration: int | None = common.field(
        "Generation of the workload after the operator's last apply; a later change that undoes the "
        "probes counts as a revert.", default=None)
    reverts: int = common.field("Times another writer undid these probes.", default=0, ge=0)
    stopped: bool = common.field(
        "The operator stopped managing these probes after repeated reverts (it does not fight).", default=False)


class MonitoredServiceStatus(common.BaseStatus):
    target: str | None = common.field("The watched workload, e.g. Deployment/web.", default=None)
    health: Health = common.field("Healthy, Degraded, Unhealthy or Unknown.", default=Health.UNKNOWN)
    checks: list[CheckStatus] = common.field("Per-check state.", default_factory=list, max_length=16)
    availabilityPercent: float | None = common.field(
        "Share of passing probes over slo.windowSeconds.", default=None, ge=0, le=100
    )
    latencyWithinSloPercent: float | None = common.field(
        "With slo.latencyP95Ms: share of passing probes over slo.windowSeconds that answered within it "
        "(the SLO holds at 95 or more).", default=None, ge=0, le=100)
    metrics: MetricsSnapshot | None = common.field("Latest metric values.", default=None)
    replicas: ReplicaCounts = common.field("Replica counts of the target.", default_factory=ReplicaCounts)
    rollout: RolloutStatus | None = common.field("Rollout guard state.", default=None)
    probes: ProbesStatus | None = common.field("Probe management state.", default=None)


class MonitoredService(common.ApiModel):
    spec: MonitoredServiceSpec = common.field("What is watched and how.")
    status: MonitoredServiceStatus = common.field("Observed state.", default_factory=MonitoredServiceStatus)


KIND = common.KindInfo(
    kind="MonitoredService",
    plural="monitoredservices",
    short_names=("msvc",),
    description="A workload, its health checks, the metrics that describe it and how its rollouts are guarded.",
    printer_columns=(
        common.PrinterColumn("Target", "string", ".status.target", "The watched workload."),
        common.PrinterColumn("Health", "string", ".status.health", "Healthy, Degraded, Unhealthy or Unknown."),
        common.PrinterColumn("Ready Replicas", "integer", ".status.replicas.ready", "Ready replicas of the target."),
        common.ready_column(),
        common.age_column(),
    ),
)
MODEL = MonitoredService
