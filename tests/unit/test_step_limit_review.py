"""An adversarial review of the step limit's successor timing (ddd47ec, 970ec02, c46c2a1,
6077bcd): one test per finding, over the fake API server of test_step_limit_takeover.py.

1. A predecessor whose clock ran ahead (an hour: a node whose NTP failed) stamped its step in
   the future of its successor's clock. The successor counted that step as landed at its stamp
   (an unconfirmed intent: "never before its decision"; a confirmed one: as written), so the
   period and the cooldowns of a step made at 0 s ran until an hour later: the policy held for
   an hour. A step read in status had landed by the time it was read: it counts no later than
   this replica's first read of it.
"""

from __future__ import annotations

import asyncio
import datetime

from tests.unit import test_step_limit_landing as landing
from tests.unit import test_step_limit_takeover as takeover

at = landing.at
AHEAD = datetime.timedelta(hours=1)


def _scenario(record_written: bool) -> list[tuple[int, int]]:
    async def scenario() -> list[tuple[int, int]]:
        server = takeover.Server(6)
        a = takeover.Leader(server, takeover.T0 + AHEAD, pause_after_scale=not record_written)
        await a.decide()  # A's clock: an hour ahead of B's (and of the API server's)
        assert server.scales == [(6, 7)]
        server.paused = False
        b = takeover.Leader(server, at(8))
        await b.decide()
        assert server.scales == [(6, 7)]  # B's first read: A's step holds its period from here
        b.now = at(30)  # 22 s after B first read A's step (period: 10 s)
        await b.decide()
        return list(server.scales)
    return asyncio.run(scenario())


def test_an_intent_stamped_by_a_clock_ahead_holds_no_longer_than_a_period_from_its_first_read() -> None:
    assert _scenario(record_written=False) == [(6, 7), (7, 8)], "B held for the hour A's clock was ahead"


def test_a_step_recorded_by_a_clock_ahead_holds_no_longer_than_a_period_from_its_first_read() -> None:
    assert _scenario(record_written=True) == [(6, 7), (7, 8)], "B held for the hour A's clock was ahead"
