"""Ctrl+F in the open chat: a bar that finds words in its messages, next and previous."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QToolButton, QWidget

from chatdesk.domain import Message, content_text


def fold(text: str) -> str:
    """``text`` without case or diacritics, as the search index compares words."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def matching_ids(history: list[Message], query: str) -> list[str]:
    """The ids of the messages holding every word of ``query``, oldest first."""
    words = fold(query).split()
    if not words:
        return []
    found = []
    for message in history:
        text = fold(content_text(message.content))
        if all(word in text for word in words):
            found.append(message.id)
    return found


class FindBar(QWidget):
    """Find box, "2 of 5", previous/next and close; Enter is next, Shift+Enter previous.

    ``matchChosen`` carries the id of the message to show (None when nothing matches).
    """

    matchChosen = Signal(object)
    closed = Signal()

    def __init__(self, history: Callable[[], list[Message]], parent: QWidget | None = None) -> None:
        """A hidden bar finding in the messages ``history()`` returns."""
        super().__init__(parent)
        self.setObjectName("findBar")
        self._history = history
        self._matches: list[str] = []
        self._position = -1
        self.edit = QLineEdit(self)
        self.edit.setObjectName("findEdit")
        self.edit.setAccessibleName("findEdit")
        self.edit.setPlaceholderText("Find in this chat")
        self.edit.setClearButtonEnabled(True)
        self.edit.textChanged.connect(self.refresh)
        self.edit.installEventFilter(self)
        self.count = QLabel(self)
        self.count.setObjectName("findCount")
        self.count.setEnabled(False)
        self.previous_button = self._button("↑", "Previous match (Shift+Enter)", self.previous)
        self.next_button = self._button("↓", "Next match (Enter)", self.next)
        close = self._button("✕", "Close (Esc)", self.close_bar)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(16, 4, 16, 4)
        layout.setSpacing(4)
        layout.addWidget(self.edit, 1)
        layout.addWidget(self.count)
        layout.addWidget(self.previous_button)
        layout.addWidget(self.next_button)
        layout.addWidget(close)
        self.hide()

    def _button(self, text: str, tip: str, slot: Callable[[], None]) -> QToolButton:
        button = QToolButton(self)
        button.setText(text)
        button.setToolTip(tip)
        button.setAccessibleName(tip)
        button.setAutoRaise(True)
        button.clicked.connect(slot)
        return button

    def open_bar(self) -> None:
        """Show the bar with its text selected, ready to type."""
        self.show()
        self.edit.setFocus()
        self.edit.selectAll()
        self.refresh()

    def close_bar(self) -> None:
        """Hide the bar and remove the outline from the chat."""
        self.hide()
        self._matches, self._position = [], -1
        self.matchChosen.emit(None)
        self.closed.emit()

    @property
    def matches(self) -> list[str]:
        """The ids of the matching messages, oldest first."""
        return list(self._matches)

    def refresh(self) -> None:
        """Find again (the text or the chat changed); show the newest match."""
        if not self.isVisible():
            return
        self._matches = matching_ids(self._history(), self.edit.text())
        self._position = len(self._matches) - 1
        self._show()

    def next(self) -> None:
        """Go to the next (newer) match, wrapping around."""
        self._step(1)

    def previous(self) -> None:
        """Go to the previous (older) match, wrapping around."""
        self._step(-1)

    def _step(self, delta: int) -> None:
        if not self._matches:
            return
        self._position = (self._position + delta) % len(self._matches)
        self._show()

    def _show(self) -> None:
        if self._matches:
            self.count.setText(f"{self._position + 1} of {len(self._matches)}")
            self.matchChosen.emit(self._matches[self._position])
        else:
            self.count.setText("No matches" if self.edit.text().strip() else "")
            self.matchChosen.emit(None)

    def eventFilter(self, watched: object, event: object) -> bool:
        """Enter / Shift+Enter step through matches; Escape closes."""
        pressed = isinstance(event, QKeyEvent) and event.type() == QKeyEvent.Type.KeyPress
        if watched is self.edit and pressed:
            assert isinstance(event, QKeyEvent)
            if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                if event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                    self.previous()
                else:
                    self.next()
                return True
            if event.key() == Qt.Key.Key_Escape:
                self.close_bar()
                return True
        return super().eventFilter(watched, event)  # type: ignore[arg-type]
