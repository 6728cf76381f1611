"""The error banner: a quiet strip above the composer saying what went wrong, with Retry."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QStyle, QToolButton, QWidget

from chatdesk.ui.theme import mix_colours

_WARNING_HUE = QColor(214, 69, 65)


class ErrorBanner(QFrame):
    """A quiet strip above the composer saying what went wrong, with Retry."""

    retryRequested = Signal()
    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        """A hidden banner; :meth:`show_error` shows it."""
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setAccessibleName("errorBanner")
        icon = QLabel(self)
        icon.setPixmap(
            self.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning).pixmap(18, 18)
        )
        self.text = QLabel(self)
        self.text.setObjectName("errorText")
        self.text.setWordWrap(True)
        self.text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.retry_button = QPushButton("Retry", self)
        self.retry_button.setObjectName("retryButton")
        self.retry_button.setAccessibleName("retryButton")
        self.retry_button.clicked.connect(self.retryRequested)
        close = QToolButton(self)
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.dismissed)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.setSpacing(8)
        layout.addWidget(icon, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.retry_button, 0, Qt.AlignmentFlag.AlignVCenter)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignVCenter)
        self.hide()

    def paintEvent(self, event: QPaintEvent) -> None:
        """A softly tinted rounded box: a warm hue over the palette's base, light or dark."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        base = self.palette().color(QPalette.ColorRole.Base)
        painter.setPen(mix_colours(base, _WARNING_HUE, 0.45))
        painter.setBrush(mix_colours(base, _WARNING_HUE, 0.12))
        painter.drawRoundedRect(self.rect().adjusted(0, 0, -1, -1), 8, 8)

    def show_error(self, message: str) -> None:
        """Show ``message`` (what happened, in words)."""
        self.text.setText(message)
        self.show()
