"""The composition root (operator/runtime.py): one place builds the parts, lists a round's
participants and owns what must be closed; shutdown closes it in the reverse order."""

from __future__ import annotations

import ast
import asyncio
import pathlib

import kubernetes

from controller.adapters import answers
from controller.core import election
from controller.operator import config as config_module
from controller.operator import handlers
from controller.operator import runtime as runtime_module

OPERATOR = pathlib.Path(__file__).resolve().parents[2] / "controller" / "operator"
TIMING = election.Timing(15, 10, 2)


def client() -> kubernetes.client.ApiClient:
    return kubernetes.client.ApiClient(kubernetes.client.Configuration(host="http://127.0.0.1:9"))


def built() -> runtime_module.Runtime:
    return runtime_module.build(config_module.OperatorConfig(), runtime_module.Options(timing=TIMING), client(), client())


def test_the_rounds_participants_are_listed_once_in_build_order() -> None:
    rt = built()
    railway = next(p for p in rt.pollers if p.name == "railway")
    assert rt.evaluator.contributors == [railway.contribute, rt.scaler.contribute, rt.guard.contribute,  # type: ignore[attr-defined]
                                         rt.probes.contribute, rt.snapshots.contribute, rt.alerter.contribute]  # type: ignore[union-attr]
    assert rt.evaluator.time_dependent == [rt.guard.checked_services]
    assert handlers.Runtime is runtime_module.Runtime  # the kopf layer's input is the built type


def test_nothing_registers_itself_outside_the_composition_root() -> None:
    """A contributor added by a constructor's side effect is one no reader of build() sees."""
    found = []
    for path in sorted(OPERATOR.glob("*.py")):
        if path.name in ("runtime.py", "loop.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("contributors", "time_dependent"):
                found.append(f"{path.name}:{node.lineno}")
    assert not found, found


def test_build_owns_every_closeable_part_and_closes_them_last_built_first() -> None:
    rt = built()
    names = [name for name, _ in rt.owned]
    assert names == ["parser lane", "status writer", "railway", "actuators", "query client", "health checker",
                     "notification poster", "watcher"]
    assert rt.owned[0][1] == answers.LANE.aclose  # the parser's worker processes end at shutdown
    assert asyncio.run(rt.aclose()) == [] and rt.owned == []


def test_aclose_goes_in_reverse_and_one_failing_close_leaves_the_others_to_run() -> None:
    closed: list[str] = []

    def sync_close() -> None:
        closed.append("sync")

    async def async_close(name: str) -> None:
        closed.append(name)

    async def broken() -> None:
        raise OSError("socket already gone")

    rt = runtime_module.Runtime(config=None, view=None, evaluator=None, api=None, scaler=None, guard=None,  # type: ignore[arg-type]
                                snapshots=None, alerter=None, elector=None, watcher=None)  # type: ignore[arg-type]
    rt.own("first", lambda: async_close("first"))
    rt.own("sync", sync_close)
    rt.own("broken", broken)
    rt.own("last", lambda: async_close("last"))
    assert asyncio.run(rt.aclose()) == ["broken"]
    assert closed == ["last", "sync", "first"]
