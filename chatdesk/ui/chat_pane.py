"""The chat pane: title and model bar, the messages, the error banner and the composer.

Widgets only: the window connects them to the chat controller.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chatdesk.ui.chat_view import ChatView
from chatdesk.ui.composer import Composer
from chatdesk.ui.context_meter import ContextMeter
from chatdesk.ui.error_banner import ErrorBanner
from chatdesk.ui.message_model import MessageListModel
from chatdesk.ui.model_selector import ModelSelector


class ElidedLabel(QLabel):
    """A one-line label that ends in "…" when narrower than its text (whole in a tooltip)."""

    def setText(self, text: str) -> None:
        """Show ``text``, elided to the width available."""
        super().setText(text)
        self.setToolTip(text)

    def elided_text(self) -> str:
        """The text as it is drawn at the label's current width."""
        return self.fontMetrics().elidedText(self.text(), Qt.TextElideMode.ElideRight, self.width())

    def minimumSizeHint(self) -> QSize:
        """Room for a few letters and the ellipsis, never nothing."""
        return QSize(self.fontMetrics().horizontalAdvance("Ab…") + 2, super().sizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        """Draw the elided text, vertically centred."""
        painter = QPainter(self)
        painter.setPen(self.palette().color(QPalette.ColorRole.WindowText))
        painter.drawText(
            self.rect(),
            int(Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft),
            self.elided_text(),
        )


class ChatPane(QWidget):
    """The right-hand side: title and model bar, the messages, error banner, composer."""

    def __init__(self, parent: QWidget | None = None) -> None:
        """Build the pane's widgets; the window wires them up."""
        super().__init__(parent)
        self.title = ElidedLabel(self)
        self.title.setObjectName("chatTitle")
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.15)
        font.setBold(True)
        self.title.setFont(font)
        # It gives way to the model selector and buttons, down to a few letters and "…".
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.title.setMinimumWidth(self.title.minimumSizeHint().width())
        self.model_selector = ModelSelector(self)
        self.context_meter = ContextMeter(self)
        self.settings_button = QToolButton(self)
        self.settings_button.setObjectName("settingsButton")
        self.settings_button.setAccessibleName("settingsButton")
        self.settings_button.setText("Settings")
        self.settings_button.setToolTip("Servers, default model and this chat's system prompt")
        self.settings_button.setAutoRaise(True)
        header = QHBoxLayout()
        header.setContentsMargins(16, 10, 12, 6)
        header.setSpacing(8)
        header.addWidget(self.title, 1)
        self.chat_settings_button = QToolButton(self)
        self.chat_settings_button.setObjectName("chatSettingsButton")
        self.chat_settings_button.setAccessibleName("chatSettingsButton")
        self.chat_settings_button.setText("Chat settings")
        self.chat_settings_button.setToolTip(
            "This chat's system prompt, temperature, longest reply and presets (Ctrl+;)"
        )
        self.chat_settings_button.setAutoRaise(True)
        header.addWidget(self.context_meter)
        header.addWidget(self.model_selector)
        header.addWidget(self.chat_settings_button)
        header.addWidget(self.settings_button)

        self.messages = MessageListModel(self)
        self.view = ChatView(self.messages, self)
        self.thinking = QLabel("Thinking…", self)
        self.thinking.setObjectName("thinkingLabel")
        self.thinking.setEnabled(False)
        self.thinking.setContentsMargins(24, 0, 0, 4)
        self.thinking.hide()
        self.banner = ErrorBanner(self)
        self.composer = Composer(self)

        bottom = QVBoxLayout()
        bottom.setContentsMargins(16, 4, 16, 14)
        bottom.setSpacing(8)
        bottom.addWidget(self.banner)
        bottom.addWidget(self.composer)
        line = QFrame(self)
        line.setFrameShape(QFrame.Shape.HLine)
        line.setFrameShadow(QFrame.Shadow.Sunken)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(header)
        layout.addWidget(line)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.thinking)
        layout.addLayout(bottom)
        self.setAutoFillBackground(True)
        self.setBackgroundRole(QPalette.ColorRole.Base)

    def show_streaming(self, streaming: bool, *, waiting: bool) -> None:
        """Offer Stop while a reply streams; say "Thinking…" until its first words."""
        self.composer.set_streaming(streaming)
        self.thinking.setVisible(waiting)

    def show_error(self, message: str | None) -> None:
        """Show ``message`` in the error banner, or hide the banner for None."""
        if message:
            self.banner.show_error(message)
        else:
            self.banner.hide()
