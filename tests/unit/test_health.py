from __future__ import annotations

import datetime
import typing

import pytest

from controller.api import monitoredservice as api
from controller.core import egress
from controller.core import health

T0 = datetime.datetime(2026, 11, 1, 12, 0, tzinfo=datetime.timezone.utc)
CHECK = api.HealthCheck(name="api", http={"url": "http://127.0.0.1:1/"}, failureThreshold=3, successThreshold=2)
OK = health.ProbeResult(True, 5.0, "HTTP 200")
FAIL = health.ProbeResult(False, None, "HTTP 500, expected 200")


def run(results: list[health.ProbeResult]) -> list[bool | None]:
    state, seen = health.CheckState(), []
    for index, result in enumerate(results):
        state = health.apply_probe(CHECK, state, result, T0 + datetime.timedelta(seconds=index))
        seen.append(state.healthy)
    return seen


@pytest.mark.parametrize("results,expected", [
    ([OK, OK], [None, True]),
    ([FAIL, FAIL, FAIL], [None, None, False]),
    ([OK, OK, FAIL, FAIL, OK, FAIL, FAIL, FAIL], [None, True, True, True, True, True, True, False]),
    ([FAIL, FAIL, FAIL, OK, OK], [None, None, False, False, True]),
], ids=["success-threshold", "failure-threshold", "streak-resets", "recovers"])
def test_thresholds(results, expected) -> None:  # noqa: ANN001
    assert run(results) == expected


def test_transition_time_and_message_only_on_change() -> None:
    state = health.apply_probe(CHECK, health.CheckState(), OK, T0)
    state = health.apply_probe(CHECK, state, OK, T0 + datetime.timedelta(seconds=1))
    assert (state.healthy, state.since) == (True, T0 + datetime.timedelta(seconds=1))
    later = health.apply_probe(CHECK, state, health.ProbeResult(True, 9.0, "HTTP 200 again"), T0 + datetime.timedelta(seconds=9))
    assert later.since == state.since and later.message == state.message


@pytest.mark.parametrize("healthy,expected", [
    ([], "Unknown"),
    ([None], "Unknown"),
    ([True, True], "Healthy"),
    ([True, False], "Degraded"),
    ([False, False], "Unhealthy"),
    ([True, None], "Unknown"),
])
def test_overall(healthy, expected) -> None:  # noqa: ANN001
    states = [health.CheckState(healthy=h) for h in healthy]
    assert health.overall(states)[0] == expected


# -- Issue 12: verdicts follow consecutive results, as kubelet probes do. --------------------

PLATFORM = api.HealthCheck(name="health", http={"url": "http://127.0.0.1:1/health", "timeoutSeconds": 10},
                           intervalSeconds=30, failureThreshold=3, startPeriodSeconds=60)


def hour(results: list[health.ProbeResult], check: api.HealthCheck = PLATFORM
         ) -> tuple[health.CheckState, list[tuple[datetime.datetime, bool]]]:
    state, outcomes = health.CheckState(), []
    for index, result in enumerate(results):
        now = T0 + datetime.timedelta(seconds=check.intervalSeconds * index)
        state = health.apply_probe(check, state, result, now)
        outcomes.append((now, result.ok))
    return state, outcomes


def test_one_failed_probe_in_a_healthy_hour_is_lost_availability_not_unhealthy() -> None:
    results = [OK] * 60 + [FAIL] + [OK] * 59  # one blip in an hour of probes every 30 s
    state, outcomes = hour(results)
    assert health.overall([state])[0] == "Healthy"
    availability = health.availability(outcomes, T0 + datetime.timedelta(hours=1), 3600)
    assert availability is not None and availability < 99.9  # reported, for burn-rate alerts


def test_three_consecutive_failures_make_it_unhealthy() -> None:
    state, _ = hour([OK] * 5 + [FAIL] * 2)
    assert health.overall([state])[0] == "Healthy"
    state, _ = hour([OK] * 5 + [FAIL] * 3)
    assert health.overall([state])[0] == "Unhealthy"


def test_failures_inside_the_start_period_do_not_count() -> None:
    # Probes at 0, 30 s fail while the service starts (start period 60 s); then it passes.
    state, _ = hour([FAIL, FAIL, OK])
    assert state.healthy is True and state.failures == 0
    # Past the start period, failures count: 60 s, 90 s, 120 s -> Unhealthy.
    state, _ = hour([FAIL, FAIL, FAIL, FAIL, FAIL])
    assert state.healthy is False and state.failures == 3
    # A first success ends the start period at once: later failures count from then on.
    state, _ = hour([OK, FAIL, FAIL, FAIL])
    assert state.healthy is False


def test_availability_window() -> None:
    outcomes = [(T0, False), (T0 + datetime.timedelta(seconds=50), True), (T0 + datetime.timedelta(seconds=60), True)]
    assert health.availability(outcomes, T0 + datetime.timedelta(seconds=70), 30) == 100.0
    assert health.availability(outcomes, T0 + datetime.timedelta(seconds=70), 3600) == 66.67
    assert health.availability([], T0, 60) is None


@pytest.mark.parametrize("address,allow_loopback,refused", [
    ("169.254.169.254", True, "cloud metadata"),
    ("fd00:ec2::254", True, "cloud metadata"),
    ("169.254.10.1", True, "link-local"),
    ("fe80::1", True, "link-local"),
    ("::ffff:169.254.169.254", True, "cloud metadata"),
    ("0.0.0.0", True, "not a unicast"),
    ("127.0.0.1", False, "loopback"),
    ("127.0.0.1", True, None),
    ("10.0.0.7", False, None),
])
def test_egress_guard(address, allow_loopback, refused) -> None:  # noqa: ANN001
    reason = egress.refused_address(address, allow_loopback)
    assert (reason is None) if refused is None else (refused in reason)


def test_judge_response() -> None:
    check = api.HttpCheck(url="http://x/", expectStatus=[200, 204], bodyContains="ok")
    assert health.judge_response(204, "all ok", check) == (True, "HTTP 204")
    assert health.judge_response(503, "", check)[0] is False
    assert "lacks 'ok'" in health.judge_response(200, "nope", check)[1]


def test_http_checker_refuses_literal_metadata_address_without_connecting() -> None:
    import asyncio

    from controller.adapters import http_check

    checker = http_check.HttpChecker(allow_loopback=True)
    check = api.HttpCheck(url="http://169.254.169.254/latest/meta-data/")
    with pytest.raises(http_check.EgressRefused, match="cloud metadata"):
        asyncio.run(checker.probe(check))
    assert checker._session is None  # no client was even created


# -- Issue 12: error-budget burn rates (multi-window, multi-burn-rate). ----------------------

def probes(failing: typing.Callable[[int], bool], minutes: int, every: int = 30) -> list[tuple[datetime.datetime, bool]]:
    return [(T0 + datetime.timedelta(seconds=s), not failing(s)) for s in range(0, minutes * 60, every)]


def test_a_single_blip_does_not_burn_fast_enough_to_page() -> None:
    outcomes = probes(lambda s: s == 3300, 60)  # one failure 5 minutes before the end of an hour
    now = T0 + datetime.timedelta(minutes=60)
    assert health.burn_rate(outcomes, now, 300, 99.9) > 14.4  # the short window alone would page
    assert health.multi_window_burn(outcomes, now, 3600, 300, 99.9) < 14.4  # both must: no page


def test_a_sustained_failure_burns_both_windows() -> None:
    outcomes = probes(lambda s: s >= 2700 and s % 60 == 0, 60)  # half the probes failing for 15 min
    now = T0 + datetime.timedelta(minutes=60)
    assert health.multi_window_burn(outcomes, now, 3600, 300, 99.9) > 14.4


def test_no_probes_no_burn_rate() -> None:
    assert health.burn_rate([], T0, 300, 99.9) is None
    assert health.multi_window_burn(probes(lambda s: False, 10), T0 + datetime.timedelta(hours=3), 3600, 300, 99.9) is None


def answered(slow: typing.Callable[[int], bool], minutes: int, every: int = 30) -> list[tuple[datetime.datetime, float]]:
    return [(T0 + datetime.timedelta(seconds=s), 2500.0 if slow(s) else 120.0) for s in range(0, minutes * 60, every)]


def test_the_latency_slo_allows_five_percent_slow_answers() -> None:
    now = T0 + datetime.timedelta(minutes=60)
    one_in_twenty = answered(lambda s: s % 600 == 0, 60)  # 6 of 120 probes slower than 2 s: exactly 5 %
    assert health.latency_within(one_in_twenty, now, 3600, 2000) == 95.0
    assert health.latency_burn_rate(one_in_twenty, now, 3600, 2000) == 1.0  # spending the budget as fast as allowed
    assert health.multi_window_latency_burn(one_in_twenty, now, 3600, 300, 2000) <= 2.0


def test_sustained_slow_answers_burn_the_latency_budget_in_both_windows() -> None:
    now = T0 + datetime.timedelta(minutes=60)
    slow_lately = answered(lambda s: s >= 2400, 60)  # every answer slow for the last 20 min
    assert health.multi_window_latency_burn(slow_lately, now, 3600, 300, 2000) > 6
    spike = answered(lambda s: s >= 3360, 60)  # slow for the last four minutes only
    assert health.latency_burn_rate(spike, now, 300, 2000) > 14.4  # the short window alone would page
    assert health.multi_window_latency_burn(spike, now, 3600, 300, 2000) < 14.4
    assert health.latency_within([], now, 3600, 2000) is None
