"""Message search in the sidebar: hits with their snippet, the matched words highlighted.

Titles are filtered at once by the sidebar's own list; messages are searched (FTS5, in
the core) once typing pauses, and only the newest query's answer is shown.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAbstractTextDocumentLayout, QPainter, QPalette, QTextDocument
from PySide6.QtWidgets import (
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
)

from chatdesk.domain import SearchHit
from chatdesk.ui.session_model import relative_time
from chatdesk.ui.theme import mix_colours

HitRole = Qt.ItemDataRole.UserRole + 20
# Typing pauses this long before the messages are searched.
SEARCH_DEBOUNCE_MS = 200
MIN_QUERY_CHARS = 2

_Index = QModelIndex | QPersistentModelIndex


def highlighted_html(text: str, spans: tuple[tuple[int, int], ...], colour: str) -> str:
    """``text`` as HTML with the ``spans`` in bold on a ``colour`` background."""
    out, last = [], 0
    for start, end in spans:
        out.append(html.escape(text[last:start]))
        out.append(f'<b style="background-color:{colour}">{html.escape(text[start:end])}</b>')
        last = end
    out.append(html.escape(text[last:]))
    return "".join(out).replace("\n", " ")


class SearchResultsModel(QAbstractListModel):
    """The hits of the latest message search."""

    def __init__(self, parent: QObject | None = None) -> None:
        """No hits yet."""
        super().__init__(parent)
        self.hits: list[SearchHit] = []

    def set_hits(self, hits: list[SearchHit]) -> None:
        """Show ``hits`` (best first)."""
        self.beginResetModel()
        self.hits = list(hits)
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """How many hits."""
        return 0 if parent.isValid() else len(self.hits)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The hit, its snippet as text, or an accessible description."""
        if not index.isValid() or not 0 <= index.row() < len(self.hits):
            return None
        hit = self.hits[index.row()]
        if role == HitRole:
            return hit
        if role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return hit.snippet
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{hit.title}: {hit.snippet}"
        return None


class SearchHitDelegate(QStyledItemDelegate):
    """Paints a hit: its chat's title and time, then the snippet with the words marked."""

    PADDING = 8

    def _document(self, option: QStyleOptionViewItem, hit: SearchHit) -> QTextDocument:
        palette = option.palette
        base = palette.color(QPalette.ColorRole.Base)
        marker = mix_colours(base, palette.color(QPalette.ColorRole.Highlight), 0.35).name()
        document = QTextDocument()
        document.setDefaultFont(option.font)
        document.setDocumentMargin(0)
        document.setHtml(
            f'<span style="color:{palette.color(QPalette.ColorRole.Text).name()}">'
            f"{highlighted_html(hit.snippet, hit.highlights, marker)}</span>"
        )
        document.setTextWidth(max(60, option.rect.width() - 2 * self.PADDING))
        return document

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:
        """Title line plus up to three lines of snippet."""
        line = option.fontMetrics.height()
        return QSize(120, line * 4 + 2 * self.PADDING)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        """Draw with palette colours only, so light and dark both look right."""
        hit = index.data(HitRole)
        if not isinstance(hit, SearchHit):
            return
        painter.save()
        palette = option.palette
        body = option.rect.adjusted(4, 1, -4, -1)
        if option.state & (QStyle.StateFlag.State_Selected | QStyle.StateFlag.State_MouseOver):
            amount = 0.22 if option.state & QStyle.StateFlag.State_Selected else 0.08
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(
                mix_colours(
                    palette.color(QPalette.ColorRole.Base),
                    palette.color(QPalette.ColorRole.Highlight),
                    amount,
                )
            )
            painter.drawRoundedRect(body, 6, 6)
        text = body.adjusted(self.PADDING - 4, self.PADDING - 2, -(self.PADDING - 4), 0)
        line = option.fontMetrics.height()
        stamp = relative_time(hit.created_at)
        font = option.font
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.Text))
        stamp_width = option.fontMetrics.horizontalAdvance(stamp) + 8
        title = painter.fontMetrics().elidedText(
            hit.title, Qt.TextElideMode.ElideRight, max(20, text.width() - stamp_width)
        )
        painter.drawText(QRect(text.left(), text.top(), text.width(), line), 0, title)
        font.setBold(False)
        painter.setFont(font)
        painter.setPen(palette.color(QPalette.ColorRole.PlaceholderText))
        painter.drawText(
            QRect(text.left(), text.top(), text.width(), line), Qt.AlignmentFlag.AlignRight, stamp
        )
        document = self._document(option, hit)
        painter.translate(text.left(), text.top() + line + 2)
        clip = QRect(0, 0, text.width(), line * 3)
        painter.setClipRect(clip)
        context = QAbstractTextDocumentLayout.PaintContext()
        context.clip = clip.toRectF()
        document.documentLayout().draw(painter, context)
        painter.restore()


class MessageSearch(QObject):
    """Runs the debounced message search for a query box and fills a results model.

    ``search`` is the core's ``manager.search``; ``searched`` is emitted after each
    answer with the query it answered (tests wait on it).
    """

    searched = Signal(str)

    def __init__(
        self,
        search: Callable[..., Awaitable[list[SearchHit]]],
        model: SearchResultsModel,
        start: Callable[[Coroutine[Any, Any, Any]], object],
        parent: QObject | None = None,
    ) -> None:
        """Search with ``search`` into ``model``, running each search with ``start``."""
        super().__init__(parent)
        self._search = search
        self._model = model
        self._start = start
        self._query = ""
        self._ticket = 0
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(SEARCH_DEBOUNCE_MS)
        self._timer.timeout.connect(self._run)

    @property
    def query(self) -> str:
        """The query the results are (or will be) for."""
        return self._query

    def set_query(self, text: str) -> None:
        """The user typed: search once typing pauses (or clear at once when too short)."""
        self._query = text.strip()
        self._ticket += 1
        if len(self._query) < MIN_QUERY_CHARS:
            self._timer.stop()
            self._model.set_hits([])
            return
        self._timer.start()

    def _run(self) -> None:
        self._start(self._fetch(self._ticket, self._query))

    async def _fetch(self, ticket: int, query: str) -> None:
        hits = await self._search(query, limit=50)
        if ticket != self._ticket:
            return  # the user typed on; a newer search is coming
        self._model.set_hits([h for h in hits if h.message_id is not None])
        self.searched.emit(query)


class SearchResultsView(QListView):
    """The list of message hits; activating one asks to open it."""

    hitActivated = Signal(str, str)

    def __init__(self, model: SearchResultsModel, parent: Any = None) -> None:
        """A view over ``model``."""
        super().__init__(parent)
        self.setObjectName("searchResults")
        self.setAccessibleName("searchResults")
        self.setModel(model)
        self.setItemDelegate(SearchHitDelegate(self))
        self.setMouseTracking(True)
        self.setFrameShape(QListView.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        panel = self.palette()
        panel.setColor(QPalette.ColorRole.Base, panel.color(QPalette.ColorRole.Window))
        self.setPalette(panel)
        self.clicked.connect(self._open)
        self.activated.connect(self._open)

    def _open(self, index: QModelIndex) -> None:
        hit = index.data(HitRole)
        if isinstance(hit, SearchHit) and hit.message_id is not None:
            self.hitActivated.emit(hit.session_id, hit.message_id)
