"""The chat view: a QListView of messages with widgets only for the rows in view.

Heights come from the cached layouts of :class:`MessageRenderer`, so opening a long
session lays out just its latest page. As the user scrolls near the top, older pages
are prepended with the scroll position kept on the same message. New text follows the
bottom only while the user is at the bottom.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from PySide6.QtCore import (
    QAbstractItemModel,
    QEvent,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
    SignalInstance,
)
from PySide6.QtGui import (
    QContextMenuEvent,
    QFocusEvent,
    QFont,
    QKeyEvent,
    QPainter,
    QPaintEvent,
    QPalette,
    QResizeEvent,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from chatdesk.ui.message_actions import MessageKeyboard
from chatdesk.ui.message_model import (
    IsLastReplyRole,
    MessageListModel,
    MessageRole,
    VersionsRole,
)
from chatdesk.ui.message_widget import MessageWidget
from chatdesk.ui.rendering import MessageLayout, MessageRenderer

# How close to the top (pixels) scrolling loads the previous page, and how close to the
# bottom still counts as "at the bottom" for following a growing reply.
_LOAD_OLDER_THRESHOLD = 300
_BOTTOM_SLACK = 24
# Widgets are kept for a couple of rows beyond the viewport so small scrolls show text
# immediately.
_EDITOR_OVERSCAN = 2

_Index = QModelIndex | QPersistentModelIndex


class MessageDelegate(QStyledItemDelegate):
    """Sizes rows from cached layouts and provides a MessageWidget for rows in view."""

    editRequested = Signal(str)
    regenerateRequested = Signal(str)
    branchRequested = Signal(str)
    versionRequested = Signal(str, int)
    summaryActionRequested = Signal(str, str)

    def __init__(self, view: ChatView, model: MessageListModel, renderer: MessageRenderer) -> None:
        """A delegate for ``view`` over ``model``, laying messages out with ``renderer``."""
        super().__init__(view)
        self._view = view
        self._model = model
        self._renderer = renderer

    def layout_for(self, index: _Index) -> MessageLayout:
        """The layout of the message at ``index`` at the view's current width."""
        # Straight to the model, not index.data(): the view asks for every row's size on
        # each re-layout, and going through QVariant per call costs more than the lookup.
        message = self._model.message(index.row())
        return self._renderer.layout(
            message, self._model.version(message.id), self._view.row_width()
        )

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        """The row's size: the view's width by the layout's (cached) height."""
        return self.layout_for(index).size

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        """Nothing: the row's widget draws the message."""

    def createEditor(self, parent: QWidget, option: QStyleOptionViewItem, index: _Index) -> QWidget:
        """A MessageWidget for a row that came into view."""
        widget = MessageWidget(parent, self._renderer)
        widget.editRequested.connect(self.editRequested)
        widget.regenerateRequested.connect(self.regenerateRequested)
        widget.moreRequested.connect(self._view.show_more)
        widget.branchRequested.connect(self.branchRequested)
        widget.versionRequested.connect(self.versionRequested)
        widget.summaryActionRequested.connect(self.summaryActionRequested)
        widget.menuRequested.connect(self._view.keyboard.open_menu_of)
        return widget

    def setEditorData(self, editor: QWidget, index: _Index) -> None:
        """Show the row's current message in its widget."""
        if isinstance(editor, MessageWidget):
            message = index.data(MessageRole)
            editor.show_message(
                message,
                self.layout_for(index),
                bool(index.data(IsLastReplyRole)),
                index.data(VersionsRole),
            )
            editor.set_highlighted(message.id == self._view.highlighted_message_id)
            editor.set_current(self._view.keyboard.rings(index.row()))

    def setModelData(self, editor: QWidget, model: QAbstractItemModel, index: _Index) -> None:
        """Messages are read-only here; edits go through the engine."""

    def updateEditorGeometry(
        self, editor: QWidget, option: QStyleOptionViewItem, index: _Index
    ) -> None:
        """The widget covers the whole row."""
        editor.setGeometry(option.rect)


class ChatView(QListView):
    """The messages of the current session, newest at the bottom.

    One Tab stop: its current row is the message the keyboard acts on (see
    :class:`chatdesk.ui.message_actions.MessageKeyboard`).
    """

    # Esc in the chat: the user wants to get back to writing.
    leaveRequested = Signal()

    def __init__(self, model: MessageListModel, parent: QWidget | None = None) -> None:
        """A view over ``model``; rendering is cached per message version and width."""
        super().__init__(parent)
        # Set before any Qt call: Qt calls back into the overrides below during setup.
        self.empty_hint = "Ask anything"
        self._follow_bottom = True
        self._editors: dict[str, QPersistentModelIndex] = {}
        self._heights: dict[str, tuple[int, int]] = {}  # message id: (width, height)
        self._loading_older = False
        self._sync_pending = False
        # What the rows' widgets were last matched to (scroll position, rows, viewport
        # size, row heights): a streamed token that changes none of these needs no sync.
        self._synced_for: tuple[int, int, int, int, int] | None = None
        self._heights_generation = 0
        # The message a search hit or Ctrl+F led to, outlined until another is chosen.
        self.highlighted_message_id: str | None = None
        self.setObjectName("chatView")
        self.setAccessibleName("chatView")
        self.renderer = MessageRenderer(self.font(), self.palette())
        self._delegate = MessageDelegate(self, model, self.renderer)
        self.keyboard = MessageKeyboard(self, model)
        self.setItemDelegate(self._delegate)
        self.setModel(model)
        self._model = model
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(False)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        # The keyboard's moves scroll the current message into view themselves (a message
        # taller than the view shows its top, not its end).
        self.setAutoScroll(False)
        self.verticalScrollBar().setSingleStep(24)

        bar = self.verticalScrollBar()
        bar.valueChanged.connect(self._on_scrolled)
        bar.rangeChanged.connect(self._on_range_changed)
        model.modelAboutToBeReset.connect(self._forget_rows)
        model.modelReset.connect(self._after_reset)
        model.rowsInserted.connect(self._schedule_editor_sync)
        model.rowsRemoved.connect(self._schedule_editor_sync)

    @property
    def editRequested(self) -> SignalInstance:
        """Emitted with a user message's id when its Edit action is clicked."""
        return self._delegate.editRequested

    @property
    def regenerateRequested(self) -> SignalInstance:
        """Emitted with the last reply's id when its Regenerate action is clicked."""
        return self._delegate.regenerateRequested

    @property
    def branchRequested(self) -> SignalInstance:
        """Emitted with a message's id when its Branch action is clicked."""
        return self._delegate.branchRequested

    def reveal_message(self, message_id: str | None) -> bool:
        """Scroll ``message_id`` into the middle of the view and outline it.

        Older pages are loaded as needed; None just removes the outline. False when the
        session shown has no such message.
        """
        self.highlighted_message_id = message_id
        if message_id is None:
            self._refresh_editors()
            return False
        row = self._model.row_of(message_id)
        while row is None and self._model.can_load_older():
            self._model.load_older()
            row = self._model.row_of(message_id)
        if row is None:
            self._refresh_editors()
            return False
        self.doItemsLayout()
        self._follow_bottom = False
        self.scrollTo(self._model.index(row), QAbstractItemView.ScrollHint.PositionAtCenter)
        self._follow_bottom = self.verticalScrollBar().value() >= (
            self.verticalScrollBar().maximum() - _BOTTOM_SLACK
        )
        self._sync_editors()
        self._refresh_editors()
        return True

    @property
    def versionRequested(self) -> SignalInstance:
        """Emitted with (message id, version number) when a version arrow is clicked."""
        return self._delegate.versionRequested

    def scroll_page(self, direction: int) -> None:
        """Scroll one page up (-1) or down (+1), as PageUp/PageDown do."""
        bar = self.verticalScrollBar()
        bar.setValue(bar.value() + direction * bar.pageStep())

    @property
    def summaryActionRequested(self) -> SignalInstance:
        """Emitted with (action, message id) when a summary row's action is clicked."""
        return self._delegate.summaryActionRequested

    def row_width(self) -> int:
        """The width every row is laid out at."""
        return max(200, self.viewport().width())

    def is_at_bottom(self) -> bool:
        """Whether the view shows the newest message's end (and so follows new text)."""
        return self._follow_bottom

    def message_widgets(self) -> list[MessageWidget]:
        """The widgets of the rows currently in view, top to bottom."""
        found = []
        for persistent in self._editors.values():
            if persistent.isValid():
                widget = self.indexWidget(self._model.index(persistent.row()))
                if isinstance(widget, MessageWidget):
                    found.append((persistent.row(), widget))
        return [w for _, w in sorted(found, key=lambda pair: pair[0])]

    def message_widget_at(self, row: int) -> MessageWidget | None:
        """The widget of ``row``, brought into view first if it has none (None: no row)."""
        index = self._model.index(row)
        if not index.isValid():
            return None
        widget = self.indexWidget(index)
        if not isinstance(widget, MessageWidget):
            self.scrollTo(index)
            self._sync_editors()
            widget = self.indexWidget(index)
        return widget if isinstance(widget, MessageWidget) else None

    def refresh_rows(self, rows: Iterable[int]) -> None:
        """Show ``rows``' widgets anew (their focus ring or outline changed)."""
        self._refresh_editors(r for r in rows if 0 <= r < self._model.rowCount())

    def scroll_to_newest(self) -> None:
        """Show the end of the newest message and follow new text again."""
        self._follow_bottom = True
        self.scrollToBottom()
        self._sync_editors()

    def show_more(self, message_id: str) -> None:
        """Reveal more of a collapsed long message and re-lay out its row."""
        row = self._model.row_of(message_id)
        if row is None:
            return
        self.renderer.show_more(message_id)
        index = self._model.index(row)
        self.dataChanged(index, index)

    def load_older(self) -> int:
        """Prepend the previous page, keeping the message at the top where it is on screen."""
        if self._loading_older or not self._model.can_load_older():
            return 0
        self._loading_older = True
        try:
            anchor_row = max(0, self.indexAt(QPoint(self.viewport().width() // 2, 1)).row())
            anchor = QPersistentModelIndex(self._model.index(anchor_row))
            before = self.visualRect(self._model.index(anchor_row)).top()
            added = self._model.load_older()
            self.doItemsLayout()
            after = self.visualRect(self._model.index(anchor.row())).top()
            bar = self.verticalScrollBar()
            bar.setValue(bar.value() + after - before)
            return added
        finally:
            self._loading_older = False
            self._sync_editors()

    # -- reacting to the model and the scroll bar ------------------------------------------

    def _forget_rows(self) -> None:
        self._editors.clear()
        self._heights.clear()
        self._synced_for = None

    def _after_reset(self) -> None:
        self.highlighted_message_id = None
        self._follow_bottom = True
        self.scrollToBottom()
        self._sync_editors()

    def dataChanged(
        self,
        top_left: _Index,
        bottom_right: _Index,
        roles: Sequence[int] | None = None,
    ) -> None:
        """Refresh changed rows; re-lay out the list only when a row's height changed.

        QListView re-lays out every row on any change; a streamed token rarely changes
        its message's height, so most tokens only refresh that row's widget.
        """
        resized = False
        rows = range(top_left.row(), bottom_right.row() + 1)
        for row in rows:
            index = self._model.index(row)
            message = self._model.message(row)
            # Keyed by width too: after a resize the row was laid out at a new width.
            size = (self.row_width(), self._delegate.layout_for(index).height)
            if self._heights.get(message.id) != size:
                self._heights[message.id] = size
                self._heights_generation += 1
                resized = True
        if resized:
            super().dataChanged(top_left, bottom_right, roles or [])
        else:
            self._refresh_editors(rows)

    def _on_scrolled(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow_bottom = value >= bar.maximum() - _BOTTOM_SLACK
        if value <= _LOAD_OLDER_THRESHOLD and self._model.can_load_older():
            QTimer.singleShot(0, self.load_older)

    def _on_range_changed(self, _minimum: int, maximum: int) -> None:
        if self._follow_bottom and not self._loading_older:
            self.verticalScrollBar().setValue(maximum)

    def _schedule_editor_sync(self) -> None:
        if not self._sync_pending:
            self._sync_pending = True
            QTimer.singleShot(0, self._sync_editors)

    def _sync_editors(self) -> None:
        """Open message widgets for the rows in view, close those scrolled away."""
        self._sync_pending = False
        count = self._model.rowCount()
        viewport = self.viewport()
        state = (
            self.verticalScrollBar().value(),
            count,
            viewport.width(),
            viewport.height(),
            self._heights_generation,
        )
        if state == self._synced_for and all(p.isValid() for p in self._editors.values()):
            return
        self._synced_for = state
        wanted: dict[str, QPersistentModelIndex] = {}
        if count:
            middle = self.viewport().width() // 2
            top = self.indexAt(QPoint(middle, 0)).row()
            bottom = self.indexAt(QPoint(middle, self.viewport().height() - 1)).row()
            # A point can miss every row (the gap under a short list, or inside a row
            # taller than the viewport mid-layout); fall back to the row found at the
            # other edge rather than to "everything".
            bottom = count - 1 if bottom < 0 else bottom
            top = bottom if top < 0 else top
            for row in range(
                max(0, top - _EDITOR_OVERSCAN), min(count, bottom + 1 + _EDITOR_OVERSCAN)
            ):
                index = self._model.index(row)
                wanted[self._model.message(row).id] = QPersistentModelIndex(index)
        for message_id, persistent in list(self._editors.items()):
            if message_id not in wanted and persistent.isValid():
                self.closePersistentEditor(self._model.index(persistent.row()))
        for message_id, persistent in wanted.items():
            current = self._editors.get(message_id)
            if current is None or not current.isValid():
                self.openPersistentEditor(self._model.index(persistent.row()))
        self._editors = wanted

    # -- QListView hooks -------------------------------------------------------------------

    def updateGeometries(self) -> None:
        """After every re-layout, make sure the rows now in view have their widgets."""
        super().updateGeometries()
        self._schedule_editor_sync()

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        """Scroll, then give newly visible rows their widgets at once (no blank rows)."""
        super().scrollContentsBy(dx, dy)
        self._sync_editors()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Re-wrap at the new width; keep following the bottom if we were."""
        follow = self._follow_bottom
        super().resizeEvent(event)
        if event.size().width() != event.oldSize().width():
            # Rows change height with the width; lay them out now, not on a later resize
            # (dragging the sidebar divider left gaps or overlaps between messages).
            self.doItemsLayout()
        self._refresh_editors()
        if follow:
            self.scrollToBottom()
        self._schedule_editor_sync()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Keys move between messages and act on the current one (see MessageKeyboard)."""
        if not self.keyboard.key_pressed(event):
            super().keyPressEvent(event)

    def focusInEvent(self, event: QFocusEvent) -> None:
        """Tab into the chat makes the newest message in view current, and rings it."""
        self.keyboard.focus_in(event.reason())
        super().focusInEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        """The ring goes with the focus (it stays while the message's menu is open)."""
        self.keyboard.focus_out(event.reason())
        super().focusOutEvent(event)

    def contextMenuEvent(self, event: QContextMenuEvent) -> None:
        """The Menu key (or a right-click between messages): the current message's menu."""
        self.keyboard.open_menu()

    def currentChanged(self, current: _Index, previous: _Index) -> None:
        """Move the focus ring from the previous message to the current one."""
        super().currentChanged(current, previous)
        self.refresh_rows(i.row() for i in (previous, current) if i.isValid())

    def _refresh_editors(self, rows: Iterable[int] | None = None) -> None:
        """Show the current message in the widgets of ``rows`` (default: all with one)."""
        if rows is None:
            rows = [p.row() for p in self._editors.values() if p.isValid()]
        for row in rows:
            index = self._model.index(row)
            widget = self.indexWidget(index)
            if widget is not None:
                self._delegate.setEditorData(widget, index)

    def changeEvent(self, event: QEvent) -> None:
        """A palette or font change (e.g. the system switched to dark) restyles messages."""
        super().changeEvent(event)
        if event.type() in (event.Type.PaletteChange, event.Type.FontChange):
            self.renderer.set_font(self.font())
            self.renderer.set_palette(self.palette())
            self._synced_for = None  # every row's height may have changed
            self._heights.clear()
            self._refresh_editors()
            self.doItemsLayout()

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint the rows, or a quiet hint when the chat is still empty."""
        super().paintEvent(event)
        if self._model.rowCount() == 0 and self._model.session_id is not None:
            painter = QPainter(self.viewport())
            font = QFont(self.font())
            font.setPointSizeF(max(font.pointSizeF(), 9.0) * 1.8)
            painter.setFont(font)
            painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                QRect(0, 0, self.viewport().width(), self.viewport().height()),
                Qt.AlignmentFlag.AlignCenter,
                self.empty_hint,
            )
