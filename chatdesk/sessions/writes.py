"""How every write of the SessionManager runs: whole or not at all, heavy work off the loop.

A write and its in-memory counterpart run as one unit that cancelling the caller cannot
split: once the write has started, it runs to its end (committed and applied, or rolled
back and not applied) and only then does the caller see its CancelledError. Content
with large inline images is validated and encoded on a worker thread, so it does not
stall the event loop; below the threshold the work takes about a millisecond and the
thread hop would cost more than it saves.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)

# Content whose inline images add up to more than this many characters of data URL (or,
# when a session is opened, this many bytes of stored image) is validated and encoded on
# a worker thread; below it the work takes about a millisecond and stays on the loop.
OFFLOAD_CHARS = 256 * 1024
OFFLOAD_BYTES = OFFLOAD_CHARS * 3 // 4

_T = TypeVar("_T")


async def run_whole(work: Coroutine[Any, Any, _T]) -> _T:
    """Run ``work`` (a write and its in-memory counterpart) so that nothing can split it.

    Cancelling the caller does not stop ``work``: the caller waits for it to finish and
    only then raises CancelledError, so the database and memory always end up in step.
    (The transaction may commit in the driver's thread at any moment; without this, a
    cancellation arriving then would skip the in-memory half.)
    """
    task = asyncio.ensure_future(work)
    cancelled = False
    while not task.done():
        try:
            await asyncio.wait((task,))
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        if not task.cancelled() and task.exception() is not None:
            log.debug("a write whose caller was cancelled failed", exc_info=task.exception())
        raise asyncio.CancelledError
    return task.result()


async def off_loop_if(heavy: bool, func: Callable[..., _T], *args: Any) -> _T:
    """``func(*args)``, on a worker thread when ``heavy`` (CPU work that would stall the loop)."""
    if heavy:
        return await asyncio.to_thread(func, *args)
    return func(*args)


def inline_image_chars(content: object) -> int:
    """How many characters of data URL the image blocks of ``content`` hold (never raises)."""
    if not isinstance(content, list):
        return 0
    total = 0
    for block in content:
        image = block.get("image_url") if isinstance(block, dict) else None
        url = image.get("url") if isinstance(image, dict) else None
        if isinstance(url, str) and url.startswith("data:"):
            total += len(url)
    return total
