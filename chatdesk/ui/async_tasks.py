"""Starting coroutines from Qt slots so that a failure reaches the user, not stderr.

Every task started from the UI goes into one :class:`TaskSet`, which keeps a reference to
it (asyncio only keeps weak ones, so an unreferenced task may vanish mid-write) and which
the window drains on shut-down before the database closes. A task may have a name: a
newer task of the same name cancels the older one (e.g. opening a chat while the
previous one is still loading), as FeelUOwn's ``TaskManager`` does.
"""

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
    never dies silently. Prefer :meth:`TaskSet.start`, which also keeps the task.
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


class TaskSet:
    """The background tasks of the UI: each is kept until it ends, and all can be drained."""

    def __init__(self, on_error: ErrorHandler | None = None) -> None:
        """``on_error`` hears of a failed task that was started without its own handler."""
        self._on_error = on_error
        self._tasks: set[asyncio.Task[Any]] = set()
        self._named: dict[str, asyncio.Task[Any]] = {}

    def start(
        self,
        coroutine: Coroutine[Any, Any, Any],
        on_error: ErrorHandler | None = None,
        *,
        name: str | None = None,
    ) -> asyncio.Task[Any]:
        """Run ``coroutine`` and keep it; with ``name``, cancel the older task of that name."""
        if name is not None:
            older = self._named.pop(name, None)
            if older is not None and not older.done():
                older.cancel()
        task = start_task(coroutine, on_error or self._on_error)
        self._tasks.add(task)
        if name is not None:
            self._named[name] = task

        def forget(done: asyncio.Task[Any]) -> None:
            self._tasks.discard(done)
            if name is not None and self._named.get(name) is done:
                del self._named[name]

        task.add_done_callback(forget)
        return task

    def pending(self) -> list[asyncio.Task[Any]]:
        """The tasks still running."""
        return [task for task in self._tasks if not task.done()]

    def named(self, name: str) -> asyncio.Task[Any] | None:
        """The running task called ``name``, if any."""
        return self._named.get(name)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every task has ended, also those started while waiting.

        A task that does not end within ``timeout`` seconds is cancelled (and awaited).
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while pending := self.pending():
            left = None if deadline is None else max(0.0, deadline - loop.time())
            _done, late = await asyncio.wait(pending, timeout=left)
            if late and deadline is not None and loop.time() >= deadline:
                for task in late:
                    task.cancel()
                await asyncio.wait(late)
                log.warning("%d background task(s) cancelled at shut-down", len(late))
