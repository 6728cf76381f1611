"""The widget that shows one message in the chat view: Markdown text, images, actions.

Only rows in view get one (as a persistent editor of the chat view), and it places its
children exactly where :class:`chatdesk.ui.rendering.MessageLayout` says, so the row
height computed without a widget always fits.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, QTimer, Signal
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
    QPen,
    QPixmap,
    QTextDocument,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from chatdesk.domain import Message, content_text
from chatdesk.ui.code_blocks import language_label
from chatdesk.ui.rendering import (
    ACTION_BAR_HEIGHT,
    ACTION_GAP,
    BUBBLE_PAD_H,
    BUBBLE_PAD_V,
    CODE_HEADER_HEIGHT,
    CODE_PAD,
    PART_SPACING,
    ROW_MARGIN_V,
    CodePart,
    ImagePart,
    MessageLayout,
    MessageRenderer,
    TextPart,
    code_background,
    user_bubble_colour,
)

# How long a Copy button says "Copied" after a click.
COPIED_FEEDBACK_MS = 1500
# What a summary row offers: show/hide the messages it replaced, edit it, undo it.
SUMMARY_TOGGLE = "toggle"
SUMMARY_EDIT = "edit"
SUMMARY_UNDO = "undo"
SUMMARY_ACTIONS = (
    (SUMMARY_TOGGLE, "Show messages", "Show the messages this summary replaced"),
    (SUMMARY_EDIT, "Edit summary", "Change what the model is told about earlier messages"),
    (SUMMARY_UNDO, "Undo compaction", "Put the original messages back in place of the summary"),
)

STATUS_LABELS = {
    "cancelled": "Stopped",
    "interrupted": "Interrupted: the app closed while this reply was being written",
    "error": "Failed",
}


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


class MessageWidget(QWidget):
    """One message: its bubble with text and image parts, and a row of actions below."""

    editRequested = Signal(str)
    regenerateRequested = Signal(str)
    # A collapsed long message asks to show more of itself (the view re-lays it out).
    moreRequested = Signal(str)
    branchRequested = Signal(str)
    # (message id, version number): show that version of the turn this message starts.
    versionRequested = Signal(str, int)
    # A summary row's actions: (SUMMARY_* action, message id).
    summaryActionRequested = Signal(str, str)
    # A right-click on the message: (message id, global position) for its action menu.
    menuRequested = Signal(str, QPoint)

    def __init__(self, parent: QWidget, renderer: MessageRenderer) -> None:
        """An empty message widget; :meth:`show_message` fills it."""
        super().__init__(parent)
        self.setObjectName("messageWidget")
        self._renderer = renderer
        self._message: Message | None = None
        self._layout: MessageLayout | None = None
        self._current = False
        self._bubble = Bubble(self)
        self._parts: list[MessageText | ImageThumbnail | CodeBlock] = []
        self._actions = QWidget(self)
        row = QHBoxLayout(self._actions)
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        self._status = QLabel(self._actions)
        self._status.setObjectName("messageStatus")
        # Discreet facts of a reply: when, which model, how fast.
        self._facts = QLabel(self._actions)
        self._facts.setObjectName("replyFacts")
        self._copy = self._action_button("Copy", "Copy this message's text", self._copy_text)
        self._edit = self._action_button(
            "Edit", "Edit this message and send it again", self._request_edit
        )
        self._regenerate = self._action_button(
            "Regenerate", "Write this reply again", self._request_regenerate
        )
        self._more = self._action_button(
            "Show more", "Show more of this long message", self._request_more
        )
        self._branch = self._action_button(
            "Branch",
            "Branch from here: a new chat with the history up to this message",
            self._request_branch,
        )
        self._version = (1, 1)
        self._previous = self._action_button("‹", "Show the previous version", self._go_previous)
        self._previous.setObjectName("previousVersionButton")
        self._version_label = QLabel(self._actions)
        self._version_label.setObjectName("versionLabel")
        self._next = self._action_button("›", "Show the next version", self._go_next)
        self._next.setObjectName("nextVersionButton")
        self._summary_actions = {
            action: self._action_button(text, tip, functools.partial(self._request_summary, action))
            for action, text, tip in SUMMARY_ACTIONS
        }
        for action, button in self._summary_actions.items():
            button.setObjectName(f"summary{action.capitalize()}Button")
        for widget in (
            self._previous,
            self._version_label,
            self._next,
            self._status,
            self._more,
            self._copy,
            self._edit,
            self._regenerate,
            self._facts,
            *self._summary_actions.values(),
            self._branch,
        ):
            row.addWidget(widget)
        self._mute_actions()

    def _mute_actions(self) -> None:
        # Only the two text roles are set, so everything else follows a theme switch.
        muted = QPalette()
        quiet = self.palette().color(QPalette.ColorRole.PlaceholderText)
        muted.setColor(QPalette.ColorRole.WindowText, quiet)
        muted.setColor(QPalette.ColorRole.ButtonText, quiet)
        self._actions.setPalette(muted)

    def changeEvent(self, event: QEvent) -> None:
        """Follow a theme switch: the actions' quiet colour is the new palette's."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            self._mute_actions()

    def _action_button(self, text: str, tip: str, slot: Callable[[], None]) -> QToolButton:
        button = QToolButton(self._actions)
        button.setText(text)
        button.setToolTip(tip)
        button.setAutoRaise(True)
        button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        button.setObjectName(f"{text.lower()}MessageButton")
        button.setAccessibleName(tip)
        font = button.font()
        font.setPointSizeF(max(8.0, font.pointSizeF() - 0.5))
        button.setFont(font)
        button.clicked.connect(slot)
        return button

    @property
    def message(self) -> Message | None:
        """The message shown."""
        return self._message

    def action_buttons(self) -> dict[str, QToolButton]:
        """Every action button by name ("copy", "edit", "regenerate", "more", "previous",
        "next", "branch", and "summary-" + a SUMMARY_* action), shown or not."""
        buttons = {
            "copy": self._copy,
            "edit": self._edit,
            "regenerate": self._regenerate,
            "more": self._more,
            "previous": self._previous,
            "next": self._next,
            "branch": self._branch,
        }
        buttons.update({f"summary-{a}": b for a, b in self._summary_actions.items()})
        return buttons

    def summary_button(self, action: str) -> QToolButton:
        """The button of a summary row's ``action`` (SUMMARY_TOGGLE, _EDIT or _UNDO)."""
        return self._summary_actions[action]

    def part_widgets(self) -> list[QWidget]:
        """The text and image widgets of the message, in content order."""
        return list(self._parts)

    def show_message(
        self,
        message: Message,
        layout: MessageLayout,
        is_last_reply: bool,
        version: tuple[int, int] = (1, 1),
    ) -> None:
        """Show ``message`` laid out as ``layout``; ``version`` is (shown, of how many) of
        the turn it starts, with arrows when there are several."""
        self._message, self._layout = message, layout
        self._show_version(version, message.status != "streaming")
        is_user = message.role == "user"
        self.setAccessibleName("Your message" if is_user else "Reply")
        self._bubble.set_user(is_user)
        self._bubble.setGeometry(
            layout.bubble_x, ROW_MARGIN_V, layout.bubble_width, layout.bubble_height
        )
        self._ensure_part_widgets(layout)
        y = BUBBLE_PAD_V
        for part, widget in zip(layout.parts, self._parts, strict=True):
            x = BUBBLE_PAD_H
            if isinstance(part, TextPart) and isinstance(widget, MessageText):
                if is_user:
                    x = layout.bubble_width - BUBBLE_PAD_H - part.width
                widget.show_document(part.document)
                if part.document.textWidth() != part.width:
                    part.document.setTextWidth(part.width)
            elif isinstance(part, ImagePart) and isinstance(widget, ImageThumbnail):
                if is_user:
                    x = layout.bubble_width - BUBBLE_PAD_H - part.width
                widget.setFixedSize(part.width, part.height)
                widget.show_image(self._renderer, part)
            elif isinstance(part, CodePart) and isinstance(widget, CodeBlock):
                widget.show_code(part)
            widget.setGeometry(x, y, part.width, part.height)
            y += part.height + PART_SPACING
        self._status_text = STATUS_LABELS.get(message.status, "")
        self._status.setText(self._status_text)
        self._status.setToolTip(self._status_text)
        self._status.setVisible(message.status in STATUS_LABELS)
        facts = reply_facts(message) if message.status != "streaming" else ""
        self._facts.setText(facts)
        self._facts.setToolTip(facts)
        self._facts.setVisible(bool(facts))
        self._edit.setVisible(is_user)
        self._regenerate.setVisible(
            is_last_reply and message.status not in ("streaming",) and not is_user
        )
        self._copy.setVisible(message.status != "streaming")
        hidden = layout.hidden_chars
        self._more.setVisible(hidden > 0)
        if hidden:
            self._more.setText(f"Show more ({hidden:,} more characters)")
        self._branch.setVisible(message.status != "streaming")
        expanded = message.id in self._renderer.expanded
        for action, button in self._summary_actions.items():
            button.setVisible(message.is_summary)
            if action == SUMMARY_TOGGLE:
                button.setText("Hide messages" if expanded else "Show messages")
        self._place_actions(layout, is_user)

    def _ensure_part_widgets(self, layout: MessageLayout) -> None:
        kinds = [_WIDGET_KINDS[type(p)] for p in layout.parts]
        if [type(w) for w in self._parts] == kinds:
            return
        for widget in self._parts:
            widget.deleteLater()
        self._parts = []
        for kind in kinds:
            widget = kind(self._bubble)
            if type(widget) is MessageText:
                widget.setFont(self._renderer.font)
            widget.show()
            self._parts.append(widget)

    def _place_actions(self, layout: MessageLayout, is_user: bool) -> None:
        hint = self._actions.sizeHint()
        x = layout.bubble_x + layout.bubble_width - hint.width() if is_user else layout.bubble_x + 6
        room = layout.row_width - max(0, x) - 4
        if hint.width() > room:
            # A narrow window: the note and the facts give way (elided, the whole text in
            # their tooltips) so the buttons stay on screen.
            for label in (self._facts, self._status):
                if label.isVisible() and self._actions.sizeHint().width() > room:
                    excess = self._actions.sizeHint().width() - room
                    keep = max(0, label.sizeHint().width() - excess)
                    label.setText(
                        label.fontMetrics().elidedText(
                            label.toolTip() or label.text(), Qt.TextElideMode.ElideRight, keep
                        )
                    )
            hint = self._actions.sizeHint()
        width = max(min(hint.width(), room), 1)
        x = layout.bubble_x + layout.bubble_width - width if is_user else layout.bubble_x + 6
        y = ROW_MARGIN_V + layout.bubble_height + ACTION_GAP
        self._actions.setGeometry(QRect(QPoint(max(0, x), y), QSize(width, ACTION_BAR_HEIGHT)))

    def _copy_text(self) -> None:
        if self._message is not None:
            QGuiApplication.clipboard().setText(content_text(self._message.content))
            flash_copied(self._copy)

    def _show_version(self, version: tuple[int, int], enabled: bool) -> None:
        self._version = version
        shown, total = version
        several = total > 1
        for widget in (self._previous, self._version_label, self._next):
            widget.setVisible(several)
        self._version_label.setText(f"{shown}/{total}")
        self._version_label.setAccessibleName(f"Version {shown} of {total}")
        self._previous.setEnabled(enabled and shown > 1)
        self._next.setEnabled(enabled and shown < total)

    def _go_previous(self) -> None:
        if self._message is not None and self._version[0] > 1:
            self.versionRequested.emit(self._message.id, self._version[0] - 1)

    def _go_next(self) -> None:
        if self._message is not None and self._version[0] < self._version[1]:
            self.versionRequested.emit(self._message.id, self._version[0] + 1)

    def _request_edit(self) -> None:
        if self._message is not None:
            self.editRequested.emit(self._message.id)

    def _request_more(self) -> None:
        if self._message is not None:
            self.moreRequested.emit(self._message.id)

    def _request_summary(self, action: str) -> None:
        if self._message is not None:
            self.summaryActionRequested.emit(action, self._message.id)

    def _request_regenerate(self) -> None:
        if self._message is not None:
            self.regenerateRequested.emit(self._message.id)

    def _request_branch(self) -> None:
        if self._message is not None:
            self.branchRequested.emit(self._message.id)

    def set_highlighted(self, highlighted: bool) -> None:
        """Mark this message as the one a search or find led to."""
        self._bubble.set_highlighted(highlighted)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        """Ask for the message's action menu (the chat view builds it)."""
        if self._message is not None:
            self.menuRequested.emit(self._message.id, event.globalPos())

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Copy in a message's text with nothing selected copies the whole message."""
        if event.matches(QKeySequence.StandardKey.Copy) and not self._copy.isHidden():
            self._copy.click()
            return
        super().keyPressEvent(event)

    def set_current(self, current: bool) -> None:
        """Ring this message as the one the keyboard acts on (the chat has the focus)."""
        if current != self._current:
            self._current = current
            self.update()

    def is_current(self) -> bool:
        """Whether the keyboard's focus ring is drawn around this message."""
        return self._current

    def paintEvent(self, event: QPaintEvent) -> None:
        """The focus ring around the bubble and its actions, when this is the current one."""
        if not self._current:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(QPen(self.palette().color(QPalette.ColorRole.Highlight), 2))
        area = self._bubble.geometry().united(self._actions.geometry())
        ring = area.adjusted(-5, -4, 5, 4).intersected(self.rect().adjusted(1, 1, -1, -1))
        painter.drawRoundedRect(ring, 16, 16)


_WIDGET_KINDS: dict[type, type[MessageText | ImageThumbnail | CodeBlock]] = {
    TextPart: MessageText,
    ImagePart: ImageThumbnail,
    CodePart: CodeBlock,
}


def reply_facts(message: Message) -> str:
    """A reply's facts in a few words: "14:05 · model · 2.1 s · 35 tokens/s" (or "")."""
    meta = message.meta
    if message.role != "assistant" or not meta:
        return ""
    parts = [message.created_at.astimezone().strftime("%H:%M")]
    if meta.get("model"):
        parts.append(str(meta["model"]))
    seconds = meta.get("seconds")
    if isinstance(seconds, int | float):
        parts.append(f"{seconds:.1f} s")
    speed = meta.get("tokens_per_second")
    if isinstance(speed, int | float):
        approx = "≈" if meta.get("tokens_estimated") else ""
        parts.append(f"{approx}{speed:.0f} tokens/s")
    return " · ".join(parts)
