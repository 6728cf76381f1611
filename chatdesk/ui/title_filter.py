"""The sidebar's title filter: the chats whose title contains what is typed in the search box.

Typing must keep up over 10,000 chats on a busy machine (under 16 ms a keystroke with
layout and paint). A ``QSortFilterProxyModel`` asks Python whether to keep each row, one
call from C++ per row on every keystroke, and that call was the cost. This proxy keeps
instead, in step with the source, a list of folded titles (case and accents removed) and
the sorted list of the source rows that match; a new needle is one list comprehension
(over the previous matches when the needle only grew) and one layout change. Indices map
through that list and a bisection on it, so Qt's work is proportional to what is shown.

Changes of the source while a filter is on (a new chat, a deleted one, a chat moving to
the top, a rename that makes a title match or stop matching, a reset) become the matching
insertions, removals, moves and updates of the proxy's rows. (The source moves single
rows and never reports a layout change, so the proxy does not follow one.)
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, overload

from PySide6.QtCore import (
    QAbstractProxyModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
)

if TYPE_CHECKING:
    from chatdesk.ui.session_model import SessionListModel

_Index = QModelIndex | QPersistentModelIndex


def fold_title(text: str) -> str:
    """``text`` without case or accents, for matching titles as typed ("cafe" finds "Café")."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class TitleFilterProxy(QAbstractProxyModel):
    """The rows of a :class:`SessionListModel` whose title contains a needle, in its order."""

    def __init__(self, source: SessionListModel, parent: QObject | None = None) -> None:
        """A proxy over ``source`` that shows every row until :meth:`set_needle`."""
        super().__init__(parent)
        self._source = source
        self._needle = ""
        # The folded title of every source row, in source order.
        self._folded: list[str] = []
        # The source rows shown, ascending: proxy row n shows source row _matches[n].
        self._matches: list[int] = []
        # Proxy rows announced by a source's "about to" signal, finished by the next one.
        self._pending: tuple[int, int] | None = None
        self.setSourceModel(source)
        for signal, slot in (
            (source.modelAboutToBeReset, self._source_about_to_reset),
            (source.modelReset, self._source_reset),
            (source.rowsInserted, self._source_rows_inserted),
            (source.rowsAboutToBeRemoved, self._source_rows_about_to_be_removed),
            (source.rowsRemoved, self._source_rows_removed),
            (source.rowsAboutToBeMoved, self._source_rows_about_to_be_moved),
            (source.rowsMoved, self._source_rows_moved),
            (source.dataChanged, self._source_data_changed),
        ):
            signal.connect(slot)
        self._refold()

    @property
    def needle(self) -> str:
        """The folded text titles must contain ("" shows every row)."""
        return self._needle

    def set_needle(self, text: str) -> None:
        """Show only the rows whose title contains ``text`` (case and accents ignored)."""
        needle = fold_title(text.strip())
        if needle == self._needle:
            return
        folded = self._folded
        if self._needle and self._needle in needle:
            # One more letter typed: only rows that matched before can match now.
            matches = [row for row in self._matches if needle in folded[row]]
        else:
            matches = self._all_matches(needle)
        self._needle = needle
        # One layout change rather than a removal signal per hidden range (thousands for
        # the first letter typed, each reaching the view and the sidebar's slots); the
        # selection and the current row follow their chats through the persistent indices.
        self.layoutAboutToBeChanged.emit()
        kept = self.persistentIndexList()
        sources = [self._matches[index.row()] for index in kept]
        self._matches = matches
        self.changePersistentIndexList(kept, [self._proxy_index_of(row) for row in sources])
        self.layoutChanged.emit()

    # -- QAbstractProxyModel ---------------------------------------------------------------

    def mapToSource(self, proxy_index: _Index) -> QModelIndex:
        """The source index a proxy index shows."""
        if not proxy_index.isValid() or not 0 <= proxy_index.row() < len(self._matches):
            return QModelIndex()
        return self._source.index(self._matches[proxy_index.row()], proxy_index.column())

    def mapFromSource(self, source_index: _Index) -> QModelIndex:
        """The proxy index showing a source index (invalid when the filter hides it)."""
        if not source_index.isValid():
            return QModelIndex()
        return self._proxy_index_of(source_index.row(), source_index.column())

    def index(self, row: int, column: int = 0, parent: _Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        """The index of a shown row (a flat list: no children)."""
        if parent.isValid() or column != 0 or not 0 <= row < len(self._matches):
            return QModelIndex()
        return self.createIndex(row, column)

    @overload
    def parent(self) -> QObject | None: ...
    @overload
    def parent(self, child: _Index) -> QModelIndex: ...
    def parent(self, child: _Index | None = None) -> QObject | QModelIndex | None:
        """No row has a parent row; without an index, the proxy's owning QObject."""
        if child is None:
            return super().parent()
        return QModelIndex()

    def sibling(self, row: int, column: int, index: _Index) -> QModelIndex:
        """The index at ``row``, ``column`` next to ``index``."""
        return self.index(row, column)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """How many rows the filter shows."""
        return 0 if parent.isValid() else len(self._matches)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008
        """One column, the title."""
        return 0 if parent.isValid() else 1

    def hasChildren(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008
        """Only the root has rows, when any is shown."""
        return not parent.isValid() and bool(self._matches)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """The source's data of the row shown at ``index``."""
        if not index.isValid() or not 0 <= index.row() < len(self._matches):
            return None
        return self._source.data(self._source.index(self._matches[index.row()]), role)

    # -- keeping in step with the source ----------------------------------------------------

    def _all_matches(self, needle: str) -> list[int]:
        if not needle:
            return list(range(len(self._folded)))
        return [row for row, title in enumerate(self._folded) if needle in title]

    def _refold(self) -> None:
        self._folded = [fold_title(title) for title in self._source.titles()]
        self._matches = self._all_matches(self._needle)

    def _proxy_index_of(self, source_row: int, column: int = 0) -> QModelIndex:
        position = bisect_left(self._matches, source_row)
        if position < len(self._matches) and self._matches[position] == source_row:
            return self.createIndex(position, column)
        return QModelIndex()

    def _proxy_span(self, first: int, last: int) -> tuple[int, int]:
        """The proxy rows [start, stop) that show source rows ``first`` to ``last``."""
        return bisect_left(self._matches, first), bisect_right(self._matches, last)

    def _source_about_to_reset(self) -> None:
        self.beginResetModel()

    def _source_reset(self) -> None:
        self._refold()
        self.endResetModel()

    def _source_rows_inserted(self, parent: QModelIndex, first: int, last: int) -> None:
        if parent.isValid():
            return
        count = last - first + 1
        new_folded = [
            fold_title(self._source.session_row(row).title) for row in range(first, last + 1)
        ]
        self._folded[first:first] = new_folded
        position = bisect_left(self._matches, first)
        # The rows after the insertion move down in the source; the proxy rows stay.
        self._matches[position:] = [row + count for row in self._matches[position:]]
        shown = [first + n for n, title in enumerate(new_folded) if self._needle in title]
        if shown:
            self.beginInsertRows(QModelIndex(), position, position + len(shown) - 1)
            self._matches[position:position] = shown
            self.endInsertRows()

    def _source_rows_about_to_be_removed(self, parent: QModelIndex, first: int, last: int) -> None:
        if parent.isValid():
            return
        start, stop = self._proxy_span(first, last)
        if stop > start:
            # Announced while the source still holds the rows: views may read them now.
            self.beginRemoveRows(QModelIndex(), start, stop - 1)
            self._pending = (start, stop)

    def _source_rows_removed(self, parent: QModelIndex, first: int, last: int) -> None:
        if parent.isValid():
            return
        count = last - first + 1
        del self._folded[first : last + 1]
        start, stop = self._proxy_span(first, last)
        self._matches[start:] = [row - count for row in self._matches[stop:]]
        if self._pending is not None:
            self._pending = None
            self.endRemoveRows()

    def _source_rows_about_to_be_moved(
        self, parent: QModelIndex, first: int, last: int, destination: QModelIndex, row: int
    ) -> None:
        if parent.isValid() or destination.isValid():
            return
        start, stop = self._proxy_span(first, last)
        target = bisect_left(self._matches, row)
        # Shown rows move in the proxy only if they pass a shown row on their way.
        if stop > start and not start <= target <= stop:
            self.beginMoveRows(QModelIndex(), start, stop - 1, QModelIndex(), target)
            self._pending = (start, stop)

    def _source_rows_moved(
        self, parent: QModelIndex, first: int, last: int, destination: QModelIndex, row: int
    ) -> None:
        if parent.isValid() or destination.isValid():
            return
        count = last - first + 1
        moved = self._folded[first : last + 1]
        del self._folded[first : last + 1]
        landing = row - count if row > last else row
        self._folded[landing:landing] = moved
        start, stop = self._proxy_span(first, last)
        target = bisect_left(self._matches, row)
        block = [landing + source_row - first for source_row in self._matches[start:stop]]
        if row > last:
            passed = [source_row - count for source_row in self._matches[stop:target]]
            self._matches[start:target] = passed + block
        else:
            passed = [source_row + count for source_row in self._matches[target:start]]
            self._matches[target:stop] = block + passed
        if self._pending is not None:
            self._pending = None
            self.endMoveRows()

    def _source_data_changed(
        self, top_left: QModelIndex, bottom_right: QModelIndex, roles: Sequence[int] = ()
    ) -> None:
        if not top_left.isValid() or top_left.parent().isValid():
            return
        for source_row in range(top_left.row(), bottom_right.row() + 1):
            folded = fold_title(self._source.session_row(source_row).title)
            self._folded[source_row] = folded
            position = bisect_left(self._matches, source_row)
            shown = position < len(self._matches) and self._matches[position] == source_row
            matches = self._needle in folded
            if shown and matches:
                changed = self.createIndex(position, 0)
                self.dataChanged.emit(changed, changed, list(roles))
            elif shown:
                # Renamed out of the filter.
                self.beginRemoveRows(QModelIndex(), position, position)
                del self._matches[position]
                self.endRemoveRows()
            elif matches:
                # Renamed into the filter.
                self.beginInsertRows(QModelIndex(), position, position)
                self._matches.insert(position, source_row)
                self.endInsertRows()
