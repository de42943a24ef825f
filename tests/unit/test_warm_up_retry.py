"""A replica started while the API server restarts lists again within seconds (issue 26's soak,
run 15: its first listing failed on a TLS reset and kopf retried the startup activity 60 s later,
with a traceback; the harness gave up on its liveness endpoint and the replica ran untracked)."""

from __future__ import annotations

import asyncio
import logging
import typing

import pytest

from controller.operator import handlers
from tests.unit.test_takeover_catch_up import Api, runtime


class FlakyApi(Api):
    """Refuses the first `failures` listings, as an API server coming back does."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def list_page(self, kind: str, namespace: str | None, token: str | None) -> tuple[list[dict[str, typing.Any]], None, str]:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("EOF occurred in violation of protocol")
        return super().list_page(kind, namespace, token)


def test_a_failed_first_listing_is_tried_again_within_seconds_in_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    api = FlakyApi(failures=3)
    rt = runtime(api, [])
    waited: list[float] = []

    async def pause(seconds: float) -> None:
        waited.append(seconds)

    with caplog.at_level(logging.WARNING, logger="controller.operator.handlers"):
        versions = asyncio.run(handlers._warm_up_until_done(rt, pause))
    assert versions and all(version == "100" for version in versions.values())
    assert waited == [0.5, 1.0, 2.0] and sum(waited) < 60  # kopf's own retry would be 60 s
    failures = [r for r in caplog.records if "warming up the view failed" in r.getMessage()]
    assert len(failures) == 3 and all(r.exc_info is None for r in failures)  # one line, no traceback
    assert "EOF occurred" not in caplog.text  # the type is named, not the message


def test_the_pause_between_listings_never_grows_past_a_few_seconds() -> None:
    api = FlakyApi(failures=12)
    rt = runtime(api, [])
    waited: list[float] = []

    async def pause(seconds: float) -> None:
        waited.append(seconds)

    asyncio.run(handlers._warm_up_until_done(rt, pause))
    assert len(waited) == 12 and max(waited) == 4.0
