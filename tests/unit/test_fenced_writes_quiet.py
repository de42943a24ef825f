"""A write the fence refuses is not an error (issue 26's soak): a replica standing down under
load had ~2,000 status writes in flight, each refused by the fence and each logged as an ERROR
with its traceback, burying what mattered. Refused writes are counted by the fence
(capliquify_fenced_writes_total) and logged at debug; the next leader judges every object."""

from __future__ import annotations

import asyncio
import logging
import typing

import pytest

from controller.core import election
from controller.operator import loop
from controller.operator import view as view_module

POLICY = {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "ScalingPolicy",
          "metadata": {"name": "w2", "namespace": "soak-7-4", "uid": "u", "resourceVersion": "5", "generation": 1},
          "spec": {"targetRef": {"monitoredService": "w2"}, "minReplicas": 1, "maxReplicas": 8,
                   "metrics": [{"type": "cpu", "scaleUp": 70, "scaleDown": 30}]}}
KEY = ("ScalingPolicy", "soak-7-4", "w2")


class Fenced:
    async def patch_status(self, *_: typing.Any) -> dict[str, typing.Any]:
        raise election.NotLeader("not the leader: patch refused")


def test_a_fenced_status_write_is_not_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    view = view_module.View()
    view.upsert(dict(POLICY))
    evaluator = loop.Evaluator(view, None, 60.0, 4, status_writer=Fenced())  # type: ignore[arg-type]

    async def scenario() -> bool:
        await evaluator._reconcile_guarded(KEY)
        return await evaluator.reconcile_now(KEY)
    with caplog.at_level(logging.DEBUG):
        assert asyncio.run(scenario()) is False  # the intent was not written: no side effect follows
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info], caplog.text
    assert "refused by the fence" in caplog.text
