"""The garbage collector at 10,000 objects: survivors frozen out of its full collections.

The view holds hundreds of megabytes of plain, acyclic objects (the watched objects and their
parsed specs). CPython's full collection scans every tracked object, so each one costs a
pause proportional to the view, and at 10,000 policies they came often enough to be a large
part of a round's CPU (issue 10). After a big change of the view (the warm-up, the first
round of verdicts) and then every FREEZE_SECONDS, the cyclic garbage there is is collected
once and the survivors are moved to the permanent generation (`gc.freeze`), which later
collections skip. Acyclic garbage is freed by reference counting wherever it lives; what is
frozen is only what was alive at that moment.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time

logger = logging.getLogger(__name__)
FREEZE_SECONDS = 600.0


def freeze(why: str) -> None:
    started = time.monotonic()
    gc.collect()
    gc.freeze()
    logger.info("heap frozen after %s: %d objects, %.2f s", why, gc.get_freeze_count(), time.monotonic() - started)


async def keep_frozen() -> None:
    while True:
        await asyncio.sleep(FREEZE_SECONDS)
        freeze("a while")
