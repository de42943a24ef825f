"""`capliquify alerts migrate alertmanager.yml`: Alertmanager's own routing test trees, in its
own syntax, migrated and routed here give upstream's results; what cannot be carried is
refused, every reason named; nothing secret is copied; the output passes `validate`."""

from __future__ import annotations

import pathlib
import typing

import pytest
import yaml

from controller import cli
from controller.api import alertpolicy as api
from controller.core import alertmanager_import
from controller.core import bounded_yaml
from controller.core import routing

DATA = pathlib.Path(__file__).parent.parent / "conformance" / "alertmanager"
UPSTREAM_DEFAULTS = {"group_by": [], "group_wait": "30s", "group_interval": "5m", "repeat_interval": "4h"}


def load(name: str) -> typing.Any:
    return bounded_yaml.load((DATA / name).read_text())


def migrated_tree(tree: str) -> api.AlertPolicySpec:
    data = load("route_trees.yaml")
    route = {**UPSTREAM_DEFAULTS, **bounded_yaml.load(data["trees"][tree])}  # upstream's defaults on its root
    migration = alertmanager_import.migrate({"route": route, "receivers": data["receivers"]}, "s")
    return api.AlertPolicySpec.model_validate({"serviceRef": "x", "rules": [{"name": "R", "metric": "cpu",
                                                                              "threshold": 1}], **migration.spec})


@pytest.mark.parametrize("tree", ["match", "matchers", "matchers_and_match"])
def test_upstream_route_trees_migrate_to_the_same_routing(tree: str) -> None:
    spec = migrated_tree(tree)
    for case in load("routing.yaml")["cases"]:
        got = [{"receiver": r.channels[0], "groupBy": [] if r.group_by_all else sorted(r.group_by),
                "groupByAll": r.group_by_all, "groupWait": r.group_wait, "groupInterval": r.group_interval,
                "repeatInterval": r.repeat} for r in routing.match(spec, case["labels"])]
        want = [{**route, "receiver": f"{route['receiver']}-webhook"} for route in case["routes"]]
        assert got == want, case["labels"]


def write(tmp_path: pathlib.Path, config: dict[str, typing.Any]) -> tuple[str, str]:
    (tmp_path / "am.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump([{"name": "Down", "metric": "health", "op": ">=",
                                                          "threshold": 2, "severity": "critical"}]))
    return str(tmp_path / "am.yml"), str(tmp_path / "rules.yaml")


CONFIG = {
    "global": {"slack_api_url": "https://hooks.slack.com/services/T0/B0/SECRETSLACK"},
    "route": {"receiver": "ops", "group_by": ["service"], "routes": [
        {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
        {"match_re": {"service": "api|web"}, "receiver": "web-team"}]},
    "inhibit_rules": [{"source_match": {"severity": "critical"}, "target_match_re": {"severity": "warning|info"},
                       "equal": ["service"]}],
    "receivers": [{"name": "ops", "slack_configs": [{"channel": "#ops"}]},
                  {"name": "pager", "pagerduty_configs": [{"routing_key": "SECRETROUTINGKEY"}],
                   "opsgenie_configs": [{"api_key": "SECRETGENIEKEY"}]},
                  {"name": "web-team", "msteamsv2_configs": [{"webhook_url": "https://example.com/SECRETTEAMS"}],
                   "email_configs": [{"to": "web@example.com", "auth_password": "SECRETPASSWORD"}]}],
}


def test_the_output_is_a_valid_policy_and_copies_no_secret(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    am, rules = write(tmp_path, CONFIG)
    assert cli.main(["alerts", "migrate", am, "--rules", rules, "--selector", "tier=prod", "--name", "web"]) == 0
    captured = capsys.readouterr()
    assert "SECRET" not in captured.out and "SECRET" not in captured.err
    policy, secret = list(yaml.safe_load_all(captured.out))
    spec = api.AlertPolicySpec.model_validate(policy["spec"])
    assert [c.name for c in spec.channels] == ["ops-slack", "pager-pagerduty", "pager-opsgenie", "web-team-msteamsv2",
                                               "web-team-email"]
    assert secret["stringData"]["pager-pagerduty"].startswith("REPLACE with receivers[1].pagerduty_configs[0]")
    assert spec.inhibitRules[0].targetMatchers == ['severity=~"warning|info"']
    labels = {"severity": "critical", "service": "web"}
    assert [r.channels for r in routing.match(spec, labels)] == [
        ("pager-pagerduty", "pager-opsgenie"), ("web-team-msteamsv2", "web-team-email")]
    (tmp_path / "out.yaml").write_text(captured.out)
    assert cli.main(["validate", str(tmp_path / "out.yaml")]) == 0


def test_what_cannot_be_carried_is_refused_every_reason_named(tmp_path: pathlib.Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    deep = {"match": {"a": "1"}, "routes": [{"match": {"b": "1"}, "routes": [{"match": {"c": "1"}, "routes": [
        {"match": {"d": "1"}}]}]}]}
    config = {
        "route": {"receiver": "ops", "matchers": ['team="x"'], "routes": [
            deep, {"matchers": ['service=~"(web"'], "receiver": "ops"},
            {"match": {"x": "1"}, "mute_time_intervals": ["weekends"], "receiver": "ops"},
            {"match": {"x": "2"}, "receiver": "nobody"}, {"match": {"x": "3"}, "group_wait": "3d"}]},
        "receivers": [{"name": "ops", "sns_configs": [{"topic_arn": "t"}]},
                      {"name": "old", "pagerduty_configs": [{"service_key": "k"}]}],
    }
    am, rules = write(tmp_path, config)
    assert cli.main(["alerts", "migrate", am, "--rules", rules]) == 2
    err = capsys.readouterr().err
    for reason in ("route.matchers: the root route matches every alert",
                   "receivers[0] (ops): sns_configs cannot be carried",
                   "receivers[1].pagerduty_configs[0]: service_key is PagerDuty's Events API v1",
                   "route.routes[0].routes[0].routes[0].routes: deeper than three levels",
                   "route.routes[1].matchers: invalid regular expression",
                   "route.routes[2].mute_time_intervals: cannot be carried (no time intervals here)",
                   "route.routes[3].receiver: nobody is not a receiver of the file",
                   "route.routes[4].group_wait: 3d is not a duration from 0 s to 86400 s"):
        assert reason in err, err


def test_too_many_routes_at_a_level_is_refused(tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = {"route": {"receiver": "ops", "routes": [{"match": {"n": str(i)}} for i in range(17)]},
              "receivers": [{"name": "ops", "webhook_configs": [{"url": "http://127.0.0.1:9/"}]}]}
    am, rules = write(tmp_path, config)
    assert cli.main(["alerts", "migrate", am, "--rules", rules]) == 2
    assert "route.routes: 17 routes; at most 16 here at this depth" in capsys.readouterr().err


def test_a_file_that_is_not_an_alertmanager_configuration(tmp_path: pathlib.Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    am, rules = write(tmp_path, {"groups": []})
    assert cli.main(["alerts", "migrate", am, "--rules", rules]) == 2
    assert "not an Alertmanager configuration" in capsys.readouterr().err


@pytest.mark.parametrize("text,seconds", [("0", 0), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("4h", 14400),
                                          ("1d", 86400), ("1w", 604800), ("90", None), ("1h 30m", None)])
def test_durations_as_prometheus_writes_them(text: str, seconds: float | None) -> None:
    assert alertmanager_import._seconds(text) == seconds
