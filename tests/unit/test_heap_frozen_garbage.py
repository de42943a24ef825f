"""Garbage frozen by the heap's freezes is collected by the periodic one (issue 26's soak).

`gc.freeze` moves every object alive into the permanent generation, which no collection looks
at. A cycle alive at a freeze and dropped afterwards (a term's tasks and their exceptions, a
closed connection's transport and protocol) was kept for the life of the process; each term
freezes again at its first verdicts, and every 10 minutes the loop froze again without thawing
first. The periodic freeze now collects the whole heap."""

from __future__ import annotations

import asyncio
import gc
import typing
import weakref

import pytest

from controller.operator import heap


class Node:
    other: Node | None = None


def dropped_after_a_freeze(why: str) -> weakref.ref[Node]:
    """A cycle alive at a freeze of the heap, garbage right after it."""
    first, second = Node(), Node()
    first.other, second.other = second, first
    heap.freeze(why)
    return weakref.ref(first)


@pytest.fixture(autouse=True)
def thawed() -> typing.Iterator[None]:
    yield
    gc.unfreeze()  # the rest of the test process as it was
    gc.collect()


def test_cycles_frozen_at_each_term_are_freed_by_the_periodic_freeze(monkeypatch: pytest.MonkeyPatch) -> None:
    # Three terms' first verdicts, each freezing what is alive; each term's cycle dropped after.
    terms = [dropped_after_a_freeze("the first verdicts") for _ in range(3)]
    gc.collect()
    assert all(term() is not None for term in terms)  # frozen: a collection does not see them
    monkeypatch.setattr(heap, "FREEZE_SECONDS", 0)

    async def a_while() -> None:
        task = asyncio.create_task(heap.keep_frozen())
        for _ in range(20):  # loop iterations, not time: each one freezes again
            await asyncio.sleep(0)
            if all(term() is None for term in terms):
                break
        task.cancel()

    asyncio.run(a_while())
    assert [term() for term in terms] == [None, None, None]


def test_the_periodic_freeze_still_freezes_what_lives() -> None:
    kept = [Node() for _ in range(10)]
    heap.freeze("a while", whole=True)
    # Frozen: out of every generation a collection scans (gc.get_objects lists those).
    assert not any(found is kept for found in gc.get_objects())
    assert all(isinstance(node, Node) for node in kept)
