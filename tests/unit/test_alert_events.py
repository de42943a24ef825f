"""An alerting round's Events are bounded per policy (core/alert_events.py): a handful of
transitions one Event each; past EVENTS_PER_ROUND one summary Event per direction."""

from __future__ import annotations

import asyncio
import copy
import typing

from controller.core import alert_events
from controller.core import scaling
from controller.operator import snapshots as snapshots_module
from tests.unit import test_review_findings as review


def test_a_few_transitions_are_one_event_each_in_order() -> None:
    events = alert_events.transition_events([
        ("HighCPU/web", "Pending", "Firing"), ("Slow/web", "Inactive", "Pending"), ("Errors/api", "Firing", "Resolved")])
    assert [(e.type, e.reason, e.message) for e in events] == [
        ("Warning", "AlertFiring", "HighCPU/web is firing"), ("Normal", "AlertResolved", "Errors/api resolved")]


def test_past_the_limit_one_summary_per_direction_counts_the_rest() -> None:
    transitions = [(f"R/s{i}", "Pending", "Firing") for i in range(25)] + [
        (f"Q/s{i}", "Firing", "Resolved") for i in range(7)]
    events = alert_events.transition_events(transitions, limit=10)
    assert len(events) == 12
    assert [e.message for e in events[:10]] == [f"R/s{i} is firing" for i in range(10)]
    assert events[10].reason == "AlertFiring" and events[10].message.startswith("15 more alerts are firing (R/s10, R/s11, R/s12, …)")
    assert events[11].reason == "AlertResolved" and events[11].message.startswith("7 more alerts resolved (Q/s0, Q/s1, Q/s2, …)")


class _CountingApi(review._QuietApi):
    def __init__(self) -> None:
        self.events: list[typing.Any] = []

    def create_event(self, obj: typing.Any, event: typing.Any, now: typing.Any) -> None:
        self.events.append(event)

    def patch_status(self, *_: typing.Any, **__: typing.Any) -> dict[str, typing.Any]:
        return {}


def test_one_policy_firing_over_many_services_posts_a_bounded_number_of_events() -> None:
    """64 rules over 300 services all firing at once: 19,200 transitions, 12 Events at most
    (each Event is a write the round awaits, and every other tenant's policy waits behind it)."""
    api = _CountingApi()

    async def scenario() -> None:
        view = review.view_module.View()
        alerter, snapshots, poster = review.alerting_parts(view, api)
        for index in range(300):
            view.upsert(review._custom("MonitoredService", f"s{index}", copy.deepcopy(review.SERVICE), {"team": "t"}))
            snapshots.readings[("MonitoredService", "tenant-a", f"s{index}")] = snapshots_module.Reading(
                review.NOW, {(metric, None): scaling.Sample(95.0, review.NOW) for metric in ("cpu", "errorRate", "latencyP95")})
        view.upsert(review._custom("AlertPolicy", "page", copy.deepcopy(review.PAGE)))
        await alerter.round()
        await poster.close()

    asyncio.run(scenario())
    alerts = [e for e in api.events if e.reason in ("AlertFiring", "AlertResolved")]
    assert alerts, "the policy's rules should have fired"
    assert len(alerts) <= alert_events.EVENTS_PER_ROUND + 2
    assert any("more alerts are firing" in e.message for e in alerts)
