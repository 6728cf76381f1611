"""Keeping chats in the window: the Undo strip after a delete, and the Trash and Archive views."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from chatdesk.domain import SessionSummary
from chatdesk.sessions import SessionManager
from chatdesk.ui.session_model import relative_time
from chatdesk.ui.theme import mix_colours

# How long the Undo strip stays after a chat is moved to the Trash.
UNDO_SECONDS = 8
TRASH_DAYS = 30


class UndoBar(QFrame):
    """ "Moved to the Trash. [Undo]" for a few seconds; ``undoRequested`` carries the chat id."""

    undoRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        """A hidden strip."""
        super().__init__(parent)
        self.setObjectName("undoBar")
        self._session_id: str | None = None
        self.text = QLabel(self)
        self.text.setObjectName("undoText")
        self.text.setWordWrap(True)
        self.undo_button = QPushButton("Undo", self)
        self.undo_button.setObjectName("undoButton")
        self.undo_button.setAccessibleName("undoButton")
        self.undo_button.clicked.connect(self._undo)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.undo_button)
        self.hide()

    def offer(self, session_id: str, title: str, seconds: float = UNDO_SECONDS) -> None:
        """Offer to undo moving ``title`` to the Trash, for ``seconds``."""
        self._session_id = session_id
        metrics = self.text.fontMetrics()
        short = metrics.elidedText(title, Qt.TextElideMode.ElideRight, 150)
        self.text.setText(f"Moved to the Trash:\n“{short}”")
        self.show()
        self._timer.start(int(seconds * 1000))

    def _undo(self) -> None:
        if self._session_id is not None:
            self.undoRequested.emit(self._session_id)
        self._session_id = None
        self.hide()

    def paintEvent(self, event: QPaintEvent) -> None:
        """A rounded, slightly accented box from the palette."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        palette = self.palette()
        base = palette.color(QPalette.ColorRole.Base)
        accent = palette.color(QPalette.ColorRole.Highlight)
        painter.setPen(mix_colours(base, accent, 0.45))
        painter.setBrush(mix_colours(base, accent, 0.12))
        painter.drawRoundedRect(self.rect().adjusted(0, 0, -1, -1), 8, 8)


class SessionBinDialog(QDialog):
    """The Trash (restore, delete for good, empty) or the Archive (unarchive, open).

    ``openRequested`` asks the window to show a chat (from the Archive).
    """

    openRequested = Signal(str)
    changed = Signal()

    def __init__(
        self,
        manager: SessionManager,
        *,
        trash: bool,
        confirm: Callable[[QWidget, str, str], bool],
        start: Callable[[Coroutine[Any, Any, Any]], object],
        delete: Callable[[str], Awaitable[None]],
        parent: QWidget | None = None,
    ) -> None:
        """The Trash when ``trash``, else the Archive, over ``manager``.

        ``start`` runs a background task; ``delete`` deletes a chat for good.
        """
        super().__init__(parent)
        self.manager = manager
        self.trash = trash
        self._confirm = confirm
        self._start = start
        # Deleting for good goes through the window, which first stops any reply into it.
        self._delete = delete
        self.setObjectName("trashDialog" if trash else "archiveDialog")
        self.setWindowTitle("Trash" if trash else "Archive")
        self.resize(460, 420)
        note = (
            f"Chats in the Trash are deleted for good after {TRASH_DAYS} days."
            if trash
            else "Archived chats are kept out of the list. Search still finds them."
        )
        self.note = QLabel(note, self)
        self.note.setWordWrap(True)
        self.note.setEnabled(False)
        self.list = QListWidget(self)
        self.list.setObjectName("binList")
        self.list.setAccessibleName("binList")
        self.list.setSelectionMode(QListWidget.SelectionMode.ExtendedSelection)
        self.empty = QLabel("The Trash is empty" if trash else "No archived chats", self)
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty.setEnabled(False)
        buttons = QHBoxLayout()
        if trash:
            self.restore_button = QPushButton("Restore", self)
            self.restore_button.setObjectName("restoreButton")
            self.restore_button.clicked.connect(self._restore)
            self.delete_button = QPushButton("Delete for good…", self)
            self.delete_button.setObjectName("deleteForGoodButton")
            self.delete_button.clicked.connect(self._delete_for_good)
            self.empty_button = QPushButton("Empty Trash…", self)
            self.empty_button.setObjectName("emptyTrashButton")
            self.empty_button.clicked.connect(self._empty_trash)
            for button in (self.restore_button, self.delete_button, self.empty_button):
                buttons.addWidget(button)
        else:
            self.restore_button = QPushButton("Unarchive", self)
            self.restore_button.setObjectName("unarchiveButton")
            self.restore_button.clicked.connect(self._restore)
            open_button = QPushButton("Open", self)
            open_button.setObjectName("openArchivedButton")
            open_button.clicked.connect(self._open)
            self.list.itemActivated.connect(lambda _item: self._open())
            buttons.addWidget(self.restore_button)
            buttons.addWidget(open_button)
        buttons.addStretch(1)
        close = QPushButton("Close", self)
        close.clicked.connect(self.accept)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.note)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.empty)
        layout.addLayout(buttons)

    async def reload(self) -> None:
        """List the chats in the Trash (or the Archive), most recent first."""
        if self.trash:
            sessions = await self.manager.list_sessions(trashed_only=True)
            sessions.sort(key=lambda s: s.trashed_at or s.updated_at, reverse=True)
        else:
            sessions = await self.manager.list_sessions(archived=True)
        self._fill(sessions)

    def _fill(self, sessions: list[SessionSummary]) -> None:
        self.list.clear()
        for summary in sessions:
            when = summary.trashed_at if self.trash else summary.archived_at
            label = f"{summary.title}    ·    {relative_time(when or summary.updated_at)}"
            item = QListWidgetItem(label, self.list)
            item.setData(Qt.ItemDataRole.UserRole, summary.id)
        self.list.setVisible(bool(sessions))
        self.empty.setVisible(not sessions)
        if sessions:
            self.list.setCurrentRow(0)

    def selected_ids(self) -> list[str]:
        """The ids of the selected chats."""
        return [i.data(Qt.ItemDataRole.UserRole) for i in self.list.selectedItems()]

    def _run(self, work: Callable[[], Awaitable[None]]) -> None:
        async def then_reload() -> None:
            await work()
            await self.reload()
            self.changed.emit()

        self._start(then_reload())

    def _restore(self) -> None:
        ids = self.selected_ids()

        async def work() -> None:
            for session_id in ids:
                if self.trash:
                    await self.manager.restore_session(session_id)
                else:
                    await self.manager.set_archived(session_id, False)

        self._run(work)

    def _delete_for_good(self) -> None:
        ids = self.selected_ids()
        if not ids or not self._confirm(
            self,
            "Delete for good",
            f"Delete {len(ids)} chat(s) and all their messages for good? This cannot be undone.",
        ):
            return

        async def work() -> None:
            for session_id in ids:
                await self._delete(session_id)

        self._run(work)

    def _empty_trash(self) -> None:
        count = self.list.count()
        if not count or not self._confirm(
            self,
            "Empty Trash",
            f"Delete all {count} chat(s) in the Trash for good? This cannot be undone.",
        ):
            return
        ids = [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(count)]

        async def work() -> None:
            for session_id in ids:
                await self._delete(session_id)

        self._run(work)

    def _open(self) -> None:
        ids = self.selected_ids()
        if ids:
            self.openRequested.emit(ids[0])
