"""The sidebar's title filter shows exactly the chats whose title contains the needle, in
the list's order, and tells its views each change as it happens: while the needle changes
and while chats are added, deleted, moved to the top, renamed and reloaded under it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtWidgets import QApplication

from chatdesk.domain import SessionSummary
from chatdesk.ui.session_model import SessionIdRole, SessionListModel
from chatdesk.ui.title_filter import TitleFilterProxy, fold_title

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

# A broken rule of the model (e.g. a bad row range in a signal) is a Qt warning: a failure.
pytestmark = pytest.mark.qt_log_level_fail("WARNING")


def chat(session_id: str, title: str, minutes: int = 0, pinned: bool = False) -> SessionSummary:
    """A chat last active ``minutes`` after START."""
    when = START + timedelta(minutes=minutes)
    return SessionSummary(session_id, title, "chat", "local", 1, when, when, pinned=pinned)


class Mirror:
    """The proxy's rows as a view learns them: only from the proxy's signals.

    After any change it must equal the rows the proxy actually shows; a wrong row range
    in an insertion, removal or move makes it differ.
    """

    def __init__(self, proxy: TitleFilterProxy) -> None:
        self.proxy = proxy
        self.ids = self.read()
        proxy.rowsInserted.connect(self._inserted)
        proxy.rowsAboutToBeRemoved.connect(self._about_to_remove)
        proxy.rowsRemoved.connect(self._removed)
        proxy.rowsMoved.connect(self._moved)
        proxy.dataChanged.connect(self._data_changed)
        proxy.layoutChanged.connect(self._reread)
        proxy.modelReset.connect(self._reread)

    def read(self) -> list[str]:
        return [self.proxy.index(r, 0).data(SessionIdRole) for r in range(self.proxy.rowCount())]

    def _inserted(self, _parent: QModelIndex, first: int, last: int) -> None:
        self.ids[first:first] = [
            self.proxy.index(r, 0).data(SessionIdRole) for r in range(first, last + 1)
        ]

    def _about_to_remove(self, _parent: QModelIndex, first: int, last: int) -> None:
        # Announced while the rows can still be read.
        assert [self.proxy.index(r, 0).data(SessionIdRole) for r in range(first, last + 1)] == (
            self.ids[first : last + 1]
        )

    def _removed(self, _parent: QModelIndex, first: int, last: int) -> None:
        del self.ids[first : last + 1]

    def _moved(self, _p: QModelIndex, first: int, last: int, _d: QModelIndex, row: int) -> None:
        block = self.ids[first : last + 1]
        del self.ids[first : last + 1]
        landing = row - len(block) if row > last else row
        self.ids[landing:landing] = block

    def _data_changed(self, top_left: QModelIndex, bottom_right: QModelIndex, *_: Any) -> None:
        for r in range(top_left.row(), bottom_right.row() + 1):
            assert self.proxy.index(r, 0).data(SessionIdRole) == self.ids[r]

    def _reread(self) -> None:
        self.ids = self.read()


def expected(model: SessionListModel, needle: str) -> list[str]:
    """The ids of the source rows whose folded title holds ``needle``, in source order."""
    return [
        model.session_row(r).id
        for r in range(model.rowCount())
        if fold_title(needle.strip()) in fold_title(model.session_row(r).title)
    ]


def filtered(*titles: str, needle: str) -> tuple[SessionListModel, TitleFilterProxy, Mirror]:
    """A model of chats titled ``titles`` (the first most recent), filtered by ``needle``."""
    model = SessionListModel()
    model.set_sessions(chat(f"c{n}", t, -n) for n, t in enumerate(titles))
    proxy = TitleFilterProxy(model)
    mirror = Mirror(proxy)
    proxy.set_needle(needle)
    return model, proxy, mirror


def shown(proxy: TitleFilterProxy) -> list[str]:
    return [proxy.index(r, 0).data() for r in range(proxy.rowCount())]


def test_a_new_chat_appears_under_the_filter_only_if_its_title_matches(qapp: QApplication) -> None:
    model, proxy, mirror = filtered("Tea one", "Coffee", "Tea two", needle="tea")
    model.upsert(chat("new", "Green TEA", 10))
    model.upsert(chat("other", "Juice", 11))
    model.upsert(chat("old", "Tea, oldest", -10))
    assert shown(proxy) == ["Green TEA", "Tea one", "Tea two", "Tea, oldest"]
    assert mirror.ids == mirror.read() == expected(model, "tea")


def test_a_deleted_chat_leaves_the_filtered_list(qapp: QApplication) -> None:
    model, proxy, mirror = filtered("Tea one", "Coffee", "Tea two", "Tea three", needle="tea")
    model.remove("c2")  # shown
    model.remove("c1")  # hidden
    assert shown(proxy) == ["Tea one", "Tea three"]
    assert mirror.ids == mirror.read() == expected(model, "tea")


def test_a_chat_touched_moves_to_the_top_of_the_filtered_list(qapp: QApplication) -> None:
    model, proxy, mirror = filtered("Tea one", "Coffee", "Tea two", "Juice", needle="tea")
    moves: list[tuple[int, int, int]] = []
    proxy.rowsMoved.connect(lambda _p, first, last, _d, row: moves.append((first, last, row)))
    kept = QPersistentModelIndex(proxy.index(1, 0))  # "Tea two", e.g. the selected row
    model.touch("c2", START + timedelta(hours=1))
    assert shown(proxy) == ["Tea two", "Tea one"]
    assert moves == [(1, 1, 0)]
    assert kept.row() == 0 and kept.data() == "Tea two"
    # A hidden chat moving past shown ones changes nothing that is shown.
    model.touch("c3", START + timedelta(hours=2))
    assert moves == [(1, 1, 0)]
    assert shown(proxy) == ["Tea two", "Tea one"]
    assert mirror.ids == mirror.read() == expected(model, "tea")


def test_a_chat_unpinned_moves_down_the_filtered_list(qapp: QApplication) -> None:
    model, proxy, mirror = filtered("Tea one", "Coffee", "Tea two", "Tea three", needle="tea")
    model.upsert(chat("c3", "Tea three", -3, pinned=True))
    assert shown(proxy) == ["Tea three", "Tea one", "Tea two"]
    kept = QPersistentModelIndex(proxy.index(0, 0))
    model.upsert(chat("c3", "Tea three", -3, pinned=False))
    assert shown(proxy) == ["Tea one", "Tea two", "Tea three"]
    assert kept.row() == 2 and kept.data() == "Tea three"
    assert mirror.ids == mirror.read() == expected(model, "tea")


def test_a_rename_can_make_a_chat_match_or_stop_matching(qapp: QApplication) -> None:
    model, proxy, mirror = filtered("Tea one", "Coffee", "Tea two", needle="tea")
    changed: list[int] = []
    proxy.dataChanged.connect(lambda top_left, *_: changed.append(top_left.row()))
    assert model.setData(model.index(1), "Coffee or tea")
    assert shown(proxy) == ["Tea one", "Coffee or tea", "Tea two"]
    assert model.setData(model.index(0), "Breakfast")
    assert shown(proxy) == ["Coffee or tea", "Tea two"]
    assert model.setData(model.index(2), "Tea two, renamed")
    assert shown(proxy) == ["Coffee or tea", "Tea two, renamed"] and changed[-1] == 1
    assert mirror.ids == mirror.read() == expected(model, "tea")


def test_a_rename_through_upsert_moves_and_refilters_the_chat(qapp: QApplication) -> None:
    model, proxy, mirror = filtered("Tea one", "Coffee", "Tea two", needle="tea")
    model.upsert(chat("c1", "Tea at last", 30))  # newer and renamed into the filter
    assert shown(proxy) == ["Tea at last", "Tea one", "Tea two"]
    model.upsert(chat("c2", "Water", 40))  # newer and renamed out of it
    assert shown(proxy) == ["Tea at last", "Tea one"]
    assert mirror.ids == mirror.read() == expected(model, "tea")


def test_reloading_the_chats_keeps_the_filter(qapp: QApplication) -> None:
    model, proxy, mirror = filtered("Tea one", "Coffee", needle="tea")
    model.set_sessions([chat("x", "Mint tea"), chat("y", "Cocoa"), chat("z", "Tea", -1)])
    assert shown(proxy) == ["Mint tea", "Tea"]
    assert mirror.ids == mirror.read() == expected(model, "tea")


def test_a_longer_needle_narrows_and_a_shorter_one_widens(qapp: QApplication) -> None:
    model, proxy, mirror = filtered("Café crème", "cafe plans", "Cabin", "Tea", needle="ca")
    assert shown(proxy) == ["Café crème", "cafe plans", "Cabin"]
    proxy.set_needle("caf")
    assert shown(proxy) == ["Café crème", "cafe plans"]
    kept = QPersistentModelIndex(proxy.index(1, 0))
    proxy.set_needle("cafe p")
    assert shown(proxy) == ["cafe plans"]
    assert kept.row() == 0
    proxy.set_needle("c")
    assert shown(proxy) == ["Café crème", "cafe plans", "Cabin"]
    assert kept.row() == 1 and kept.data() == "cafe plans"
    proxy.set_needle("zebra")
    assert shown(proxy) == [] and not kept.isValid()
    proxy.set_needle("  ")
    assert len(shown(proxy)) == 4
    assert mirror.ids == mirror.read() == expected(model, "")


def test_edits_and_flags_reach_the_source_row(qapp: QApplication) -> None:
    model, proxy, _mirror = filtered("Tea one", "Coffee", "Tea two", needle="two")
    index = proxy.index(0, 0)
    assert index.flags() & Qt.ItemFlag.ItemIsEditable
    assert proxy.setData(index, "Two teas")
    assert model.session_row(model.row_of("c2") or 0).title == "Two teas"
    assert proxy.mapToSource(index).row() == model.row_of("c2")
    assert not proxy.mapFromSource(model.index(model.row_of("c1") or 0)).isValid()


TITLES = ("Café", "cafe plans", "Tea", "CAFÉ TEA", "Notes", "plan", "Ünïcode", "tea cup")
NEEDLES = ("", "c", "ca", "caf", "cafe", "é", "e", "te", "tea", "plan", "u", "x", "nic")

operations = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 40), st.sampled_from(TITLES)),
        st.tuples(st.just("remove"), st.integers(0, 40)),
        st.tuples(st.just("touch"), st.integers(0, 40)),
        st.tuples(st.just("rename"), st.integers(0, 40), st.sampled_from(TITLES)),
        st.tuples(st.just("upsert"), st.integers(0, 3), st.sampled_from(TITLES), st.booleans()),
        st.tuples(st.just("pin"), st.integers(0, 40)),
        st.tuples(st.just("needle"), st.sampled_from(NEEDLES)),
        st.tuples(st.just("reload"), st.lists(st.sampled_from(TITLES), max_size=6)),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(
    first=st.lists(st.sampled_from(TITLES), max_size=8),
    needle=st.sampled_from(NEEDLES),
    steps=operations,
)
def test_the_filter_always_shows_the_matching_chats_in_order(
    qapp: QApplication, first: list[str], needle: str, steps: list[tuple[Any, ...]]
) -> None:
    model, proxy, mirror = filtered(*first, needle=needle)
    clock = 100
    made = 0
    for step in steps:
        clock += 1
        rows = model.rowCount()
        # A row the user has selected: it must follow its chat, or go when the chat does.
        held = QPersistentModelIndex(proxy.index(0, 0))
        held_id = held.data(SessionIdRole)
        kind = step[0]
        if kind == "add":
            made += 1
            model.upsert(chat(f"n{made}", step[2], clock - step[1]))
        elif kind == "needle":
            needle = step[1]
            proxy.set_needle(needle)
        elif kind == "reload":
            made += 1
            model.set_sessions(chat(f"r{made}-{n}", t, -n) for n, t in enumerate(step[1]))
        elif rows:
            target = model.session_row(step[1] % rows)
            if kind == "remove":
                model.remove(target.id)
            elif kind == "touch":
                model.touch(target.id, START + timedelta(minutes=clock))
            elif kind == "pin":
                # Pinned chats lead the list: (un)pinning moves a chat up or down.
                minutes = (target.updated_at - START) / timedelta(minutes=1)
                model.upsert(chat(target.id, target.title, int(minutes), not target.pinned))
            elif kind == "rename":
                model.setData(model.index(step[1] % rows), step[2])
            else:
                # Pinning moves a chat up, unpinning down past the pinned ones.
                pinned = target.pinned != step[3]
                model.upsert(chat(target.id, step[2], clock - 50, pinned=pinned))
        wanted = expected(model, needle)
        assert mirror.read() == wanted
        assert mirror.ids == wanted
        if held_id is not None and held_id in wanted and kind != "reload":
            assert held.data(SessionIdRole) == held_id
        elif held_id is not None:
            assert not held.isValid()
        for proxy_row, session_id in enumerate(wanted):
            source = proxy.mapToSource(proxy.index(proxy_row, 0))
            assert source.row() == model.row_of(session_id)
            assert proxy.mapFromSource(source).row() == proxy_row
