"""The window's search, Ctrl+F, Trash with Undo, pin, archive, branches, import and export."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QLineEdit, QPushButton, QToolButton
from pytestqt.qtbot import QtBot

from chatdesk.ui.main_window import MainWindow
from chatdesk.ui.session_model import PinnedRole, SessionIdRole
from tests.core.conftest import query
from tests.ui.harness import Harness, run, wait_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "chatgpt"


def fill_long_chat(qtbot: QtBot, window: MainWindow, title: str, special: int) -> list[str]:
    """A chat of 150 messages; message ``special`` talks about a pelican. Returns ids."""
    manager = window.manager
    session = run(qtbot, manager.create_session(title))
    ids = []
    for i in range(150):
        text = "the pelican dives for fish" if i == special else f"ordinary message {i}"
        role = "user" if i % 2 == 0 else "assistant"
        ids.append(run(qtbot, manager.add_message(session.id, role, text)).id)
    return [session.id, *ids]


def visible_rows(window: MainWindow) -> list[str]:
    """The ids of the sidebar rows shown, top to bottom."""
    proxy = window.sidebar.proxy
    return [proxy.index(r, 0).data(SessionIdRole) for r in range(proxy.rowCount())]


def test_search_shows_hits_and_opening_one_scrolls_to_the_message(
    harness: Harness, qtbot: QtBot
) -> None:
    window = harness.window()
    session_id, *ids = fill_long_chat(qtbot, window, "Birds", special=3)
    run(qtbot, window.manager.create_session("Pelican trip"))
    other = window.current_session_id
    controller = window.findkeep
    search_box = window.findChild(QLineEdit, "sessionFilter")

    with qtbot.waitSignal(controller.search.searched, timeout=10_000):
        qtbot.keyClicks(search_box, "pelic")
    # Titles at once (the filtered list), messages after the pause.
    assert [window.sidebar.proxy.index(r, 0).data() for r in range(1)] == ["Pelican trip"]
    hits = controller.results_model.hits
    assert [(h.session_id, h.message_id) for h in hits] == [(session_id, ids[3])]
    assert "pelican" in hits[0].snippet
    assert [hits[0].snippet[a:b] for a, b in hits[0].highlights] == ["pelican"]
    assert controller.results.isVisible()
    assert window.current_session_id == other  # typing opens nothing

    view = controller.results
    qtbot.mouseClick(
        view.viewport(),
        Qt.MouseButton.LeftButton,
        pos=view.visualRect(view.model().index(0, 0)).center(),
    )
    wait_for(qtbot, lambda: window.current_session_id == session_id)
    chat = window.chat_view
    wait_for(qtbot, lambda: chat.highlighted_message_id == ids[3])
    # The message was on an older page: it was loaded, scrolled to and outlined.
    row = chat.model().row_of(ids[3])
    assert row is not None
    rect = chat.visualRect(chat.model().index(row, 0))
    assert chat.viewport().rect().intersects(rect)
    wait_for(
        qtbot,
        lambda: any(
            w.message.id == ids[3] and w._bubble._highlighted for w in chat.message_widgets()
        ),
    )

    # A query that is cleared hides the results.
    search_box.clear()
    assert not controller.results.isVisible() and controller.results_model.hits == []


def test_ctrl_f_finds_in_the_open_chat_next_and_previous(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    session_id = window.current_session_id
    manager = window.manager
    wanted = []
    for i in range(6):
        text = f"Ça marche, café number {i}" if i % 2 == 0 else f"tea number {i}"
        message = run(qtbot, manager.add_message(session_id, "user", text))
        if i % 2 == 0:
            wanted.append(message.id)
    bar = window.findkeep.find_bar
    qtbot.keyClick(window, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert bar.isVisible() and bar.edit.hasFocus()
    qtbot.keyClicks(bar.edit, "CAFE")
    assert bar.matches == wanted
    assert bar.count.text() == "3 of 3"
    assert window.chat_view.highlighted_message_id == wanted[2]
    qtbot.keyClick(bar.edit, Qt.Key.Key_Return)
    assert bar.count.text() == "1 of 3" and window.chat_view.highlighted_message_id == wanted[0]
    qtbot.keyClick(bar.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert bar.count.text() == "3 of 3"
    qtbot.keyClick(bar.edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert bar.count.text() == "2 of 3" and window.chat_view.highlighted_message_id == wanted[1]
    bar.edit.setText("nothing like this")
    assert bar.count.text() == "No matches"
    qtbot.keyClick(bar.edit, Qt.Key.Key_Escape)
    assert not bar.isVisible() and window.chat_view.highlighted_message_id is None


def test_delete_moves_to_the_trash_and_undo_brings_it_back(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    manager = window.manager
    doomed = run(qtbot, manager.create_session("Doomed chat"))
    run(qtbot, manager.add_message(doomed.id, "user", "precious words"))
    sidebar = window.sidebar
    wait_for(qtbot, lambda: sidebar.model.row_of(doomed.id) is not None)
    sidebar.select_session(doomed.id)
    wait_for(qtbot, lambda: window.current_session_id == doomed.id)

    qtbot.keyClick(sidebar.list, Qt.Key.Key_Delete)
    wait_for(qtbot, lambda: sidebar.model.row_of(doomed.id) is None)
    undo = window.findkeep.undo
    wait_for(qtbot, undo.isVisible)
    assert "Doomed chat" in undo.text.text()
    assert window.current_session_id != doomed.id
    assert run(qtbot, manager.search("precious")) == []

    qtbot.mouseClick(undo.findChild(QPushButton, "undoButton"), Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: sidebar.model.row_of(doomed.id) is not None)
    wait_for(qtbot, lambda: window.current_session_id == doomed.id)
    assert not undo.isVisible()
    assert len(run(qtbot, manager.search("precious"))) == 1


def test_the_trash_view_restores_and_deletes_for_good(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    manager = window.manager
    first = run(qtbot, manager.create_session("First in trash"))
    second = run(qtbot, manager.create_session("Second in trash"))
    for session in (first, second):
        window.delete_session(session.id)
    wait_for(qtbot, lambda: len(run(qtbot, manager.list_sessions(trashed_only=True))) == 2)

    dialog = window.findkeep.open_bin(trash=True)
    wait_for(qtbot, lambda: dialog.list.count() == 2)
    assert dialog.list.item(0).text().startswith("Second in trash")
    dialog.list.setCurrentRow(1)
    dialog.restore_button.click()
    wait_for(qtbot, lambda: dialog.list.count() == 1)
    wait_for(qtbot, lambda: window.sidebar.model.row_of(first.id) is not None)

    dialog.list.setCurrentRow(0)
    harness.confirm_answer = False
    dialog.delete_button.click()
    assert dialog.list.count() == 1
    harness.confirm_answer = True
    dialog.delete_button.click()
    wait_for(qtbot, lambda: dialog.list.count() == 0)
    assert dialog.empty.isVisible()
    assert run(qtbot, manager.get_session(second.id)) is None
    dialog.close()


def test_pin_keeps_a_chat_on_top_and_archive_moves_it_away(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    manager = window.manager
    old = run(qtbot, manager.create_session("Old but important"))
    for title in ("Newer one", "Newest one"):
        run(qtbot, manager.create_session(title))
    sidebar = window.sidebar
    wait_for(qtbot, lambda: sidebar.proxy.rowCount() == 4)
    assert visible_rows(window)[0] != old.id

    sidebar.pinRequested.emit(old.id)
    wait_for(qtbot, lambda: visible_rows(window)[0] == old.id)
    assert sidebar.proxy.index(0, 0).data(PinnedRole)
    # New activity elsewhere does not push the pinned chat down.
    newest = run(qtbot, manager.create_session("Brand new"))
    run(qtbot, manager.add_message(newest.id, "user", "hi"))
    wait_for(qtbot, lambda: sidebar.model.row_of(newest.id) is not None)
    assert visible_rows(window)[0] == old.id

    sidebar.archiveRequested.emit(old.id)
    wait_for(qtbot, lambda: sidebar.model.row_of(old.id) is None)
    dialog = window.findkeep.open_bin(trash=False)
    wait_for(qtbot, lambda: dialog.list.count() == 1)
    dialog.list.setCurrentRow(0)
    dialog.restore_button.click()
    wait_for(qtbot, lambda: sidebar.model.row_of(old.id) is not None)
    assert visible_rows(window)[0] == old.id  # still pinned
    dialog.close()


def test_branch_from_here_opens_a_new_chat_linked_both_ways(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    manager = window.manager
    session_id = window.current_session_id
    question = run(qtbot, manager.add_message(session_id, "user", "Plan a trip"))
    answer = run(qtbot, manager.add_message(session_id, "assistant", "Go to Lisbon"))
    run(qtbot, manager.add_message(session_id, "user", "Something else"))
    window.chat_view.scroll_to_newest()
    widget = next(w for w in window.chat_view.message_widgets() if w.message.id == answer.id)
    branch_button = widget.findChild(QToolButton, "branchMessageButton")
    assert not branch_button.isHidden()
    branch_button.click()
    wait_for(qtbot, lambda: window.current_session_id != session_id)
    branch = run(qtbot, manager.require_session(window.current_session_id))
    assert [m.content for m in branch.history] == ["Plan a trip", "Go to Lisbon"]
    assert branch.history[0].id != question.id
    assert branch.parent_session_id == session_id
    links = window.findkeep.branch_button
    wait_for(qtbot, lambda: links.isVisible() and links.text() == "Branch of…")

    # The parent lists its branch; choosing the parent link goes back to the message.
    run(qtbot, window.open_session(session_id))
    wait_for(qtbot, lambda: links.isVisible() and links.text() == "Branches (1)")
    run(qtbot, window.open_session(branch.id))
    wait_for(qtbot, lambda: links.text() == "Branch of…")
    links.menu().actions()[0].trigger()
    wait_for(qtbot, lambda: window.current_session_id == session_id)
    wait_for(qtbot, lambda: window.chat_view.highlighted_message_id == answer.id)


def test_dropping_an_export_imports_it_and_export_writes_json(
    harness: Harness, qtbot: QtBot, tmp_path: Path
) -> None:
    window = harness.window()
    controller = window.findkeep
    data = QMimeData()
    data.setUrls([QUrl.fromLocalFile(str(FIXTURES / "conversations.json"))])
    drop = QDropEvent(
        QPointF(QPoint(300, 300)),
        Qt.DropAction.CopyAction,
        data,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(controller.interchangeFinished, timeout=10_000) as finished:
        # As Qt delivers a drop to the window (QApplication.sendEvent drops a synthetic
        # drop event that no real drag started).
        window.event(drop)
    assert finished.args == ["Imported 4 chat(s) from conversations.json."]
    assert drop.isAccepted()
    model = window.sidebar.model

    def titles() -> set[str]:
        return {model.session_row(r).title for r in range(model.rowCount())}

    # The first chat, the imported one and its two branches; the conversation archived
    # in ChatGPT went to the Archive.
    wait_for(qtbot, lambda: len(titles()) == 4)
    assert "Crème brûlée at home" in titles()
    assert "What is in this picture?" not in titles()
    assert not controller.progress.isVisible()

    # A file that is not an export: a clear message, nothing added.
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}', "utf-8")
    message = run(qtbot, controller.import_from(bad))
    assert "not a ChatGPT export" in message
    assert len(run(qtbot, window.manager.list_sessions())) == 5

    out = tmp_path / "all.json"
    run(qtbot, controller.export_to(None, out, "json"))
    assert len(json.loads(out.read_text("utf-8"))["sessions"]) == 5


def test_opening_the_window_purges_chats_thirty_days_in_the_trash(
    harness: Harness, qtbot: QtBot, tmp_path: Path
) -> None:
    window = harness.window()
    manager = window.manager
    old = run(qtbot, manager.create_session("Long gone"))
    recent = run(qtbot, manager.create_session("Just binned"))
    run(qtbot, manager.trash_session(old.id))
    run(qtbot, manager.trash_session(recent.id))
    harness.close(window)
    query(
        tmp_path / "chat.db",
        "UPDATE sessions SET trashed_at = trashed_at - ? WHERE id = ?",
        (31 * 86400, old.id),
    )
    window = harness.window()
    wait_for(
        qtbot,
        lambda: (
            [s.id for s in run(qtbot, window.manager.list_sessions(trashed_only=True))]
            == [recent.id]
        ),
    )


def test_the_title_filter_ignores_case_and_accents_and_keeps_up_with_new_chats(
    qapp: object,
) -> None:
    from chatdesk.domain import SessionSummary, utcnow
    from chatdesk.ui.session_model import SessionListModel
    from chatdesk.ui.title_filter import TitleFilterProxy

    now = utcnow()
    model = SessionListModel()
    model.set_sessions(
        SessionSummary(str(i), title, "chat", "local", 0, now, now)
        for i, title in enumerate(["Café crème", "CAFE plans", "Tea", "Other"])
    )
    proxy = TitleFilterProxy(model)
    removals: list[object] = []
    proxy.rowsRemoved.connect(lambda *args: removals.append(args))
    proxy.set_needle("cafe")
    titles = sorted(proxy.index(r, 0).data() for r in range(proxy.rowCount()))
    assert titles == ["CAFE plans", "Café crème"]
    assert removals == []  # one layout change, not a signal per hidden row
    model.upsert(SessionSummary("new", "Décaféiné", "chat", "local", 0, now, now))
    model.upsert(SessionSummary("tea2", "More tea", "chat", "local", 0, now, now))
    assert proxy.rowCount() == 3
    proxy.set_needle("")
    assert proxy.rowCount() == 6
