"""The garbage collector at 10,000 objects: survivors frozen out of its full collections.

The view holds hundreds of megabytes of plain, acyclic objects (the watched objects and their
parsed specs). CPython's full collection scans every tracked object, so each one costs a
pause proportional to the view, and at 10,000 policies they came often enough to be a large
part of a round's CPU (issue 10). After a big change of the view (the warm-up, the first
round of verdicts) and then every FREEZE_SECONDS, the cyclic garbage there is is collected
once and the survivors are moved to the permanent generation (`gc.freeze`), which later
collections skip. Acyclic garbage is freed by reference counting wherever it lives; what is
frozen is only what was alive at that moment.

Cyclic garbage among frozen objects is never collected while they stay frozen (gc.freeze: the
permanent generation is ignored by every collection): what was alive, in a cycle, at a freeze
and dropped later (a term's tasks and their exceptions, a closed connection's transport and
protocol) stayed for the life of the process, and every term freezes again. So the periodic
freeze first thaws the heap (`whole`): one full collection every FREEZE_SECONDS frees it, and
frozen garbage lives at most that long (issue 26's soak). The freezes at warm-up and at a
term's first verdicts stay as cheap as they were (the young generations only).

The periodic freeze then hands free memory back to the system (glibc's malloc_trim). The
Kubernetes client reads and parses in worker threads, so most large allocations land in
glibc's per-thread arenas, and an arena shrinks only from its top: a few survivors scattered
through it (objects the view keeps) held every freed page below them. In the soak's world the
thread arenas grew ~0.7 MB a minute while the live Python heap stayed flat; malloc_trim gives
back the free pages inside every arena. Not glibc (musl): nothing to call, nothing done.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import logging
import time
import typing

logger = logging.getLogger(__name__)
FREEZE_SECONDS = 600.0


def _malloc_trim() -> typing.Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):  # no C library found, or not glibc's
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return typing.cast(typing.Callable[[int], int], trim)


TRIM = _malloc_trim()


def freeze(why: str, whole: bool = False) -> None:
    """Collects, then freezes the survivors; `whole`: what earlier freezes froze is collected too,
    and the memory malloc holds free is handed back."""
    started = time.monotonic()
    if whole:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    if whole and TRIM is not None:
        TRIM(0)  # the free pages inside every arena, not only at its top
    logger.info("heap frozen after %s: %d objects, %.2f s", why, gc.get_freeze_count(), time.monotonic() - started)


async def keep_frozen() -> None:
    while True:
        await asyncio.sleep(FREEZE_SECONDS)
        freeze("a while", whole=True)
