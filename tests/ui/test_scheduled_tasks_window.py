"""Scheduled tasks in the real main window: create, run, pause and delete from the sidebar's
Scheduled section, with a real TaskScheduler, SQLite file and the OpenAI test server."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QWidget
from pytestqt.qtbot import QtBot

from chatdesk.scheduler import TaskScheduler
from chatdesk.ui.main_window import MainWindow
from chatdesk.ui.task_dialog import TaskDialog
from chatdesk.ui.task_list import ScheduledSection
from chatdesk.ui.task_model import SubtitleRole, UnreadRole
from tests.core.conftest import query
from tests.openai_test_server import OpenAITestServer
from tests.ui.harness import Harness, run, wait_for

REPLY = "Hello from the test server."


def section_of(window: MainWindow) -> ScheduledSection:
    assert window.scheduled is not None
    return window.scheduled


def create_task(window: MainWindow, qtbot: QtBot, name: str, schedule: str = "every 1 h") -> str:
    """Create a task through the New scheduled task dialog; its id."""
    section = section_of(window)
    qtbot.mouseClick(section.new_button, Qt.MouseButton.LeftButton)
    dialog = next(
        w for w in QApplication.topLevelWidgets() if isinstance(w, TaskDialog) and w.isVisible()
    )
    dialog.name_edit.setText(name)
    dialog.prompt_edit.setPlainText(f"{name}: anything new?")
    dialog.schedule_edit.setText(schedule)
    dialog.save_button.click()
    wait_for(qtbot, lambda: not shiboken6.isValid(dialog) or not dialog.isVisible())
    [task] = [t for t in scheduler_of(window).list_tasks() if t.name == name]
    return task.id


def scheduler_of(window: MainWindow) -> TaskScheduler:
    assert window.scheduler is not None
    return window.scheduler


def test_creating_a_task_lists_it_and_opens_its_chat_outside_the_chat_list(
    harness: Harness, qtbot: QtBot
) -> None:
    window = harness.window(scheduler=True)
    first_chat = window.current_session_id
    task_id = create_task(window, qtbot, "Morning news", "0 8 * * 1-5")
    section = section_of(window)
    assert section.model.rowCount() == 1
    assert section.model.index(0).data() == "Morning news"
    assert section.model.index(0).data(SubtitleRole).startswith("Next run")
    assert section.selected_task() is not None and section.selected_task().id == task_id

    wait_for(qtbot, lambda: window.current_session_id != first_chat)
    session = run(qtbot, window.manager.require_session(window.current_session_id or ""))
    assert (session.kind, session.task_id, session.title) == ("task", task_id, "Morning news")
    assert window.sidebar.model.row_of(session.id) is None  # not among the chats
    assert window.pane.title.text() == "Morning news"


def test_run_now_shows_the_reply_in_the_open_task_chat_read_at_once(
    harness: Harness, qtbot: QtBot
) -> None:
    window = harness.window(scheduler=True)
    task_id = create_task(window, qtbot, "Status")
    section = section_of(window)
    wait_for(qtbot, lambda: window.chat.current is not None and window.chat.current.task_id)
    window.activateWindow()  # as the desktop does when the dialog closes
    wait_for(qtbot, window.isActiveWindow)
    section.run_button.click()
    wait_for(qtbot, lambda: scheduler_of(window).get_task(task_id).last_status == "complete")
    session_id = window.current_session_id
    assert query(
        harness.data_dir / "chat.db",
        "SELECT role, content FROM messages WHERE session_id = ? ORDER BY position",
        (session_id,),
    ) == [("user", "Status: anything new?"), ("assistant", REPLY)]
    wait_for(qtbot, lambda: window.pane.messages.rowCount() == 2)
    # The run was not the pane's own turn; its end still takes Stop away.
    assert window.composer.send_button.isVisibleTo(window)
    assert not window.composer.stop_button.isVisibleTo(window)
    # Read as it arrived: its chat was open in the active window; nothing to notify.
    wait_for(qtbot, lambda: not scheduler_of(window).get_task(task_id).unread)
    assert section.model.index(0).data(UnreadRole) is False
    assert window.notifier.shown == []


def test_a_run_finishing_while_the_window_is_inactive_notifies_the_desktop(
    harness: Harness, qtbot: QtBot, openai_server: OpenAITestServer
) -> None:
    window = harness.window(scheduler=True)
    scheduler = scheduler_of(window)
    task = run(qtbot, scheduler.add_task(name="Report", prompt="p", schedule="every 1 h"))
    other = QWidget()
    qtbot.addWidget(other)
    other.show()
    other.activateWindow()
    wait_for(qtbot, lambda: not window.isActiveWindow())
    run(qtbot, scheduler.run_now(task.id))
    wait_for(qtbot, lambda: window.notifier.shown)
    assert window.notifier.shown == [("“Report” has a new answer", "Open ChatDesk to read it.")]
    assert section_of(window).model.index(0).data(UnreadRole) is True

    openai_server.status = 500
    run(qtbot, scheduler.run_now(task.id))
    wait_for(qtbot, lambda: len(window.notifier.shown) == 2)
    title, text = window.notifier.shown[1]
    assert title == "“Report” failed"
    assert "server had an error" in text


def test_a_finished_run_of_another_task_is_unread_until_its_chat_is_opened(
    harness: Harness, qtbot: QtBot
) -> None:
    window = harness.window(scheduler=True)
    scheduler = scheduler_of(window)
    task = run(qtbot, scheduler.add_task(name="Other", prompt="p", schedule="every 1 h"))
    run(qtbot, scheduler.run_now(task.id))
    section = section_of(window)
    row = section.model.row_of(task.id)
    assert section.model.index(row).data(UnreadRole) is True
    section.view.clicked.emit(section.model.index(row))
    wait_for(qtbot, lambda: window.chat.current is not None and window.chat.current.task_id)
    wait_for(qtbot, lambda: not section.model.index(row).data(UnreadRole))
    assert not scheduler.get_task(task.id).unread
    assert window.pane.messages.rowCount() == 2


def test_pause_and_resume_from_the_window(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window(scheduler=True)
    task_id = create_task(window, qtbot, "Hourly")
    section = section_of(window)
    section.pause_button.click()
    wait_for(qtbot, lambda: not scheduler_of(window).get_task(task_id).enabled)
    assert section.model.index(0).data(SubtitleRole) == "Paused"
    assert section.pause_button.text() == "Resume"
    section.pause_button.click()
    wait_for(qtbot, lambda: scheduler_of(window).get_task(task_id).enabled)
    assert section.model.index(0).data(SubtitleRole).startswith("Next run in")


def test_delete_keeping_the_results_moves_the_chat_into_the_chat_list(
    harness: Harness, qtbot: QtBot
) -> None:
    harness.delete_task_answer = "keep"
    window = harness.window(scheduler=True)
    task_id = create_task(window, qtbot, "Keeper")
    run(qtbot, scheduler_of(window).run_now(task_id))
    session_id = window.current_session_id
    section = section_of(window)
    section.delete_button.click()
    wait_for(qtbot, lambda: section.model.rowCount() == 0)
    assert harness.confirmations == ["delete task Keeper"]
    wait_for(qtbot, lambda: window.sidebar.model.row_of(session_id or "") is not None)
    assert window.current_session_id == session_id  # still open, now a normal chat
    assert query(
        harness.data_dir / "chat.db", "SELECT kind FROM sessions WHERE id = ?", (session_id,)
    ) == [("chat",)]


def test_delete_with_the_results_removes_the_task_chat(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window(scheduler=True)
    task_id = create_task(window, qtbot, "Gone")
    run(qtbot, scheduler_of(window).run_now(task_id))
    session_id = window.current_session_id
    section_of(window).delete_button.click()
    wait_for(qtbot, lambda: window.current_session_id not in (None, session_id))
    # The task's chat goes first (the window opens another), then the task's row.
    wait_for(
        qtbot,
        lambda: query(harness.data_dir / "chat.db", "SELECT count(*) FROM tasks") == [(0,)],
    )
    assert query(
        harness.data_dir / "chat.db", "SELECT count(*) FROM sessions WHERE id = ?", (session_id,)
    ) == [(0,)]
