"""`kubectl capliquify`: its views of the objects, and its arguments."""

from __future__ import annotations

import copy
import typing

import pytest

from controller.api import alertpolicy
from controller.core import alerting
from controller.plugin import main as plugin_main
from controller.plugin import views

MSVC = {"metadata": {"namespace": "shop", "name": "web"},
        "status": {"target": "Deployment/web", "health": "Degraded", "replicas": {"desired": 4, "ready": 3},
                   "rollout": {"revision": "7", "phase": "RolledBack"}}}
SCP = {"metadata": {"namespace": "shop", "name": "web"}, "spec": {"targetRef": {"monitoredService": "web"}},
       "status": {"target": "Deployment/web", "currentReplicas": 3, "desiredReplicas": 5,
                  "lastDecision": {"direction": "Up", "from": 3, "to": 5, "limitedBy": "MaxStep",
                                   "reason": "cpu 91 % > 70 %: 7 wanted, " + "limited to +2 by the step limit " * 4,
                                   "time": "2026-11-30T10:00:00Z"},
                  "recentDecisions": [{"direction": "Up", "from": 3, "to": 5, "limitedBy": "MaxStep",
                                       "reason": "cpu 91 % > 70 %", "time": "2026-11-30T10:00:00Z"},
                                      {"direction": "Down", "from": 4, "to": 3, "actuated": False,
                                       "reason": "cpu 20 % < 30 %", "time": "2026-11-30T09:00:00Z"}],
                  "metrics": [{"type": "cpu", "value": 91.25, "scaleUp": 70, "scaleDown": 30, "source": "prometheus"}],
                  "conditions": [{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound", "message": "ok"}]}}
DIRECT = {"metadata": {"namespace": "shop", "name": "batch"}, "spec": {"targetRef": {"kubernetes": {"name": "batch"}}},
          "status": {"target": "Deployment/batch", "currentReplicas": 1, "desiredReplicas": 1}}
ALP = {"metadata": {"namespace": "shop", "name": "prod"},
       "status": {"alerts": [{"rule": "HighMemory", "service": "web", "state": "Firing"},
                             {"rule": "LoginAttack", "service": "web", "state": "Firing", "acknowledgedBy": "alice"},
                             {"rule": "Errors", "service": "web", "state": "Resolved"},
                             {"rule": "HighMemory", "service": "api", "state": "Firing"}]}}
OTHER_NAMESPACE_ALP = {"metadata": {"namespace": "billing", "name": "prod"},
                       "status": {"alerts": [{"rule": "Leak", "service": "web", "state": "Firing"}]}}


def test_one_row_per_service_with_its_policy_and_firing_alerts() -> None:
    rows = views.status_rows([MSVC], [SCP, DIRECT], [ALP, OTHER_NAMESPACE_ALP])
    assert [row.service for row in rows] == ["scp/batch", "web"]
    web = rows[1]
    assert (web.target, web.health, web.replicas, web.decision) == ("Deployment/web", "Degraded", "3/5", "Up 3→5")
    assert web.alerts == "HighMemory, LoginAttack (acked)", "firing only, this service and namespace only"
    assert web.rollout == "RolledBack r7"
    assert len(web.why) == views.WHY_WIDTH and web.why.endswith("…")
    assert (rows[0].replicas, rows[0].health, rows[0].alerts) == ("1/1", "-", "-")


def test_an_unjudged_service_shows_dashes_not_a_crash() -> None:
    rows = views.status_rows([{"metadata": {"namespace": "shop", "name": "new"}}], [], [])
    assert rows == [views.Row("shop", "new", "-", "-", "-/-", "-", "-", "-", "-")]


def test_table_is_kubectls_plain_layout() -> None:
    text = views.status_table(views.status_rows([MSVC], [SCP], [ALP]), all_namespaces=False)
    header, row = text.splitlines()
    assert header.split() == ["SERVICE", "TARGET", "HEALTH", "REPLICAS", "DECISION", "WHY", "FIRING", "ROLLOUT"]
    assert row.startswith("web ") and header.index("TARGET") == row.index("Deployment/web")
    assert views.status_table(views.status_rows([MSVC], [SCP], [ALP]), all_namespaces=True).startswith("NAMESPACE")


def test_why_lists_decisions_with_the_stage_that_limited_each() -> None:
    text = views.why(SCP)
    assert text.splitlines()[0] == "ScalingPolicy shop/web → Deployment/web: 3 replicas now, 5 desired"
    assert "ScalingActive=True ValidMetricFound" in text
    up, down = [line for line in text.splitlines() if "2026-11-30T" in line]
    assert "Up 3→5" in up and "MaxStep" in up
    assert "Down 4→3 (not applied)" in down
    assert "91.25" in text and "prometheus" in text
    assert views.why({"metadata": {"namespace": "a", "name": "b"}}).endswith("No decision yet.")


def test_the_ack_it_writes_is_the_ack_the_operator_reads() -> None:
    who, alerts = alerting.parse_ack(views.ack_value("alice", "LoginAttack/web"))
    assert who == "alice" and alerts is not None
    assert alerting.acknowledges((who, alerts), "LoginAttack", "web")
    assert not alerting.acknowledges((who, alerts), "HighMemory", "web")


def test_references_name_the_right_kind() -> None:
    assert plugin_main._named("scp/web", "scp") == "web"
    assert plugin_main._named("web", "scp") == "web"
    assert plugin_main._named("alertpolicy/prod", "alp") == "prod"
    with pytest.raises(SystemExit, match="expected alp/NAME"):
        plugin_main._named("scp/web", "alp")


def test_an_alert_must_be_rule_slash_service(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(plugin_main, "Cluster", lambda *args: type("C", (), {"default_namespace": "d"})())
    assert plugin_main.main(["ack", "alp/prod", "LoginAttack"]) == 2
    assert "RULE/SERVICE" in capsys.readouterr().err
    # A ':' would end the acknowledger's name where the admission policy does not expect it.
    assert plugin_main.main(["ack", "alp/prod", "Login:Attack/web"]) == 2


class FakeCluster:
    """The calls `ack` makes, answered as an on-call role holding only `patch` would see them."""

    def __init__(self, kubeconfig: str | None, context: str | None, impersonate: str | None) -> None:
        self.default_namespace, self.impersonate = "shop", impersonate
        self.annotations: dict[tuple[str, str, str], str] = {}

    def get(self, *args: str) -> dict:
        raise plugin_main.kubernetes.client.ApiException(status=403, reason="Forbidden")

    def whoami(self) -> str:
        return self.impersonate or "system:serviceaccount:oncall:pager"

    def annotate(self, short_name: str, namespace: str, name: str, key: str, value: str) -> None:
        self.annotations[(namespace, name, key)] = value


def test_ack_is_recorded_under_the_callers_own_name(capsys: pytest.CaptureFixture[str],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[FakeCluster] = []

    def cluster(*args: typing.Any) -> FakeCluster:
        made.append(FakeCluster(*args))
        return made[-1]

    monkeypatch.setattr(plugin_main, "Cluster", cluster)
    assert plugin_main.main(["ack", "alp/prod", "LoginAttack/web"]) == 0, capsys.readouterr().err
    value = made[-1].annotations[("shop", "prod", "ops.capliquify.io/ack")]
    assert alerting.parse_ack(value)[0] == "system:serviceaccount:oncall:pager"  # a name holding ':' survives
    assert "acknowledged by system:serviceaccount:oncall:pager" in capsys.readouterr().out

    assert plugin_main.main(["ack", "alp/prod", "LoginAttack/web", "--as", "carol"]) == 0
    assert alerting.parse_ack(made[-1].annotations[("shop", "prod", "ops.capliquify.io/ack")])[0] == "carol"


def test_by_is_refused_not_ignored(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """`--by` once recorded any name given; an old script using it must fail, not ack as someone else."""
    monkeypatch.setattr(plugin_main, "Cluster", FakeCluster)
    assert plugin_main.main(["ack", "alp/prod", "LoginAttack/web", "--by", "alice"]) == 2
    assert "your own name" in capsys.readouterr().err


# `silence`, `unsilence`, `unack`: JSON patches that test resourceVersion, built from the policy as read.

SILENCED = {"metadata": {"namespace": "shop", "name": "prod", "resourceVersion": "41",
                         "annotations": {"ops.capliquify.io/ack": "carol: LoginAttack/web, Errors/web"}},
            "spec": {"silences": [{"name": "old", "createdBy": "alice", "start": "2026-01-01T00:00:00Z",
                                   "end": "2026-01-02T00:00:00Z", "labelMatchers": ['service="web"']}]}}
NOW = views.instant("2026-12-06T03:00:00Z")


def test_a_silence_is_appended_to_the_policy_as_read() -> None:
    silence = views.new_silence("system:serviceaccount:oncall:pager", ["service=web"], NOW,
                                NOW + views.duration("1h30m"), "deploy", "s1")
    assert silence == {"name": "s1", "createdBy": "system:serviceaccount:oncall:pager", "start": "2026-12-06T03:00:00Z",
                       "end": "2026-12-06T04:30:00Z", "labelMatchers": ["service=web"], "comment": "deploy"}
    alertpolicy.Silence.model_validate(silence)  # what the schema holds
    assert views.silence_patch(SILENCED, silence, 32) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "41"},
        {"op": "add", "path": "/spec/silences/-", "value": silence}]
    bare = {"metadata": {"resourceVersion": "7"}, "spec": {}}
    assert views.silence_patch(bare, silence, 32)[1] == {"op": "add", "path": "/spec/silences", "value": [silence]}
    with pytest.raises(views.PatchError, match="already set"):
        views.silence_patch(SILENCED, {**silence, "name": "old"}, 32)
    with pytest.raises(views.PatchError, match="the most it may"):
        views.silence_patch(SILENCED, silence, 1)
    with pytest.raises(views.PatchError, match="before it starts"):
        views.new_silence("u", ["service=web"], NOW, NOW, "", "s1")


@pytest.mark.parametrize("text,seconds", [("2h", 7200), ("90m", 5400), ("1h30m", 5400), ("1d", 86400), ("45s", 45)])
def test_durations(text: str, seconds: int) -> None:
    assert views.duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "2", "h", "-1h", "0m", "2 hours", "1h2d"])
def test_a_bad_duration_is_one_line(text: str) -> None:
    with pytest.raises(views.PatchError, match="--for"):
        views.duration(text)


def test_until_without_an_offset_is_utc() -> None:
    assert views.instant("2026-12-06T18:00:00") == views.instant("2026-12-06T19:00:00+01:00")
    with pytest.raises(views.PatchError, match="--until"):
        views.instant("tomorrow")


def test_unsilence_removes_that_silence_only_if_it_is_still_there() -> None:
    two = {**SILENCED, "spec": {"silences": [*SILENCED["spec"]["silences"], {"name": "new"}]}}
    assert views.unsilence_patch(two, "new") == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "41"},
        {"op": "test", "path": "/spec/silences/1/name", "value": "new"},
        {"op": "remove", "path": "/spec/silences/1"}]
    with pytest.raises(views.PatchError, match="no silence named gone .named silences: old, new."):
        views.unsilence_patch(two, "gone")


def test_unack_removes_the_annotation_only_if_it_still_holds_the_value_read() -> None:
    assert views.unack_patch(SILENCED, "ops.capliquify.io/ack", "carol: X/web") == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "41"},
        {"op": "test", "path": "/metadata/annotations/ops.capliquify.io~1ack", "value": "carol: X/web"},
        {"op": "remove", "path": "/metadata/annotations/ops.capliquify.io~1ack"}]


class PatchingCluster(FakeCluster):
    """An AlertPolicy readable and JSON-patchable; the first `races` patches find it changed."""

    races = 0

    def __init__(self, *args: typing.Any) -> None:
        super().__init__(*args)
        self.policy = copy.deepcopy(SILENCED)
        self.patches: list[list[dict]] = []

    def get(self, *args: str) -> dict:
        return copy.deepcopy(self.policy)

    def json_patch(self, short_name: str, namespace: str, name: str, patch: list[dict]) -> None:
        self.patches.append(patch)
        if len(self.patches) <= self.races:  # as the API server answers a failed `test` op
            error = plugin_main.kubernetes.client.ApiException(status=422, reason="Unprocessable Entity")
            error.body = '{"message": "testing value /metadata/resourceVersion failed: test failed"}'
            raise error


def _run(monkeypatch: pytest.MonkeyPatch, races: int = 0) -> list[PatchingCluster]:
    made: list[PatchingCluster] = []

    def cluster(*args: typing.Any) -> PatchingCluster:
        made.append(PatchingCluster(*args))
        made[-1].races = races
        return made[-1]

    monkeypatch.setattr(plugin_main, "Cluster", cluster)
    return made


def test_silence_records_the_caller_and_retries_when_another_writer_came_first(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    made = _run(monkeypatch)
    assert plugin_main.main(["silence", "alp/prod", "--matcher", "service=web", "--matcher", "severity=~crit.*",
                             "--for", "2h", "--comment", "deploy", "--as", "carol"]) == 0, capsys.readouterr().err
    added = made[-1].patches[-1][1]["value"]
    assert added["createdBy"] == "carol" and added["labelMatchers"] == ["service=web", "severity=~crit.*"]
    assert added["name"].startswith("silence-") and "set by carol" in capsys.readouterr().out

    made = _run(monkeypatch, races=2)
    assert plugin_main.main(["silence", "alp/prod", "--matcher", "service=web", "--until", "2030-01-01T00:00:00Z",
                             "--name", "mine"]) == 0, capsys.readouterr().err
    assert len(made[-1].patches) == 3
    made = _run(monkeypatch, races=99)
    assert plugin_main.main(["silence", "alp/prod", "--matcher", "service=web", "--for", "1h"]) == 1
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize("argv,message", [
    (["--matcher", "service", "--for", "2h"], "--matcher"),
    (["--matcher", "service=~(", "--for", "2h"], "--matcher"),
    (["--matcher", "service=web", "--for", "soon"], "--for"),
    (["--matcher", "service=web", "--until", "2000-01-01T00:00:00Z"], "before it starts"),
    (["--matcher", "service=web", "--for", "2h", "--name", "Bad_Name"], "--name"),
    (["--matcher", "service=web", "--for", "2h", "--name", "old"], "already set"),
])
def test_silence_errors_are_one_line(argv: list[str], message: str, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    made = _run(monkeypatch)
    assert plugin_main.main(["silence", "alp/prod", *argv]) != 0
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and err.startswith("error: "), err
    assert not made[-1].patches


def test_unsilence_and_unack(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    made = _run(monkeypatch)
    assert plugin_main.main(["unsilence", "alp/prod", "old"]) == 0
    assert made[-1].patches[-1][-1] == {"op": "remove", "path": "/spec/silences/0"}
    assert plugin_main.main(["unsilence", "alp/prod", "gone"]) == 1
    assert "no silence named gone" in capsys.readouterr().err

    assert plugin_main.main(["unack", "alp/prod", "Errors/web", "--as", "carol"]) == 0, capsys.readouterr().err
    assert made[-1].patches[-1][-1]["op"] == "remove" and "cleared" in capsys.readouterr().out
    assert plugin_main.main(["unack", "alp/prod", "Errors/web", "--as", "dave"]) == 1
    err = capsys.readouterr().err
    assert "carol's" in err and "not yours (dave)" in err and err.count("\n") == 1
    assert not made[-1].patches
    assert plugin_main.main(["unack", "alp/prod", "Down/web", "--as", "carol"]) == 1
    assert "does not name Down/web" in capsys.readouterr().err
    assert plugin_main.main(["unack", "alp/prod", "Down"]) == 2
