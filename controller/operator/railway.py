"""Railway services in the operator's world: polled, scaled, rolled back, their usage as metrics.

Every interval each MonitoredService with a Railway target is asked about (one request per
distinct service: its instance and its metrics together); the answer becomes a workload of kind "Railway" in
the view's world (readiness, replicas, scaling and the rollout guard read it like a
Deployment: its latest deployment is its revision, FAILED/CRASHED a failure, Railway's replica
cap and one replica per region its limits), a failure becomes a RailwayUnavailable reason.
Scaling and rolling back a Railway service go through the same scaler and guard, with this
module's targets for kind "Railway".

A token Secret is read once and kept, shared by every service that names it: read again when
the MonitoredService names another Secret, when Railway refuses the token, and at the latest
after TOKEN_TTL_SECONDS (the operator may only `get` Secrets, so it cannot watch one change).
A kept token belongs to the objects (by uid) it was read for: once none of them is left it is
forgotten, even if objects of the same names (a namespace deleted and made again, perhaps by
someone else) name a Secret of the same name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
import typing

import kubernetes

from controller import reasons
from controller.adapters import boundary
from controller.adapters import budget
from controller.adapters import egress
from controller.adapters import kubernetes_api
from controller.adapters import metric_source
from controller.adapters import railway
from controller.adapters import shares
from controller.api import monitoredservice as api
from controller.core import conditions
from controller.core import election
from controller.core import platform_railway
from controller.core import railway_config
from controller.core import railway_regions
from controller.core import scaling
from controller.core import sources
from controller.core import status as status_module
from controller.core import world as world_module
from controller.operator import loop
from controller.operator import view as view_module
from controller.operator import heartbeat
from controller.operator import per_object
from controller.operator import pools

logger = logging.getLogger(__name__)
KIND = api.KIND.kind
RAILWAY = platform_railway.KIND  # the workload kind a Railway service goes by in the world
LIMITED = "Railway is rate-limiting this token; polls resume when it allows"
TOKEN_TTL_SECONDS = 300.0
# A poll waits at most this long for any service: one request's deadline, and a little for the
# token's rate limit and a share of the connections. Past it, that service's own error.
POLL_SECONDS = railway.DEADLINE_SECONDS + railway.RateLimiter.QUEUE_SECONDS + 2.0
# The same configuration change is not sent again within this long (Railway refused it, or
# accepted it and still reports the old value): a refusal is not a write at every poll.
CONFIG_RESEND_SECONDS = 300.0


@dataclasses.dataclass(frozen=True)
class Binding:
    """How to reach one Railway service: its endpoint, token Secret and ids."""

    endpoint: str
    namespace: str
    secret: tuple[str, str]  # Secret name, key
    environment_id: str
    service_id: str


class RailwayWatcher:
    name = "railway"  # its loop's name (handlers.Runtime.pollers)

    def __init__(self, view: view_module.View, evaluator: loop.Evaluator, api_: kubernetes_api.KubeApi,
                 default_endpoint: str, interval_seconds: float = 15.0, allow_loopback: bool = False,
                 clock: typing.Callable[[], datetime.datetime] = loop.utcnow,
                 leading: typing.Callable[[], bool] = lambda: True,
                 fence: typing.Callable[[str], None] = lambda _: None,
                 monotonic: typing.Callable[[], float] = time.monotonic,
                 user_agent: str = "capliquify-operator") -> None:
        self.view, self.evaluator, self.api = view, evaluator, api_
        self.user_agent = user_agent  # sent with every Railway request: names this replica
        self.default_endpoint = default_endpoint
        self.interval_seconds = interval_seconds
        self.clock = clock
        self.bindings: dict[tuple[str, str], Binding] = {}  # (namespace, "<env>/<service>")
        self.usage: dict[tuple[str, str], railway.Usage] = {}
        self.weights: dict[tuple[str, str], dict[str, int]] = {}  # the proportion scaling keeps
        self.leading, self.monotonic = leading, monotonic
        self.fence = fence  # raises unless this replica may act: called by the client at each scale/rollback
        # (namespace, Secret, key) -> (token, read at, uids of the MonitoredServices naming it then)
        self._tokens: dict[tuple[str, str, str], tuple[str, float, frozenset[str]]] = {}
        self._readers: dict[tuple[str, str, str], frozenset[str]] = {}  # who names each Secret, as of the last poll
        # Rollbacks this process made: (namespace, name, failed deployment). Until a poll shows
        # the deployment it produced, a repeated intent costs no request.
        self._rolled_back: set[tuple[str, str, str]] = set()
        # Railway calls have a pool of connections of their own: a slow tenant endpoint cannot
        # hold what status writes or other sources need.
        # Within it, one namespace holds at most its share (adapters/shares.py, sizes budget.py).
        self._http = egress.GuardedClient(allow_loopback, limit=budget.RAILWAY_CONNECTIONS,
                                          per_key=budget.RAILWAY_PER_NAMESPACE)
        # One budget per token across every service, poll and scale (Railway limits per token).
        self.limiter = railway.RateLimiter()
        # The instance configuration the MonitoredServices manage (core/railway_config.py): each
        # object's Railway target as of the last poll, its RailwayConfigured condition, and the
        # last change sent per service (change, monotonic time) so as not to repeat it soon.
        self._targets: dict[view_module.Key, api.RailwayTarget] = {}
        self.config_conditions: per_object.PerObject[conditions.ConditionChange] = per_object.PerObject(view)
        self._config_sent: dict[tuple[str, str], tuple[tuple[typing.Any, ...], float]] = {}
        self._split: dict[tuple[str, str], str] = {}  # services named with different bindings: why none acts

    async def run(self) -> None:
        heartbeat.expect("railway", self.interval_seconds)
        try:
            while True:
                heartbeat.beat("railway")
                try:
                    await self.poll()
                except Exception:  # one bad poll must not end the watch
                    logger.exception("railway poll failed")
                await asyncio.sleep(self.interval_seconds)
        finally:
            self.unstamp()

    def unstamp(self) -> None:
        """Polling stops (a stand-down): Railway is not read again until this replica leads, so
        what the world keeps of its services says nothing of when this replica saw them; a next
        term's first scaling round (before its first poll) must not time a step by it."""
        world = self.view.world
        for key in [k for k in world.workloads if k[1] == RAILWAY]:
            world.workloads[key] = dataclasses.replace(world.workloads[key], changed_at=None)

    def _bindings(self) -> dict[tuple[str, str], tuple[Binding, list[view_module.Key]]]:
        found: dict[tuple[str, str], tuple[Binding, list[view_module.Key]]] = {}
        named: dict[tuple[str, str], set[Binding]] = {}
        self._targets = {}
        for key in list(self.view.of_kind(KIND)):
            try:
                spec = self.view.valid(key, api.MonitoredServiceSpec)
                if spec is None or spec.target.railway is None:
                    continue
                target = spec.target.railway
                binding = Binding(target.endpoint or self.default_endpoint, key[1],
                                  (target.tokenSecretRef.name, target.tokenSecretRef.key),
                                  target.environmentId, target.serviceId)
                name = (key[1], platform_railway.name(target))
                found.setdefault(name, (binding, []))[1].append(key)
                named.setdefault(name, set()).add(binding)
                self._targets[key] = target
            except Exception as failure:  # this tenant's problem alone
                boundary.failed(failure, "Railway poll", key)
        # MonitoredServices naming one Railway service with different endpoints or token Secrets:
        # none is polled or acted on. One binding serves them all, and admission checks each
        # author against the Secret their own object names: another's token must never act
        # for them (a pre-deploy command, a scale, a rollback sent with a token they may not read).
        self._split = {name: (f"MonitoredServices {', '.join(sorted(key[2] for key in found[name][1]))} name Railway "
                              f"service {name[1]} with different endpoints or token Secrets: none is polled or acted on")
                       for name, bindings in named.items() if len(bindings) > 1}
        return found

    async def poll(self) -> None:
        wanted = self._bindings()
        world = self.view.world
        for gone in [name for name in self.bindings if name not in wanted]:
            self.bindings.pop(gone)
            self.usage.pop(gone, None)
            world.workloads.pop((gone[0], RAILWAY, gone[1]), None)
            world.platform_errors.pop((gone[0], RAILWAY, gone[1]), None)
            world.platform_stale.pop((gone[0], RAILWAY, gone[1]), None)
            self.weights.pop(gone, None)
        readers: dict[tuple[str, str, str], set[str]] = {}
        for binding, keys in wanted.values():
            readers.setdefault((binding.namespace, *binding.secret), set()).update(
                str((self.view.objects.get(key, {}).get("metadata") or {}).get("uid") or "") for key in keys)
        self._readers = {ref: frozenset(uids) for ref, uids in readers.items()}
        secrets = sorted(readers)
        for stale in [ref for ref, kept in self._tokens.items() if not kept[2] & self._readers.get(ref, frozenset())]:
            self._tokens.pop(stale)  # no object it was read for names it any more
        tokens = dict(zip(secrets, await asyncio.gather(*(self._token(*ref) for ref in secrets)), strict=True))
        results = await asyncio.gather(*(self._ask(binding, tokens[(binding.namespace, *binding.secret)])
                                         if name not in self._split else self._held(self._split[name])
                                         for name, (binding, _) in wanted.items()))
        for (name, (binding, keys)), result in zip(wanted.items(), results, strict=True):
            try:
                self._apply(name, binding, keys, result)
            except Exception as failure:  # one service's answer never ends the poll
                boundary.failed(failure, "Railway poll", name)
        await self._configure_all(wanted, tokens)

    def _apply(self, name: tuple[str, str], binding: Binding, keys: list[view_module.Key],
               result: tuple[railway.Instance, railway.Usage] | railway.RailwayRateLimited | str) -> None:
        """One service's poll result into the world (and its objects marked when it changed)."""
        world = self.view.world
        if name in self._split:
            self.bindings.pop(name, None)  # nothing scales or rolls it back through any of them
        else:
            self.bindings[name] = binding
        key = (name[0], RAILWAY, name[1])
        before = (world.workloads.get(key), world.platform_errors.get(key), world.platform_stale.get(key))
        if isinstance(result, railway.RailwayRateLimited) and key in world.workloads:
            # Held back, not failed: the last known state stands (acting on "gone" would be
            # a wrong action); the condition says why it is not fresher.
            world.platform_stale[key] = LIMITED  # stable text: no status write per poll while it lasts
        elif isinstance(result, (str, railway.RailwayError)):
            result = str(result)
            world.platform_stale.pop(key, None)
            world.workloads.pop(key, None)
            world.platform_errors[key] = result
            self.usage.pop(name, None)
        else:
            instance, usage = result
            # Stamped when this replica first saw it so (the answer's arrival, its own clock), not
            # by Railway's deployment createdAt (another clock's: Workload.observed).
            world.workloads[key] = self._workload(name, instance).observed(world.workloads.get(key), self.clock())
            world.platform_errors.pop(key, None)
            world.platform_stale.pop(key, None)
            self.usage[name] = usage
            self._observe_regions(name, instance.regions)
        if before != (world.workloads.get(key), world.platform_errors.get(key), world.platform_stale.get(key)):
            for marked in keys:
                self.evaluator.mark(marked, *self.view.dependents(marked))

    @staticmethod
    async def _held(why: str) -> str:
        return why

    @staticmethod
    def _workload(name: tuple[str, str], instance: railway.Instance) -> world_module.Workload:
        """A Railway service as the core sees a workload; its latest deployment is its revision."""
        replicas = sum(instance.regions.values()) if instance.regions else (
            instance.replicas if instance.replicas is not None else 1)
        succeeded = instance.deployment_status == "SUCCESS"
        failed = instance.deployment_status in railway.FAILED_STATUSES
        return world_module.Workload(
            RAILWAY, name[0], name[1], replicas=replicas, ready_replicas=replicas if succeeded else 0,
            revision=instance.deployment_id, updated_replicas=replicas if succeeded else 0,
            available_replicas=replicas if succeeded else 0,
            failure=f"deployment {instance.deployment_status}" if failed else None,
            limits=railway_regions.limits(instance.regions))

    def _observe_regions(self, name: tuple[str, str], observed: typing.Mapping[str, int]) -> None:
        """Keeps the proportion between regions that scaling preserves: the counts first seen,
        kept while what Railway shows is what that proportion gives (our own scales, or a poll
        from before one); counts set by someone else become the new proportion. So rounding
        at small counts never drifts it (2:1 scaled to 5 is 3 + 2, to 50 it is 33 + 17)."""
        weights = self.weights.get(name)
        if not observed:
            self.weights.pop(name, None)
        elif weights is None or railway_regions.distribute(weights, sum(observed.values())) != dict(observed):
            self.weights[name] = dict(observed)

    @boundary.contained("reading a Railway token", lambda error: (None, f"cannot read the token Secret: {boundary.describe(error)}"))
    async def _token(self, namespace: str, name: str, key: str) -> tuple[str | None, str | None]:
        """(token, None) or (None, why not): read once and kept (see the module's text); a
        Secret or key that is missing is not kept, so it is found on the next poll once made."""
        known = self._tokens.get((namespace, name, key))
        if known is not None and self.monotonic() - known[1] < TOKEN_TTL_SECONDS:
            return known[0], None
        try:
            token = await pools.run(pools.KUBE, self.api.secret_value, namespace, name, key)
        except kubernetes.client.ApiException as error:
            return None, f"cannot read the token Secret: {error.status} {error.reason}"
        if token is None:
            return None, "the token Secret has no such key"
        self._tokens[(namespace, name, key)] = (token.strip(), self.monotonic(),
                                                self._readers.get((namespace, name, key), frozenset()))
        return token.strip(), None

    def _refused(self, binding: Binding) -> None:
        """Railway refused the token: the Secret may have been rotated; read it afresh."""
        self._tokens.pop((binding.namespace, *binding.secret), None)

    @boundary.contained("a Railway poll", boundary.describe)
    async def _ask(self, binding: Binding, token: tuple[str | None, str | None]
                   ) -> tuple[railway.Instance, railway.Usage] | railway.RailwayRateLimited | str:
        if token[0] is None:
            return token[1] or "no token"
        client = self._client(binding.endpoint, token[0])
        try:
            with shares.tenant(binding.namespace):  # its connections come from its namespace's share
                instance, usage = await asyncio.wait_for(
                    client.poll(binding.environment_id, binding.service_id, self.clock()), POLL_SECONDS)
        except asyncio.TimeoutError:
            return f"no answer within the poll's {POLL_SECONDS:g}s"
        except railway.RailwayRateLimited as limited:
            return limited
        except railway.RailwayTokenRefused as error:
            self._refused(binding)
            return str(error)
        except railway.RailwayError as error:
            return str(error)
        return instance, usage

    # -- the instance's configuration (resources, deploy health check, pre-deploy command) ---------
    async def _configure_all(self, wanted: dict[tuple[str, str], tuple[Binding, list[view_module.Key]]],
                             tokens: dict[tuple[str, str, str], tuple[str | None, str | None]]) -> None:
        """Each Railway service whose MonitoredServices manage its configuration: read, compare,
        send what differs (the leader only; a service whose poll failed waits for the next)."""
        managed = {key for key, target in self._targets.items() if railway_config.managed(target)}
        self.config_conditions.prune()
        for gone in [key for key in self.config_conditions if key not in managed]:
            del self.config_conditions[gone]
        for unwanted in [name for name in self._config_sent if name not in wanted]:
            del self._config_sent[unwanted]
        if not self.leading():
            return
        jobs = []
        for name, (binding, keys) in wanted.items():
            mine = [key for key in keys if key in managed]
            if not mine or (name[0], RAILWAY, name[1]) not in self.view.world.workloads:
                continue
            token = tokens.get((binding.namespace, *binding.secret), (None, None))[0]
            wants = {key: railway_config.desired(self._targets[key]) for key in mine}
            if len({repr(sorted(w.items())) for w in wants.values()}) > 1:
                self._condition(mine, railway_config.conflict([key[2] for key in mine]))
                continue
            if token is not None:
                jobs.append(self._configure(name, binding, token, self._targets[mine[0]], mine))
        await asyncio.gather(*jobs)

    def _condition(self, keys: typing.Sequence[view_module.Key], change: conditions.ConditionChange) -> None:
        for key in keys:
            if self.config_conditions.get(key) != change:
                self.config_conditions[key] = change
                self.evaluator.mark(key)

    @boundary.contained("configuring a Railway service", boundary.describe)
    async def _configure(self, name: tuple[str, str], binding: Binding, token: str, target: api.RailwayTarget,
                         keys: list[view_module.Key]) -> None:
        client = self._client(binding.endpoint, token)
        change = railway_config.Changes()
        try:
            with shares.tenant(binding.namespace):
                observed = await asyncio.wait_for(client.config(
                    binding.environment_id, binding.service_id, railway_config.wants_limits(target)), POLL_SECONDS)
                change = railway_config.changes(target, observed)
                if not change:
                    self._config_sent.pop(name, None)
                    self._condition(keys, railway_config.in_sync(change))
                    return
                sent = self._config_sent.get(name)
                if sent is not None and sent[0] == change.key() and self.monotonic() - sent[1] < CONFIG_RESEND_SECONDS:
                    return  # sent lately: its outcome stands until then (no write at every poll)
                self._config_sent[name] = (change.key(), self.monotonic())
                await asyncio.wait_for(client.configure(binding.environment_id, binding.service_id,
                                                        change.instance, change.limits), POLL_SECONDS)
        except (railway.RailwayRateLimited, election.NotLeader):
            self._config_sent.pop(name, None)  # nothing was sent: decided again at the next poll
            return
        except (railway.RailwayError, asyncio.TimeoutError) as error:
            if isinstance(error, railway.RailwayTokenRefused):
                self._refused(binding)
            why = str(error) or "no answer in time"
            why = why.replace(token, "[token]") if token else why  # never the token, whatever Railway echoes
            self._condition(keys, railway_config.refused(change, why) if change else conditions.ConditionChange(
                reasons.RAILWAY_CONFIGURED, "False", reasons.RAILWAY_CONFIG_UNREADABLE,
                f"cannot read the instance's configuration: {why}"))
            return
        logger.info("Railway service %s/%s configured: %s", *name, "; ".join(change.summary))
        self._condition(keys, railway_config.in_sync(change))
        for key in keys:
            with boundary.tenant("announcing a Railway configuration", key):
                obj = self.view.objects.get(key)
                if obj is not None:
                    await self.evaluator.post_event(obj, status_module.EventSpec(
                        status_module.NORMAL, reasons.RAILWAY_CONFIG_APPLIED, railway_config.applied(change)))

    def contribute(self, key: view_module.Key, current: typing.Mapping[str, typing.Any]
                   ) -> tuple[dict[str, typing.Any], list[conditions.ConditionChange]] | None:
        """The RailwayConfigured condition of a MonitoredService that manages its instance's
        configuration; NotManaged once its spec no longer does (a condition is never removed)."""
        change = self.config_conditions.get(key)
        if change is not None:
            return {}, [change]
        written = conditions.find(current.get("conditions") or [], reasons.RAILWAY_CONFIGURED)
        if key[0] != KIND or written is None or written.get("reason") == reasons.NOT_MANAGED:
            return None
        spec = self.view.valid(key, api.MonitoredServiceSpec)
        if spec is None or (spec.target.railway is not None and railway_config.managed(spec.target.railway)):
            return None  # managed: its condition comes with the next poll
        return {}, [railway_config.not_managed()]

    def _client(self, endpoint: str, token: str) -> railway.RailwayClient:
        return railway.RailwayClient(endpoint, token, self._http, self.limiter, self.fence, self.user_agent)

    async def close(self) -> None:
        await self._http.close()

    # -- what RailwaySource (the metric-source seam) reads -----------------------------------------
    def samples(self, namespace: str, name: str) -> dict[scaling.MetricKey, scaling.Sample] | None:
        """cpu and memory of a Railway service in percent of its limits, its p95 latency (ms) and
        error rate (percent) from Railway's HTTP metrics, as metric samples."""
        usage = self.usage.get((namespace, name))
        if usage is None:
            return None

        def sample(value: float | None, at: datetime.datetime | None) -> scaling.Sample:
            return scaling.Sample(value, at if value is not None else None)

        return {("cpu", None): sample(usage.cpu, usage.sampled_at),
                ("memory", None): sample(usage.memory, usage.sampled_at),
                ("latencyP95", None): sample(usage.latency_p95, usage.http_sampled_at),
                ("errorRate", None): sample(usage.error_rate, usage.http_sampled_at)}

    async def _client_for(self, namespace: str, name: str) -> tuple[Binding, railway.RailwayClient]:
        binding = self.bindings.get((namespace, name))
        if binding is None:
            raise railway.RailwayError(f"Railway service {name} is not known yet")
        token, problem = await self._token(binding.namespace, *binding.secret)
        if token is None:
            raise railway.RailwayError(problem or "no token")
        return binding, self._client(binding.endpoint, token)

    async def set_replicas(self, namespace: str, name: str, replicas: int) -> int:
        binding, client = await self._client_for(namespace, name)
        per_region = railway_regions.distribute(self.weights.get((namespace, name)) or {}, replicas)
        try:
            with shares.tenant(namespace):
                await client.set_replicas(binding.environment_id, binding.service_id, replicas, per_region)
        except railway.RailwayTokenRefused:
            self._refused(binding)
            raise
        # Railway has no watch: the next poll confirms it; until then the scaler must not act
        # on the old count (it would step twice).
        key = (namespace, RAILWAY, name)
        if key in self.view.world.workloads:
            self.view.world.workloads[key] = dataclasses.replace(self.view.world.workloads[key], replicas=replicas,
                                                                 changed_at=self.clock())  # landed by now
        return replicas

    async def rollback(self, namespace: str, name: str, failed_id: str) -> str:
        """Roll the failed deployment back (the adapter checks it is still the newest, so a
        repeated intent after a restart does nothing); the deployment rolled back to, or ""."""
        if (namespace, name, failed_id) in self._rolled_back:
            return ""
        if not self.leading():
            raise railway.RailwayError("not the leader: no Railway call")
        binding, client = await self._client_for(namespace, name)
        with shares.tenant(namespace):
            to = await client.rollback(binding.environment_id, binding.service_id, failed_id)
        self._rolled_back.add((namespace, name, failed_id))
        if len(self._rolled_back) > 1000:
            self._rolled_back = {(namespace, name, failed_id)}
        return to


class RailwaySource:
    """Railway's own metrics as a metric source (cpu and memory in percent of the service's
    limits), from the watcher's last poll: reading them costs no request of its own."""

    name = sources.RAILWAY

    def __init__(self, watcher: RailwayWatcher) -> None:
        self.watcher = watcher

    async def read(self, requests: typing.Sequence[metric_source.Request]) -> metric_source.Samples:
        samples: metric_source.Samples = {}
        for request in requests:
            target = request.target
            error = self.watcher.view.world.platform_errors.get((target.namespace, RAILWAY, target.name))
            known = self.watcher.samples(target.namespace, target.name)
            if error is not None:
                sample = scaling.Sample(None, None, error)
            elif known is None:
                sample = scaling.Sample(None, None, "not read from Railway yet")
            else:
                sample = known.get(request.metric) or scaling.Sample(None, None)
            samples.setdefault(request.owner, {})[request.metric] = sample
        return samples


class RailwayActuator:
    """Railway's actuator (adapters/actuator.py): replicas and rollbacks through the watcher,
    which holds each service's binding, token and region weights; Railway manages no probes."""

    errors: tuple[type[Exception], ...] = (railway.RailwayError,)

    def __init__(self, watcher: RailwayWatcher) -> None:
        self.watcher = watcher

    async def set_replicas(self, kind: str, namespace: str, name: str, replicas: int) -> int:
        return await self.watcher.set_replicas(namespace, name, replicas)

    async def rollback(self, kind: str, namespace: str, name: str, failed_revision: str) -> str:
        return await self.watcher.rollback(namespace, name, failed_revision)

    async def apply_probes(self, kind: str, namespace: str, name: str, body: dict[str, typing.Any]) -> int:
        raise railway.RailwayError("Railway services have no container probes to manage")

    async def close(self) -> None:
        return None  # the watcher's connections are closed with the watcher
