"""outbox.enqueue builds only what `trim` can keep, with the same result as building all
(property test against the plain definition)."""

from __future__ import annotations

import datetime
import typing

from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from controller.core import alerting
from controller.core import outbox
from controller.core import timestamps

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.timezone.utc)


def _reference(deliveries: typing.Sequence[typing.Mapping[str, typing.Any]],
               notifications: typing.Iterable[alerting.Notification], now: datetime.datetime) -> list[dict[str, typing.Any]]:
    known = {d.get("key") for d in deliveries}
    queued = [{"time": timestamps.to_status(now), "channel": n.channel, "alert": f"{n.rule}/{n.service}",
               "kind": n.kind, "outcome": outbox.PENDING, "attempt": 1, "key": n.key, "severity": n.severity,
               "summary": n.summary[:1024], "firedAt": timestamps.to_status(n.fired_at)}
              for n in notifications if n.key not in known]
    return outbox.trim([*reversed(queued), *map(dict, deliveries)])


def _note(key: str) -> alerting.Notification:
    return alerting.Notification(key, "hook", "firing", "R", "s", "warning", "text", NOW)


existing = st.lists(st.builds(lambda k, outcome: {"key": f"k{k}", "outcome": outcome, "time": "2026-06-01T11:00:00Z"},
                              st.integers(0, 400), st.sampled_from([outbox.PENDING, outbox.SENT, outbox.FAILED])),
                    max_size=200)


@settings(max_examples=60, deadline=None)
@given(existing, st.lists(st.integers(0, 600), max_size=600))
def test_enqueue_equals_building_every_entry_then_trimming(deliveries: list[dict[str, typing.Any]],
                                                           keys: list[int]) -> None:
    notes = [_note(f"k{k}") for k in keys]
    assert outbox.enqueue(deliveries, notes, NOW) == _reference(deliveries, notes, NOW)


def test_an_incident_of_many_notifications_fits_the_outbox() -> None:
    log = outbox.enqueue([], [_note(f"n{i}") for i in range(100_000)], NOW)
    assert len(log) == outbox.PENDING_LIMIT + outbox.LIMIT
    assert log[0]["key"] == "n99999" and log[outbox.PENDING_LIMIT]["message"] == outbox.OVERFLOW
