"""Dashboards as code, with Grafana's own SDK (grafana-foundation-sdk): the operator's health
and cost, and each service's scaling, health, alerts and rollouts.

`make dashboards` writes them to charts/capliquify-operator/dashboards/ (the chart ships them as
ConfigMaps for Grafana's dashboard sidecar); a unit test fails when the committed JSON is stale
and an integration test runs every panel's query against a Prometheus scraping the operator.
Queries name no scrape job: operator series are picked by `and on (instance, job) capliquify_leader`.
Only `make dashboards` and the tests import this module (the SDK is a test/dev dependency).
"""

from __future__ import annotations

import json
import pathlib
import re
import sys
import typing

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.builders import prometheus as prometheus_builder
from grafana_foundation_sdk.builders import stat as stat_builder
from grafana_foundation_sdk.builders import statetimeline as statetimeline_builder
from grafana_foundation_sdk.builders import timeseries as timeseries_builder
from grafana_foundation_sdk.cog import encoder as cog_encoder
from grafana_foundation_sdk.models import dashboard as dashboard_model

DATASOURCE = dashboard_model.DataSourceRef(type_val="prometheus", uid="${datasource}")
OPERATOR = "and on (instance, job) capliquify_leader"  # the operator's own process series
RATE = "$__rate_interval"
DIRECTORY = pathlib.Path(__file__).resolve().parents[1] / "charts" / "capliquify-operator" / "dashboards"


def query(expr: str, legend: str = "") -> prometheus_builder.Dataquery:
    built = prometheus_builder.Dataquery().expr(expr).datasource(DATASOURCE)
    return built.legend_format(legend) if legend else built


PanelT = typing.TypeVar("PanelT", timeseries_builder.Panel, statetimeline_builder.Panel)


def _with_targets(panel: PanelT, queries: typing.Sequence[prometheus_builder.Dataquery]) -> PanelT:
    """Each query as a target with its own refId (A, B, ...), as Grafana requires."""
    for ref, target in zip("ABCDEFGH", queries, strict=False):
        panel = panel.with_target(target.ref_id(ref))
    return panel


def timeseries(title: str, unit: str, description: str, *queries: prometheus_builder.Dataquery,
               width: int = 8) -> timeseries_builder.Panel:
    panel = timeseries_builder.Panel().title(title).unit(unit).description(description).datasource(DATASOURCE)
    return _with_targets(panel, queries).height(8).span(width)


def timeline(title: str, description: str, *queries: prometheus_builder.Dataquery) -> statetimeline_builder.Panel:
    panel = statetimeline_builder.Panel().title(title).description(description).datasource(DATASOURCE)
    return _with_targets(panel, queries).height(8).span(24)


def _datasource_variable() -> dashboard_builder.DatasourceVariable:
    return dashboard_builder.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def _label_variable(name: str, expr: str) -> dashboard_builder.QueryVariable:
    return (dashboard_builder.QueryVariable(name).label(name.capitalize()).datasource(DATASOURCE)
            .query({"query": expr, "refId": name}).refresh(dashboard_model.VariableRefresh.ON_TIME_RANGE_CHANGED)
            .include_all(True).multi(True).all_value(".*"))


def _base(title: str, uid: str, description: str) -> dashboard_builder.Dashboard:
    return (dashboard_builder.Dashboard(title).uid(uid).description(description).tags(["capliquify"])
            .refresh("30s").time("now-1h", "now").timezone("browser").with_variable(_datasource_variable()))


def operator_dashboard() -> dashboard_builder.Dashboard:
    board = _base("CapLiquify / Operator", "capliquify-operator",
                  "The operator itself: leader, rounds and their cost, API writes, errors, notifications, health-check lag.")
    board = board.with_row(dashboard_builder.Row("Leader and rounds"))
    for panel in (
        stat_builder.Panel().title("Leader").description("1 on the replica that holds the Lease.").datasource(DATASOURCE)
        .with_target(query("capliquify_leader", "{{instance}}").ref_id("A")).height(8).span(6),
        timeseries("Objects watched", "short", "Objects in the in-memory view, by kind.",
                   query("max by (kind) (capliquify_watched_objects)", "{{kind}}"), width=6),
        timeseries("Round duration p95", "s", "Evaluation and scaling rounds, 95th percentile.",
                   query(f"histogram_quantile(0.95, sum by (le) (rate(capliquify_evaluation_round_duration_seconds_bucket[{RATE}])))",
                         "evaluation"),
                   query(f"histogram_quantile(0.95, sum by (le) (rate(capliquify_scaling_round_duration_seconds_bucket[{RATE}])))",
                         "scaling"), width=6),
        timeseries("Loop age", "s", "Seconds since each of the leader's loops last came round (alert: 3 periods).",
                   query("timestamp(capliquify_loop_last_pass_timestamp_seconds) - capliquify_loop_last_pass_timestamp_seconds",
                         "{{loop}}"), width=6),
    ):
        board = board.with_panel(panel)
    board = board.with_row(dashboard_builder.Row("Cost"))
    for panel in (
        timeseries("CPU", "percentunit", "CPU of each operator replica (cores).",
                   query(f"rate(process_cpu_seconds_total[{RATE}]) {OPERATOR}", "{{instance}}")),
        timeseries("Memory", "bytes", "Resident memory of each operator replica.",
                   query(f"process_resident_memory_bytes {OPERATOR}", "{{instance}}")),
        timeseries("Prometheus queries", "reqps", "Queries the scaler sends (one per distinct query per round).",
                   query(f"sum(rate(capliquify_prometheus_queries_total[{RATE}]))", "queries")),
    ):
        board = board.with_panel(panel)
    board = board.with_row(dashboard_builder.Row("API and watches"))
    for panel in (
        timeseries("API writes", "reqps", "Write requests to the API server, by verb (0 in steady state).",
                   query(f"sum by (verb) (rate(capliquify_api_writes_total[{RATE}]))", "{{verb}}")),
        timeseries("Reconcile errors", "ops", "Reconciles that failed (retried), by kind.",
                   query(f"sum by (kind) (rate(capliquify_reconcile_errors_total[{RATE}]))", "{{kind}}")),
        timeseries("Watch events and restarts", "ops", "Watch events by kind; watches that broke or listed again.",
                   query(f"sum by (kind) (rate(capliquify_watch_events_total[{RATE}]))", "{{kind}}"),
                   query(f"sum by (kind, reason) (rate(capliquify_watch_restarts_total[{RATE}]))", "restart {{kind}} {{reason}}")),
    ):
        board = board.with_panel(panel)
    board = board.with_row(dashboard_builder.Row("Actions"))
    for panel in (
        timeseries("Notifications", "ops", "Deliveries by channel kind and result.",
                   query(f"sum by (kind, result) (rate(capliquify_notifications_total[{RATE}]))", "{{kind}} {{result}}")),
        timeseries("Health checks", "s", "Probes by result; lag between a check falling due and its probe (p99).",
                   query(f"histogram_quantile(0.99, sum by (le) (rate(capliquify_health_check_lag_seconds_bucket[{RATE}])))",
                         "lag p99"),
                   query(f"sum by (result) (rate(capliquify_health_probes_total[{RATE}]))", "probes {{result}}")),
        timeseries("Scaling and rollbacks", "ops", "Replica changes applied by direction; rollbacks.",
                   query(f"sum by (direction) (rate(capliquify_scale_events_total[{RATE}]))", "{{direction}}"),
                   query(f"sum(rate(capliquify_rollbacks_total[{RATE}]))", "rollbacks")),
    ):
        board = board.with_panel(panel)
    return board


def services_dashboard() -> dashboard_builder.Dashboard:
    selector = 'namespace=~"$namespace"'
    board = (_base("CapLiquify / Services", "capliquify-services",
                   "Per service: replicas against what was decided, each metric against its scale-up/scale-down band, "
                   "health, alerts; rollouts as annotations.")
             .with_variable(_label_variable("namespace", "label_values(capliquify_scaling_replicas, namespace)"))
             .with_variable(_label_variable("policy", 'label_values(capliquify_scaling_replicas{namespace=~"$namespace"}, policy)'))
             .with_variable(_label_variable("service", 'label_values(capliquify_service_health{namespace=~"$namespace"}, service)'))
             .annotation(dashboard_builder.AnnotationQuery().name("Rollouts").datasource(DATASOURCE).enable(True)
                         .icon_color("purple")
                         .expr(f'capliquify_rollout_info{{{selector}, service=~"$service"}}')))
    for panel in (
        timeseries("Replicas: current and desired", "short", "What the target has and what the policy last decided.",
                   query(f'capliquify_scaling_replicas{{{selector}, policy=~"$policy"}}', "{{policy}} {{state}}"), width=12),
        timeseries("Metrics against their bands", "short",
                   "Each metric's value with its scale-up and scale-down thresholds: above the upper line scales up, "
                   "below the lower one scales down.",
                   query(f'capliquify_scaling_metric{{{selector}, policy=~"$policy"}}', "{{policy}} {{metric}} {{series}}"),
                   width=12),
        timeline("Health", "Healthy, Degraded, Unhealthy or Unknown, per service.",
                 query(f'capliquify_service_health{{{selector}, service=~"$service"}} == 1', "{{service}} {{health}}")),
        timeline("Alerts", "Alerts that are Pending, Firing or Resolved.",
                 query(f'capliquify_alert_state{{{selector}, service=~"$service"}} == 1', "{{rule}}/{{service}} {{state}}")),
        timeline("Rollouts", "The current revision of each service and its phase.",
                 query(f'capliquify_rollout_info{{{selector}, service=~"$service"}}', "{{service}} r{{revision}} {{phase}}")),
    ):
        board = board.with_panel(panel)
    return board


DASHBOARDS: dict[str, typing.Callable[[], dashboard_builder.Dashboard]] = {
    "capliquify-operator.json": operator_dashboard,
    "capliquify-services.json": services_dashboard,
}


def render(name: str) -> str:
    return cog_encoder.JSONEncoder(sort_keys=True, indent=2).encode(DASHBOARDS[name]().build()) + "\n"


def queries(document: typing.Mapping[str, typing.Any]) -> list[str]:
    """Every PromQL expression of a dashboard JSON: panel targets and annotations."""
    found = [target["expr"] for panel in document.get("panels") or [] for target in panel.get("targets") or []
             if target.get("expr")]
    return found + [a["expr"] for a in (document.get("annotations") or {}).get("list") or [] if a.get("expr")]


def concrete(expr: str, rate_interval: str = "1m", **variables: str) -> str:
    """A panel query as Grafana sends it: $__rate_interval and the dashboard's variables filled in."""
    text = expr.replace("$__rate_interval", rate_interval)
    return re.sub(r"\$(\w+)", lambda m: variables.get(m.group(1), ".*"), text)


def main(argv: list[str] | None = None) -> int:
    directory = pathlib.Path((argv or sys.argv[1:] or [str(DIRECTORY)])[0])
    directory.mkdir(parents=True, exist_ok=True)
    for name in DASHBOARDS:
        (directory / name).write_text(render(name))
        print(f"wrote {directory / name} ({len(queries(json.loads(render(name))))} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
