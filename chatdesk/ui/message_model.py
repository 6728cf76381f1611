"""The chat view's model: a window onto the latest messages of one session's history.

The rows are the tail of the session's authoritative ``history`` list (owned by the
SessionManager). A long session opens with its latest page; older pages are prepended on
request. Events of other sessions are ignored, so nothing drifts between chats.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    QTimer,
)

from chatdesk.domain import Message, Session, content_text
from chatdesk.ui.rendering import COLLAPSED_CHARS, message_blocks

PAGE_SIZE = 50
# A page also stops at this much text (a long message counted as shown, collapsed): laying
# rows out costs time in proportion to their text, so a chat of huge messages opens (and
# pages in) as quickly as any other.
PAGE_CHARS = 100_000
FRAME_MS = 16

MessageRole = Qt.ItemDataRole.UserRole + 1
"""The row's :class:`chatdesk.domain.Message`."""
VersionRole = Qt.ItemDataRole.UserRole + 2
"""An int that grows whenever the row's content, status or error changes."""
ImageCountRole = Qt.ItemDataRole.UserRole + 3
"""How many image blocks the row's message has (each is shown as a ``messageImage`` label)."""
IsLastReplyRole = Qt.ItemDataRole.UserRole + 4
"""True for the newest message when it is an assistant reply (it can be regenerated)."""

VersionsRole = Qt.ItemDataRole.UserRole + 5
"""(shown, of how many) versions of the turn the row's message starts."""

_Index = QModelIndex | QPersistentModelIndex


class MessageListModel(QAbstractListModel):
    """Rows of the current session's messages, oldest first, latest page loaded first."""

    def __init__(self, parent: QObject | None = None) -> None:
        """An empty model; :meth:`set_session` fills it."""
        super().__init__(parent)
        self._session: Session | None = None
        self._offset = 0
        self._count = 0
        self._versions: dict[str, int] = {}
        self._pending: set[str] = set()
        self._frame = QTimer(self)
        self._frame.setSingleShot(True)
        self._frame.setInterval(FRAME_MS)
        self._frame.timeout.connect(self.flush_updates)

    # -- the session shown --------------------------------------------------------------

    @property
    def session_id(self) -> str | None:
        """The id of the session shown, or None."""
        return self._session.id if self._session else None

    @property
    def session(self) -> Session | None:
        """The session shown (its whole history, not only the rows loaded), or None."""
        return self._session

    def set_session(self, session: Session | None, page_size: int = PAGE_SIZE) -> None:
        """Show ``session``'s latest ``page_size`` messages (None: show nothing)."""
        self.beginResetModel()
        self._pending.clear()
        self._session = session
        total = len(session.history) if session else 0
        fitting = self._fitting(session.history, total, page_size) if session else 0
        self._offset = total - fitting
        self._count = total - self._offset
        self.endResetModel()

    def can_load_older(self) -> bool:
        """Whether older messages exist above the first row."""
        return self._offset > 0

    def load_older(self, count: int = PAGE_SIZE) -> int:
        """Prepend up to ``count`` older messages; returns how many were added."""
        added = 0
        if self._session is not None:
            added = self._fitting(self._session.history, self._offset, min(count, self._offset))
        if added:
            self.beginInsertRows(QModelIndex(), 0, added - 1)
            self._offset -= added
            self._count += added
            self.endInsertRows()
        return added

    @staticmethod
    def _fitting(history: list[Message], end: int, count: int) -> int:
        """How many messages before ``end`` (at most ``count``; one at least) a page holds."""
        shown = taken = 0
        while taken < count and taken < end:
            size = min(len(content_text(history[end - taken - 1].content)), COLLAPSED_CHARS)
            if taken and shown + size > PAGE_CHARS:
                break
            shown += size
            taken += 1
        return taken

    def message(self, row: int) -> Message:
        """The message in ``row``."""
        assert self._session is not None
        return self._session.history[self._offset + row]

    def row_of(self, message_id: str) -> int | None:
        """The row showing ``message_id``, searching from the newest (where changes are)."""
        if self._session is None:
            return None
        history = self._session.history
        for position in range(self._offset + self._count - 1, self._offset - 1, -1):
            if history[position].id == message_id:
                return position - self._offset
        return None

    def version(self, message_id: str) -> int:
        """The content version of ``message_id`` (grows on every update)."""
        return self._versions.get(message_id, 0)

    # -- events from the manager, already filtered to this session by the caller --------

    def on_message_added(self, session_id: str) -> None:
        """A message was appended to ``session_id``'s history."""
        if self._session is None or session_id != self._session.id:
            return
        total = len(self._session.history)
        new_count = total - self._offset
        if new_count <= self._count:
            return
        previous_last = self._count - 1
        self.beginInsertRows(QModelIndex(), self._count, new_count - 1)
        self._count = new_count
        self.endInsertRows()
        if previous_last >= 0:
            # The old last row may have lost its "regenerate" action.
            self._changed(previous_last)

    def on_message_updated(self, session_id: str, message_id: str) -> None:
        """A message changed (a streamed token, a status, an error).

        Versions count changes in every session, so a reply that grew while another chat
        was shown is not drawn from a stale cached layout when its chat is shown again.
        """
        self._versions[message_id] = self._versions.get(message_id, 0) + 1
        if self._session is None or session_id != self._session.id:
            return
        # Tokens can arrive faster than the screen refreshes: changed rows are collected
        # and announced once per frame, so the view lays out and paints once per frame.
        self._pending.add(message_id)
        if not self._frame.isActive():
            self._frame.start()

    def flush_updates(self) -> None:
        """Announce the rows changed since the last frame (dataChanged per row)."""
        self._frame.stop()
        pending, self._pending = self._pending, set()
        for message_id in pending:
            row = self.row_of(message_id)
            if row is not None:
                self._changed(row)

    def on_history_replaced(self, session_id: str) -> None:
        """The whole history was replaced or truncated: show its latest page anew."""
        if self._session is not None and session_id == self._session.id:
            self.set_session(self._session)

    def _changed(self, row: int) -> None:
        index = self.index(row)
        self.dataChanged.emit(index, index)

    # -- QAbstractListModel --------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """The number of loaded messages (none under a parent: this is a flat list)."""
        return 0 if parent.isValid() else self._count

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The message, its version, image count or plain text for ``role``."""
        if not index.isValid() or not 0 <= index.row() < self._count:
            return None
        message = self.message(index.row())
        if role == MessageRole:
            return message
        if role == VersionRole:
            return self._versions.get(message.id, 0)
        if role == ImageCountRole:
            return sum(1 for b in message_blocks(message.content) if b.get("type") == "image_url")
        if role == VersionsRole:
            assert self._session is not None
            return self._session.version_of(self._offset + index.row())
        if role == IsLastReplyRole:
            return index.row() == self._count - 1 and message.role == "assistant"
        if role == Qt.ItemDataRole.DisplayRole:
            return content_text(message.content)
        if role == Qt.ItemDataRole.AccessibleTextRole:
            speaker = "You" if message.role == "user" else message.role.capitalize()
            return f"{speaker}: {content_text(message.content)}"
        if role == Qt.ItemDataRole.AccessibleDescriptionRole:
            return "Enter or the Menu key: this message's actions"
        return None
