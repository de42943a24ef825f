"""Leader election decisions (client-go semantics), pure: expiry by observed time, fencing."""

from __future__ import annotations

import pytest

from controller.core import election

TIMING = election.Timing(lease_duration=15, renew_deadline=10, retry_period=2)


def record(holder: str | None, version: str = "1", transitions: int = 0) -> election.Record:
    return election.Record(holder, transitions, version)


def test_no_lease_is_created() -> None:
    assert election.next_step("a", None, None, 0, TIMING) == election.Step("create", 0)


def test_the_holder_renews_and_others_wait_while_it_does() -> None:
    assert election.next_step("a", None, record("a"), 0, TIMING).action == "renew"
    seen = election.observe(None, record("a", "1"), 0)
    assert election.next_step("b", seen, record("a", "1"), 14, TIMING).action == "wait"
    seen = election.observe(seen, record("a", "2"), 14)  # renewed: the clock starts again
    assert election.next_step("b", seen, record("a", "2"), 28, TIMING).action == "wait"


def test_a_lease_unchanged_for_its_duration_is_taken_whatever_its_timestamps_say() -> None:
    """Expiry is judged on the candidate's own clock (observedTime), not on renewTime: skew-proof."""
    seen = election.observe(None, record("a", "7", transitions=3), 100)
    assert election.next_step("b", seen, record("a", "7", 3), 114.9, TIMING).action == "wait"
    assert election.next_step("b", seen, record("a", "7", 3), 115, TIMING) == election.Step("acquire", 4)


def test_a_first_sight_never_takes_over() -> None:
    """A candidate that has just started has seen nothing age: it waits one full duration."""
    assert election.next_step("b", None, record("a", "7"), 10_000, TIMING).action == "wait"


def test_a_released_lease_is_taken_at_once() -> None:
    assert election.next_step("b", None, record(None, "8", 2), 0, TIMING) == election.Step("acquire", 3)


def test_the_leader_stops_acting_before_anyone_can_take_over() -> None:
    """Fencing: renew deadline (10 s) < lease duration (15 s), both counted from the same renewal."""
    assert election.leading(100, 109.9, TIMING)
    assert not election.leading(100, 110, TIMING)
    assert not election.leading(None, 0, TIMING)


@pytest.mark.parametrize("timing", [(15, 15, 2), (15, 10, 10), (10, 15, 2), (15, 10, 0)])
def test_inconsistent_timings_are_refused(timing: tuple[float, float, float]) -> None:
    with pytest.raises(ValueError, match="retry period < renew deadline < lease duration"):
        election.Timing(*timing)
