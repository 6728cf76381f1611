"""Find and keep in the window: search, Ctrl+F, Trash with Undo, pin, archive, branches,
export and import (menu, or dropping an export file on the window).

One controller over the window's sidebar and chat pane; the window creates it and hands
it the few calls it needs (open a chat, report an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QAction, QDragEnterEvent, QDropEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QLabel, QMenu, QProgressBar, QToolButton, QWidget

from chatdesk.domain import Session
from chatdesk.interchange import InterchangeError, export_sessions, import_file
from chatdesk.ui.find_bar import FindBar
from chatdesk.ui.keeping import SessionBinDialog, UndoBar
from chatdesk.ui.search_results import (
    MIN_QUERY_CHARS,
    MessageSearch,
    SearchResultsModel,
    SearchResultsView,
)

if TYPE_CHECKING:
    from chatdesk.ui.main_window import MainWindow

IMPORT_SUFFIXES = (".json", ".zip")


class FindKeepController(QObject):
    """Adds search, the Trash, pin/archive, branches and export/import to a MainWindow."""

    # Emitted when an import or export finished, with a line saying what happened.
    interchangeFinished = Signal(str)

    def __init__(self, window: MainWindow) -> None:
        """Add the widgets and wire them into ``window``."""
        super().__init__(window)
        self.window = window
        self.manager = window.manager
        sidebar, pane = window.sidebar, window.pane

        # Sidebar: message hits under the (instantly filtered) titles.
        self.results_model = SearchResultsModel(self)
        self.results = SearchResultsView(self.results_model, sidebar)
        self.results_label = QLabel("Messages", sidebar)
        self.results_label.setObjectName("searchResultsLabel")
        self.results_label.setEnabled(False)
        self.search = MessageSearch(
            self.manager.search, self.results_model, window.tasks.start, self
        )
        sidebar.filter.textChanged.connect(self._on_query)
        self.results.hitActivated.connect(lambda sid, mid: self._start(self.open_hit(sid, mid)))
        self.undo = UndoBar(sidebar)
        self.undo.undoRequested.connect(self.undo_trash)
        self.progress = QProgressBar(sidebar)
        self.progress.setObjectName("interchangeProgress")
        self.progress.setTextVisible(True)
        self.progress.hide()
        layout = sidebar.layout()
        layout.addWidget(self.results_label)  # type: ignore[union-attr]
        layout.addWidget(self.results, 2)  # type: ignore[call-arg, union-attr]
        layout.addWidget(self.progress)  # type: ignore[union-attr]
        layout.addWidget(self.undo)  # type: ignore[union-attr]
        self._show_results(False)
        sidebar.pinRequested.connect(self.toggle_pin)
        sidebar.archiveRequested.connect(self.archive)
        sidebar.exportRequested.connect(lambda sid: self.ask_export([sid]))
        sidebar.menu_button.setMenu(self._library_menu(sidebar.menu_button))

        # Chat pane: find bar, branch actions and the parent/branches button.
        self.find_bar = FindBar(self._current_history, pane)
        pane.layout().insertWidget(2, self.find_bar)  # type: ignore[union-attr]
        self.find_bar.matchChosen.connect(window.chat_view.reveal_message)
        pane.messages.modelReset.connect(self.find_bar.refresh)
        pane.messages.modelReset.connect(self._refresh_branch_button)
        window.chat_view.branchRequested.connect(self.branch_from)
        self.branch_button = QToolButton(pane)
        self.branch_button.setObjectName("branchesButton")
        self.branch_button.setAutoRaise(True)
        self.branch_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.branch_button.hide()
        header = pane.layout().itemAt(0).layout()  # type: ignore[union-attr]
        header.insertWidget(1, self.branch_button)  # type: ignore[union-attr]

        QShortcut(QKeySequence(QKeySequence.StandardKey.Find), window, self.find_bar.open_bar)
        window.setAcceptDrops(True)
        self.dialogs: dict[str, SessionBinDialog] = {}

    def _start(self, coroutine: Any) -> None:
        # The window's task set: failures reach the user, and shutdown waits for them.
        self.window.tasks.start(coroutine)

    # -- search ---------------------------------------------------------------------------

    def _on_query(self, text: str) -> None:
        self._show_results(len(text.strip()) >= MIN_QUERY_CHARS)
        self.search.set_query(text)

    def _show_results(self, visible: bool) -> None:
        self.results.setVisible(visible)
        self.results_label.setVisible(visible)

    async def open_hit(self, session_id: str, message_id: str | None = None) -> None:
        """Open a chat and scroll to (and outline) one of its messages."""
        await self.window.open_session(session_id)
        if self.window.current_session_id == session_id and message_id is not None:
            self.window.chat_view.reveal_message(message_id)

    def _current_history(self) -> list[Any]:
        session = self.window.chat.current
        return session.history if session is not None else []

    # -- trash, pin, archive ---------------------------------------------------------------

    def move_to_trash(self, session_id: str) -> None:
        """Move a chat to the Trash at once and offer Undo for a few seconds."""
        row = self.window.sidebar.model.row_of(session_id)
        title = self.window.sidebar.model.session_row(row).title if row is not None else "Chat"

        async def work() -> None:
            await self.manager.trash_session(session_id)
            self.undo.offer(session_id, title)

        self._start(work())

    def undo_trash(self, session_id: str) -> None:
        """Take a chat back out of the Trash and open it."""

        async def work() -> None:
            await self.manager.restore_session(session_id)
            await self.window.open_session(session_id)

        self._start(work())

    def sync_row(self, session: Session) -> None:
        """Show a changed chat in the list, or take it out if it went to the Trash/Archive."""
        if session.trashed_at is not None or session.archived_at is not None:
            if self.window.sidebar.model.row_of(session.id) is not None:
                self.window._on_session_deleted(session.id)
            return
        self.window.sidebar.model.upsert(session)

    def toggle_pin(self, session_id: str) -> None:
        """Pin a chat to the top of the list, or unpin it."""

        async def work() -> None:
            session = await self.manager.require_session(session_id)
            await self.manager.set_pinned(session_id, not session.pinned)

        self._start(work())

    def archive(self, session_id: str) -> None:
        """Move a chat to the Archive."""
        self._start(self.manager.set_archived(session_id, True))

    def open_bin(self, trash: bool) -> SessionBinDialog:
        """Open the Trash (or the Archive) view."""
        key = "trash" if trash else "archive"
        dialog = self.dialogs.get(key)
        if dialog is None:
            dialog = SessionBinDialog(
                self.manager,
                trash=trash,
                confirm=self.window.confirm,
                start=self.window.tasks.start,
                delete=self.window.chat.delete,
                parent=self.window,
            )
            dialog.openRequested.connect(lambda sid: self._start(self.open_hit(sid)))
            self.dialogs[key] = dialog
        self._start(dialog.reload())
        dialog.show()
        dialog.raise_()
        return dialog

    # -- branches --------------------------------------------------------------------------

    def branch_from(self, message_id: str) -> None:
        """Make a new chat with the history up to ``message_id`` and open it."""
        session_id = self.window.current_session_id
        if session_id is None:
            return

        async def work() -> None:
            branch = await self.manager.branch_session(session_id, message_id)
            self.window.sidebar.model.upsert(branch)
            await self.window.open_session(branch.id)

        self._start(work())

    def _refresh_branch_button(self) -> None:
        self._start(self._fill_branch_button())

    async def _fill_branch_button(self) -> None:
        session = self.window.chat.current
        if session is None:
            self.branch_button.hide()
            return
        parent = None
        if session.parent_session_id:
            parent = await self.manager.get_session(session.parent_session_id)
        children = await self.manager.branches_of(session.id)
        if self.window.chat.current is not session:
            return  # another chat was opened meanwhile
        if parent is None and not children:
            self.branch_button.hide()
            return
        menu = QMenu(self.branch_button)
        if parent is not None:
            action = menu.addAction(f"Branched from “{parent.title}”")
            action.triggered.connect(
                lambda: self._start(self.open_hit(parent.id, session.parent_message_id))
            )
        for child in children:
            action = menu.addAction(f"Branch: {child.title}")
            action.triggered.connect(
                lambda _checked=False, cid=child.id: self._start(self.open_hit(cid))
            )
        self.branch_button.setMenu(menu)
        count = len(children)
        self.branch_button.setText(
            "Branch of…" if parent is not None and not count else f"Branches ({count})"
        )
        self.branch_button.setToolTip("The chat this one branched from, and its branches")
        self.branch_button.show()

    # -- export and import -----------------------------------------------------------------

    def _library_menu(self, parent: QWidget) -> QMenu:
        menu = QMenu(parent)
        for text, slot in (
            ("Archive", lambda: self.open_bin(False)),
            ("Trash", lambda: self.open_bin(True)),
            (None, None),
            ("Import chats…", self.ask_import),
            ("Export this chat…", self._export_current),
            ("Export all chats…", lambda: self.ask_export(None)),
        ):
            if text is None:
                menu.addSeparator()
                continue
            action = QAction(text, menu)
            action.triggered.connect(slot)
            menu.addAction(action)
        return menu

    def _export_current(self) -> None:
        if self.window.current_session_id is not None:
            self.ask_export([self.window.current_session_id])

    def ask_export(self, session_ids: list[str] | None) -> None:
        """Ask where to export (Markdown or JSON), then export with a progress bar."""
        path, chosen = QFileDialog.getSaveFileName(
            self.window,
            "Export chats",
            "chatdesk-export.json" if session_ids is None else "chat.md",
            "Markdown (*.md);;ChatDesk JSON (*.json)",
            "ChatDesk JSON (*.json)" if session_ids is None else "Markdown (*.md)",
        )
        if path:
            fmt = "json" if "json" in chosen.lower() or path.endswith(".json") else "markdown"
            target = Path(path)
            if fmt == "markdown" and session_ids is None:
                target = target.with_suffix("")  # several chats: a folder of files
            self._start(self.export_to(session_ids, target, fmt))

    async def export_to(self, session_ids: list[str] | None, out: Path, fmt: str) -> list[Path]:
        """Export with the progress bar showing; returns the files written."""
        self._begin_progress("Exporting")
        try:
            written = await export_sessions(
                self.manager, session_ids, out, fmt=fmt, progress=self._set_progress
            )
        finally:
            self.progress.hide()
        self.interchangeFinished.emit(f"Exported to {out}")
        return written

    def ask_import(self) -> None:
        """Ask for an export file, then import it."""
        path, _ = QFileDialog.getOpenFileName(
            self.window,
            "Import chats",
            "",
            "ChatGPT or ChatDesk export (*.json *.zip);;All files (*)",
        )
        if path:
            self._start(self.import_from(Path(path)))

    async def import_from(self, path: Path) -> str:
        """Import with the progress bar showing; returns (and shows) what happened."""
        self._begin_progress("Importing")
        try:
            result = await import_file(self.manager, path, progress=self._set_progress)
        except InterchangeError as exc:
            message = str(exc)
        else:
            message = f"Imported {len(result.added)} chat(s) from {path.name}" + (
                f"; {result.skipped} were already here." if result.skipped else "."
            )
        finally:
            self.progress.hide()
        self.window.pane.composer.show_notice(message)
        self.interchangeFinished.emit(message)
        return message

    def _begin_progress(self, verb: str) -> None:
        self.progress.setFormat(f"{verb}… %v of %m chats")
        self.progress.setRange(0, 0)  # busy until the first count arrives
        self.progress.show()

    def _set_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    # -- dropping an export file on the window --------------------------------------------

    def drag_enter(self, event: QDragEnterEvent) -> None:
        """Accept dragging a .json or .zip file over the window."""
        if _import_paths(event):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def drop(self, event: QDropEvent) -> None:
        """Import every .json or .zip file dropped on the window."""
        paths = _import_paths(event)
        if not paths:
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)
        event.accept()
        for path in paths:
            self._start(self.import_from(path))


def _import_paths(event: QDropEvent) -> list[Path]:
    return [
        Path(url.toLocalFile())
        for url in event.mimeData().urls()
        if url.isLocalFile() and url.toLocalFile().lower().endswith(IMPORT_SUFFIXES)
    ]
