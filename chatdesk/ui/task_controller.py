"""What the window does for scheduled tasks: open a task's chat, clear its unread mark,
and notify the desktop when a run finishes while the window is not active."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtWidgets import QWidget

from chatdesk.domain import Session
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
        current_session: Callable[[], Session | None],
        refresh_current: Callable[[], None],
        start: StartTask,
    ) -> None:
        """``open_session`` shows a session in the chat pane (a coroutine);
        ``refresh_current`` redraws its Stop button and error after a run in it."""
        self._window = window
        self._scheduler = scheduler
        self._section = section
        self._notifier = notifier
        self._open_session = open_session
        self._current = current_session
        self._refresh_current = refresh_current
        self._start = start
        section.taskOpened.connect(self.open_task)
        section.bridge.runStarted.connect(self._refresh_if_shown)
        section.bridge.runFinished.connect(self._run_finished)

    def open_task(self, task_id: str) -> None:
        """Show the task's chat (made now if it has not run yet) and clear its unread mark."""
        self._start(self._open(task_id))

    def session_shown(self, session: Session) -> None:
        """The window shows ``session``: select its task (if it is a task's chat) or none."""
        task_id = session.task_id if session.kind == "task" else None
        self._section.select_task(task_id)
        if task_id is not None:
            self._start(self._scheduler.mark_read(task_id))

    async def _open(self, task_id: str) -> None:
        try:
            session = await self._scheduler.session_of(task_id)
        except TaskNotFoundError:
            return  # deleted meanwhile
        await self._open_session(session.id)

    def _shown(self, task_id: str) -> bool:
        current = self._current()
        return current is not None and current.task_id == task_id

    def _refresh_if_shown(self, task_id: str) -> None:
        # The run is the engine's turn, not one the chat pane started: it does not hear
        # of its end on its own.
        if self._shown(task_id):
            self._refresh_current()

    def _run_finished(self, task_id: str) -> None:
        self._refresh_if_shown(task_id)
        try:
            task = self._scheduler.get_task(task_id)
        except TaskNotFoundError:
            return
        if self._window.isActiveWindow():
            if self._shown(task_id):
                self._start(self._scheduler.mark_read(task_id))  # read as it arrived
        elif self._window.isVisible():
            self._notifier.notify_run(task)
