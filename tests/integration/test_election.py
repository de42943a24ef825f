"""High availability: two replicas, one Lease (issue 10). Real control plane, both operators as
the operator's ServiceAccount, short timings (lease 6 s, renew deadline 4 s, retry 1 s)."""

from __future__ import annotations

import signal
import time

import pytest
import yaml

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


def msvc(name: str) -> dict:
    return {**MSVC, "metadata": {"name": name}}


def test_one_leader_acts_a_standby_takes_over_and_a_paused_leader_stands_down(cluster, namespace, operator_factory) -> None:  # noqa: ANN001
    first = operator_factory(*ELECTION)
    second = operator_factory(*ELECTION)
    cluster.wait_for(lambda: len(leader_of([first, second])) == 1, 20, "one leader")
    leader, standby = (first, second) if leader_of([first, second]) == [first] else (second, first)

    cluster.kubectl("apply", "-n", namespace, "-f", "-", input=yaml.safe_dump_all([WEB, msvc("a")]))
    _wait_condition(cluster, "msvc", "a", namespace, "True", "TargetFound")
    assert writes(leader) > 0 and writes(standby) == 0, "the standby wrote nothing"
    assert metric(standby, "capliquify_watched_objects") >= 0  # its view is warm (it watches)

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
    standby.process.send_signal(signal.SIGSTOP)
    cluster.wait_for(lambda: leader_of([newcomer]) == [newcomer], 20, "takeover from a paused leader")
    fenced_before = writes(newcomer)
    standby.process.send_signal(signal.SIGCONT)
    cluster.wait_for(lambda: standby.process.poll() is not None, 20, "the paused leader exits on waking")
    assert "lost the Lease" in standby.log()
    assert writes(newcomer) >= fenced_before


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
