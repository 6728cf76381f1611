"""The widget that shows one message in the chat view: its parts and its actions.

Only rows in view get one (as a persistent editor of the chat view), and it places its
children exactly where :class:`chatdesk.ui.rendering.MessageLayout` says, so the row
height computed without a widget always fits. The parts (text, code, images, the
bubble behind them) are in :mod:`chatdesk.ui.message_parts`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, Signal
from PySide6.QtGui import (
    QContextMenuEvent,
    QGuiApplication,
    QKeyEvent,
    QKeySequence,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
)
from PySide6.QtWidgets import QHBoxLayout, QLabel, QToolButton, QWidget

from chatdesk.domain import Message, content_text
from chatdesk.ui.message_parts import Bubble, CodeBlock, ImageThumbnail, MessageText, flash_copied
from chatdesk.ui.rendering import (
    ACTION_BAR_HEIGHT,
    ACTION_GAP,
    BUBBLE_PAD_H,
    BUBBLE_PAD_V,
    PART_SPACING,
    ROW_MARGIN_V,
    CodePart,
    ImagePart,
    MessageLayout,
    MessageRenderer,
    TextPart,
)

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
