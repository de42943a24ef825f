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
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

logger = logging.getLogger(__name__)
FREEZE_SECONDS = 600.0


def freeze(why: str, whole: bool = False) -> None:
    """Collects, then freezes the survivors; `whole`: what earlier freezes froze is collected too."""
    started = time.monotonic()
    if whole:
        gc.unfreeze()
    gc.collect()
    gc.freeze()
    logger.info("heap frozen after %s: %d objects, %.2f s", why, gc.get_freeze_count(), time.monotonic() - started)


async def keep_frozen() -> None:
    while True:
        await asyncio.sleep(FREEZE_SECONDS)
        freeze("a while", whole=True)
