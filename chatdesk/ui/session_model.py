"""The sidebar's item model: one row per session, chats by recent activity, tasks set apart.

The model keeps its rows in display order (chats by most recent activity, then
scheduled-task sessions) and moves single rows when a session becomes active, so a
change never re-sorts or resets thousands of rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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

from chatdesk.domain import Session, SessionSummary

SessionIdRole = Qt.ItemDataRole.UserRole + 1
KindRole = Qt.ItemDataRole.UserRole + 2
UpdatedAtRole = Qt.ItemDataRole.UserRole + 3
# Who owns the session: "local" for the desktop user, else the name of the API token
# that made it (the delegate marks those rows).
OwnerRole = Qt.ItemDataRole.UserRole + 4
LOCAL_OWNER = "local"
PinnedRole = Qt.ItemDataRole.UserRole + 5

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
    owner: str = LOCAL_OWNER
    pinned: bool = False

    @classmethod
    def of(cls, session: Session | SessionSummary) -> SessionRow:
        """The row for a session or a session summary."""
        return cls(
            session.id,
            session.title,
            session.kind,
            session.updated_at,
            session.owner,
            session.pinned,
        )


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

    def titles(self) -> list[str]:
        """Every row's title, in display order."""
        return [row.title for row in self._rows]

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
        current.pinned = incoming.pinned
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
        """Title (display, edit, accessible text), id, kind, last activity or owner of a row."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows):
            return None
        item = self._rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.EditRole):
            return item.title
        if role == Qt.ItemDataRole.AccessibleTextRole:
            kind = "Task" if item.kind == "task" else "Chat"
            if item.owner != LOCAL_OWNER:
                kind += f" of {item.owner}"
            return f"{kind}: {item.title}, {relative_time(item.updated_at)}"
        if role == Qt.ItemDataRole.ToolTipRole:
            if item.owner != LOCAL_OWNER:
                return f"{item.title}\nMade through the local API by “{item.owner}”"
            return item.title
        if role == OwnerRole:
            return item.owner
        if role == SessionIdRole:
            return item.id
        if role == KindRole:
            return item.kind
        if role == UpdatedAtRole:
            return item.updated_at
        if role == PinnedRole:
            return item.pinned
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


def _order_key(row: SessionRow) -> tuple[bool, bool, float, str]:
    # Pinned chats stay at the top of their section.
    return (row.kind == "task", not row.pinned, -_timestamp(row.updated_at), row.id)


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
