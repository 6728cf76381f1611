"""What the window does for scheduled tasks: open a task's chat, clear its unread mark,
and notify the desktop when a run finishes while the window is not active."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtWidgets import QWidget

from chatdesk.scheduler import TaskNotFoundError, TaskScheduler
from chatdesk.ui.run_notifier import RunNotifier
from chatdesk.ui.task_list import ScheduledSection, StartTask

OpenSession = Callable[[str], Coroutine[Any, Any, Any]]


class ScheduledTasksController:
    """Connects the Scheduled section to the window's chat pane and the desktop."""

    def __init__(
        self,
        window: QWidget,
        scheduler: TaskScheduler,
        section: ScheduledSection,
        notifier: RunNotifier,
        *,
        open_session: OpenSession,
        current_session_id: Callable[[], str | None],
        start: StartTask,
    ) -> None:
        """``open_session`` shows a session in the chat pane (a coroutine)."""
        self._window = window
        self._scheduler = scheduler
        self._section = section
        self._notifier = notifier
        self._open_session = open_session
        self._current = current_session_id
        self._start = start
        # The session each task's results are in, once known (to match the open chat).
        self._sessions: dict[str, str] = {}
        section.taskOpened.connect(self.open_task)
        section.bridge.runFinished.connect(self._run_finished)
        section.bridge.runStarted.connect(self._run_started)

    def open_task(self, task_id: str) -> None:
        """Show the task's chat (made now if it has not run yet) and clear its unread mark."""
        self._start(self._open(task_id))

    def session_opened(self, session_id: str) -> None:
        """The window shows ``session_id``: select its task, if it is a task's chat."""
        task_id = next((t for t, s in self._sessions.items() if s == session_id), None)
        self._section.select_task(task_id)
        if task_id is not None:
            self._start(self._scheduler.mark_read(task_id))

    async def _open(self, task_id: str) -> None:
        try:
            session = await self._scheduler.session_of(task_id)
        except TaskNotFoundError:
            return  # deleted meanwhile
        self._sessions[task_id] = session.id
        await self._open_session(session.id)
        await self._scheduler.mark_read(task_id)

    def _run_started(self, task_id: str) -> None:
        self._start(self._learn_session(task_id))

    async def _learn_session(self, task_id: str) -> None:
        with contextlib.suppress(TaskNotFoundError):
            self._sessions[task_id] = (await self._scheduler.session_of(task_id)).id

    def _run_finished(self, task_id: str) -> None:
        try:
            task = self._scheduler.get_task(task_id)
        except TaskNotFoundError:
            return
        active = self._window.isActiveWindow()
        if active and self._sessions.get(task_id) == self._current():
            self._start(self._scheduler.mark_read(task_id))  # read as it arrived
        if not active:
            self._notifier.notify_run(task)
