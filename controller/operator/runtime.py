"""The composition root: every part of a running operator built in one place, into a typed Runtime.

`build` makes the parts in dependency order: the fence (the elector), the Kubernetes API and the
one status writer, the view and the evaluation loop, the registries (actuators: one line per
platform; metric sources: one line per source), then the loops. It names, in one place, a round's
participants (`participate`: whose fields and conditions make each object's one status patch, in
order, and whose status moves with time alone) and the platforms polled rather than watched.

Every part that holds a connection, a thread, a pool or a process is registered as it is built
(`Runtime.own`); on shutdown `Runtime.aclose` closes them in the reverse order (the parser lane's
worker processes included), each in its own boundary: one failing close leaves the others to run.

The kopf layer (handlers.register) starts and stops the loops of a built Runtime; `capliquify
run` (cli._run) reads the command line, checks the credentials, builds and hands over.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import logging
import typing

from controller.adapters import actuator
from controller.adapters import actuator_kubernetes
from controller.adapters import actuator_scale
from controller.adapters import answers
from controller.adapters import budget
from controller.adapters import egress
from controller.adapters import http_check
from controller.adapters import kubernetes_api
from controller.adapters import kubernetes_gate
from controller.adapters import kubernetes_jobs
from controller.adapters import kubernetes_lease
from controller.adapters import kubernetes_services
from controller.adapters import kubernetes_status
from controller.adapters import kubernetes_watch
from controller.adapters import notifiers
from controller.adapters import notify
from controller.adapters import source_history
from controller.adapters import source_metrics_api
from controller.adapters import source_prometheus
from controller.core import egress as egress_policy
from controller.core import election
from controller.core import platform_kubernetes
from controller.core import platform_railway
from controller.core import platform_scale
from controller.core import sources as core_sources
from controller.operator import alerter as alerter_module
from controller.operator import config as config_module
from controller.operator import election as election_module
from controller.operator import guard as guard_module
from controller.operator import loop
from controller.operator import metrics
from controller.operator import polled
from controller.operator import pools
from controller.operator import probes as probes_module
from controller.operator import railway as railway_module
from controller.operator import scaler as scaler_module
from controller.operator import seasonal as seasonal_module
from controller.operator import snapshots as snapshots_module
from controller.operator import sources as sources_module
from controller.operator import view as view_module

logger = logging.getLogger(__name__)

Close = typing.Callable[[], typing.Awaitable[None] | None]


class Poller(typing.Protocol):
    """The loop of a platform polled rather than watched (it puts its workloads in the view)."""

    name: str

    async def run(self) -> None: ...


class Participant(typing.Protocol):
    """A part whose fields and conditions go into objects' status patches (loop.Contributor)."""

    def contribute(self, key: view_module.Key, current: loop.Status) -> loop.Contribution: ...


def participate(evaluator: loop.Evaluator, *parts: Participant) -> None:
    """The round's participants, in the order their contributions are combined into each object's
    one status patch; a part with `checked_services` also names the objects whose status moves
    with time alone (judged at every resync). The composition root lists them once (`build`);
    nothing registers itself."""
    for part in parts:
        evaluator.contributors.append(part.contribute)
        moving = getattr(part, "checked_services", None)
        if moving is not None:
            evaluator.time_dependent.append(moving)


@dataclasses.dataclass
class Runtime:
    """A running operator's parts, typed; built by `build` (tests build their own)."""

    config: config_module.OperatorConfig
    view: view_module.View
    evaluator: loop.Evaluator
    api: kubernetes_api.KubeApi
    scaler: scaler_module.Scaler
    guard: guard_module.Guard
    snapshots: snapshots_module.Snapshots
    alerter: alerter_module.Alerter
    elector: election_module.Elector
    watcher: kubernetes_watch.Watcher
    probes: probes_module.ProbeManager | None = None
    # The loops of platforms that are polled rather than watched (each puts its workloads in the view).
    pollers: typing.Sequence[Poller] = ()
    # What holds connections, threads or processes, in the order built: closed in reverse (aclose).
    owned: list[tuple[str, Close]] = dataclasses.field(default_factory=list)
    tasks: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)  # leader and standby alike
    acting: list[asyncio.Task[None]] = dataclasses.field(default_factory=list)  # the leader's, this term
    heartbeats_before: set[str] = dataclasses.field(default_factory=set)  # loops beating before acting

    def own(self, name: str, close: Close) -> None:
        self.owned.append((name, close))

    async def aclose(self) -> list[str]:
        """Closes what it owns, the last built first; returns the names of those whose close failed
        (each is logged; the rest still close)."""
        failed = []
        owned, self.owned = self.owned, []
        for name, close in reversed(owned):
            try:
                result = close()
                if inspect.isawaitable(result):
                    await result
            except Exception as error:  # one part's close never keeps the others open
                logger.warning("closing %s failed: %s", name, type(error).__name__)
                failed.append(name)
        return failed


@dataclasses.dataclass(frozen=True)
class Options:
    """What `capliquify run` adds to OperatorConfig for the build."""

    timing: election.Timing
    leader_elect: bool = False
    lease_namespace: str = "default"
    lease_name: str = "capliquify-operator"
    rollout_hooks: bool = True


def build(config: config_module.OperatorConfig, options: Options, api_client: typing.Any,
          lease_client: typing.Any) -> Runtime:
    """Every part of the operator, wired; nothing runs until the kopf layer starts it.
    `api_client` and `lease_client` are Kubernetes clients of their own (the Lease has its own
    connections, as it has a pool of its own: a renewal never waits behind status writes)."""
    owned: list[tuple[str, Close]] = [("parser lane", answers.LANE.aclose)]  # started lazily, closed last
    # Egress's namespace rule inside the cluster's networks; the operator's own endpoints (its
    # Prometheus, Railway's API) are reachable from every namespace as configured.
    # A name of a tenant's own namespace is then answered from its Service and EndpointSlices
    # (never DNS: an ExternalName or a hand-written slice would lead anywhere).
    egress.configure_cluster(egress_policy.cluster_networks(
        config.cluster_networks, config.cluster_domain,
        trusted=[host for host in (egress_policy.host_of(config.prometheus_url), egress_policy.host_of(config.railway_endpoint))
                 if host]), kubernetes_services.KubernetesServices(api_client, functools.partial(pools.run, pools.KUBE)))
    # Every Kubernetes write passes the elector's fence: a standby, or a leader past its renew
    # deadline, writes nothing.
    elector = election_module.Elector(
        kubernetes_lease.LeaseStore(lease_client, options.lease_namespace, options.lease_name)
        if options.leader_elect else None, options.timing)
    # The identity in every request's User-Agent: the audit log tells which replica wrote what.
    api_client.user_agent = lease_client.user_agent = f"capliquify-operator ({elector.identity})"
    write = elector.fence
    actuate = functools.partial(pools.run, pools.ACTUATION)
    api = kubernetes_api.KubeApi(api_client, write)
    view = view_module.View()
    status_writer = kubernetes_status.StatusWriter(api_client.configuration, write, api_client.user_agent)
    owned.append(("status writer", status_writer.close))
    evaluator = loop.Evaluator(view, api, config.resync_seconds, config.write_concurrency, status_writer=status_writer)
    railway = railway_module.RailwayWatcher(view, evaluator, api, config.railway_endpoint,
                                           config.railway_interval_seconds, config.allow_loopback_checks,
                                           leading=elector.leading, fence=elector.fence_send,
                                           user_agent=api_client.user_agent)
    owned.append(("railway", railway.close))
    # The actuators' registry: one line per platform (core/platforms.py is the core's).
    scale_actuator = actuator_scale.ScaleActuator(api_client, write, actuate)
    actuators = actuator.Actuators({
        platform_kubernetes.NAME: actuator_kubernetes.KubernetesActuator.of_client(api_client, write, actuate),
        platform_railway.NAME: railway_module.RailwayActuator(railway),
        platform_scale.NAME: scale_actuator,
    })
    owned.append(("actuators", actuators.close))
    # Metric queries have a connection pool of their own: a slow Prometheus cannot starve other
    # I/O; within it one namespace holds at most its share (sizes: adapters/budget.py).
    query_client = egress.GuardedClient(config.allow_loopback_checks, limit=budget.PROMETHEUS_CONNECTIONS,
                                        per_key=budget.PROMETHEUS_PER_NAMESPACE)
    owned.append(("query client", query_client.close))

    async def secret_value(namespace: str, name: str, key: str) -> str | None:
        return await pools.run(pools.KUBE, api.secret_value, namespace, name, key)

    # The metric sources' registry: one line per source (core/sources.py chooses).
    metric_sources = sources_module.Sources({
        core_sources.PROMETHEUS: source_prometheus.BatchedPrometheus(
            query_client, secret_value, config.rate_window, metrics.PROMETHEUS_QUERIES.inc,
            tenant_queries_on_default=config.allow_tenant_queries_on_default_prometheus),
        core_sources.METRICS_API: source_metrics_api.MetricsApiSource(api_client, functools.partial(pools.run, pools.KUBE)),
        core_sources.RAILWAY: railway_module.RailwaySource(railway),
    })
    # The seasonal forecast's history: range queries on the same client, at most two at once.
    histories = seasonal_module.SeasonalHistories(view, source_history.RangeHistory(
        query_client, secret_value, config.rate_window,
        tenant_queries_on_default=config.allow_tenant_queries_on_default_prometheus))
    scaler = scaler_module.Scaler(view, evaluator, api, actuators, config.prometheus_url, metric_sources,
                                  leading=elector.leading, seasonal=histories)
    # Post-deploy hooks' Jobs (spec.rollout.hooks): created with the operator's rights, which the
    # admission policy checks the author holds; off with --no-rollout-hooks (the chart's hooks.enabled).
    hook_jobs = kubernetes_jobs.KubernetesJobs.of_client(api_client, write, actuate) if options.rollout_hooks else None
    checker = http_check.HttpChecker(config.allow_loopback_checks, secrets=secret_value)
    owned.append(("health checker", checker.close))
    guard = guard_module.Guard(view, evaluator, checker, actuators, scaler.read_service_metrics, jobs=hook_jobs,
                               own_namespace=options.lease_namespace,
                               gate=kubernetes_gate.KubernetesGate.of_client(api_client, write, actuate))
    probes = probes_module.ProbeManager(view, evaluator, actuators)
    snapshots = snapshots_module.Snapshots(view, evaluator, scaler.read_service_metrics, config.metrics_interval_seconds)
    poster = notify.HttpPoster(config.allow_loopback_checks, fence=elector.fence_send)  # fenced at each send
    owned.append(("notification poster", poster.close))
    alerter = alerter_module.Alerter(view, evaluator, api, snapshots, notifiers.registry(poster),
                                     config.alert_interval_seconds, leading=elector.leading, burn_rate=guard.burn_rate)
    # A round's participants, in one place (the order their parts are combined in each patch).
    participate(evaluator, railway, scaler, guard, probes, snapshots, alerter)
    watcher = kubernetes_watch.Watcher(api_client.configuration, api_client.user_agent,
                                       on_restart=lambda kind, why: metrics.WATCH_RESTARTS.labels(kind, why).inc())
    owned.append(("watcher", watcher.close))
    return Runtime(config=config, view=view, evaluator=evaluator, api=api, scaler=scaler, guard=guard,
                   snapshots=snapshots, alerter=alerter, elector=elector, watcher=watcher, probes=probes,
                   pollers=(railway, polled.PolledPlatform(platform_scale.NAME, view, evaluator, scale_actuator)),
                   owned=owned)
