"""Every Qt item model of the window passes Qt's own model checks (``qtmodeltester``),
also while rows are inserted, moved, renamed, removed and paged in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import QAbstractItemModel, Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from chatdesk.domain import Message, Session
from chatdesk.ui.message_model import MessageListModel
from chatdesk.ui.session_model import SessionListModel
from chatdesk.ui.title_filter import TitleFilterProxy

START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

# Qt's model tester reports a broken rule as a Qt warning: here, a warning fails the test.
pytestmark = pytest.mark.qt_log_level_fail("WARNING")


def sessions(count: int) -> list[Session]:
    """``count`` chats, the later ones more recently active, and two scheduled tasks."""
    chats = [
        Session(title=f"Chat {n}", updated_at=START + timedelta(minutes=n)) for n in range(count)
    ]
    tasks = [
        Session(title=f"Task {n}", kind="task", updated_at=START + timedelta(minutes=n))
        for n in range(2)
    ]
    return chats + tasks


def titles(model: QAbstractItemModel) -> list[str]:
    """The titles in display order."""
    return [model.index(row, 0).data() for row in range(model.rowCount())]


def test_the_session_list_model_passes_while_rows_move(
    qtmodeltester: ModelTester, qtbot: QtBot
) -> None:
    model = SessionListModel()
    listed = sessions(6)
    model.set_sessions(listed)
    qtmodeltester.check(model)
    assert titles(model)[:2] == ["Chat 5", "Chat 4"] and titles(model)[-1] == "Task 0"

    # The oldest chat becomes active: one row moves up to the top, the others stay.
    model.touch(listed[0].id, START + timedelta(hours=1))
    assert titles(model)[:2] == ["Chat 0", "Chat 5"]
    # Newer activity written back by the manager moves another row up past it.
    listed[3].updated_at = START + timedelta(hours=2)
    model.upsert(listed[3])
    assert titles(model)[0] == "Chat 3"
    # Inserted, renamed in place, removed.
    model.upsert(Session(title="Brand new", updated_at=START + timedelta(hours=3)))
    assert titles(model)[0] == "Brand new"
    assert model.setData(model.index(1, 0), "Renamed", Qt.ItemDataRole.EditRole)
    model.remove(listed[5].id)
    assert "Chat 5" not in titles(model)
    qtmodeltester.check(model)


def test_the_title_filter_passes_while_its_source_changes(
    qtmodeltester: ModelTester, qtbot: QtBot
) -> None:
    model = SessionListModel()
    listed = sessions(5)
    model.set_sessions(listed)
    proxy = TitleFilterProxy(model)
    qtmodeltester.check(proxy)

    proxy.set_needle("chat")
    assert len(titles(proxy)) == 5
    model.touch(listed[1].id, START + timedelta(hours=1))  # a move under the filter
    assert titles(proxy)[0] == "Chat 1"
    model.touch(listed[0].id, START + timedelta(hours=2))  # and another
    model.touch(listed[5].id, START + timedelta(hours=3))  # a hidden task moves in its section
    assert titles(proxy)[:2] == ["Chat 0", "Chat 1"]
    model.upsert(Session(title="Holiday", updated_at=START + timedelta(hours=2)))  # filtered out
    assert "Holiday" not in titles(proxy)
    model.upsert(Session(title="New chat", updated_at=START + timedelta(hours=4)))  # shown
    assert titles(proxy)[0] == "New chat"
    # Renamed in place: out of the filter, back into it, and within it.
    assert model.setData(model.index(model.row_of(listed[2].id) or 0, 0), "Holiday trip")
    assert "Holiday trip" not in titles(proxy)
    assert model.setData(model.index(model.row_of(listed[2].id) or 0, 0), "Holiday chat")
    assert "Holiday chat" in titles(proxy)
    assert model.setData(model.index(model.row_of(listed[3].id) or 0, 0), "Chat three")
    model.remove(listed[4].id)  # shown
    model.remove(listed[6].id)  # hidden
    proxy.set_needle("")
    assert len(titles(proxy)) == 7
    proxy.set_needle("ho")
    assert titles(proxy) == ["Holiday", "Holiday chat"]
    model.set_sessions(sessions(3))  # reloaded under the filter
    assert titles(proxy) == []
    proxy.set_needle("task")
    assert titles(proxy) == ["Task 1", "Task 0"]
    qtmodeltester.check(proxy)


def test_the_message_model_passes_while_pages_load_and_replies_grow(
    qtmodeltester: ModelTester, qtbot: QtBot
) -> None:
    session = Session(title="Long chat")
    for n in range(120):
        role = "user" if n % 2 == 0 else "assistant"
        session.history.append(Message(role=role, content=f"message {n}"))
    model = MessageListModel()
    model.set_session(session, page_size=50)
    qtmodeltester.check(model)
    assert model.rowCount() == 50 and model.index(0, 0).data() == "message 70"

    # Older pages are prepended; the last one is short.
    assert model.load_older(50) == 50
    assert model.load_older(50) == 20
    assert model.load_older(50) == 0
    assert model.rowCount() == 120 and model.index(0, 0).data() == "message 0"

    # A new question and a streamed reply: rows appended, the reply's row updated.
    session.history.append(Message(role="user", content="one more"))
    model.on_message_added(session.id)
    reply = Message(role="assistant", content="", status="streaming")
    session.history.append(reply)
    model.on_message_added(session.id)
    reply.content = "a streamed answer"
    model.on_message_updated(session.id, reply.id)
    model.flush_updates()
    assert model.index(model.rowCount() - 1, 0).data() == "a streamed answer"
    # Events of another session change nothing here.
    model.on_message_added("another session")
    # The history is truncated (an edit): the latest page is shown anew.
    del session.history[10:]
    model.on_history_replaced(session.id)
    assert model.rowCount() == 10
    model.set_session(None)
    assert model.rowCount() == 0
    model.set_session(session)
    qtmodeltester.check(model)
