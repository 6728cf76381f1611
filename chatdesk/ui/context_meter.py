"""The context meter beside the model selector: how full the chat's context window is.

It reads "3.1k / 8k" over a thin bar that turns amber, then red, as the chat nears the
point where it gets compacted; its tooltip breaks the figure down, and its menu offers
Compact now, Keep the first N messages… and Undo compaction.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette
from PySide6.QtWidgets import QMenu, QToolButton, QWidget

from chatdesk.context import ContextBudget

# Shares of the compaction limit from which the bar warns, then alarms.
WARN_AT = 0.75
ALARM_AT = 0.9
WARN_COLOUR = QColor("#d08700")
ALARM_COLOUR = QColor("#c62828")
_BAR_HEIGHT = 3


def short_tokens(count: int) -> str:
    """``3.1k`` for 3,174 tokens, ``8k`` for 8,192, ``512`` for 512 (k = 1,024 tokens)."""
    if count < 1024:
        return str(count)
    value = count / 1024
    text = f"{value:.1f}" if value < 10 else f"{round(value)}"
    return f"{text.removesuffix('.0')}k"


def budget_tooltip(budget: ContextBudget) -> str:
    """The breakdown of a budget, one line per part, for the meter's tooltip."""
    how = "counted with the model's tokenizer" if budget.exact else "estimated"
    lines = [
        f"Context: {budget.used:,} of {budget.window:,} tokens ({how})",
        f"System prompt: {budget.system:,}",
        f"Summary of earlier messages: {budget.summary:,}",
        f"Messages: {budget.messages:,}",
        f"Images ({budget.image_count}): {budget.images:,}",
        f"Kept free for the reply: {budget.reserve:,}",
        f"Earlier messages are summarised above {budget.limit:,} tokens.",
    ]
    return "\n".join(lines)


class ContextMeter(QToolButton):
    """Shows a :class:`ContextBudget`; its menu asks for compaction or truncation."""

    compactRequested = Signal()
    keepFirstRequested = Signal()
    undoRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        """An empty meter; :meth:`show_budget` fills it."""
        super().__init__(parent)
        self.setObjectName("contextMeter")
        self.setAccessibleName("contextMeter")
        self.setAutoRaise(True)
        self.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        # No menu arrow: it would sit on the figure; the tooltip says there is a menu.
        # Room under the figure for the bar.
        self.setStyleSheet(
            "QToolButton { padding: 2px 8px 7px 8px; }"
            "QToolButton::menu-indicator { image: none; width: 0px; }"
        )
        self._budget: ContextBudget | None = None
        menu = QMenu(self)
        self.compact_action = menu.addAction("Compact now")
        self.compact_action.setToolTip("Summarise all but the latest exchange (kept, undoable)")
        self.keep_first_action = menu.addAction("Keep the first N messages…")
        self.undo_action = menu.addAction("Undo compaction")
        self.compact_action.triggered.connect(self.compactRequested)
        self.keep_first_action.triggered.connect(self.keepFirstRequested)
        self.undo_action.triggered.connect(self.undoRequested)
        self.setMenu(menu)
        self.show_budget(None)

    @property
    def budget(self) -> ContextBudget | None:
        """The budget shown, if any."""
        return self._budget

    def fill(self) -> float:
        """How close the context is to being compacted (1.0: it will be at the next send)."""
        if self._budget is None:
            return 0.0
        return min(self._budget.used / max(self._budget.limit, 1), 1.0)

    def bar_colour(self) -> QColor:
        """The bar's colour: the highlight, amber near the limit, red at it."""
        fill = self.fill()
        if fill >= ALARM_AT:
            return ALARM_COLOUR
        if fill >= WARN_AT:
            return WARN_COLOUR
        return self.palette().color(QPalette.ColorRole.Highlight)

    def show_budget(self, budget: ContextBudget | None, *, has_summary: bool = False) -> None:
        """Show ``budget`` (None: no chat, or not measured yet)."""
        self._budget = budget
        if budget is None:
            self.setText("– / –")
            self.setToolTip("How much of the model's context window this chat uses")
        else:
            self.setText(f"{short_tokens(budget.used)} / {short_tokens(budget.window)}")
            self.setToolTip(budget_tooltip(budget) + "\nClick for Compact now and more.")
        self.setAccessibleDescription(self.toolTip())
        self.setEnabled(budget is not None)
        self.undo_action.setEnabled(has_summary)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        """The button, then the bar along its bottom edge."""
        super().paintEvent(event)
        if self._budget is None:
            return
        painter = QPainter(self)
        track = QRect(8, self.height() - _BAR_HEIGHT - 3, self.width() - 16, _BAR_HEIGHT)
        painter.fillRect(track, self.palette().color(QPalette.ColorRole.Mid))
        filled = QRect(track)
        filled.setWidth(max(1, int(track.width() * self.fill())))
        painter.fillRect(filled, self.bar_colour())
