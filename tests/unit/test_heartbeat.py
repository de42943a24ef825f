"""Liveness notices a stalled loop, not only a dead one (issue 9)."""

from __future__ import annotations

import time

from controller.operator import heartbeat


def test_a_loop_that_stops_beating_is_stalled_after_its_allowance() -> None:
    heartbeat.expect("test-loop", 1.0)
    heartbeat.beat("test-loop")
    now = time.monotonic()
    assert "test-loop" not in heartbeat.stalled(now + 60)
    assert "test-loop" in heartbeat.stalled(now + heartbeat.STALL_SECONDS + 1)
    heartbeat.expect("slow-loop", 120.0)  # a long period gets 3 × its period
    heartbeat.beat("slow-loop")
    assert "slow-loop" not in heartbeat.stalled(now + 300)
    assert "slow-loop" in heartbeat.stalled(now + 361)
