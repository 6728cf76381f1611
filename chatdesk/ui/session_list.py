"""The session sidebar: a filter box over the list of chats, and a button for a new one.

:class:`TitleFilterProxy` filters :class:`SessionListModel` by title as the user types;
:class:`SessionDelegate` paints the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPalette,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chatdesk.ui.session_delegate import SessionDelegate
from chatdesk.ui.session_model import (
    PinnedRole,
    SessionIdRole,
    SessionListModel,
)
from chatdesk.ui.title_filter import TitleFilterProxy


class SessionListView(QListView):
    """The list itself; Delete asks to delete the current session.

    It tells apart a current row the user chose (a click, the arrow keys, typing a title)
    from one Qt moved because rows were filtered out, removed or moved: only the first
    opens a chat.
    """

    deletePressed = Signal()
    # Text typed while the list has the focus (meant for the message box).
    textTyped = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty list view."""
        super().__init__(parent)
        self._user_input = 0

    @property
    def handling_user_input(self) -> bool:
        """True while a mouse or key event of the user is being handled."""
        return self._user_input > 0

    def _as_user_input(self, handler: Callable[[Any], None], event: Any) -> None:
        self._user_input += 1
        try:
            handler(event)
        finally:
            self._user_input -= 1

    def mousePressEvent(self, event: QMouseEvent) -> None:
        """A click makes its row current: the user's choice."""
        self._as_user_input(super().mousePressEvent, event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        """Dragging with the button held moves the current row: the user's choice."""
        self._as_user_input(super().mouseMoveEvent, event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Delete (or Backspace on macOS keyboards) asks to delete the current session."""
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and (
            self.state() != QAbstractItemView.State.EditingState
        ):
            self.deletePressed.emit()
            return
        typed = event.text()
        plain = not event.modifiers() & ~(
            Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.KeypadModifier
        )
        if (
            plain
            and typed.isprintable()
            and typed.strip()
            and self.state() != QAbstractItemView.State.EditingState
        ):
            self.textTyped.emit(typed)
            return
        self._as_user_input(super().keyPressEvent, event)


class SessionSidebar(QWidget):
    """New-chat button, filter box and the session list.

    ``sessionActivated`` means the user chose a chat (a click, the arrow keys, Enter, or
    :meth:`select_session`). The window says which chat it shows with
    :meth:`show_open_session`; that row stays selected while the filter shows it, and no
    row is selected while the filter hides it. Filtering, renames and new activity never
    open a chat by themselves.
    """

    sessionActivated = Signal(str)
    newSessionRequested = Signal()
    deleteRequested = Signal(str)
    pinRequested = Signal(str)
    archiveRequested = Signal(str)
    exportRequested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty sidebar; fill ``model`` with :meth:`SessionListModel.set_sessions`."""
        super().__init__(parent)
        self.setObjectName("sessionSidebar")
        self._open_id: str | None = None
        self.model = SessionListModel(self)
        self.proxy = TitleFilterProxy(self.model, self)

        self.new_button = QPushButton("New chat")
        self.new_button.setObjectName("newSessionButton")
        self.new_button.setAccessibleName("newSessionButton")
        self.new_button.setToolTip(
            f"Start a new chat ({_shortcut_text(QKeySequence.StandardKey.New)})"
        )
        self.filter = QLineEdit()
        self.filter.setObjectName("sessionFilter")
        self.filter.setAccessibleName("sessionFilter")
        self.filter.setPlaceholderText("Search chats")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.set_needle)
        self.list = SessionListView()
        self.list.setObjectName("sessionList")
        self.list.setAccessibleName("sessionList")
        self.list.setModel(self.proxy)
        self.list.setItemDelegate(SessionDelegate(self.list))
        self.list.setUniformItemSizes(False)
        # Rows are measured in batches: typing a filter over thousands of chats shows the
        # first screenful at once instead of measuring every row first.
        self.list.setLayoutMode(QListView.LayoutMode.Batched)
        self.list.setBatchSize(200)
        self.list.setMouseTracking(True)
        self.list.setFrameShape(QListView.Shape.NoFrame)
        self._blend_list_into_panel()
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.list.setEditTriggers(
            QAbstractItemView.EditTrigger.EditKeyPressed
            | QAbstractItemView.EditTrigger.DoubleClicked
        )
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.list.customContextMenuRequested.connect(self._context_menu)
        self.list.deletePressed.connect(self._request_delete_current)
        self.list.selectionModel().currentChanged.connect(self._on_current_changed)
        self.list.activated.connect(self._on_activated)
        # After any change of the visible rows, the open chat's row is the current one
        # (connected after setModel, so this runs once the view has seen the change).
        for signal in (
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.rowsMoved,
            self.proxy.layoutChanged,
            self.proxy.modelReset,
        ):
            signal.connect(self._keep_open_session_current)
        self.new_button.clicked.connect(self.newSessionRequested)
        self.empty_label = QLabel("No chats match")
        self.empty_label.setObjectName("noChatsMatchLabel")
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setEnabled(False)
        self.empty_label.hide()
        self.proxy.rowsInserted.connect(self._update_empty_label)
        self.proxy.rowsRemoved.connect(self._update_empty_label)
        self.proxy.modelReset.connect(self._update_empty_label)
        self.proxy.layoutChanged.connect(self._update_empty_label)

        # Archive, Trash, import and export live behind this button.
        self.menu_button = QToolButton(self)
        self.menu_button.setObjectName("libraryMenuButton")
        self.menu_button.setAccessibleName("libraryMenuButton")
        self.menu_button.setText("⋯")
        self.menu_button.setToolTip("Archive, Trash, import and export")
        self.menu_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.new_button, 1)
        top.addWidget(self.menu_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 10, 4, 8)
        layout.setSpacing(8)
        layout.addLayout(top)
        layout.addWidget(self.filter)
        # Just under the filter, where the list's first rows would be: where one looks.
        layout.addWidget(self.empty_label)
        layout.addWidget(self.list, 1)
        self.filter.installEventFilter(self)

    def _blend_list_into_panel(self) -> None:
        # The list blends into the sidebar panel; rows draw their own hover/selection.
        panel = QPalette()
        panel.setColor(QPalette.ColorRole.Base, self.palette().color(QPalette.ColorRole.Window))
        self.list.setPalette(panel)

    def changeEvent(self, event: QEvent) -> None:
        """Follow a theme switch: the list's background is the panel's new colour."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._blend_list_into_panel()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Esc in a filter that holds text clears it (and shows every chat again)."""
        if (
            watched is self.filter
            and event.type() == QEvent.Type.KeyPress
            and isinstance(event, QKeyEvent)
            and event.key() == Qt.Key.Key_Escape
            and self.filter.text()
        ):
            self.filter.clear()
            return True
        return super().eventFilter(watched, event)

    def add_section(self, section: QWidget) -> None:
        """Put another section (the scheduled tasks) below the chat list."""
        layout = self.layout()
        assert isinstance(layout, QVBoxLayout)
        layout.addWidget(section)

    def current_session_id(self) -> str | None:
        """The session selected in the list, if any."""
        index = self.list.currentIndex()
        return index.data(SessionIdRole) if index.isValid() else None

    def select_session(self, session_id: str) -> bool:
        """Select ``session_id`` and open it, as a click on its row would.

        False (and nothing opens) if it is filtered out or unknown.
        """
        index = self._proxy_index(session_id)
        if not index.isValid():
            return False
        self._make_current(index)
        self.list.scrollTo(index)
        self._activate(session_id)
        return True

    def show_open_session(self, session_id: str | None) -> None:
        """Mark ``session_id`` as the chat the window shows; this opens nothing.

        Its row is selected while the filter shows it, and no row while it does not.
        """
        self._open_id = session_id
        self._keep_open_session_current()

    def neighbour_of(self, session_id: str) -> str | None:
        """The session listed after ``session_id`` (else before it): what to open when
        it is deleted. Rows the filter hides are passed over when it is shown."""
        index = self._proxy_index(session_id)
        model: QAbstractItemModel
        if index.isValid():
            model, row, count = self.proxy, index.row(), self.proxy.rowCount()
        else:
            source_row = self.model.row_of(session_id)
            if source_row is None:
                return None
            model, row, count = self.model, source_row, self.model.rowCount()
        for candidate in (row + 1, row - 1):
            if 0 <= candidate < count:
                return model.index(candidate, 0).data(SessionIdRole)
        return None

    def current_proxy_index(self) -> QModelIndex:
        """The list index of the open chat (invalid when the filter hides it)."""
        return self._proxy_index(self._open_id)

    def _proxy_index(self, session_id: str | None) -> QModelIndex:
        row = self.model.row_of(session_id) if session_id else None
        if row is None:
            return QModelIndex()
        return self.proxy.mapFromSource(self.model.index(row))

    def _make_current(self, index: QModelIndex) -> None:
        # No scrollTo here: this runs whenever rows move, and must not yank the list.
        # (Qt scrolls to a row that becomes current by itself.)
        if self.list.currentIndex() != index:
            self.list.setCurrentIndex(index)
        selection = self.list.selectionModel()
        if not selection.isSelected(index):
            selection.select(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)

    def _keep_open_session_current(self, *_args: Any) -> None:
        index = self._proxy_index(self._open_id)
        if index.isValid():
            self._make_current(index)
        elif self.list.currentIndex().isValid() or self.list.selectionModel().hasSelection():
            # Whatever row Qt moved to when the open one disappeared is not open.
            self.list.setCurrentIndex(QModelIndex())
            self.list.selectionModel().clearSelection()

    def _activate(self, session_id: str) -> None:
        self._open_id = session_id
        self.sessionActivated.emit(session_id)

    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        # Only the user's own choice opens a chat: when the filter, a rename or a
        # deletion removes the current row, Qt moves the current index on its own.
        if current.isValid() and self.list.handling_user_input:
            self._activate(current.data(SessionIdRole))

    def _on_activated(self, index: QModelIndex) -> None:
        if index.isValid():
            self._activate(index.data(SessionIdRole))

    def _request_delete_current(self) -> None:
        session_id = self.current_session_id()
        if session_id:
            self.deleteRequested.emit(session_id)

    def _context_menu(self, position: Any) -> None:
        index = self.list.indexAt(position)
        if not index.isValid():
            return
        session_id = index.data(SessionIdRole)
        menu = QMenu(self)
        rename = QAction("Rename", menu)
        rename.triggered.connect(lambda: self.list.edit(index))
        pin = QAction("Unpin" if index.data(PinnedRole) else "Pin to top", menu)
        pin.triggered.connect(lambda: self.pinRequested.emit(session_id))
        archive = QAction("Archive", menu)
        archive.triggered.connect(lambda: self.archiveRequested.emit(session_id))
        export = QAction("Export…", menu)
        export.triggered.connect(lambda: self.exportRequested.emit(session_id))
        delete = QAction("Move to Trash", menu)
        delete.triggered.connect(lambda: self.deleteRequested.emit(session_id))
        for action in (rename, pin, archive, export, delete):
            menu.addAction(action)
        menu.exec(self.list.viewport().mapToGlobal(position))

    def _update_empty_label(self) -> None:
        filtering = bool(self.filter.text())
        self.empty_label.setVisible(filtering and self.proxy.rowCount() == 0)


def _shortcut_text(key: QKeySequence.StandardKey) -> str:
    bindings = QKeySequence.keyBindings(key)
    return bindings[0].toString(QKeySequence.SequenceFormat.NativeText) if bindings else ""
