"""The session sidebar: a filterable list of chats by recent activity, tasks set apart.

The source model keeps its rows in display order (chats by most recent activity, then
scheduled-task sessions) and moves single rows when a session becomes active, so a
change never re-sorts or resets thousands of rows. Filtering is Qt's own (C++) fixed
string filter on the title.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractListModel,
    QEvent,
    QItemSelectionModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import (
    QAction,
    QFont,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
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
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from chatdesk.domain import Session, SessionSummary
from chatdesk.ui.rendering import mix_colours

SessionIdRole = Qt.ItemDataRole.UserRole + 1
KindRole = Qt.ItemDataRole.UserRole + 2
UpdatedAtRole = Qt.ItemDataRole.UserRole + 3

TASK_SECTION_TITLE = "Scheduled tasks"

_Index = QModelIndex | QPersistentModelIndex


def relative_time(when: datetime, now: datetime | None = None) -> str:
    """How long ago ``when`` was, the way a person says it: "just now", "5 min", "Yesterday"."""
    now = now or datetime.now(UTC)
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    delta = now - when
    if delta < timedelta(minutes=1):
        return "just now"
    if delta < timedelta(hours=1):
        return f"{int(delta.total_seconds() // 60)} min"
    local_when, local_now = when.astimezone(), now.astimezone()
    days = (local_now.date() - local_when.date()).days
    if days == 0:
        return local_when.strftime("%H:%M")
    if days == 1:
        return "Yesterday"
    if days < 7:
        return local_when.strftime("%a")
    if local_when.year == local_now.year:
        return f"{local_when.day} {local_when.strftime('%b')}"
    return f"{local_when.day} {local_when.strftime('%b %Y')}"


@dataclass(slots=True)
class SessionRow:
    """What the sidebar shows of one session."""

    id: str
    title: str
    kind: str
    updated_at: datetime

    @classmethod
    def of(cls, session: Session | SessionSummary) -> SessionRow:
        """The row for a session or a session summary."""
        return cls(session.id, session.title, session.kind, session.updated_at)


class SessionListModel(QAbstractListModel):
    """Every session, chats by most recent activity first, then task sessions."""

    renameRequested = Signal(str, str)

    def __init__(self, parent: QObject | None = None) -> None:
        """An empty list; :meth:`set_sessions` fills it."""
        super().__init__(parent)
        self._rows: list[SessionRow] = []
        self._positions: dict[str, int] = {}

    def set_sessions(self, sessions: Iterable[Session | SessionSummary]) -> None:
        """Replace every row (used once, when the window opens)."""
        self.beginResetModel()
        rows = [SessionRow.of(s) for s in sessions]
        self._rows = sorted(rows, key=_order_key)
        self._reindex()
        self.endResetModel()

    def row_of(self, session_id: str) -> int | None:
        """The row of ``session_id``, if listed."""
        return self._positions.get(session_id)

    def session_row(self, row: int) -> SessionRow:
        """The data of ``row``."""
        return self._rows[row]

    def upsert(self, session: Session | SessionSummary) -> None:
        """Add a session, or update its title and activity time, moving only its row."""
        incoming = SessionRow.of(session)
        row = self._positions.get(session.id)
        if row is None:
            target = self._insert_position(incoming)
            self.beginInsertRows(QModelIndex(), target, target)
            self._rows.insert(target, incoming)
            self._reindex()
            self.endInsertRows()
            return
        current = self._rows[row]
        current.title = incoming.title
        current.updated_at = max(current.updated_at, incoming.updated_at)
        self._move_into_place(row)

    def touch(self, session_id: str, when: datetime) -> None:
        """Mark a session active at ``when`` (a message was added): it moves to the top."""
        row = self._positions.get(session_id)
        if row is not None and when > self._rows[row].updated_at:
            self._rows[row].updated_at = when
            self._move_into_place(row)

    def remove(self, session_id: str) -> None:
        """Drop a deleted session's row."""
        row = self._positions.get(session_id)
        if row is None:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self._reindex()
        self.endRemoveRows()

    def _move_into_place(self, row: int) -> None:
        item = self._rows[row]
        others = self._rows[:row] + self._rows[row + 1 :]
        target = _bisect(others, item)
        if target != row:
            # Qt's destination index counts the row itself when moving downwards.
            destination = target + 1 if target > row else target
            self.beginMoveRows(QModelIndex(), row, row, QModelIndex(), destination)
            self._rows = [*others[:target], item, *others[target:]]
            self._reindex()
            self.endMoveRows()
        index = self.index(self._positions[item.id])
        self.dataChanged.emit(index, index)

    def _insert_position(self, item: SessionRow) -> int:
        return _bisect(self._rows, item)

    def _reindex(self) -> None:
        self._positions = {r.id: i for i, r in enumerate(self._rows)}

    # -- QAbstractListModel --------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """How many sessions are listed."""
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Title (display, edit, accessible text), id, kind or last activity of a row."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        item = self._rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return item.title
        if role == Qt.ItemDataRole.AccessibleTextRole:
            kind = "Task" if item.kind == "task" else "Chat"
            return f"{kind}: {item.title}, {relative_time(item.updated_at)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.title
        if role == SessionIdRole:
            return item.id
        if role == KindRole:
            return item.kind
        if role == UpdatedAtRole:
            return item.updated_at
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        """Rows are selectable and their titles editable (rename in place)."""
        base = super().flags(index)
        return base | Qt.ItemFlag.ItemIsEditable if index.isValid() else base

    def setData(self, index: _Index, value: Any, role: int = Qt.ItemDataRole.EditRole) -> bool:
        """A title typed in place: shown at once, persisted by whoever hears renameRequested."""
        if role != Qt.ItemDataRole.EditRole or not index.isValid():
            return False
        title = str(value).strip()
        item = self._rows[index.row()]
        if not title or title == item.title:
            return False
        item.title = title
        self.dataChanged.emit(index, index)
        self.renameRequested.emit(item.id, title)
        return True


def _order_key(row: SessionRow) -> tuple[bool, float, str]:
    return (row.kind == "task", -_timestamp(row.updated_at), row.id)


def _timestamp(when: datetime) -> float:
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp()


def _bisect(rows: list[SessionRow], item: SessionRow) -> int:
    key = _order_key(item)
    low, high = 0, len(rows)
    while low < high:
        middle = (low + high) // 2
        if _order_key(rows[middle]) < key:
            low = middle + 1
        else:
            high = middle
    return low


class SessionDelegate(QStyledItemDelegate):
    """Paints a title with its relative time, and a section header above the first task."""

    PADDING_H = 10
    PADDING_V = 7

    def _header_height(self, option: QStyleOptionViewItem, index: _Index) -> int:
        if index.data(KindRole) != "task":
            return 0
        above = index.sibling(index.row() - 1, 0)
        if above.isValid() and above.data(KindRole) == "task":
            return 0
        return option.fontMetrics.height() + 18

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        """One line of text with padding, plus the section header where one goes."""
        height = option.fontMetrics.height() + 2 * self.PADDING_V
        return QSize(120, height + self._header_height(option, index))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        """Draw the row with palette colours only, so light and dark both look right."""
        painter.save()
        palette = option.palette
        rect = QRect(option.rect)
        header = self._header_height(option, index)
        if header:
            font = QFont(option.font)
            font.setBold(True)
            font.setPointSizeF(max(7.5, font.pointSizeF() - 1))
            painter.setFont(font)
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                QRect(rect.left() + self.PADDING_H, rect.top(), rect.width(), header - 4),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                TASK_SECTION_TITLE.upper(),
            )
            rect.setTop(rect.top() + header)
        body = rect.adjusted(4, 1, -4, -1)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected or hovered:
            base = palette.color(QPalette.ColorRole.Base)
            accent = palette.color(QPalette.ColorRole.Highlight)
            amount = 0.22 if selected else 0.08
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(mix_colours(base, accent, amount))
            painter.drawRoundedRect(body, 6, 6)
        text_rect = body.adjusted(self.PADDING_H - 4, 0, -(self.PADDING_H - 4), 0)
        when = index.data(UpdatedAtRole)
        stamp = relative_time(when) if when else ""
        painter.setFont(option.font)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        stamp_width = option.fontMetrics.horizontalAdvance(stamp)
        painter.drawText(
            text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, stamp
        )
        title = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        title_width = max(10, text_rect.width() - stamp_width - 10)
        elided = option.fontMetrics.elidedText(title, Qt.TextElideMode.ElideRight, title_width)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(
            QRect(text_rect.left(), text_rect.top(), title_width, text_rect.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            elided,
        )
        painter.restore()

    def updateEditorGeometry(
        self, editor: QWidget, option: QStyleOptionViewItem, index: _Index
    ) -> None:
        """Put the rename box over the title, below a section header if there is one."""
        rect = QRect(option.rect)
        rect.setTop(rect.top() + self._header_height(option, index))
        editor.setGeometry(rect.adjusted(4, 1, -4, -1))


class SessionListView(QListView):
    """The list itself; Delete asks to delete the current session.

    It tells apart a current row the user chose (a click, the arrow keys, typing a title)
    from one Qt moved because rows were filtered out, removed or moved: only the first
    opens a chat.
    """

    deletePressed = Signal()

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

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty sidebar; fill ``model`` with :meth:`SessionListModel.set_sessions`."""
        super().__init__(parent)
        self.setObjectName("sessionSidebar")
        self._open_id: str | None = None
        self.model = SessionListModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.proxy.setFilterRole(Qt.ItemDataRole.DisplayRole)

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
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.list = SessionListView()
        self.list.setObjectName("sessionList")
        self.list.setAccessibleName("sessionList")
        self.list.setModel(self.proxy)
        self.list.setItemDelegate(SessionDelegate(self.list))
        self.list.setUniformItemSizes(False)
        self.list.setMouseTracking(True)
        self.list.setFrameShape(QListView.Shape.NoFrame)
        # The list blends into the sidebar panel; rows draw their own hover/selection.
        panel = self.list.palette()
        panel.setColor(QPalette.ColorRole.Base, panel.color(QPalette.ColorRole.Window))
        self.list.setPalette(panel)
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

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.new_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 10, 4, 8)
        layout.setSpacing(8)
        layout.addLayout(top)
        layout.addWidget(self.filter)
        # Just under the filter, where the list's first rows would be: where one looks.
        layout.addWidget(self.empty_label)
        layout.addWidget(self.list, 1)
        self.filter.installEventFilter(self)

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
        delete = QAction("Delete…", menu)
        delete.triggered.connect(lambda: self.deleteRequested.emit(session_id))
        menu.addAction(rename)
        menu.addAction(delete)
        menu.exec(self.list.viewport().mapToGlobal(position))

    def _update_empty_label(self) -> None:
        filtering = bool(self.filter.text())
        self.empty_label.setVisible(filtering and self.proxy.rowCount() == 0)


def _shortcut_text(key: QKeySequence.StandardKey) -> str:
    bindings = QKeySequence.keyBindings(key)
    return bindings[0].toString(QKeySequence.SequenceFormat.NativeText) if bindings else ""
