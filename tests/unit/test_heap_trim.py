"""Memory freed in worker threads goes back to the system at the periodic freeze (issue 26's soak).

The Kubernetes client reads and parses every answer in a worker thread (32 of them), so most
large allocations land in glibc's per-thread arenas. An arena gives memory back only from its
top: a few survivors scattered through it (objects the view keeps) hold every freed page below
them. In the soak's world, run in one process, the thread arenas grew by ~0.7 MB a minute while
the live Python heap stayed flat. The periodic freeze now ends with malloc_trim, which hands
back the free pages inside every arena."""

from __future__ import annotations

import gc
import re
import threading
import typing

import pytest

from controller.operator import heap


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        found = re.search(r"VmRSS:\s+(\d+)", status.read())
    assert found is not None
    return int(found.group(1)) / 1024


@pytest.fixture(autouse=True)
def thawed() -> typing.Iterator[None]:
    yield
    gc.unfreeze()
    gc.collect()


@pytest.mark.skipif(heap.TRIM is None, reason="not glibc: no malloc_trim")
def test_the_periodic_freeze_hands_back_what_worker_threads_freed() -> None:
    kept: list[bytes] = []

    def answers() -> None:  # ~64 MB in this thread's arena, one block in 64 kept, scattered
        blocks = [bytes(2000) for _ in range(32_000)]
        kept.extend(blocks[::64])

    before = rss_mb()
    worker = threading.Thread(target=answers)
    worker.start()
    worker.join()
    held = rss_mb() - before
    assert held > 40, f"the freed blocks were handed back before the test looked ({held:.0f} MB)"
    heap.freeze("a while", whole=True)
    assert rss_mb() - before < held / 3, f"still {rss_mb() - before:.0f} of {held:.0f} MB after the freeze"
    assert len(kept) == 500
