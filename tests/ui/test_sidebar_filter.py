"""The sidebar filter: Esc clears it, and "No chats match" shows where the list is."""

from __future__ import annotations

from datetime import UTC, datetime

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from chatdesk.domain import SessionSummary
from chatdesk.ui.session_list import SessionSidebar


def _sidebar(qtbot: QtBot) -> SessionSidebar:
    sidebar = SessionSidebar()
    qtbot.addWidget(sidebar)
    now = datetime.now(UTC)
    sidebar.model.set_sessions(
        [SessionSummary(f"id{n}", f"Chat {n}", "chat", "local", 2, now, now) for n in range(3)]
    )
    sidebar.resize(280, 600)
    sidebar.show()
    return sidebar


def test_escape_clears_the_filter(qapp: QApplication, qtbot: QtBot) -> None:
    sidebar = _sidebar(qtbot)
    sidebar.filter.setFocus()
    qtbot.keyClicks(sidebar.filter, "zebra")
    assert sidebar.proxy.rowCount() == 0
    qtbot.keyClick(sidebar.filter, Qt.Key.Key_Escape)
    assert sidebar.filter.text() == ""
    assert sidebar.proxy.rowCount() == 3


def test_no_chats_match_shows_where_the_list_is(qapp: QApplication, qtbot: QtBot) -> None:
    sidebar = _sidebar(qtbot)
    qtbot.keyClicks(sidebar.filter, "zebra")
    label = sidebar.empty_label
    qtbot.waitUntil(label.isVisible)
    # Right under the filter, at the top of the (empty) list, not at the sidebar's foot.
    assert label.geometry().top() < sidebar.list.geometry().top() + 40
    assert label.geometry().top() < sidebar.height() // 3
