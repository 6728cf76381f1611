"""How the sidebar paints a session: its title, its relative time, a header above tasks."""

from __future__ import annotations

from PySide6.QtCore import (
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
)
from PySide6.QtGui import (
    QFont,
    QFontMetrics,
    QPainter,
    QPalette,
)
from PySide6.QtWidgets import (
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from chatdesk.ui.session_model import (
    LOCAL_OWNER,
    TASK_SECTION_TITLE,
    KindRole,
    OwnerRole,
    PinnedRole,
    UpdatedAtRole,
    relative_time,
)
from chatdesk.ui.theme import mix_colours

PIN_MARK = "📌"

_Index = QModelIndex | QPersistentModelIndex


class SessionDelegate(QStyledItemDelegate):
    """Paints a title with its relative time, and a section header above the first task."""

    PADDING_H = 10
    PADDING_V = 7

    def _header_height(self, option: QStyleOptionViewItem, index: _Index) -> int:
        if index.data(KindRole) != "task":
            return 0
        above = index.sibling(index.row() - 1, 0)
        if above.isValid() and above.data(KindRole) == "task":
            return 0
        return option.fontMetrics.height() + 18

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        """One line of text with padding, plus the section header where one goes."""
        height = option.fontMetrics.height() + 2 * self.PADDING_V
        return QSize(120, height + self._header_height(option, index))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        """Draw the row with palette colours only, so light and dark both look right."""
        painter.save()
        palette = option.palette
        rect = QRect(option.rect)
        header = self._header_height(option, index)
        if header:
            font = QFont(option.font)
            font.setBold(True)
            font.setPointSizeF(max(7.5, font.pointSizeF() - 1))
            painter.setFont(font)
            painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
            painter.drawText(
                QRect(rect.left() + self.PADDING_H, rect.top(), rect.width(), header - 4),
                Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom,
                TASK_SECTION_TITLE.upper(),
            )
            rect.setTop(rect.top() + header)
        body = rect.adjusted(4, 1, -4, -1)
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        hovered = bool(option.state & QStyle.StateFlag.State_MouseOver)
        if selected or hovered:
            base = palette.color(QPalette.ColorRole.Base)
            accent = palette.color(QPalette.ColorRole.Highlight)
            amount = 0.22 if selected else 0.08
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(mix_colours(base, accent, amount))
            painter.drawRoundedRect(body, 6, 6)
        text_rect = body.adjusted(self.PADDING_H - 4, 0, -(self.PADDING_H - 4), 0)
        when = index.data(UpdatedAtRole)
        stamp = relative_time(when) if when else ""
        painter.setFont(option.font)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        stamp_width = option.fontMetrics.horizontalAdvance(stamp)
        painter.drawText(
            text_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, stamp
        )
        owner = index.data(OwnerRole)
        badge_width = 0
        if owner and owner != LOCAL_OWNER:
            badge_width = self._paint_owner(
                painter, option, text_rect, stamp_width, str(owner), selected
            )
        title = str(index.data(Qt.ItemDataRole.DisplayRole) or "")
        if index.data(PinnedRole):
            mark = PIN_MARK if option.fontMetrics.inFontUcs4(ord(PIN_MARK)) else "★"
            mark_width = option.fontMetrics.horizontalAdvance(mark) + 4
            painter.drawText(
                QRect(
                    text_rect.right() - stamp_width - mark_width - 4,
                    text_rect.top(),
                    mark_width,
                    text_rect.height(),
                ),
                Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                mark,
            )
            stamp_width += mark_width + 4
        title_width = max(10, text_rect.width() - stamp_width - 10 - badge_width)
        elided = option.fontMetrics.elidedText(title, Qt.TextElideMode.ElideRight, title_width)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(
            QRect(text_rect.left(), text_rect.top(), title_width, text_rect.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            elided,
        )
        painter.restore()

    OWNER_MAX_WIDTH = 90

    def _paint_owner(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        text_rect: QRect,
        right: int,
        owner: str,
        selected: bool,
    ) -> int:
        """A small rounded label with the owner (an API token's name) left of the time.

        Returns the width it takes, so the title is elided before it.
        """
        font = QFont(option.font)
        font.setPointSizeF(max(7.0, font.pointSizeF() - 1.5))
        metrics = QFontMetrics(font)
        label = metrics.elidedText(owner, Qt.TextElideMode.ElideRight, self.OWNER_MAX_WIDTH)
        width, height = metrics.horizontalAdvance(label) + 12, metrics.height() + 2
        badge = QRect(
            text_rect.right() - right - 8 - width,
            text_rect.center().y() - height // 2 + 1,
            width,
            height,
        )
        palette = option.palette
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(
            mix_colours(
                palette.color(QPalette.ColorRole.Base),
                palette.color(QPalette.ColorRole.Highlight),
                # Stronger than the selected row's own tint, so it stays visible on it.
                0.45 if selected else 0.2,
            )
        )
        painter.drawRoundedRect(badge, height / 2, height / 2)
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, label)
        painter.setFont(option.font)
        return width + 8

    def updateEditorGeometry(
        self, editor: QWidget, option: QStyleOptionViewItem, index: _Index
    ) -> None:
        """Put the rename box over the title, below a section header if there is one."""
        rect = QRect(option.rect)
        rect.setTop(rect.top() + self._header_height(option, index))
        editor.setGeometry(rect.adjusted(4, 1, -4, -1))
