"""High availability: two replicas, one Lease (issue 10). Real control plane, both operators as
the operator's ServiceAccount, short timings (lease 6 s, renew deadline 4 s, retry 1 s)."""

from __future__ import annotations

import datetime
import json
import re
import signal
import time

import pytest
import yaml

from localcluster import receivers
from tests import conftest
from tests.integration import test_alerting
from tests.integration import test_scaling
from tests.integration.test_operator import MSVC
from tests.integration.test_operator import WEB
from tests.integration.test_operator import _wait_condition

pytestmark = pytest.mark.integration
ELECTION = ("--leader-elect", "--leader-elect-lease-duration=6", "--leader-elect-renew-deadline=4",
            "--leader-elect-retry-period=1", "--resync-seconds=10")


def metric(operator, name: str) -> float:  # noqa: ANN001
    for line in operator.metrics_text().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return 0.0


def writes(operator) -> float:  # noqa: ANN001
    return sum(float(line.split()[-1]) for line in operator.metrics_text().splitlines()
               if line.startswith("capliquify_api_writes_total{"))


def leader_of(operators: list) -> list:  # noqa: ANN001
    return [op for op in operators if metric(op, "capliquify_leader") == 1.0]


def identity(operator) -> str:  # noqa: ANN001
    """The replica's election identity, which its requests carry in their User-Agent."""
    found = re.search(r"leader election as (\S+) on Lease", operator.log())
    assert found, operator.log()[-2000:]
    return found.group(1)


def writes_by(cluster, since: float) -> list[tuple[float, str, dict]]:  # noqa: ANN001
    """Every write of the operator's ServiceAccount since `since` (epoch s): (time, identity, audit event)."""
    found = []
    for event in cluster.audit_events():
        if event.get("user", {}).get("username") != conftest.OPERATOR_USER or event.get("verb") not in (
                "create", "update", "patch", "delete"):
            continue
        at = datetime.datetime.fromisoformat(event["requestReceivedTimestamp"].replace("Z", "+00:00")).timestamp()
        agent = re.search(r"capliquify-operator \((\S+)\)", event.get("userAgent", ""))
        if at >= since:
            found.append((at, agent.group(1) if agent else event.get("userAgent", ""), event))
    return sorted(found, key=lambda row: row[0])


def msvc(name: str) -> dict:
    return {**MSVC, "metadata": {"name": name}}


def test_one_leader_acts_a_standby_takes_over_and_a_paused_leader_stands_down(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    began = time.time()
    first = operator_factory(*ELECTION)
    second = operator_factory(*ELECTION)
    cluster.wait_for(lambda: len(leader_of([first, second])) == 1, 20, "one leader")
    leader, standby = (first, second) if leader_of([first, second]) == [first] else (second, first)

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([WEB, msvc("a")]))
    _wait_condition(cluster, "msvc", "a", namespace, "True", "TargetFound")
    assert writes(leader) > 0 and writes(standby) == 0, "the standby wrote nothing"
    assert {who for _, who, _ in writes_by(cluster, began)} == {identity(leader)}, "audit: only the lease holder wrote"
    assert metric(standby, "capliquify_watched_objects") >= 1  # its view is warm (it watches)

    # The leader dies without a word: the standby takes over after one lease duration.
    leader.process.kill()
    died = time.monotonic()
    cluster.wait_for(lambda: leader_of([standby]) == [standby], 20, "takeover")
    takeover = time.monotonic() - died
    assert takeover < 6 + 1 + 3, f"takeover took {takeover:.1f}s"
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(msvc("b")))
    _wait_condition(cluster, "msvc", "b", namespace, "True", "TargetFound")

    # A paused leader (SIGSTOP) loses the Lease; on waking it stands down before acting.
    newcomer = operator_factory(*ELECTION)
    time.sleep(3)
    assert leader_of([standby, newcomer]) == [standby]
    # A paused leader (SIGSTOP for 30 s) loses the Lease; on waking it stands down before acting.
    paused_identity = identity(standby)
    standby.process.send_signal(signal.SIGSTOP)
    paused = time.monotonic()
    cluster.wait_for(lambda: leader_of([newcomer]) == [newcomer], 20, "takeover from a paused leader")
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(msvc("c")))
    _wait_condition(cluster, "msvc", "c", namespace, "True", "TargetFound")  # the new leader acts
    time.sleep(max(0.0, 30 - (time.monotonic() - paused)))
    woke = time.time()
    standby.process.send_signal(signal.SIGCONT)
    cluster.wait_for(lambda: standby.process.poll() is not None, 20, "the paused leader exits on waking")
    assert "lost the Lease" in standby.log()
    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump(msvc("d")))
    _wait_condition(cluster, "msvc", "d", namespace, "True", "TargetFound")
    after = writes_by(cluster, woke)
    assert not [event["requestURI"] for _, who, event in after if who == paused_identity], "it did not act after waking"
    assert any(who == identity(newcomer) for _, who, _ in after), "the new leader does"


def test_a_clean_shutdown_hands_the_lease_over_at_once(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    slow = ("--leader-elect", "--leader-elect-lease-duration=30", "--leader-elect-renew-deadline=20",
            "--leader-elect-retry-period=1")
    first = operator_factory(*slow)
    cluster.wait_for(lambda: leader_of([first]) == [first], 20, "first leads")
    second = operator_factory(*slow)
    time.sleep(2)
    first.stop()  # SIGTERM: it releases the Lease
    stopped = time.monotonic()
    cluster.wait_for(lambda: leader_of([second]) == [second], 15, "takeover after a release")
    assert time.monotonic() - stopped < 10, "well before the 30 s lease would have expired"


def failover_objects(prometheus_url: str, hook_url: str) -> list[dict]:
    policy = test_scaling.policy(metrics=[{"type": "cpu", "scaleUp": 70, "scaleDown": 30}], behavior={
        "scaleUp": {"cooldownSeconds": 0, "policies": [{"type": "Pods", "value": 1, "periodSeconds": 4}]},
        "scaleDown": {"stabilizationWindowSeconds": 300}})
    alerts = {"apiVersion": test_scaling.GROUP, "kind": "AlertPolicy", "metadata": {"name": "web"}, "spec": {
        "serviceRef": "web",
        "rules": [{"name": "HighErrorRate", "metric": "errorRate", "op": ">", "threshold": 5, "forSeconds": 2,
                   "severity": "critical"}],
        "channels": [{"name": "hook", "webhook": {"url": hook_url}}],
        "routes": [{"severity": "critical", "channelKinds": ["webhook"], "repeatIntervalSeconds": 3600}]}}
    return [test_scaling.msvc(prometheus_url), policy, alerts]


def test_kill_9_of_the_leader_during_a_firing_alert_and_a_load_step(cluster, namespace, demo_stack,  # noqa: ANN001
                                                                    operator_factory) -> None:
    """The must-show of issue 10: the standby scales within lease duration + one evaluation
    interval; every notification arrives once; no scale step twice; one Event per transition;
    every write of the ServiceAccount comes from the replica holding the Lease."""
    began = time.time()
    hook = receivers.HttpReceiver()
    try:
        cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all(
            failover_objects(demo_stack.prometheus.url, f"{hook.url}/hook")))
        flags = (*ELECTION, "--rate-window=10s", "--metrics-interval-seconds=2", "--alert-interval-seconds=1",
                 "--allow-loopback-egress")
        operators = [operator_factory(*flags), operator_factory(*flags)]
        cluster.wait_for(lambda: len(leader_of(operators)) == 1, 20, "one leader")
        leader = leader_of(operators)[0]
        standby = next(op for op in operators if op is not leader)
        demo_stack.start_load(10)  # 50 % cpu at 2 pods: inside the band
        cluster.wait_for(lambda: test_scaling.condition(cluster, namespace, "ScalingActive").get("reason")
                         == "ValidMetricFound", 90, "metrics flowing")

        test_alerting.control(demo_stack, {"errorRate": 60})
        cluster.wait_for(lambda: len(hook.delivered("/hook")) == 1, 60, "firing delivered")
        demo_stack.start_load(test_scaling.HEAVY_RATE)  # 200 % at 2 pods: a load step
        cluster.wait_for(lambda: test_scaling.replicas(cluster, namespace) >= 3, 60, "the leader's first step")
        leader.process.kill()
        killed = time.time()

        cluster.wait_for(lambda: test_scaling.replicas(cluster, namespace) >= 4, 30, "the new leader scales")
        test_alerting.control(demo_stack, {"errorRate": 0})
        cluster.wait_for(lambda: test_scaling.replicas(cluster, namespace) == 6, 60, "scaled to max")
        cluster.wait_for(lambda: len(hook.delivered("/hook")) == 2, 60, "resolved delivered")
        time.sleep(4)

        writes = writes_by(cluster, began)
        old, new = identity(leader), identity(standby)
        assert {who for _, who, _ in writes} == {old, new}, {who for _, who, _ in writes}
        assert all(at <= killed for at, who, _ in writes if who == old), "nothing from the killed replica after"
        took_over = next(at for at, who, event in writes if who == new)
        first = next(event for _, who, event in writes if who == new)
        assert first["objectRef"]["resource"] == "leases", "the standby's first write is taking the Lease"
        scales = [(at, who) for at, who, event in writes if event["objectRef"].get("subresource") == "scale"]
        after_kill = [at for at, who in scales if who == new]
        print(f"lease taken {took_over - killed:.1f}s after the kill; first scale {after_kill[0] - killed:.1f}s after")
        assert after_kill[0] - killed <= 6 + 5, "lease duration + one evaluation interval"
        # No duplicate step: one scale write per step 2→3→4→5→6, one ScaledUp Event each.
        assert len(scales) == 4, scales
        steps = sorted(e["message"].rsplit(": ", 1)[1] for e in test_scaling.events(cluster, namespace, "ScaledUp"))
        assert steps == ["2 -> 3", "3 -> 4", "4 -> 5", "5 -> 6"], steps
        # Each notification once, by idempotency key and by count (no retry was needed).
        sent = [r for r in hook.requests if r.path == "/hook"]
        assert [json.loads(r.body)["kind"] for r in sent] == ["firing", "resolved"]
        assert len({r.headers["Idempotency-Key"] for r in sent}) == 2
        for reason in ("AlertFiring", "AlertResolved"):
            found = test_scaling.events(cluster, namespace, reason)
            assert [e.get("count", 1) for e in found] == [1], found
    finally:
        hook.stop()
