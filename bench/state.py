"""Benchmark: what keeping state per object (by uid: operator/per_object.py) costs, and that
it is given back. No cluster: the guard's and the alerter's maps at N objects.

- a read through PerObject against a plain dict (every status judgement reads one or two),
- prune() of N entries (the guard runs it every 2 s),
- memory the guard holds for N probed services, then after they are all deleted and one
  rollout round has run (tracemalloc, so only what these objects hold is counted).

`python -m bench.state [--objects 10000]`; prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import time
import timeit
import tracemalloc
import typing

from controller.api import monitoredservice as api
from controller.core import health
from controller.operator import guard as guard_module
from controller.operator import loop
from controller.operator import per_object
from controller.operator import view as view_module


def service(index: int) -> dict[str, typing.Any]:
    return {"apiVersion": "ops.capliquify.io/v1alpha1", "kind": "MonitoredService",
            "metadata": {"namespace": f"ns-{index % 100}", "name": f"svc-{index}", "uid": f"uid-{index}",
                         "generation": 1, "resourceVersion": str(index + 1)},
            "spec": {"target": {"kubernetes": {"kind": "Deployment", "name": f"svc-{index}"}},
                     "healthChecks": [{"name": "http", "intervalSeconds": 10,
                                       "http": {"url": f"http://svc-{index}.svc:8080/health"}}]}}


class Checker:
    async def probe(self, check: api.HttpCheck) -> health.ProbeResult:
        return health.ProbeResult(True, 12.0, "")


class NoEvents:
    def create_event(self, *args: typing.Any) -> None:
        pass


class NoRollbacks:
    errors = (RuntimeError,)

    def supports(self, kind: str) -> bool:
        return False

    async def rollback(self, *args: str) -> str:
        return ""


async def _no_metrics(*_: typing.Any) -> dict:
    return {}


def lookups(objects: int) -> tuple[float, float, float]:
    """(µs per dict read, µs per PerObject read, ms per prune) at `objects` entries."""
    view = view_module.View()
    keys = []
    for index in range(objects):
        keys.append(view.upsert(service(index))[0])
    plain = {key: index for index, key in enumerate(keys)}
    state: per_object.PerObject[int] = per_object.PerObject(view)
    for index, key in enumerate(keys):
        state[key] = index
    rounds = 5
    dict_s = min(timeit.repeat(lambda: [plain.get(key) for key in keys], number=1, repeat=rounds))
    per_s = min(timeit.repeat(lambda: [state.get(key) for key in keys], number=1, repeat=rounds))
    prune_s = min(timeit.repeat(state.prune, number=1, repeat=rounds))
    return dict_s / objects * 1e6, per_s / objects * 1e6, prune_s * 1e3


def guard_memory(objects: int, probes: int) -> tuple[float, float, int]:
    """(MB held by the guard for `objects` probed services, MB after all are deleted and one
    rollout round ran, entries left)."""
    view = view_module.View()
    documents = [service(index) for index in range(objects)]
    for document in documents:
        view.upsert(document)
    evaluator = loop.Evaluator(view, NoEvents(), 60.0, 4)  # type: ignore[arg-type]
    guard = guard_module.Guard(view, evaluator, Checker(), NoRollbacks(), _no_metrics)  # type: ignore[arg-type]
    checks = {key: view.valid(key, api.MonitoredServiceSpec).healthChecks[0]  # type: ignore[union-attr]
              for key in view.of_kind("MonitoredService")}

    async def probe_all() -> None:
        for _ in range(probes):
            for key, check in checks.items():
                await guard._probe(key, check, time.monotonic())

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    asyncio.run(probe_all())
    gc.collect()
    held = tracemalloc.get_traced_memory()[0] - before
    for document in documents:
        view.remove(document)
    asyncio.run(guard.rollout_round())
    checks.clear()
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return held / 1e6, after / 1e6, guard.services.stored() + guard.verdicts.stored()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.state")
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--probes", type=int, default=10, help="probes per service before they are deleted")
    args = parser.parse_args(argv)
    dict_us, per_us, prune_ms = lookups(args.objects)
    held, after, left = guard_memory(args.objects, args.probes)
    print("| objects | dict read µs | PerObject read µs | prune ms | guard holds MB | after all deleted MB | entries left |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.objects:,} | {dict_us:.3f} | {per_us:.3f} | {prune_ms:.1f} | {held:.1f} | {after:.2f} | {left} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
