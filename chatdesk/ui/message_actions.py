"""Every message's actions from the keyboard, and the same actions in a context menu.

The chat view is one Tab stop. Its current row is the message the keys act on, ringed
while the view has the keyboard focus: Up/Down/Home/End move between messages,
PageUp/PageDown scroll, Enter, the Menu key or Shift+F10 open the message's menu, and
direct keys run the common actions. A right-click on a message opens the same menu.

Every action clicks the message widget's own button, so keys, menu and mouse share one
path and one set of rules for when an action applies (Edit on the user's messages only,
Regenerate on the last reply only, the version arrows only where there are versions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QKeyCombination, QObject, QPoint, Qt, QUrl
from PySide6.QtGui import QCursor, QDesktopServices, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QMenu, QToolButton

from chatdesk.ui.message_parts import CodeBlock, CodeText, MessageText
from chatdesk.ui.message_widget import SUMMARY_EDIT, SUMMARY_TOGGLE, SUMMARY_UNDO, MessageWidget

if TYPE_CHECKING:
    from chatdesk.ui.chat_view import ChatView
    from chatdesk.ui.message_model import MessageListModel


@dataclass(frozen=True)
class MessageAction:
    """One action of a message: the name of its button, its menu text, its direct key."""

    button: str
    text: str
    key: str = ""

    def menu_text(self, button: QToolButton) -> str:
        """The menu entry's text (a button whose text changes lends it, e.g. Show/Hide)."""
        return self.text or f"&{button.text()}"


# In menu order. A mnemonic and the direct key are the same letter where there is one.
MESSAGE_ACTIONS = (
    MessageAction("copy", "&Copy", "Ctrl+C"),
    MessageAction("edit", "&Edit", "E"),
    MessageAction("regenerate", "&Regenerate", "R"),
    MessageAction("more", "Show &More", "M"),
    MessageAction("previous", "&Previous Version", "Left"),
    MessageAction("next", "&Next Version", "Right"),
    MessageAction("branch", "&Branch from Here", "B"),
    MessageAction(f"summary-{SUMMARY_TOGGLE}", ""),
    MessageAction(f"summary-{SUMMARY_EDIT}", "Edit &Summary"),
    MessageAction(f"summary-{SUMMARY_UNDO}", "&Undo Compaction"),
)

# The keys of the messages, for the shortcuts sheet (F1): (where, what, keys).
MESSAGE_KEYS = (
    ("Messages", "Previous / next message", "Up / Down"),
    ("Messages", "First / last message shown", "Home / End"),
    ("Messages", "The message's actions", "Enter / Menu / Shift+F10"),
    ("Messages", "Copy the message", "Ctrl+C"),
    ("Messages", "Edit your message", "E / Ctrl+E"),
    ("Messages", "Regenerate the last reply", "R / Ctrl+R"),
    ("Messages", "Previous / next version", "Left / Right"),
    ("Messages", "Show more of a long message", "M"),
    ("Messages", "Branch from the message", "B"),
    ("Messages", "Back to the message box", "Esc"),
)

# More links than this in one message are left to the mouse (the menu stays short).
_MOST_LINKS = 9
_MOVES = {Qt.Key.Key_Up: -1, Qt.Key.Key_Down: 1}
_MENU_KEYS = (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Menu)


def applicable_actions(widget: MessageWidget) -> list[tuple[MessageAction, QToolButton]]:
    """The actions ``widget``'s message offers now: those whose button is shown and usable."""
    buttons = widget.action_buttons()
    found = []
    for action in MESSAGE_ACTIONS:
        button = buttons[action.button]
        if button.isVisibleTo(widget) and button.isEnabled():
            found.append((action, button))
    return found


def _action_for(pressed: QKeySequence) -> MessageAction | None:
    """The action whose direct key is ``pressed``, if any."""
    for action in MESSAGE_ACTIONS:
        if action.key and pressed.matches(QKeySequence(action.key)) == (
            QKeySequence.SequenceMatch.ExactMatch
        ):
            return action
    return None


def code_blocks(widget: MessageWidget) -> list[CodeBlock]:
    """The code blocks of ``widget``'s message, in order (each has its Copy button)."""
    return [part for part in widget.part_widgets() if isinstance(part, CodeBlock)]


def links_of(widget: MessageWidget) -> list[str]:
    """The addresses the message's text links to, in order, each once (code excluded)."""
    found: list[str] = []
    for part in widget.part_widgets():
        if isinstance(part, MessageText) and not isinstance(part, CodeText):
            block = part.document().begin()
            while block.isValid():
                fragments = block.begin()
                while not fragments.atEnd():
                    href = fragments.fragment().charFormat().anchorHref()
                    if href and href not in found:
                        found.append(href)
                    fragments += 1
                block = block.next()
    return found


class MessageKeyboard(QObject):
    """The chat view's keys and message menus (see the module's note)."""

    def __init__(self, view: ChatView, model: MessageListModel) -> None:
        """Handle the keys, focus and context menus of ``view`` over ``model``."""
        super().__init__(view)
        self._view = view
        self._model = model
        self._ring = False
        # The menu last opened (kept so a test or the caller can drive it; replaced by the
        # next one).
        self.menu: QMenu | None = None

    # -- what the view asks ----------------------------------------------------------------

    def rings(self, row: int) -> bool:
        """Whether ``row`` is the current message, ringed for the keyboard."""
        return self._ring and row == self._view.currentIndex().row()

    def current_row(self) -> int | None:
        """The row of the current message, or None."""
        current = self._view.currentIndex()
        return current.row() if current.isValid() else None

    # -- moving ----------------------------------------------------------------------------

    def move(self, delta: int) -> None:
        """Make the message ``delta`` rows away current (from the one in view, if the
        current one was scrolled away) and scroll it into view."""
        row = self.current_row()
        if row is None or not self._in_view(row):
            self.go_to(self._newest_in_view())
            return
        if row + delta < 0 and self._view.load_older():
            row = self.current_row() or 0  # the same message, further down now
        self.go_to(row + delta)

    def go_to(self, row: int | None) -> None:
        """Make ``row`` (clamped to the rows loaded) current and scroll it into view."""
        count = self._model.rowCount()
        if row is None or count == 0:
            return
        index = self._model.index(max(0, min(row, count - 1)), 0)
        self._view.setCurrentIndex(index)
        shown = self._view.visualRect(index)
        area = self._view.viewport().rect()
        if shown.height() > area.height() or shown.top() < area.top():
            self._view.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtTop)
        elif shown.bottom() > area.bottom():
            self._view.scrollTo(index, QAbstractItemView.ScrollHint.PositionAtBottom)

    def _in_view(self, row: int) -> bool:
        index = self._model.index(row, 0)
        return self._view.visualRect(index).intersects(self._view.viewport().rect())

    def _newest_in_view(self) -> int | None:
        count = self._model.rowCount()
        if count == 0:
            return None
        viewport = self._view.viewport()
        bottom = self._view.indexAt(QPoint(viewport.width() // 2, viewport.height() - 1))
        return bottom.row() if bottom.isValid() else count - 1

    # -- acting ----------------------------------------------------------------------------

    def run(self, button_name: str, row: int | None = None) -> bool:
        """Click ``button_name`` of the message in ``row`` (default: the current one),
        exactly as the mouse would; False when that message does not offer it now."""
        row = self.current_row() if row is None else row
        widget = self._view.message_widget_at(row) if row is not None else None
        if widget is None:
            return False
        button = widget.action_buttons().get(button_name)
        if button is None or not (button.isVisibleTo(widget) and button.isEnabled()):
            return False
        button.click()
        return True

    def run_on_current(self, button_name: str) -> bool:
        """Click ``button_name`` of the current message (the newest in view if none is),
        as its direct key does; False when that message does not offer it now."""
        if self.current_row() is None:
            self.go_to(self._newest_in_view())
        return self.run(button_name)

    def _run_for(self, message_id: str, button_name: str) -> None:
        # Looked up again when chosen: rows may have moved while the menu was open.
        row = self._model.row_of(message_id)
        if row is not None:
            self.run(button_name, row)

    def _copy_code(self, message_id: str, number: int) -> None:
        row = self._model.row_of(message_id)
        widget = self._view.message_widget_at(row) if row is not None else None
        blocks = code_blocks(widget) if widget is not None else []
        if number < len(blocks):
            blocks[number].copy_button.click()

    def open_menu(self, row: int | None = None, at: QPoint | None = None) -> QMenu | None:
        """Open the menu of the message in ``row`` (default: the current one) at ``at``
        (global; default: under the message's actions). None when there is no message."""
        if row is None:
            row = self.current_row()
            if row is None or not self._in_view(row):
                row = self._newest_in_view()
                self.go_to(row)
        widget = self._view.message_widget_at(row) if row is not None else None
        if widget is None or widget.message is None:
            return None
        if self.menu is not None:
            self.menu.deleteLater()
        self.menu = self._build_menu(widget, widget.message.id)
        self.menu.popup(at if at is not None else self._menu_position(widget))
        return self.menu

    def _build_menu(self, widget: MessageWidget, message_id: str) -> QMenu:
        menu = QMenu(self._view)
        menu.setObjectName("messageMenu")
        menu.setAccessibleName("Message actions")
        for action, button in applicable_actions(widget):
            entry = menu.addAction(action.menu_text(button))
            entry.setObjectName(f"{action.button}MessageAction")
            entry.setToolTip(button.toolTip())
            if action.key:
                # Shown in the menu; the key itself works while the chat has the focus.
                entry.setShortcut(QKeySequence(action.key))
            entry.triggered.connect(
                lambda _checked=False, name=action.button: self._run_for(message_id, name)
            )
        blocks = code_blocks(widget)
        if blocks:
            menu.addSeparator()
        for number, block in enumerate(blocks):
            label = block.label.text()
            text = "Copy C&ode" if len(blocks) == 1 else f"Copy Code &{number + 1}"
            entry = menu.addAction(f"{text} ({label})" if label else text)
            entry.setObjectName(f"copyCode{number + 1}MessageAction")
            entry.triggered.connect(lambda _checked=False, n=number: self._copy_code(message_id, n))
        # A keyboard cannot click a link in the text: the menu opens it (as a click would).
        links = links_of(widget)[:_MOST_LINKS]
        if links:
            menu.addSeparator()
        for number, href in enumerate(links):
            shown = QUrl(href).host() or href
            text = "Open &Link" if len(links) == 1 else f"Open Link &{number + 1}"
            entry = menu.addAction(f"{text} ({shown})")
            entry.setObjectName(f"openLink{number + 1}MessageAction")
            entry.setToolTip(href)
            entry.triggered.connect(
                lambda _checked=False, h=href: QDesktopServices.openUrl(QUrl(h))
            )
        return menu

    def _menu_position(self, widget: MessageWidget) -> QPoint:
        """Under the message's row of actions, kept inside the visible part of the chat."""
        bar = widget.action_buttons()["copy"].parentWidget() or widget
        viewport = self._view.viewport()
        anchor = widget.mapTo(viewport, bar.geometry().bottomLeft())
        area = viewport.rect().adjusted(8, 8, -8, -8)
        anchor.setX(max(area.left(), min(anchor.x(), area.right())))
        anchor.setY(max(area.top(), min(anchor.y(), area.bottom())))
        return viewport.mapToGlobal(anchor)

    def open_menu_of(self, message_id: str, at: QPoint) -> None:
        """Right-click: make ``message_id`` current and open its menu at ``at`` (global)."""
        row = self._model.row_of(message_id)
        if row is not None:
            self._view.setCurrentIndex(self._model.index(row, 0))
            self.open_menu(row, at)

    # -- the view's events -------------------------------------------------------------------

    def key_pressed(self, event: QKeyEvent) -> bool:
        """Handle a key pressed in the chat view; False leaves it to the view."""
        key = Qt.Key(event.key())
        modifiers = event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier
        plain = modifiers == Qt.KeyboardModifier.NoModifier
        ctrl = modifiers == Qt.KeyboardModifier.ControlModifier
        if key in _MOVES and plain:
            self.move(_MOVES[key])
        elif key in (Qt.Key.Key_Home, Qt.Key.Key_End) and (plain or ctrl):
            last = self._model.rowCount() - 1
            self.go_to(0 if key == Qt.Key.Key_Home else last)
        elif key in (Qt.Key.Key_PageUp, Qt.Key.Key_PageDown) and plain:
            self._view.scroll_page(-1 if key == Qt.Key.Key_PageUp else 1)
        elif (key in _MENU_KEYS and plain) or (
            key == Qt.Key.Key_F10 and modifiers == Qt.KeyboardModifier.ShiftModifier
        ):
            self.open_menu()
        elif key == Qt.Key.Key_Escape and plain:
            self._view.leaveRequested.emit()
            return True
        else:
            action = _action_for(QKeySequence(QKeyCombination(modifiers, key)))
            if action is None:
                # Letters would start the list's type-ahead search through the messages.
                return bool(event.text()) and event.text().isprintable()
            self.run_on_current(action.button)
        self._set_ring(True)
        return True

    def focus_out(self, reason: Qt.FocusReason) -> None:
        """Hide the ring, unless the focus went to the message's menu (it shows whose)."""
        if reason != Qt.FocusReason.PopupFocusReason:
            self._set_ring(False)

    def focus_in(self, reason: Qt.FocusReason) -> None:
        """Make the newest message in view current if none in view is; ring it unless the
        mouse brought the focus (it points at what it acts on)."""
        if reason == Qt.FocusReason.PopupFocusReason:
            return
        mouse = reason == Qt.FocusReason.MouseFocusReason
        viewport = self._view.viewport()
        clicked = self._view.indexAt(viewport.mapFromGlobal(QCursor.pos())) if mouse else None
        row = self.current_row()
        if clicked is not None and clicked.isValid():
            self._view.setCurrentIndex(clicked)  # a click on a message's margin chooses it
        elif row is None or not self._in_view(row):
            # Tab into the chat starts at the newest message in view (not the oldest loaded).
            newest = self._newest_in_view()
            if newest is not None:
                self._view.setCurrentIndex(self._model.index(newest, 0))
        self._set_ring(not mouse)

    def _set_ring(self, ring: bool) -> None:
        if ring != self._ring:
            self._ring = ring
            row = self.current_row()
            if row is not None:
                self._view.refresh_rows([row])
