"""The parts a message shows inside its bubble: text, code blocks, image thumbnails.

Each part widget draws one :class:`chatdesk.ui.rendering.MessageLayout` part (text,
code, image) at the size the layout computed; :class:`Bubble` is the rounded background
they sit on. :class:`chatdesk.ui.message_widget.MessageWidget` places them and adds the
message's actions.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QContextMenuEvent,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QPixmap,
    QTextDocument,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QLabel,
    QScrollArea,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chatdesk.ui.code_blocks import language_label
from chatdesk.ui.rendering import (
    CODE_HEADER_HEIGHT,
    CODE_PAD,
    CodePart,
    ImagePart,
    MessageRenderer,
)
from chatdesk.ui.theme import code_background, user_bubble_colour

# How long a Copy button says "Copied" after a click.
COPIED_FEEDBACK_MS = 1500


class MessageText(QTextBrowser):
    """A read-only, selectable Markdown block without frame, scroll bars or background."""

    def __init__(self, parent: QWidget) -> None:
        """A transparent text browser that leaves scrolling to the chat view."""
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setOpenExternalLinks(True)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.DefaultContextMenu)
        # A click focuses the text (to select and copy part of it), Tab does not: the chat
        # view is one Tab stop whose message menu reaches every message's actions.
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        palette = self.palette()
        palette.setColor(QPalette.ColorRole.Base, QColor(Qt.GlobalColor.transparent))
        self.setPalette(palette)
        self.viewport().setAutoFillBackground(False)
        self._shown: QTextDocument | None = None

    def show_document(self, document: QTextDocument) -> None:
        """Show ``document`` (shared with the renderer's cache, which keeps it current)."""
        if document is not self._shown:
            self._shown = document
            self.setDocument(document)

    def wheelEvent(self, event: QWheelEvent) -> None:
        """Let the wheel scroll the chat, not this (never scrollable) block."""
        event.ignore()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Copy with nothing selected is left to the message (it copies all of it)."""
        if event.matches(QKeySequence.StandardKey.Copy) and not self.textCursor().hasSelection():
            event.ignore()
            return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        """The text's own menu over a selection or a link; else the message's menu."""
        if self.textCursor().hasSelection() or self.anchorAt(event.pos()):
            super().contextMenuEvent(event)
        else:
            event.ignore()  # goes up to the message widget, whose menu the chat view shows


def flash_copied(button: QToolButton) -> None:
    """Say "Copied" on ``button`` for a moment, so a click visibly did something."""
    original = button.property("idleText") or button.text()
    button.setProperty("idleText", original)
    button.setText("Copied")

    def restore() -> None:
        if button.text() == "Copied":
            button.setText(original)

    QTimer.singleShot(COPIED_FEEDBACK_MS, button, restore)


class CodeText(MessageText):
    """Code lines as written: never wrapped, scrolled sideways when wider than the block."""

    def __init__(self, parent: QWidget) -> None:
        """An unwrapped text browser; its scroll bar is set by :meth:`set_scrolls`."""
        super().__init__(parent)
        self.setLineWrapMode(QTextBrowser.LineWrapMode.NoWrap)
        self.setObjectName("codeText")

    def set_scrolls(self, scrolls: bool) -> None:
        """Show the horizontal scroll bar exactly when the layout counted one."""
        self.setHorizontalScrollBarPolicy(
            Qt.ScrollBarPolicy.ScrollBarAlwaysOn
            if scrolls
            else Qt.ScrollBarPolicy.ScrollBarAlwaysOff
        )

    def wheelEvent(self, event: QWheelEvent) -> None:
        """Sideways wheel moves the code; the vertical wheel scrolls the chat."""
        delta = event.angleDelta()
        if abs(delta.x()) > abs(delta.y()) and self.horizontalScrollBar().maximum() > 0:
            QTextBrowser.wheelEvent(self, event)
        else:
            event.ignore()


class CodeBlock(QWidget):
    """A fenced code block: language label and Copy button over the highlighted code."""

    def __init__(self, parent: QWidget) -> None:
        """An empty block; :meth:`show_code` fills it."""
        super().__init__(parent)
        self.setObjectName("codeBlock")
        self._code = ""
        self.label = QLabel(self)
        self.label.setObjectName("codeLanguage")
        self.copy_button = QToolButton(self)
        self.copy_button.setObjectName("copyCodeButton")
        self.copy_button.setText("Copy")
        self.copy_button.setToolTip("Copy this code")
        self.copy_button.setAccessibleName("Copy this code")
        self.copy_button.setAutoRaise(True)
        # Reached from the keyboard through the message's menu (Copy Code).
        self.copy_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.copy_button.clicked.connect(self._copy)
        self.text = CodeText(self)

    @property
    def code(self) -> str:
        """The code shown, as it would be copied."""
        return self._code

    def show_code(self, part: CodePart) -> None:
        """Show ``part``: the label, then its document below, padded inside the block."""
        self._code = part.code
        self.label.setText(language_label(part.language))
        self.text.show_document(part.document)
        self.text.set_scrolls(part.scrolls)
        hint = self.copy_button.sizeHint()
        button_height = min(hint.height(), CODE_HEADER_HEIGHT)
        top = (CODE_HEADER_HEIGHT - button_height) // 2
        self.copy_button.setGeometry(
            part.width - hint.width() - 4, top, hint.width(), button_height
        )
        self.label.setGeometry(
            CODE_PAD, 0, part.width - hint.width() - CODE_PAD - 8, CODE_HEADER_HEIGHT
        )
        self.text.setGeometry(
            CODE_PAD,
            CODE_HEADER_HEIGHT,
            part.width - 2 * CODE_PAD,
            part.height - CODE_HEADER_HEIGHT - CODE_PAD,
        )

    def paintEvent(self, event: QPaintEvent) -> None:
        """A rounded box in the code background colour, a shade darker behind the header."""
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(code_background(self.palette()))
        painter.drawRoundedRect(self.rect(), 8, 8)

    def _copy(self) -> None:
        QGuiApplication.clipboard().setText(self._code)
        flash_copied(self.copy_button)


class ImageThumbnail(QLabel):
    """An image of a message, scaled to fit; a click opens it full size."""

    def __init__(self, parent: QWidget) -> None:
        """An empty thumbnail; :meth:`show_image` fills it."""
        super().__init__(parent)
        self.setObjectName("messageImage")
        self.setAccessibleName("messageImage")
        self.setToolTip("Click to open the full image")
        self.setCursor(Qt.CursorShape.PointingHandCursor)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._key: tuple[str, int] | None = None
        self._url = ""
        self._renderer: MessageRenderer | None = None

    def show_image(self, renderer: MessageRenderer, part: ImagePart) -> None:
        """Show ``part`` at its thumbnail size, rendered for this screen's pixel ratio."""
        size = QSize(part.width, part.height)
        if self._key == part.key and self.size() == size and self.pixmap() is not None:
            return
        self._key, self._url, self._renderer = part.key, part.url, renderer
        pixmap = renderer.images.thumbnail(part.key, part.url, size, self.devicePixelRatioF())
        if pixmap.isNull():
            self.setText("Image could not be read")
        else:
            self.setPixmap(pixmap)
        self.setAccessibleDescription(f"Image, {part.width}×{part.height}")

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        """Open the full image on a left click."""
        if event.button() == Qt.MouseButton.LeftButton and self._renderer and self._key:
            image = self._renderer.images.image(self._key, self._url)
            if not image.isNull():
                ImageViewer(QPixmap.fromImage(image), self.window()).open()
        super().mouseReleaseEvent(event)


class ImageViewer(QDialog):
    """A dialog showing an image at full size (scrollable when larger than the screen)."""

    def __init__(self, pixmap: QPixmap, parent: QWidget | None = None) -> None:
        """Show ``pixmap`` unscaled; the dialog deletes itself when closed."""
        super().__init__(parent)
        self.setObjectName("imageViewer")
        self.setWindowTitle(f"Image — {pixmap.width()}×{pixmap.height()}")
        self.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        label = QLabel()
        label.setPixmap(pixmap)
        label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidget(label)
        scroll.setWidgetResizable(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(scroll)
        layout.addWidget(buttons)
        screen = (parent.screen() if parent else QGuiApplication.primaryScreen()).availableSize()
        self.resize(
            min(pixmap.width() + 40, int(screen.width() * 0.9)),
            min(pixmap.height() + 80, int(screen.height() * 0.9)),
        )


class Bubble(QWidget):
    """The rounded background of a message; tinted for the user, plain for the assistant."""

    def __init__(self, parent: QWidget) -> None:
        """A bubble whose role is set by :meth:`set_user`."""
        super().__init__(parent)
        self._user = False
        self._highlighted = False

    def set_highlighted(self, highlighted: bool) -> None:
        """Outline the bubble in the accent colour (a search hit or a find match)."""
        if highlighted != self._highlighted:
            self._highlighted = highlighted
            self.update()

    def set_user(self, user: bool) -> None:
        """Tint the bubble (the user's messages) or leave it clear (replies)."""
        if user != self._user:
            self._user = user
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint the tint from the palette, so it follows light and dark themes."""
        if self._highlighted:
            marker = QPainter(self)
            marker.setRenderHint(QPainter.RenderHint.Antialiasing)
            accent = self.palette().color(QPalette.ColorRole.Highlight)
            fill = QColor(accent)
            fill.setAlphaF(0.12)
            marker.setPen(accent)
            marker.setBrush(fill)
            marker.drawRoundedRect(self.rect().adjusted(1, 1, -1, -1), 14, 14)
            marker.end()
        if not self._user:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(user_bubble_colour(self.palette()))
        painter.drawRoundedRect(self.rect(), 14, 14)
