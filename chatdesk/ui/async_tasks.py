"""Starting coroutines from Qt slots so that a failure reaches the user, not stderr."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)

ErrorHandler = Callable[[BaseException], None]


def start_task(
    coroutine: Coroutine[Any, Any, Any], on_error: ErrorHandler | None = None
) -> asyncio.Task[Any]:
    """Schedule ``coroutine`` on the running (qasync) loop; report failures to ``on_error``.

    Cancellation is not a failure. Without a handler the error is logged, so a slot
    never dies silently.
    """
    task = asyncio.ensure_future(coroutine)

    def finished(done: asyncio.Task[Any]) -> None:
        if done.cancelled():
            return
        error = done.exception()
        if error is None:
            return
        if on_error is None:
            log.error("background task failed", exc_info=error)
        else:
            on_error(error)

    task.add_done_callback(finished)
    return task
