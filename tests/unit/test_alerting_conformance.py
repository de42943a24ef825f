"""Alertmanager's own routing, matcher and silence test tables (tests/conformance/alertmanager/,
transcribed as data) run against this project's matching. Every case passes, or is listed in
DIFFERS with the reason we differ on purpose (the same list is in docs/alerting.md); a listed
case that starts passing fails too, so the list cannot go stale."""

from __future__ import annotations

import datetime
import functools
import pathlib
import typing

import pytest
import yaml

from controller.api import alertpolicy as api
from controller.api import matchers
from controller.core import alerting
from controller.core import muting
from controller.core import routing

DATA = pathlib.Path(__file__).parent.parent / "conformance" / "alertmanager"
T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)

# case id -> why we differ on purpose
DIFFERS = {
    "string-9": "label names are Prometheus' classic names here: a name like `foo!` cannot be written (refused)",
    "string-10": "label names are Prometheus' classic names here: `foo🙂` is refused (UTF-8 names are not supported)",
    "string-11": "label names are Prometheus' classic names here: `foo bar` is refused",
    "validate-8": "a Kubernetes object is UTF-8 JSON: a value holding the byte 0xff cannot reach the operator at all",
}


@functools.lru_cache(maxsize=None)
def load(name: str) -> typing.Any:
    return yaml.safe_load((DATA / name).read_text())


def spec_with(tree: typing.Mapping[str, typing.Any]) -> api.AlertPolicySpec:
    """An AlertPolicy holding a transcribed tree: one channel per receiver it names."""
    names: set[str] = set()

    def collect(node: typing.Mapping[str, typing.Any]) -> None:
        names.update(node.get("channels") or [])
        for child in node.get("routes") or []:
            collect(child)

    collect(tree.get("defaultRoute") or {})
    for route in tree.get("routes") or []:
        collect(route)
    return api.AlertPolicySpec.model_validate({
        "serviceRef": "conformance", "rules": [{"name": "R", "metric": "cpu", "threshold": 1}],
        "channels": [{"name": n, "webhook": {"url": f"https://{n}.example/"}} for n in sorted(names)],
        "defaultRoute": tree.get("defaultRoute"), "routes": tree.get("routes") or []})


def options(route: routing.Resolved) -> dict[str, typing.Any]:
    return {"receiver": route.channels[0] if route.channels else None,
            "groupBy": [] if route.group_by_all else sorted(route.group_by), "groupByAll": route.group_by_all,
            "groupWait": route.group_wait, "groupInterval": route.group_interval, "repeatInterval": route.repeat}


def routing_cases() -> list[typing.Any]:
    data = load("routing.yaml")
    return [pytest.param(tree, case, id=f"route-{tree}-{index}")
            for tree in data["trees"] for index, case in enumerate(data["cases"])]


@pytest.mark.parametrize("tree,case", routing_cases())
def test_route_match(tree: str, case: typing.Mapping[str, typing.Any]) -> None:
    spec = spec_with(load("routing.yaml")["trees"][tree])
    assert [options(r) for r in routing.match(spec, case["labels"])] == case["routes"]


def test_route_walk() -> None:
    data = load("routing.yaml")
    spec = spec_with(data["trees"][data["walk"]["tree"]])
    assert [r.channels[0] for r in routing.walk(spec)] == data["walk"]["receivers"]


def test_inherit_parent_group_by_all() -> None:
    data = load("routing.yaml")["inherit_group_by_all"]
    walked = {r.path: r.group_by_all for r in routing.walk(spec_with(data["tree"]))}
    assert {path: walked[path] for path in data["groupByAll"]} == data["groupByAll"]


def matcher_case(kind: str) -> list[typing.Any]:
    return [pytest.param(case, id=f"{kind}-{index}") for index, case in enumerate(load("matchers.yaml")[kind])]


def differ(case_id: str, outcome: bool) -> None:
    """A case listed in DIFFERS must still differ; any other must pass."""
    if case_id in DIFFERS:
        assert not outcome, f"{case_id} now agrees with Alertmanager: take it off DIFFERS and docs/alerting.md"
    else:
        assert outcome


@pytest.mark.parametrize("case", matcher_case("match"))
def test_matcher(case: typing.Mapping[str, typing.Any]) -> None:
    assert matchers.new("label", case["op"], case["value"]).matches({"label": case["label"]}) is case["match"]


@pytest.mark.parametrize("case", matcher_case("string"))
def test_matcher_string(case: typing.Mapping[str, typing.Any], request: pytest.FixtureRequest) -> None:
    try:
        written = str(matchers.new(case["name"], case["op"], case["value"]))
    except matchers.MatcherError:
        written = None
    differ(request.node.callspec.id, written == case["want"])


@pytest.mark.parametrize("case", matcher_case("parse"))
def test_parse_matchers(case: typing.Mapping[str, typing.Any]) -> None:
    if "error" in case:
        with pytest.raises(matchers.MatcherError):
            matchers.parse_set(case["input"])
    else:
        assert [[m.name, m.op, m.value] for m in matchers.parse_set(case["input"])] == case["want"]


def silence(found: typing.Sequence[typing.Sequence[str]], start: float, end: float) -> dict[str, typing.Any]:
    return {"start": T0 + datetime.timedelta(seconds=start), "end": T0 + datetime.timedelta(seconds=end),
            "labelMatchers": [str(matchers.new(*m)) for m in found]}


def silenced(silences: list[dict[str, typing.Any]], labels: typing.Mapping[str, str], seconds: float) -> bool:
    spec = api.AlertPolicySpec.model_validate({
        "serviceRef": "conformance", "rules": [{"name": "R", "metric": "cpu", "threshold": 1}], "silences": silences})
    return alerting.silenced(spec, labels, T0 + datetime.timedelta(seconds=seconds))


@pytest.mark.parametrize("case", [pytest.param(c, id=f"silence-matches-{i}")
                                  for i, c in enumerate(load("silences.yaml")["matches"]["cases"])])
def test_silence_matches(case: typing.Mapping[str, typing.Any]) -> None:
    labels = load("silences.yaml")["matches"]["labels"]
    assert silenced([silence(case["matchers"], -60, 60)], labels, 0) is case["drop"]


@pytest.mark.parametrize("case", [pytest.param(c, id=f"silence-window-{i}")
                                  for i, c in enumerate(load("silences.yaml")["window"])])
def test_silence_window(case: typing.Mapping[str, typing.Any]) -> None:
    assert silenced([silence([["a", "=", "b"]], case["start"], case["end"])], {"a": "b"}, case["at"]) is case["active"]


@pytest.mark.parametrize("step", [pytest.param(s, id=f"silencer-{i}")
                                  for i, s in enumerate(load("silences.yaml")["silencer"]["steps"])])
def test_silencer(step: typing.Mapping[str, typing.Any]) -> None:
    labels = load("silences.yaml")["silencer"]["labels"]
    present = [silence(s["matchers"], s["start"], s["end"]) for s in step["silences"]]
    assert silenced(present, labels, step["at"]) is step["mutes"]


@pytest.mark.parametrize("case", [pytest.param(c, id=f"validate-{i}")
                                  for i, c in enumerate(load("silences.yaml")["validate"])])
def test_validate_matcher(case: typing.Mapping[str, typing.Any], request: pytest.FixtureRequest) -> None:
    try:
        matchers.new(case["name"], case["op"], case["value"])
        error = ""
    except matchers.MatcherError as refused:
        error = str(refused)
    agrees = (error == "") if case["error"] == "" else case["error"] in error
    differ(request.node.callspec.id, agrees)


def inhibitions(rules: list[dict[str, typing.Any]], firing: list[dict[str, str]]) -> muting.Inhibitions:
    spec = api.AlertPolicySpec.model_validate({
        "serviceRef": "conformance", "rules": [{"name": "R", "metric": "cpu", "threshold": 1}],
        "inhibitRules": [{"sourceMatchers": r["source"], "targetMatchers": r["target"], "equal": r["equal"]}
                         for r in rules]})
    return muting.Inhibitions(spec, firing)


@pytest.mark.parametrize("case", [pytest.param(c, id=f"inhibit-has-equal-{i}")
                                  for i, c in enumerate(load("inhibit.yaml")["has_equal"])])
def test_inhibit_rule_has_equal(case: typing.Mapping[str, typing.Any]) -> None:
    rule = {"source": ['role="source"'], "target": ['role="target"'], "equal": case["equal"]}
    firing = [{**s["labels"], "role": "source"} for s in case["sources"] if not s.get("resolved")]
    assert inhibitions([rule], firing).inhibited({**case["target"], "role": "target"}) is case["muted"]


@pytest.mark.parametrize("table,index", [pytest.param(t, i, id=f"inhibit-{t}-{i}")
                                         for t in ("rules_match", "rules_matchers") for i in range(8)])
def test_inhibit_rule_matches(table: str, index: int) -> None:
    data = load("inhibit.yaml")[table]
    case = data["cases"][index]
    muted = inhibitions(data["rules"], [s["labels"] for s in data["sources"]]).inhibited(case["target"])
    assert muted is case["muted"]


@pytest.mark.parametrize("scenario", [pytest.param(s, id=f"inhibit-scenario-{i}")
                                      for i, s in enumerate(load("inhibit.yaml")["inhibit"]["scenarios"])])
def test_inhibit(scenario: typing.Mapping[str, typing.Any]) -> None:
    index = inhibitions([load("inhibit.yaml")["inhibit"]["rule"]], scenario["firing"])
    assert [index.inhibited(e["labels"]) for e in scenario["expected"]] == [e["muted"] for e in scenario["expected"]]
