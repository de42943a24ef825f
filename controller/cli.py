"""The `capliquify` command: run the operator, validate manifests, generate CRDs."""

from __future__ import annotations

import argparse
import asyncio
import csv
import functools
import io
import json
import logging
import os
import pathlib
import re
import sys
import typing

import yaml

from controller import admission
from controller import cliparse
from controller import crdgen
from controller import validation
from controller.core import bounded_yaml
from controller.adapters import railway as railway_adapter


def _configure_logging(log_format: str, level: str) -> None:
    if log_format == "json":
        class JsonFormatter(logging.Formatter):
            def format(self, record: logging.LogRecord) -> str:
                return json.dumps({"time": self.formatTime(record), "level": record.levelname,
                                   "logger": record.name, "message": record.getMessage()})
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=level, handlers=[handler])
    else:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # kopf logs every handler success at INFO; at thousands of objects that is the noise floor.
    logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    logging.getLogger("kopf.activities").setLevel(logging.WARNING)


def _cluster_networks(text: str) -> typing.Any:
    """--cluster-networks: CIDRs separated by commas; one that is not is a one-line usage error."""
    from controller.core import egress as egress_policy

    try:
        return egress_policy.cluster_networks([part for part in text.split(",") if part.strip()])
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _run(args: argparse.Namespace) -> int:
    import kopf  # imported here: `validate` and `crds` must not need kopf's start-up
    import kubernetes

    from controller.adapters import kubernetes_api
    from controller.core import election
    from controller.operator import config as config_module
    from controller.operator import handlers
    from controller.operator import metrics
    from controller.operator import object_metrics
    from controller.operator import pools
    from controller.operator import runtime as runtime_module

    config = config_module.OperatorConfig(
        namespaces=tuple(args.namespace or ()),
        kubeconfig=args.kubeconfig,
        prometheus_url=args.prometheus_url,
        metrics_port=args.metrics_port,
        health_port=args.health_port,
        resync_seconds=args.resync_seconds,
        relist_seconds=args.relist_seconds,
        log_format=args.log_format,
        allow_loopback_checks=args.allow_loopback_checks,
        allow_tenant_queries_on_default_prometheus=args.allow_tenant_queries_on_default_prometheus,
        rate_window=args.rate_window,
        metrics_interval_seconds=args.metrics_interval_seconds,
        alert_interval_seconds=args.alert_interval_seconds,
        railway_endpoint=args.railway_endpoint,
        railway_interval_seconds=args.railway_interval_seconds,
        write_concurrency=args.write_concurrency,
        cluster_networks=tuple(str(network) for network in args.cluster_networks.networks) if args.cluster_networks else (),
        cluster_domain=args.cluster_domain or "cluster.local",
    )
    _configure_logging(config.log_format, args.log_level)
    try:
        api_client = kubernetes_api.load_config(config.kubeconfig, connections=pools.KUBE_THREADS)
    except (kubernetes.config.ConfigException, OSError, yaml.YAMLError, TypeError, AttributeError, KeyError,
            ValueError) as error:
        # The image's default command run outside a pod, or a bad kubeconfig (the client's loader
        # fails inside itself on a malformed file): say which, no traceback.
        print(f"capliquify run: no Kubernetes credentials: not in a pod (KUBERNETES_SERVICE_HOST unset) and "
              f"no usable kubeconfig (--kubeconfig or KUBECONFIG): {cliparse.first_line(error)}", file=sys.stderr)
        return 2
    unreachable = _api_server_unreachable(api_client)
    if unreachable:
        print(f"capliquify run: {unreachable}", file=sys.stderr)
        return 1
    # The Lease has a client (connections) of its own, as it has a pool of its own: a renewal
    # never waits behind status writes. Everything else is built in one place (operator/runtime.py).
    lease_client = kubernetes_api.load_config(config.kubeconfig, connections=2)
    runtime = runtime_module.build(config, runtime_module.Options(
        timing=election.Timing(args.leader_elect_lease_duration, args.leader_elect_renew_deadline,
                               args.leader_elect_retry_period),
        leader_elect=args.leader_elect, lease_namespace=args.leader_elect_namespace,
        lease_name=args.leader_elect_name, rollout_hooks=args.rollout_hooks), api_client, lease_client)
    registry = kopf.OperatorRegistry()
    handlers.register(registry, runtime)
    metrics.initialise(kubernetes_api.PLURALS, runtime.alerter.registry)
    # The per-object series name every tenant's objects (namespaces, services, alert rules,
    # revisions) to whoever can reach /metrics, which listens where the scrape and the kubelet
    # reach it: so they are served only when asked for (--object-metrics; the chart asks when
    # its dashboards, which read them, are enabled). The operator's own series name no object.
    objects_text = object_metrics.ObjectMetrics(runtime.view, runtime.elector.leading).text if args.object_metrics \
        else _no_objects
    try:
        metrics.serve(config.metrics_port, objects_text, address=args.bind_address)
        # /healthz: our own bounded server (kopf's endpoint had no bound on connections).
        metrics.serve_health(config.health_port, functools.partial(handlers.liveness, runtime),
                             address=args.bind_address)
    except OSError as error:  # a port in use, an address not on this host
        print(f"capliquify run: cannot listen on {args.bind_address} (--metrics-port {config.metrics_port}, "
              f"--health-port {config.health_port}): {error.strerror or error}", file=sys.stderr)
        return 2
    asyncio.run(
        kopf.operator(
            registry=registry,
            settings=config_module.kopf_settings(config),
            standalone=True,
            clusterwide=config.clusterwide,
            namespaces=list(config.namespaces),
        )
    )
    return 0


def _api_server_unreachable(api_client: typing.Any, attempts: int = 3, pause: float = 2.0) -> str | None:
    """Why no API server answers at start-up (one line, as kubectl says it), or None. An operator
    that cannot reach its API server at all exits, to be restarted, rather than log a traceback
    a second from every loop; a start-up that races the API server's own is retried a little."""
    import time

    import kubernetes
    import urllib3

    problem = None
    retries = logging.getLogger("urllib3.connectionpool")
    level, retries.level = retries.level, logging.ERROR  # the pool's own retry warnings: the one line says it
    try:
        for attempt in range(attempts):
            try:
                kubernetes.client.VersionApi(api_client).get_code(_request_timeout=(5, 10))
                return None
            except kubernetes.client.ApiException as error:
                problem = cliparse.server_error(error.status, error.reason, error.body)
                if error.status in (401, 403):  # credentials the server refuses: waiting will not help
                    return problem
            except urllib3.exceptions.HTTPError as error:
                problem = cliparse.connection_error(error, api_client.configuration.host)
            except (ValueError, TypeError) as error:  # an answer the client cannot read (its models refuse it)
                return (f"{api_client.configuration.host} does not answer as a Kubernetes API server "
                        f"(/version: {type(error).__name__})")
            if attempt + 1 < attempts:
                time.sleep(pause)
    finally:
        retries.setLevel(level)
    return problem


MODELS_BY_KIND = validation.MODELS


def validate_documents(documents: typing.Iterable[typing.Any]) -> list[str]:
    """Every problem the API server would find in CapLiquify objects among `documents`
    (controller/validation.py; documents of other groups are skipped)."""
    return [problem for index, document in enumerate(validation.flattened(documents))
            for problem in validation.check(index, document).problems]


def _validate(args: argparse.Namespace) -> int:
    problems: list[str] = []
    checked = 0
    for path in args.files:
        try:
            documents = read_documents(path)
        except ValueError as error:
            problems.append(f"{path}: {error}")
            continue
        if not any(document is not None for document in documents):
            problems.append(f"{path}: no objects in the file")  # kubectl apply: "no objects passed to apply"
        for index, document in enumerate(validation.flattened(documents)):
            result = validation.check(index, document)
            checked += result.ours
            problems += [f"{path}: {problem}" for problem in result.problems]
    for problem in problems:
        print(problem, file=sys.stderr)
    print(f"{checked} object(s) checked, {len(problems)} problem(s) "
          "(kinds, names, types, bounds, list keys and the CRDs' CEL rules)")
    return 1 if problems else 0


STDIN_LIMIT = 64 * 2**20  # a pipe has no size to look at first: read at most this


def read_documents(path: str | pathlib.Path) -> list[typing.Any]:
    """The YAML documents of a file someone handed us, bounded (core/bounded_yaml.py: an alias
    bomb is refused, not expanded); any failure is a ValueError with a one-line reason. `-` is
    standard input, as kubectl's `-f -`."""
    try:
        text = sys.stdin.buffer.read(STDIN_LIMIT + 1).decode() if str(path) == "-" else pathlib.Path(path).read_text()
        if len(text) > STDIN_LIMIT:
            raise ValueError(f"more than {STDIN_LIMIT // 2**20} MiB on standard input")
        return bounded_yaml.load_all(text, unique_keys=True)
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except OSError as error:
        raise ValueError(f"cannot read: {error.strerror or type(error).__name__}") from None


def read_series(path: pathlib.Path) -> list:
    """A timeline from CSV (header `t,<metric>,...`) or YAML (a list of {t: ..., <metric>: ...});
    any fault is a ValueError naming the file, the point and the column, in one line."""
    from controller.core import simulate

    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read: {error.strerror or type(error).__name__}") from None
    if path.suffix == ".csv":
        rows: typing.Any = list(csv.DictReader(io.StringIO(text)))
    else:
        try:
            rows = bounded_yaml.load(text) or []
        except bounded_yaml.YamlRefused as error:
            raise ValueError(f"{path}: {error}") from None
    if not isinstance(rows, list):
        raise ValueError(f"{path}: a timeline is a list of points, got a {type(rows).__name__}")

    def number(index: int, key: typing.Any, value: typing.Any) -> float | None:
        if value is None or value == "":
            return None
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{path}: point {index + 1}: {validation.shown(key)}: not a number: "
                             f"{validation.shown(value)}") from None

    points = []
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or number(index, "t", row.get("t")) is None:
            raise ValueError(f"{path}: point {index + 1}: every point needs t (seconds from the start): "
                             f"{validation.shown(row)}")
        points.append(simulate.Point(typing.cast(float, number(index, "t", row["t"])),
                                     {str(k): number(index, k, v) for k, v in row.items() if k != "t"}))
    return sorted(points, key=lambda p: p.at)


def _closed_loop(args: argparse.Namespace, spec: typing.Any) -> int:
    """`--trace`: the policy (and a baseline) against the plant, scored; see controller/sim."""
    from controller.sim import closedloop
    from controller.sim import plant
    from controller.sim import plot
    from controller.sim import traces

    if args.trace not in traces.BUILT_IN and not pathlib.Path(args.trace).exists():
        print(f"{args.trace}: no such file, and not a built-in trace (built-ins: {', '.join(traces.BUILT_IN)})",
              file=sys.stderr)
        return 2
    if args.plot and not pathlib.Path(args.plot).resolve().parent.is_dir():
        print(f"--plot {args.plot}: no folder {pathlib.Path(args.plot).parent} to write it in", file=sys.stderr)
        return 2
    try:
        trace = traces.built_in(args.trace) if args.trace in traces.BUILT_IN else traces.from_csv(pathlib.Path(args.trace))
    except OSError as error:
        print(f"{args.trace}: cannot read: {error.strerror or type(error).__name__}", file=sys.stderr)
        return 2
    except ValueError as error:
        print(f"{args.trace}: {error}", file=sys.stderr)
        return 2
    model = plant.Model(capacity=args.capacity, startup_seconds=args.startup, metric_window_seconds=args.window,
                        metric_lag_seconds=args.lag, slo_utilisation=args.slo)
    policy = closedloop.PolicyController(spec)
    controllers: list[closedloop.Controller] = [policy]
    if args.baseline == "hpa":
        controllers.append(closedloop.HpaController(spec.minReplicas, spec.maxReplicas, args.hpa_target,
                                                    window=model.metric_window_seconds))
    comparison = closedloop.compare(controllers, trace, model, spec.minReplicas, spec.maxReplicas)
    print(closedloop.scorecard(comparison))
    if args.all:
        for at, reason in policy.reasons:
            print(f"{at:>6}  {reason}")
    if args.plot:
        try:
            plot.write(comparison, pathlib.Path(args.plot))
        except ImportError:
            print("--plot needs matplotlib (pip install matplotlib)", file=sys.stderr)
            return 2
        except OSError as error:
            print(f"--plot {args.plot}: cannot write: {error.strerror or type(error).__name__}", file=sys.stderr)
            return 2
        print(f"plot: {args.plot}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from controller.core import simulate

    try:
        documents = [d for d in read_documents(args.policy)
                     if isinstance(d, dict) and d.get("kind") in ("ScalingPolicy", "AlertPolicy")]
    except ValueError as error:
        print(f"{args.policy}: {error}", file=sys.stderr)
        return 2
    if not documents:
        print(f"{args.policy}: no ScalingPolicy or AlertPolicy", file=sys.stderr)
        return 2
    problems = validate_documents(documents[:1])
    if problems:
        print("\n".join(problems), file=sys.stderr)
        return 1
    document = documents[0]
    model = MODELS_BY_KIND[document["kind"]].model_validate({"spec": document.get("spec") or {}})
    if args.trace is not None or args.series is None:
        if document["kind"] != "ScalingPolicy" or args.trace is None:
            print("give --series (a metric timeline), or --trace (load, ScalingPolicy only)", file=sys.stderr)
            return 2
        return _closed_loop(args, typing.cast(typing.Any, model).spec)
    try:
        series = read_series(pathlib.Path(args.series))
    except (ValueError, OSError, yaml.YAMLError) as error:
        print(error, file=sys.stderr)
        return 2
    if document["kind"] == "ScalingPolicy":
        rows = simulate.scaling_run(typing.cast(typing.Any, model).spec, series, args.replicas, args.until,
                                    follow=not args.as_given)
        if args.as_given:
            print("open loop: every value as the series gives it, whatever the replica count")
        else:
            print(f"open loop: cpu follows the count (the series' cpu is read at {args.replicas} replicas: at n the "
                  f"policy sees cpu × {args.replicas} / n); other metrics as the series gives them, whatever the count")
        print(f"{'t(s)':>6}  {'replicas':>8}  values -> decision")
        previous = None
        for row in rows:
            shown = ", ".join(f"{k}={v:.4g}" for k, v in row.values.items() if v is not None)
            gist = re.sub(r"[0-9.]+", "#", row.event)  # "cooldown (240s left)" is the same news as (270s left)
            if args.all or gist != previous or not row.event.startswith("Hold"):
                print(f"{row.at:>6.0f}  {row.replicas:>8}  {shown} -> {row.event}")
            previous = gist
    else:
        rows = simulate.alerting_run(typing.cast(typing.Any, model).spec, series, args.step, args.until)
        print(f"{'t(s)':>6}  values -> what happened")
        for row in rows:
            shown = ", ".join(f"{k}={v:g}" for k, v in row.values.items() if v is not None)
            if args.all or row.event:
                print(f"{row.at:>6.0f}  {shown} -> {row.event or '-'}")
    return 0


def _crds(args: argparse.Namespace) -> int:
    try:
        written = crdgen.write_all(pathlib.Path(args.directory))
        if args.chart:
            written += crdgen.write_chart_crds(pathlib.Path(args.chart) / "crds")
        written += admission.write(pathlib.Path(args.manifests), pathlib.Path(args.chart) if args.chart else None)
    except OSError as error:
        print(f"capliquify crds: cannot write {error.filename}: {error.strerror or type(error).__name__}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


def _railway_import(args: argparse.Namespace) -> int:
    """Reads an environment's services from Railway and prints a policy set for them as YAML."""
    from controller.adapters import egress
    from controller.core import railway_import

    token = os.environ.get(args.token_env, "").strip()
    if not token:
        print(f"error: set ${args.token_env} to a Railway API token (it is not written to the output)", file=sys.stderr)
        return 2

    try:
        ranges = dict(railway_import.replica_range(text) for text in args.replicas)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    async def read() -> tuple[str, list[railway_adapter.ServiceSummary]]:
        client = egress.GuardedClient(args.allow_loopback_egress, limit=2, per_key=2)  # one user's own import
        try:
            railway = railway_adapter.RailwayClient(args.endpoint, token, client)
            name, found = await railway.environment(args.project, args.environment)
            # Each instance's limits and pre-deploy command (not part of the environment's answer);
            # one Railway cannot tell is written without them, saying so (a refused token is an error).
            services = []
            for service in found:
                try:
                    services.append(await railway.configured(args.environment, service))
                except (railway_adapter.RailwayTokenRefused, railway_adapter.RailwayRateLimited):
                    raise
                except railway_adapter.RailwayError as error:
                    print(f"warning: service {service.name}: its limits and pre-deploy command were not read "
                          f"({error}); written without them", file=sys.stderr)
                    services.append(service)
            return name, services
        finally:
            await client.close()

    try:
        environment, services = asyncio.run(read())
    except railway_adapter.RailwayError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    written_endpoint = args.target_endpoint or args.endpoint
    options = railway_import.Options(
        project_id=args.project, environment_id=args.environment, token_secret=args.token_secret,
        endpoint=None if written_endpoint == railway_adapter.DEFAULT_ENDPOINT else written_endpoint,
        max_replicas=args.max_replicas, replicas=ranges)
    unknown = railway_import.unknown_ranges(services, options)
    if unknown:
        print(f"error: --replicas names no service of environment {environment}: {', '.join(unknown)}", file=sys.stderr)
        return 1
    print(railway_import.render(services, options, (
        f"capliquify railway import: environment {environment} ({args.environment}) of project {args.project}, "
        f"{len(services)} service(s). The token Secret {args.token_secret} (key token) and the Secret "
        f"{options.alert_secret} (key slack-webhook) are yours to create; nothing secret is written here.")), end="")
    return 0


def _alerts_migrate(args: argparse.Namespace) -> int:
    """Prints an Alertmanager configuration's routing, inhibition and receivers as an
    AlertPolicy (and the Secret its channels name, values left for you), or why it cannot."""
    import pydantic

    from controller import celcheck
    from controller.api import alertpolicy
    from controller.core import alertmanager_import

    try:
        config = bounded_yaml.load(pathlib.Path(args.file).read_text())
        rules = bounded_yaml.load(pathlib.Path(args.rules).read_text())
    except (OSError, bounded_yaml.YamlRefused) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        migration = alertmanager_import.migrate(config, args.secret)
    except alertmanager_import.Refused as refused:
        print(f"error: {args.file} cannot be carried as it is:", file=sys.stderr)
        print("\n".join(f"  {reason}" for reason in refused.reasons), file=sys.stderr)
        return 2
    selector = dict(item.split("=", 1) for item in args.selector if "=" in item)
    spec = {"selector": {"matchLabels": selector}, "rules": rules, **migration.spec}
    try:
        checked = alertpolicy.AlertPolicySpec.model_validate(spec)
    except pydantic.ValidationError as error:
        problems = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()]
        print("error: the policy would be invalid:\n" + "\n".join(f"  {p}" for p in problems), file=sys.stderr)
        return 2
    problems = celcheck.spec_violations("AlertPolicy", checked.model_dump(mode="json", by_alias=True, exclude_none=True))
    if problems:
        print("error: the policy would be refused:\n" + "\n".join(f"  {p}" for p in problems), file=sys.stderr)
        return 2
    for note in migration.notes:
        print(f"note: {note}", file=sys.stderr)
    policy = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "AlertPolicy", "metadata": {"name": args.name},
              "spec": spec}
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": args.secret}, "type": "Opaque",
              "stringData": {key: f"REPLACE with {where} of {args.file}" for key, where in migration.secret_keys.items()}}
    print(f"# capliquify alerts migrate {args.file}: nothing secret is copied; fill the Secret's values.")
    print(yaml.safe_dump_all([policy, *([secret] if migration.secret_keys else [])], sort_keys=False), end="")
    return 0


def _no_objects(names: typing.Any) -> str:
    return ""


def _version() -> str:
    import importlib.metadata
    try:
        return importlib.metadata.version("capliquify-operator")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = cliparse.Parser(prog="capliquify", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = cliparse.subcommands(parser, dest="command", required=True, metavar="COMMAND",
                               help="what to do (capliquify COMMAND --help for its options)")

    run = sub.add_parser("run", help="run the operator")
    run.add_argument("--namespace", action="append", help="watch only this namespace (repeatable); every namespace when unset")
    run.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"), help="kubeconfig ($KUBECONFIG); in-cluster when unset")
    run.add_argument("--prometheus-url", default=os.environ.get("CAPLIQUIFY_PROMETHEUS_URL"),
                     help="default Prometheus for MonitoredServices that name none (only the default queries are "
                          "sent to it: see --allow-tenant-queries-on-default-prometheus)")
    run.add_argument("--allow-tenant-queries-on-default-prometheus", action="store_true",
                     help="also send MonitoredServices' custom queries and query overrides to --prometheus-url: any "
                          "author of a MonitoredService then reads every namespace's series there (off: they are "
                          "sent only to a Prometheus the service names, spec.metrics.prometheus.url)")
    run.add_argument("--metrics-port", type=int, default=int(os.environ.get("CAPLIQUIFY_METRICS_PORT", "8080")),
                     help="port of /metrics (Prometheus); $CAPLIQUIFY_METRICS_PORT")
    run.add_argument("--health-port", type=int, default=int(os.environ.get("CAPLIQUIFY_HEALTH_PORT", "8081")),
                     help="port of /healthz and the election's own series; $CAPLIQUIFY_HEALTH_PORT")
    run.add_argument("--object-metrics", action="store_true",
                     default=os.environ.get("CAPLIQUIFY_OBJECT_METRICS", "").lower() in ("1", "true", "yes"),
                     help="serve the per-object series (capliquify_scaling_replicas, ...: every tenant's objects, "
                          "by name) on /metrics")
    # Pods on a host's network (several operators on one host) each listen on their own pod IP.
    run.add_argument("--bind-address", default=os.environ.get("CAPLIQUIFY_BIND_ADDRESS", "0.0.0.0"),  # noqa: S104
                     help="address the /metrics and /healthz servers listen on (0.0.0.0: all)")
    run.add_argument("--rate-window", default=os.environ.get("CAPLIQUIFY_RATE_WINDOW", "2m"),
                     help="range of rate() in the default queries ($window)")
    run.add_argument("--metrics-interval-seconds", type=float, default=30.0,
                     help="read every MonitoredService's metrics this often (status.metrics, MetricsAvailable)")
    run.add_argument("--alert-interval-seconds", type=float, default=5.0, help="evaluate AlertPolicies this often")
    run.add_argument("--railway-endpoint", default=os.environ.get("CAPLIQUIFY_RAILWAY_ENDPOINT", railway_adapter.DEFAULT_ENDPOINT),
                     help="Railway GraphQL endpoint for targets that do not name one")
    run.add_argument("--railway-interval-seconds", type=float, default=15.0, help="poll Railway services this often")
    run.add_argument("--write-concurrency", type=int, default=32, choices=range(1, 33), metavar="1..32",
                     help="status writes and Events in flight at once (the clients keep 32 connections)")
    run.add_argument("--resync-seconds", type=float, default=60.0, help="re-judge objects that are not Ready, or whose status moves "
                     "with time (health availability), this often; every other object every 10 minutes")
    run.add_argument("--rollout-hooks", action=argparse.BooleanOptionalAction,
                     default=os.environ.get("CAPLIQUIFY_ROLLOUT_HOOKS", "true").lower() not in ("0", "false", "no"),
                     help="run MonitoredServices' post-deploy hooks as Jobs (needs create/get on jobs; off: a service "
                          "with hooks fails them, saying so); $CAPLIQUIFY_ROLLOUT_HOOKS")
    run.add_argument("--leader-elect", action=argparse.BooleanOptionalAction, default=False,
                     help="elect a leader over a Lease so that several replicas can run (on in manifests/ and the chart)")
    run.add_argument("--leader-elect-namespace", default=os.environ.get("POD_NAMESPACE", "capliquify-system"),
                     help="namespace of the Lease (the operator's own)")
    run.add_argument("--leader-elect-name", default="capliquify-operator", help="name of the Lease")
    run.add_argument("--leader-elect-lease-duration", type=float, default=15.0,
                     help="seconds a standby waits, seeing the Lease unchanged, before it takes over")
    run.add_argument("--leader-elect-renew-deadline", type=float, default=10.0,
                     help="seconds without a renewal after which the leader stops acting")
    run.add_argument("--leader-elect-retry-period", type=float, default=2.0, help="seconds between attempts")
    run.add_argument("--relist-seconds", type=float, default=300.0,
                     help="list every kind this often and forget what was deleted while a watch was broken")
    run.add_argument("--log-format", choices=("text", "json"), default=os.environ.get("CAPLIQUIFY_LOG_FORMAT", "text"),
                     help="log lines as text or one JSON object each; $CAPLIQUIFY_LOG_FORMAT")
    run.add_argument("--log-level", default=os.environ.get("CAPLIQUIFY_LOG_LEVEL", "INFO"),
                     type=str.upper, choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="least severe level logged; $CAPLIQUIFY_LOG_LEVEL")
    run.add_argument("--allow-loopback-egress", "--allow-loopback-checks", dest="allow_loopback_checks",
                     action="store_true",
                     help="allow health checks and notifications to loopback addresses (tests, local demo)")
    run.add_argument("--cluster-networks", type=_cluster_networks, metavar="CIDR,...",
                     default=os.environ.get("CAPLIQUIFY_CLUSTER_NETWORKS") or None,
                     help="the cluster's Service and pod networks (e.g. 10.96.0.0/12,10.244.0.0/16): inside them a "
                          "namespace's checks and notifications reach only names of its own namespace "
                          "(<service>.<namespace>.svc); unset: no namespace rule; $CAPLIQUIFY_CLUSTER_NETWORKS")
    run.add_argument("--cluster-domain", default=None,
                     help="the cluster's DNS domain, for --cluster-networks (default: cluster.local)")
    run.set_defaults(func=_run)

    check = sub.add_parser("validate", help="check manifests against the API types offline")
    check.add_argument("files", nargs="+", help="YAML files, or - for standard input (objects of other groups are skipped)")
    check.set_defaults(func=_validate)

    sim = sub.add_parser("simulate", help="what-if: run a ScalingPolicy or AlertPolicy over a metric timeline offline")
    sim.add_argument("policy", help="YAML with a ScalingPolicy or AlertPolicy (the first one is used)")
    sim.add_argument("--series", help="open loop: a metric timeline, CSV with header t,<metric>,... or a YAML list")
    sim.add_argument("--trace", help="closed loop: load over time, a CSV t,load (seconds, requests/s) or a built-in: "
                                     "step, diurnal, flash-crowd, sawtooth, noisy-flat, slow-ramp")
    sim.add_argument("--baseline", choices=("hpa", "none"), default="hpa",
                     help="closed loop: also run a port of the Kubernetes HPA v2 algorithm on the same plant")
    sim.add_argument("--hpa-target", type=float, default=70.0, help="the baseline HPA's CPU utilisation target (%%)")
    sim.add_argument("--capacity", type=float, default=50.0, help="plant: requests/s one replica serves at 100%% CPU")
    sim.add_argument("--startup", type=int, default=30, help="plant: seconds from scale to a new pod being ready")
    sim.add_argument("--window", type=int, default=15, help="plant: seconds each metric is averaged over")
    sim.add_argument("--lag", type=int, default=0, help="plant: seconds a metric is late")
    sim.add_argument("--slo", type=float, default=0.9,
                     help="plant: the SLO is violated while load exceeds this share of ready capacity")
    sim.add_argument("--plot", help="closed loop: write a PNG of load, replicas and utilisation (matplotlib); none when unset")
    sim.add_argument("--replicas", type=int, default=2,
                     help="ScalingPolicy: replicas at t=0, the count the series' cpu is measured at")
    sim.add_argument("--as-given", action="store_true",
                     help="open loop: cpu as the series gives it too (by default it follows the replica count)")
    sim.add_argument("--step", type=float, default=5.0, help="AlertPolicy: evaluation step in seconds")
    sim.add_argument("--until", type=float, help="stop at this many seconds; two steps past the last point when unset")
    sim.add_argument("--all", action="store_true", help="print every evaluation, not only changes")
    sim.set_defaults(func=_simulate)

    crds = sub.add_parser("crds", help="write the CRDs generated from the API types")
    crds.add_argument("directory", nargs="?", default="crds", help="where the CRDs and their kustomization are written")
    crds.add_argument("--chart", help="also write the CRDs into this Helm chart's crds/ folder; not written when unset")
    crds.add_argument("--manifests", default="manifests", help="where manifests/base/admission.yaml is written")
    crds.set_defaults(func=_crds)

    railway_cli = cliparse.subcommands(sub.add_parser("railway", help="Railway helpers"), dest="railway_command", required=True,
                                       metavar="COMMAND", help="import: a policy set from an environment")
    importing = railway_cli.add_parser(
        "import", help="print a MonitoredService, ScalingPolicy and AlertPolicy per service of an environment (YAML)")
    importing.add_argument("--project", required=True, help="Railway project ID")
    importing.add_argument("--environment", required=True, help="Railway environment ID")
    importing.add_argument("--token-secret", default="railway-token",
                           help="the Secret the MonitoredServices name for the token (key: token)")
    importing.add_argument("--token-env", default="RAILWAY_TOKEN", help="environment variable holding the API token")
    importing.add_argument("--endpoint", default=os.environ.get("CAPLIQUIFY_RAILWAY_ENDPOINT", railway_adapter.DEFAULT_ENDPOINT),
                           help="Railway GraphQL endpoint read from; $CAPLIQUIFY_RAILWAY_ENDPOINT")
    importing.add_argument("--target-endpoint", help="the endpoint the MonitoredServices name; --endpoint when unset")
    importing.add_argument("--max-replicas", type=int, default=20, choices=range(1, 1001), metavar="1..1000",
                           help="maxReplicas of each ScalingPolicy written without a --replicas range")
    importing.add_argument("--replicas", action="append", default=[], metavar="SERVICE=MIN-MAX",
                           help="a service's replica range, e.g. web=2-10 (repeatable); without one the floor is the "
                                "count Railway runs now and the ceiling --max-replicas")
    importing.add_argument("--allow-loopback-egress", action="store_true", help="allow a loopback endpoint (local Railway)")
    importing.set_defaults(func=_railway_import)

    alerts_cli = cliparse.subcommands(sub.add_parser("alerts", help="alerting helpers"), dest="alerts_command",
                                      required=True, metavar="COMMAND", help="migrate: an Alertmanager configuration")
    migrating = alerts_cli.add_parser(
        "migrate", help="print an alertmanager.yml's routes, inhibitions and receivers as an AlertPolicy (YAML)")
    migrating.add_argument("file", help="alertmanager.yml")
    migrating.add_argument("--rules", required=True, help="YAML list of the policy's rules (Alertmanager has none)")
    migrating.add_argument("--selector", action="append", default=[], metavar="LABEL=VALUE",
                           help="MonitoredServices the policy applies to (repeatable)")
    migrating.add_argument("--name", default="migrated", help="the AlertPolicy's name")
    migrating.add_argument("--secret", default="alert-receivers", help="the Secret the channels name")
    migrating.set_defaults(func=_alerts_migrate)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
