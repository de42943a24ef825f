"""`kubectl capliquify`: its views of the objects, and its arguments."""

from __future__ import annotations

import typing

import pytest

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
