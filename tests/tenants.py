"""Two tenants in one operator, for differential isolation tests (issue 21).

Tenant B is a well-behaved team: its Prometheus, health endpoint, receiver and Railway project
answer sensibly, and its objects are ordinary. Tenant A is whatever a test makes of it: every
byte its endpoints answer (status line, headers, body, pace) and every label and annotation on
its own Kubernetes objects. `run_rounds` builds the operator's real parts — the view, the
evaluation loop, the scaler with its batched Prometheus source, snapshots, the guard's health
checks and rollout guard with `rollout undo`, the alerter with its real notifiers, the Railway
watcher — and runs one of each round, as the operator does after taking the Lease. What
tenant B is told, written and sent in that run (`Outcome`) must not depend on tenant A.

What is not real here, and why: the API server's side of status patches, Events and Secret
reads is `RecordingApi` (they are what is compared, and a real API server would make every
example take seconds); Deployment and ReplicaSet reads for a rollback go to `KubeStub`, a
loopback server answering tenant A's objects as the API server would hand them over. Every
other peer is a real socket on loopback: B's Railway is the schema-checking local Railway.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import datetime
import json
import re
import threading
import typing

import kubernetes
from aiohttp import web

from controller import reasons
from controller.adapters import actuator
from controller.adapters import actuator_kubernetes
from controller.adapters import answers
from controller.adapters import egress
from controller.adapters import kubernetes_rollback
from controller.adapters import http_check
from controller.adapters import notifiers
from controller.adapters import notify
from controller.adapters import source_prometheus
from controller.core import platform_kubernetes
from controller.core import platform_railway
from controller.core import sources as core_sources
from controller.core import status as status_module
from controller.operator import alerter as alerter_module
from controller.operator import guard as guard_module
from controller.operator import loop
from controller.operator import pools
from controller.operator import railway as railway_module
from controller.operator import runtime as runtime_module
from controller.operator import scaler as scaler_module
from controller.operator import snapshots as snapshots_module
from controller.operator import sources as sources_module
from controller.operator import view as view_module
from localcluster import railway as railway_sim

A, B = "tenant-a", "tenant-b"
NOW = datetime.datetime(2026, 6, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
GROUP = "ops.capliquify.io/v1alpha1"
TOKEN = "t0ken-b"
ENVIRONMENT = "env-1"


# -- what tenant A does ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Answer:
    """One endpoint's whole behaviour: the raw bytes of its HTTP answer and their pace."""

    status: int = 200
    headers: tuple[tuple[str, str], ...] = (("Content-Type", "application/json"),)
    body: bytes = b"{}"
    delay: float = 0.0  # before the first byte
    drip: float = 0.0  # between bytes of the body
    hang: bool = False  # never answers (the client's deadline ends it)
    lie_length: int | None = None  # a Content-Length that is not the body's

    def raw(self) -> bytes:
        headers = [(k, v) for k, v in self.headers if k.lower() != "content-length"]
        length = len(self.body) if self.lie_length is None else self.lie_length
        head = f"HTTP/1.1 {self.status} X\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
        return (head + f"Content-Length: {length}\r\nConnection: close\r\n\r\n").encode("latin-1", "replace") + self.body


@dataclasses.dataclass(frozen=True)
class TenantA:
    prometheus: Answer = Answer()
    health: Answer = Answer()
    receiver: Answer = Answer()
    railway: Answer = Answer()
    kube_patch: Answer = Answer()  # the API server's answer to A's rollback patch
    deployment_annotations: tuple[tuple[str, str], ...] = ()
    deployment_labels: tuple[tuple[str, str], ...] = ()
    replica_set_annotations: tuple[tuple[tuple[str, str], ...], ...] = ()
    object_annotations: tuple[tuple[str, str], ...] = ()  # on A's three custom objects
    replicas: int = 2
    ready_replicas: int = 2


class RawServer:
    """A loopback server that answers every request with `answer.raw()`, paced as told."""

    def __init__(self) -> None:
        self.answer = Answer()
        self.requests = 0
        self._server: asyncio.base_events.Server | None = None
        self.url = ""

    async def start(self) -> "RawServer":
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answer = self.answer
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if length:
                await asyncio.wait_for(reader.readexactly(int(length.group(1))), 5)
            self.requests += 1
            if answer.hang:  # until the client gives up and closes
                await asyncio.wait_for(reader.read(), 60)
                return
            if answer.delay:
                await asyncio.sleep(answer.delay)
            raw = answer.raw()
            if answer.drip:
                cut = raw.index(b"\r\n\r\n") + 4
                writer.write(raw[:cut])
                for index in range(cut, len(raw), 64):
                    writer.write(raw[index:index + 64])
                    await writer.drain()
                    await asyncio.sleep(answer.drip)
            else:
                writer.write(raw)
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()


# -- tenant B's well-behaved peers ----------------------------------------------------------------

def prometheus_answer(namespace: str, value: str) -> bytes:
    """Every query answered for (namespace, web) with `value` at NOW."""
    return json.dumps({"status": "success", "data": {"resultType": "vector", "result": [
        {"metric": {"namespace": namespace, "workload": "web"}, "value": [NOW.timestamp(), value]}]}}).encode()


class Receiver:
    """B's webhook receiver: records every JSON body it is sent."""

    def __init__(self) -> None:
        self.bodies: list[typing.Any] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.json())
        return web.Response(text="ok")


class KubeStub:
    """Tenant A's Deployment and ReplicaSets as the API server hands them to `rollout undo`,
    and its answer to the rollback patch (any status, any body)."""

    def __init__(self) -> None:
        self.deployment: dict[str, typing.Any] = {}
        self.replica_sets: list[dict[str, typing.Any]] = []
        self.patch_answer = Answer()
        self.patches: list[tuple[str, str]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/apis/apps/v1/namespaces/{ns}/deployments/{name}", self._deployment)
        app.router.add_get("/apis/apps/v1/namespaces/{ns}/replicasets", self._replica_sets)
        app.router.add_patch("/apis/apps/v1/namespaces/{ns}/deployments/{name}", self._patch)
        return app

    async def _deployment(self, request: web.Request) -> web.Response:
        if request.match_info["ns"] != self.deployment["metadata"]["namespace"]:
            return web.json_response({"kind": "Status", "code": 404}, status=404)
        return web.json_response(self.deployment)

    async def _replica_sets(self, request: web.Request) -> web.Response:
        return web.json_response({"apiVersion": "apps/v1", "kind": "ReplicaSetList", "metadata": {},
                                  "items": self.replica_sets})

    async def _patch(self, request: web.Request) -> web.Response:
        self.patches.append((request.match_info["ns"], request.match_info["name"]))
        answer = self.patch_answer
        return web.Response(status=answer.status, body=answer.body, headers=dict(answer.headers))


# -- the API server's side of writes --------------------------------------------------------------

def merge_patch(target: typing.Any, patch: typing.Any) -> typing.Any:
    """RFC 7386, as the API server applies a merge patch to status."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


class RecordingApi:
    """Status patches, Events and Secret reads, recorded per namespace. A patch whose JSON the
    API server would refuse (a non-finite number) is refused here too, with its 422."""

    def __init__(self, view: view_module.View, secrets: dict[tuple[str, str], dict[str, str]],
                 refused: list[tuple[str, str, str]]) -> None:
        self.view, self.secrets, self.refused = view, secrets, refused
        self.patches: list[tuple[str, str, str, str]] = []
        self.events: list[tuple[str, str, str, str, str, str]] = []
        self._lock = threading.Lock()

    def patch_status(self, kind: str, namespace: str, name: str, patch: dict[str, typing.Any]) -> dict[str, typing.Any]:
        try:
            text = json.dumps(patch, sort_keys=True, allow_nan=False)
        except ValueError:
            self.refused.append((namespace, kind, name))
            raise kubernetes.client.ApiException(status=422, reason="non-finite number in status") from None
        with self._lock:
            self.patches.append((namespace, kind, name, text))
        obj = copy.deepcopy(self.view.objects[(kind, namespace, name)])
        obj["status"] = merge_patch(obj.get("status") or {}, patch)
        meta = obj["metadata"]
        meta["resourceVersion"] = str(int(meta.get("resourceVersion") or "1") + 1)
        return typing.cast(dict[str, typing.Any], obj)

    def create_event(self, obj: typing.Mapping[str, typing.Any], event: status_module.EventSpec,
                     now: datetime.datetime) -> None:
        meta = obj["metadata"]
        with self._lock:
            self.events.append((meta["namespace"], obj.get("kind", ""), meta["name"], event.type, event.reason,
                                event.message))

    def secret_keys(self, namespace: str, name: str) -> frozenset[str] | None:
        found = self.secrets.get((namespace, name))
        return frozenset(found) if found is not None else None

    def secret_value(self, namespace: str, name: str, key: str) -> str | None:
        return (self.secrets.get((namespace, name)) or {}).get(key)

    def current_uid(self, kind: str, namespace: str, name: str) -> str | None:
        obj = self.view.objects.get((kind, namespace, name))
        return obj["metadata"]["uid"] if obj is not None else None


class RecordingScale:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, int]] = []

    def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        self.calls.append((namespace, kind, name, replicas))
        return replicas


# -- the objects ----------------------------------------------------------------------------------

def _custom(kind: str, namespace: str, name: str, spec: dict[str, typing.Any],
            labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> dict[str, typing.Any]:
    return {"apiVersion": GROUP, "kind": kind, "metadata": {
        "name": name, "namespace": namespace, "uid": f"uid-{namespace}-{kind}-{name}", "generation": 1,
        "resourceVersion": "1", "labels": labels or {}, "annotations": annotations or {}}, "spec": spec}


def objects(namespace: str, urls: dict[str, str], annotations: dict[str, str] | None = None,
            check_timeout: int = 10) -> list[dict[str, typing.Any]]:
    """One tenant's MonitoredServices (a Deployment and a Railway service), a ScalingPolicy for
    each, and an AlertPolicy paging its webhook on cpu, errors and health."""
    def service(target: dict[str, typing.Any], checks: bool) -> dict[str, typing.Any]:
        spec: dict[str, typing.Any] = {
            "target": target,
            "metrics": {"prometheus": {"url": urls["prometheus"]}},
            "slo": {"availabilityPercent": 99.0, "latencyP95Ms": 5000},
            "rollout": {"autoRollback": True, "progressDeadlineSeconds": 60,
                        "analysis": {"windowSeconds": 300, "maxErrorRatePercent": 5, "maxLatencyP95Ms": 5000}},
        }
        if checks:
            spec["healthChecks"] = [{"name": "api", "http": {"url": urls["health"], "timeoutSeconds": check_timeout,
                                                             "bodyContains": "ok"},
                                     "intervalSeconds": 30, "failureThreshold": 1, "startPeriodSeconds": 0}]
        return spec

    railway_target = {"railway": {"projectId": "prj", "environmentId": ENVIRONMENT, "serviceId": f"svc-{namespace}",
                                  "tokenSecretRef": {"name": "railway", "key": "token"},
                                  "endpoint": urls["railway"]}}
    policy = {"minReplicas": 1, "maxReplicas": 10, "evaluationIntervalSeconds": 15,
              "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]}
    alerts = {
        "selector": {"matchLabels": {"team": "t"}},
        "rules": [
            {"name": "HighCPU", "metric": "cpu", "op": ">", "threshold": 80, "severity": "critical",
             "summary": "{{service}} CPU {{value}}%"},
            {"name": "Errors", "metric": "errorRate", "op": ">", "threshold": 5, "severity": "warning",
             "summary": "{{service}} errors {{value}}%"},
            {"name": "Slow", "metric": "latencyP95", "op": ">", "threshold": 1000, "severity": "warning",
             "summary": "{{service}} p95 {{value}} ms"},
            {"name": "Down", "metric": "health", "op": ">=", "threshold": 2, "severity": "critical",
             "summary": "{{service}} is down"},
        ],
        "channels": [{"name": "hook", "webhook": {"url": urls["receiver"]}}],
        "routes": [{"name": "all", "channels": ["hook"], "repeatIntervalSeconds": 300}],
        "sendResolved": True,
    }
    extra = annotations or {}
    return [
        _custom("MonitoredService", namespace, "web", service({"kubernetes": {"kind": "Deployment", "name": "web"}}, True),
                {"team": "t"}, extra),
        _custom("MonitoredService", namespace, "rw", service(railway_target, False), {"team": "t"}, extra),
        _custom("ScalingPolicy", namespace, "web", {**policy, "targetRef": {"monitoredService": "web"}}, None, extra),
        _custom("ScalingPolicy", namespace, "rw", {**policy, "targetRef": {"monitoredService": "rw"}}, None, extra),
        _custom("AlertPolicy", namespace, "page", alerts, None, extra),
    ]


def deployment(namespace: str, replicas: int, ready: int, annotations: dict[str, str], labels: dict[str, str],
               failed: bool) -> dict[str, typing.Any]:
    """A Deployment; `failed`: its rollout is past its progress deadline (the guard rolls back)."""
    conditions = [{"type": "Progressing", "status": "False" if failed else "True",
                   "reason": "ProgressDeadlineExceeded" if failed else "NewReplicaSetAvailable"}]
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": "web", "namespace": namespace, "uid": f"uid-{namespace}-deploy", "generation": 2,
        "resourceVersion": "7", "annotations": annotations, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web"}]}}},
        "status": {"observedGeneration": 2, "replicas": replicas, "readyReplicas": ready,
                   "updatedReplicas": replicas, "availableReplicas": ready, "conditions": conditions}}


def replica_set(namespace: str, index: int, annotations: dict[str, str]) -> dict[str, typing.Any]:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": f"web-{index}", "namespace": namespace, "annotations": annotations, "labels": {"app": "web"},
        "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                             "uid": f"uid-{namespace}-deploy", "controller": True}]},
        "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": f"h{index}"}},
                              "spec": {"containers": [{"name": "web", "image": f"web:{index}"}]}}}}


# -- one run --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Outcome:
    """Everything the operator did for one namespace, in an order-free form."""

    patches: tuple[str, ...]
    events: tuple[tuple[str, ...], ...]
    scales: tuple[tuple[typing.Any, ...], ...]
    notifications: tuple[str, ...]
    railway_replicas: int | None
    rollbacks: tuple[tuple[str, str], ...]


class Peers:
    """Tenant B's peers and tenant A's raw servers, started once and reused by every run."""

    def __init__(self) -> None:
        self.railway = railway_sim.RailwaySimulator(token=TOKEN, environment_id=ENVIRONMENT)
        self.railway.clock = NOW.timestamp  # B's Railway metrics are sampled at the run's one instant
        self.receiver = Receiver()
        self.kube = KubeStub()
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.hostile: dict[str, RawServer] = {}
        self.urls_b: dict[str, str] = {}
        self.urls_a: dict[str, str] = {}
        self.kube_url = ""
        self.refused_patches: list[tuple[str, str, str]] = []

    def start(self) -> "Peers":
        self.railway.start()
        self.railway.add_service(f"svc-{B}", "rw", replicas=2)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(10)
        return self

    async def _start(self) -> None:
        async def prometheus(request: web.Request) -> web.Response:
            return web.Response(body=prometheus_answer(B, "90"), content_type="application/json")

        async def healthy(request: web.Request) -> web.Response:
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_post("/api/v1/query", prometheus)
        app.router.add_get("/health", healthy)
        app.router.add_post("/hook", self.receiver.handle)
        b = await _serve(app)
        self.urls_b = {"prometheus": b, "health": f"{b}/health", "receiver": f"{b}/hook", "railway": self.railway.url}
        for name in ("prometheus", "health", "receiver", "railway"):
            self.hostile[name] = await RawServer().start()
        self.urls_a = {"prometheus": self.hostile["prometheus"].url, "health": f"{self.hostile['health'].url}/health",
                       "receiver": f"{self.hostile['receiver'].url}/hook", "railway": f"{self.hostile['railway'].url}/graphql/v2"}
        self.kube_url = await _serve(self.kube.app())

    def stop(self) -> None:
        self.railway.stop()

        async def cancel_the_rest() -> None:
            for task in asyncio.all_tasks() - {asyncio.current_task()}:
                task.cancel()

        asyncio.run_coroutine_threadsafe(cancel_the_rest(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)

    def behave(self, tenant: TenantA) -> None:
        for name in ("prometheus", "health", "receiver", "railway"):
            self.hostile[name].answer = getattr(tenant, name)
        self.kube.patch_answer = tenant.kube_patch
        self.kube.deployment = deployment(A, tenant.replicas, tenant.ready_replicas,
                                          dict(tenant.deployment_annotations), dict(tenant.deployment_labels), True)
        self.kube.replica_sets = [replica_set(A, index, dict(annotations))
                                  for index, annotations in enumerate(tenant.replica_set_annotations)]
        self.kube.patches.clear()

    def reset_b(self) -> None:
        self.refused_patches.clear()
        self.receiver.bodies.clear()
        service = self.railway.services[f"svc-{B}"]
        service.replicas, service.pending_replicas = 2, None


async def _serve(app: web.Application) -> str:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return f"http://127.0.0.1:{port}"


def run_rounds(peers: Peers, tenant: TenantA | None) -> dict[str, Outcome]:
    """One operator, both namespaces (A only if given), one of each round; what each namespace got."""
    peers.reset_b()
    if tenant is not None:
        peers.behave(tenant)
    return asyncio.run(_rounds(peers, tenant))


async def _rounds(peers: Peers, tenant: TenantA | None) -> dict[str, Outcome]:
    view = view_module.View()
    secrets = {(B, "railway"): {"token": TOKEN}, (A, "railway"): {"token": "t0ken-a"}}
    api = RecordingApi(view, secrets, peers.refused_patches)
    clock = lambda: NOW  # noqa: E731 - one instant: what B is told cannot depend on when the run happens
    evaluator = loop.Evaluator(view, api, 60.0, 8, clock=clock)  # type: ignore[arg-type]
    railway = railway_module.RailwayWatcher(view, evaluator, api, peers.urls_b["railway"], 15.0,  # type: ignore[arg-type]
                                           allow_loopback=True, clock=clock)
    scale = RecordingScale()
    kube_client = kubernetes.client.ApiClient(kubernetes.client.Configuration(host=peers.kube_url))
    rollback = kubernetes_rollback.KubernetesRollback(kube_client, lambda verb: None)
    actuators = actuator.Actuators({
        platform_kubernetes.NAME: actuator_kubernetes.KubernetesActuator(
            scale, rollback, None, lambda call, *args: pools.run(pools.ACTUATION, call, *args)),  # type: ignore[arg-type]
        platform_railway.NAME: railway_module.RailwayActuator(railway),
    })
    query_client = egress.GuardedClient(True, limit=8)

    async def secret_value(namespace: str, name: str, key: str) -> str | None:
        return api.secret_value(namespace, name, key)

    metric_sources = sources_module.Sources({
        core_sources.PROMETHEUS: source_prometheus.BatchedPrometheus(query_client, secret_value, "2m", lambda _: None),
        core_sources.RAILWAY: railway_module.RailwaySource(railway),
    })
    scaler = scaler_module.Scaler(view, evaluator, api, actuators, None, metric_sources, clock=clock)  # type: ignore[arg-type]
    checker = http_check.HttpChecker(True)
    guard = guard_module.Guard(view, evaluator, checker, actuators,
                               scaler.read_service_metrics, clock=clock)
    snapshots = snapshots_module.Snapshots(view, evaluator, scaler.read_service_metrics, 30.0, clock=clock)
    poster = notify.HttpPoster(True)
    alerter = alerter_module.Alerter(view, evaluator, api, snapshots, notifiers.registry(poster), 5.0,  # type: ignore[arg-type]
                                     clock=clock, burn_rate=guard.burn_rate)
    # The round's participants as the composition root lists them (operator/runtime.build).
    runtime_module.participate(evaluator, railway, scaler, guard, snapshots, alerter)
    try:
        tenants = [(B, peers.urls_b, {}, None)]
        if tenant is not None:
            # A first: whatever A breaks in a loop over tenants breaks it before B's turn.
            tenants.insert(0, (A, peers.urls_a, dict(tenant.object_annotations), tenant))
        for namespace, urls, annotations, hostile in tenants:
            # A's check gives up after 1 s (its own choice); B's has time to spare on a busy machine.
            for obj in objects(namespace, urls, annotations, 10 if hostile is None else 1):
                view.upsert(obj)
            if hostile is None:
                view.upsert(deployment(namespace, 2, 2, {"deployment.kubernetes.io/revision": "3"}, {"app": "web"}, False))
            else:
                view.upsert(copy.deepcopy(peers.kube.deployment))
        await railway.poll()
        await evaluator.round(list(view.objects))
        await asyncio.gather(scaler.round(), snapshots.round(), guard.rollout_round())
        await _probe_all(guard, view)
        await guard.rollout_round()
        await alerter.round()
        await evaluator.round(list(view.objects))
    finally:
        for close in (checker.close, poster.close, query_client.close, railway.close, answers.LANE.aclose):
            with contextlib.suppress(Exception):
                await close()
        kube_client.close()
    return {namespace: _outcome(namespace, api, scale, peers) for namespace in (A, B)}


async def _probe_all(guard: guard_module.Guard, view: view_module.View) -> None:
    from controller.api import monitoredservice

    probes = []
    for key in list(view.of_kind("MonitoredService")):
        spec = view.valid(key, monitoredservice.MonitoredServiceSpec)
        for check in spec.healthChecks if spec is not None else ():
            probes.append(guard._probe(key, check, 0.0))
    await asyncio.gather(*probes)


def _outcome(namespace: str, api: RecordingApi, scale: RecordingScale, peers: Peers) -> Outcome:
    if namespace == B:
        notifications = tuple(sorted(json.dumps(body, sort_keys=True) for body in peers.receiver.bodies))
        service = peers.railway.services[f"svc-{B}"]
        replicas: int | None = service.replicas
        rollbacks: tuple[tuple[str, str], ...] = ()
    else:
        notifications, replicas = (), None
        rollbacks = tuple(peers.kube.patches)
    return Outcome(
        patches=tuple(sorted(text for ns, kind, name, text in api.patches if ns == namespace)),
        events=tuple(sorted(event[1:] for event in api.events if event[0] == namespace)),
        scales=tuple(sorted(call for call in scale.calls if call[0] == namespace)),
        notifications=notifications, railway_replicas=replicas, rollbacks=rollbacks)


def annotations_of(obj: typing.Mapping[str, typing.Any]) -> dict[str, str]:
    return dict((obj.get("metadata") or {}).get("annotations") or {})


ACK = reasons.ACK_ANNOTATION
PAUSED = reasons.PAUSED_ANNOTATION
