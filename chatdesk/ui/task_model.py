"""The scheduled tasks as a Qt list model, kept current by the scheduler's events.

``TaskListModel`` keeps one row per task in the scheduler's order and changes single
rows on the scheduler's events (re-emitted as Qt signals by ``TaskEventBridge``); the
second line of a row says when the task runs next. The widgets showing it are in
:mod:`chatdesk.ui.task_list`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from chatdesk.domain import Task
from chatdesk.scheduler import (
    RUN_FINISHED,
    RUN_STARTED,
    TASK_ADDED,
    TASK_DELETED,
    TaskEvent,
    TaskScheduler,
)

TaskIdRole = Qt.ItemDataRole.UserRole + 1
UnreadRole = Qt.ItemDataRole.UserRole + 2
SubtitleRole = Qt.ItemDataRole.UserRole + 3

_Index = QModelIndex | QPersistentModelIndex


def next_run_words(task: Task, *, running: bool, now: datetime | None = None) -> str:
    """The second line of a task's row: running, paused, done, or when it runs next,
    after "Last run failed" when it did."""
    if running:
        return "Running now…"
    words = _next_run(task, now or datetime.now(UTC))
    if task.last_status == "error":
        return f"Last run failed · {words[0].lower()}{words[1:]}"
    return words


def _next_run(task: Task, now: datetime) -> str:
    if not task.enabled:
        return "Paused"
    if task.next_run_at is None:
        return "No more runs"
    delta = task.next_run_at - now
    if delta < timedelta(minutes=1):
        return "Next run in under a minute"
    if delta < timedelta(hours=1):
        return f"Next run in {int(delta.total_seconds() // 60)} min"
    local_next, local_now = task.next_run_at.astimezone(), now.astimezone()
    days = (local_next.date() - local_now.date()).days
    clock = local_next.strftime("%H:%M")
    if days == 0:
        return f"Next run at {clock}"
    if days == 1:
        return f"Next run tomorrow at {clock}"
    return f"Next run {local_next:%a} {local_next.day} {local_next:%b} at {clock}"


class TaskEventBridge(QObject):
    """Re-emits the TaskScheduler's events as Qt signals carrying the task id."""

    taskAdded = Signal(str)
    taskChanged = Signal(str)
    taskDeleted = Signal(str)
    runStarted = Signal(str)
    runFinished = Signal(str)

    def __init__(self, scheduler: TaskScheduler, parent: QObject | None = None) -> None:
        """Start listening; call :meth:`detach` when the window goes away."""
        super().__init__(parent)
        self._scheduler = scheduler
        scheduler.add_listener(self._on_event)

    def detach(self) -> None:
        """Stop listening."""
        self._scheduler.remove_listener(self._on_event)

    def _on_event(self, event: TaskEvent) -> None:
        if event.kind == TASK_ADDED:
            self.taskAdded.emit(event.task_id)
        elif event.kind == TASK_DELETED:
            self.taskDeleted.emit(event.task_id)
        elif event.kind == RUN_STARTED:
            self.taskChanged.emit(event.task_id)
            self.runStarted.emit(event.task_id)
        elif event.kind == RUN_FINISHED:
            self.taskChanged.emit(event.task_id)
            self.runFinished.emit(event.task_id)
        else:
            self.taskChanged.emit(event.task_id)


class TaskListModel(QAbstractListModel):
    """One row per scheduled task: name and next run, bold with a dot while unread."""

    def __init__(self, scheduler: TaskScheduler, parent: QObject | None = None) -> None:
        """Rows for the scheduler's tasks as they are now."""
        super().__init__(parent)
        self._scheduler = scheduler
        self._rows: list[Task] = scheduler.list_tasks()

    def reload(self) -> None:
        """Take every task afresh (the scheduler started after the window was built)."""
        self.beginResetModel()
        self._rows = self._scheduler.list_tasks()
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's API
        """How many tasks there are (a flat list: no children)."""
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The task's name and next run; its id, unread mark and font for the view."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        task = self._rows[index.row()]
        if role == TaskIdRole:
            return task.id
        if role == UnreadRole:
            return task.unread
        if role == SubtitleRole:
            return next_run_words(task, running=self._scheduler.is_running(task.id))
        if role == Qt.ItemDataRole.DisplayRole:
            return task.name
        if role == Qt.ItemDataRole.AccessibleTextRole:
            unread = ", new results" if task.unread else ""
            return f"{task.name}, {self.data(index, SubtitleRole)}{unread}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(task)
        return None

    def task_at(self, row: int) -> Task | None:
        """The task shown in ``row``, or None."""
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, task_id: str) -> int:
        """The row of ``task_id``, or -1."""
        return next((i for i, t in enumerate(self._rows) if t.id == task_id), -1)

    def add(self, task_id: str) -> None:
        """Show a new task at the end."""
        if self.row_of(task_id) >= 0:
            return
        try:
            task = self._scheduler.get_task(task_id)
        except LookupError:
            return
        self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows))
        self._rows.append(task)
        self.endInsertRows()

    def refresh(self, task_id: str) -> None:
        """Redraw the row of ``task_id`` from the scheduler's current state."""
        row = self.row_of(task_id)
        if row < 0:
            return
        try:
            self._rows[row] = self._scheduler.get_task(task_id)
        except LookupError:
            return
        index = self.index(row)
        self.dataChanged.emit(index, index)

    def refresh_all(self) -> None:
        """Redraw every row (the relative times moved on)."""
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(len(self._rows) - 1))

    def remove(self, task_id: str) -> None:
        """Drop the row of a deleted task."""
        row = self.row_of(task_id)
        if row < 0:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self.endRemoveRows()

    def _tooltip(self, task: Task) -> str:
        try:
            schedule = self._scheduler.describe(task.schedule)
        except ValueError:
            schedule = task.schedule
        lines = [schedule]
        if task.last_run_at is not None:
            ended = {"complete": "answered", "error": "failed", "cancelled": "was stopped"}
            outcome = ended.get(task.last_status or "", task.last_status or "")
            lines.append(f"Last run {task.last_run_at.astimezone():%a %H:%M}: {outcome}")
        if task.last_note:
            lines.append(task.last_note)
        return "\n".join(lines)
