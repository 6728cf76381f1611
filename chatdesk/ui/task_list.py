"""The Scheduled section of the sidebar: scheduled tasks, their next run, unread results.

``ScheduledSection`` shows the tasks of :class:`chatdesk.ui.task_model.TaskListModel`
(painted by ``TaskDelegate``) with New / Run now / Pause-Resume / Edit / Delete. Every
action is a coroutine on the TaskScheduler; its failures go to the window's reporter in
words.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QFont, QFontMetrics, QKeySequence, QPainter, QPalette, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QMessageBox,
    QPushButton,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chatdesk.domain import Task
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.scheduler import TaskScheduler
from chatdesk.ui.task_model import (
    SubtitleRole,
    TaskEventBridge,
    TaskIdRole,
    TaskListModel,
    UnreadRole,
)
from chatdesk.ui.theme import mix_colours

SECTION_TITLE = "Scheduled"
# The "next run in 5 min" wording goes stale; refreshing it this often keeps it right.
_REFRESH_MS = 30_000

_Index = QModelIndex | QPersistentModelIndex

# What the user chose when asked about deleting a task.
DELETE_RESULTS = "delete"
KEEP_RESULTS = "keep"
DeleteQuestion = Callable[[QWidget, Task], str | None]
# Starts a coroutine for the window, which keeps it and reports its failure in words.
StartTask = Callable[[Coroutine[Any, Any, Any]], object]


class TaskDelegate(QStyledItemDelegate):
    """Paints a task: its name (bold while unread, with a dot), its next run below."""

    PADDING_H = 10
    PADDING_V = 6
    DOT = 8

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        """Two lines of text with padding."""
        small = QFontMetrics(_small_font(option.font))
        return QSize(120, option.fontMetrics.height() + small.height() + 2 * self.PADDING_V)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        """Draw with palette colours only, so light and dark themes both look right."""
        painter.save()
        palette = option.palette
        body = QRect(option.rect).adjusted(4, 1, -4, -1)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if selected or hovered:
            base = palette.color(QPalette.ColorRole.Base)
            accent = palette.color(QPalette.ColorRole.Highlight)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(mix_colours(base, accent, 0.22 if selected else 0.08))
            painter.drawRoundedRect(body, 6, 6)
        text = body.adjusted(self.PADDING_H - 4, self.PADDING_V - 1, -(self.PADDING_H - 4), 0)
        unread = bool(index.data(UnreadRole))
        if unread:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(palette.color(QPalette.ColorRole.Highlight))
            line = option.fontMetrics.height()
            painter.drawEllipse(
                text.right() - self.DOT, text.top() + (line - self.DOT) // 2, self.DOT, self.DOT
            )
            text.setRight(text.right() - self.DOT - 6)
        name_font = QFont(option.font)
        name_font.setBold(unread)
        name_metrics = QFontMetrics(name_font)
        painter.setFont(name_font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        name = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        painter.drawText(
            QRect(text.left(), text.top(), text.width(), name_metrics.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            name_metrics.elidedText(name, Qt.TextElideMode.ElideRight, text.width()),
        )
        small = _small_font(option.font)
        small_metrics = QFontMetrics(small)
        painter.setFont(small)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        subtitle = str(index.data(SubtitleRole) or "")
        painter.drawText(
            QRect(
                text.left(),
                text.top() + name_metrics.height(),
                text.width(),
                small_metrics.height(),
            ),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            small_metrics.elidedText(subtitle, Qt.TextElideMode.ElideRight, text.width()),
        )
        painter.restore()


def _small_font(font: QFont) -> QFont:
    small = QFont(font)
    small.setPointSizeF(max(7.5, font.pointSizeF() - 1))
    return small


def ask_how_to_delete(parent: QWidget, task: Task) -> str | None:
    """Ask whether a task's results go with it; DELETE_RESULTS, KEEP_RESULTS or None."""
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Question)
    box.setWindowTitle("Delete scheduled task")
    box.setText(f"Delete the scheduled task “{task.name}”?")
    box.setInformativeText(
        "Its results can stay as a normal chat in the sidebar, or be deleted with it."
    )
    keep = box.addButton("Keep results as a chat", QMessageBox.ButtonRole.AcceptRole)
    delete = box.addButton("Delete results too", QMessageBox.ButtonRole.DestructiveRole)
    box.addButton(QMessageBox.StandardButton.Cancel)
    box.setDefaultButton(keep)
    box.exec()
    clicked = box.clickedButton()
    if clicked is keep:
        return KEEP_RESULTS
    if clicked is delete:
        return DELETE_RESULTS
    return None


class ScheduledSection(QWidget):
    """The sidebar's Scheduled section: the task list and what can be done with a task."""

    taskOpened = Signal(str)

    def __init__(
        self,
        scheduler: TaskScheduler,
        registry: ProviderRegistry,
        *,
        start: StartTask,
        ask_delete: DeleteQuestion = ask_how_to_delete,
        parent: QWidget | None = None,
    ) -> None:
        """``start`` runs the actions' coroutines (the window's task set)."""
        super().__init__(parent)
        self.setObjectName("scheduledSection")
        self.scheduler = scheduler
        self._registry = registry
        self._start = start
        self._ask_delete = ask_delete
        self.bridge = TaskEventBridge(scheduler, self)
        self.model = TaskListModel(scheduler, self)

        title = QLabel(SECTION_TITLE.upper())
        title.setObjectName("scheduledTitle")
        font = title.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 0.85)
        title.setFont(font)
        title.setStyleSheet("color: palette(mid);")
        self.new_button = QToolButton()
        self.new_button.setText("+")
        self.new_button.setToolTip("New scheduled task")
        self.new_button.setAccessibleName("New scheduled task")
        self.new_button.setObjectName("newTaskButton")
        self.new_button.setAutoRaise(True)
        self.new_button.clicked.connect(self.new_task)
        header = QHBoxLayout()
        header.setContentsMargins(10, 8, 0, 0)
        header.addWidget(title)
        header.addStretch(1)
        header.addWidget(self.new_button)

        self.view = QListView()
        self.view.setObjectName("taskList")
        self.view.setAccessibleName("Scheduled tasks")
        self.view.setModel(self.model)
        self.view.setItemDelegate(TaskDelegate(self.view))
        self.view.setMouseTracking(True)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.setUniformItemSizes(True)
        self.view.setFrameShape(QListView.Shape.NoFrame)
        # The list blends into the sidebar panel; rows draw their own hover/selection.
        panel = self.view.palette()
        panel.setColor(QPalette.ColorRole.Base, panel.color(QPalette.ColorRole.Window))
        self.view.setPalette(panel)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.clicked.connect(self._open_index)
        delete_key = QShortcut(QKeySequence.StandardKey.Delete, self.view, self.delete_selected)
        delete_key.setContext(Qt.ShortcutContext.WidgetShortcut)
        self.view.activated.connect(self._open_index)
        selection = self.view.selectionModel()
        selection.currentChanged.connect(lambda *_: self._update_buttons())

        self.empty_hint = QLabel("No scheduled tasks yet. Press + to ask a model on a schedule.")
        self.empty_hint.setWordWrap(True)
        self.empty_hint.setContentsMargins(10, 0, 4, 4)
        self.empty_hint.setStyleSheet("color: palette(mid);")

        self.run_button = self._action_button("Run now", "runTaskButton", self.run_selected)
        self.pause_button = self._action_button("Pause", "pauseTaskButton", self.toggle_selected)
        self.edit_button = self._action_button("Edit", "editTaskButton", self.edit_selected)
        self.delete_button = self._action_button("Delete", "deleteTaskButton", self.delete_selected)
        buttons = QHBoxLayout()
        buttons.setContentsMargins(4, 0, 0, 0)
        buttons.setSpacing(4)
        for button in (self.run_button, self.pause_button, self.edit_button, self.delete_button):
            buttons.addWidget(button)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self.empty_hint)
        layout.addWidget(self.view)
        layout.addLayout(buttons)

        self.bridge.taskAdded.connect(self._task_added)
        self.bridge.taskChanged.connect(self._task_changed)
        self.bridge.taskDeleted.connect(self._task_deleted)
        self.model.modelReset.connect(self._fit)
        self.model.modelReset.connect(self._update_buttons)
        self._clock = QTimer(self)
        self._clock.setInterval(_REFRESH_MS)
        self._clock.timeout.connect(self.model.refresh_all)
        self._clock.start()
        self._fit()
        self._update_buttons()

    # -- what the window asks -----------------------------------------------------------

    def reload(self) -> None:
        """Show the scheduler's tasks (call once it has started)."""
        self.model.reload()

    def detach(self) -> None:
        """Stop following the scheduler (the window is closing)."""
        self._clock.stop()
        self.bridge.detach()

    def selected_task(self) -> Task | None:
        """The task selected in the list, or None."""
        return self.model.task_at(self.view.currentIndex().row())

    def select_task(self, task_id: str | None) -> None:
        """Select ``task_id``'s row (None clears the selection), without opening it."""
        row = -1 if task_id is None else self.model.row_of(task_id)
        if row < 0:
            self.view.clearSelection()
            self.view.setCurrentIndex(QModelIndex())
        else:
            self.view.setCurrentIndex(self.model.index(row))
        self._update_buttons()

    # -- actions ------------------------------------------------------------------------

    def new_task(self) -> QWidget:
        """Open the New scheduled task dialog."""
        from chatdesk.ui.task_dialog import TaskDialog

        dialog = TaskDialog(self.scheduler, self._registry, start=self._start, parent=self.window())
        dialog.saved.connect(self._open_task)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def edit_selected(self) -> QWidget | None:
        """Open the selected task in the dialog, to change it."""
        from chatdesk.ui.task_dialog import TaskDialog

        task = self.selected_task()
        if task is None:
            return None
        dialog = TaskDialog(
            self.scheduler, self._registry, start=self._start, task=task, parent=self.window()
        )
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def run_selected(self) -> None:
        """Run the selected task now (its reply goes into its session)."""
        task = self.selected_task()
        if task is not None:
            self._open_task(task.id)
            self._start(self.scheduler.run_now(task.id))

    def toggle_selected(self) -> None:
        """Pause the selected task, or resume it when it is paused."""
        task = self.selected_task()
        if task is None:
            return
        action = self.scheduler.resume if not task.enabled else self.scheduler.pause
        self._start(action(task.id))

    def delete_selected(self) -> None:
        """Delete the selected task after asking what becomes of its results."""
        task = self.selected_task()
        if task is None:
            return
        choice = self._ask_delete(self.window(), task)
        if choice is None:
            return
        self._start(self.scheduler.delete_task(task.id, keep_results=choice == KEEP_RESULTS))

    # -- internals ----------------------------------------------------------------------

    def _action_button(self, text: str, name: str, slot: Callable[[], object]) -> QPushButton:
        button = QPushButton(text)
        button.setObjectName(name)
        button.setAccessibleName(text)
        button.clicked.connect(slot)
        return button

    def _open_index(self, index: QModelIndex) -> None:
        task_id = index.data(TaskIdRole)
        if task_id:
            self._open_task(task_id)

    def _open_task(self, task_id: str) -> None:
        self.select_task(task_id)
        self.taskOpened.emit(task_id)

    def _task_added(self, task_id: str) -> None:
        self.model.add(task_id)
        self._fit()

    def _task_changed(self, task_id: str) -> None:
        self.model.refresh(task_id)
        self._update_buttons()

    def _task_deleted(self, task_id: str) -> None:
        self.model.remove(task_id)
        self._fit()
        self._update_buttons()

    def _fit(self) -> None:
        """Size the list to its rows (up to six), so the chats above keep the room."""
        rows = self.model.rowCount()
        self.empty_hint.setVisible(rows == 0)
        self.view.setVisible(rows > 0)
        row_height = self.view.sizeHintForRow(0) if rows else 0
        self.view.setFixedHeight(min(rows, 6) * row_height + 4)

    def _update_buttons(self) -> None:
        task = self.selected_task()
        for button in (self.run_button, self.pause_button, self.edit_button, self.delete_button):
            button.setEnabled(task is not None)
        self.pause_button.setText("Resume" if task is not None and not task.enabled else "Pause")
        self.pause_button.setAccessibleName(self.pause_button.text())
        # Shown for a selected task only, so an unused section stays one quiet line.
        for button in (self.run_button, self.pause_button, self.edit_button, self.delete_button):
            button.setVisible(task is not None)

    def _context_menu(self, point: QPoint) -> None:
        index = self.view.indexAt(point)
        if not index.isValid():
            return
        self.view.setCurrentIndex(index)
        task = self.selected_task()
        if task is None:
            return
        menu = QMenu(self)
        menu.addAction("Run now", self.run_selected)
        menu.addAction("Resume" if not task.enabled else "Pause", self.toggle_selected)
        menu.addAction("Edit…", self.edit_selected)
        menu.addSeparator()
        menu.addAction("Delete…", self.delete_selected)
        menu.popup(self.view.viewport().mapToGlobal(point))
