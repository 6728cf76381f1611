"""The Scheduled section and the task dialog: real widgets over a real TaskScheduler, a
SQLite file and the OpenAI test server."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import qasync
import shiboken6
from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from chatdesk.chat import ChatEngine
from chatdesk.domain import Task
from chatdesk.providers.registry import ProviderRegistry
from chatdesk.scheduler import TaskScheduler
from chatdesk.sessions import SessionManager
from chatdesk.settings import Preferences, sqlite_url
from chatdesk.ui.task_dialog import TaskDialog
from chatdesk.ui.task_list import DELETE_RESULTS, KEEP_RESULTS, ScheduledSection
from chatdesk.ui.task_model import SubtitleRole, UnreadRole, next_run_words
from tests.core.conftest import query
from tests.openai_test_server import OpenAITestServer
from tests.ui.harness import run, wait_for


class Scheduled:
    """A started scheduler and its Scheduled section, with the answers a user would give."""

    def __init__(self, qtbot: QtBot, data_dir: Path, server: OpenAITestServer) -> None:
        self.qtbot = qtbot
        self.db_path = data_dir / "chat.db"
        self.manager = run(qtbot, SessionManager.open(sqlite_url(self.db_path)))
        preferences = Preferences()
        preferences.default_provider = server.base_url
        preferences.default_model = server.model
        self.registry = ProviderRegistry(preferences)
        self.engine = ChatEngine(
            self.manager,
            self.registry.resolve_default()[0],
            resolve_provider=self.registry.resolve,
            auto_title=False,
        )
        self.scheduler = TaskScheduler(self.manager, self.engine)
        run(qtbot, self.scheduler.start())
        self.started: list[asyncio.Future[Any]] = []
        self.delete_answer: str | None = DELETE_RESULTS
        self.questions: list[str] = []
        self.section = ScheduledSection(
            self.scheduler, self.registry, start=self.start, ask_delete=self.ask_delete
        )
        qtbot.addWidget(self.section)
        self.section.resize(280, 400)
        self.section.show()

    def start(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Future[Any]:
        """The window's task starter: keeps the task so the test can wait for it."""
        task = asyncio.ensure_future(coroutine)
        self.started.append(task)
        return task

    def ask_delete(self, _parent: Any, task: Task) -> str | None:
        """Answers the delete question as the test set it."""
        self.questions.append(task.name)
        return self.delete_answer

    def settle(self) -> None:
        """Wait until every action started has finished, and raise its error if one failed."""
        wait_for(self.qtbot, lambda: all(t.done() for t in self.started))
        for task in self.started:
            task.result()

    def close(self) -> None:
        self.settle()
        self.section.detach()
        run(self.qtbot, self.scheduler.stop())
        run(self.qtbot, self.engine.close())
        run(self.qtbot, self.registry.close())
        run(self.qtbot, self.manager.close())


@pytest.fixture
def scheduled(
    qloop: qasync.QEventLoop, qtbot: QtBot, tmp_path: Path, openai_server: OpenAITestServer
) -> Iterator[Scheduled]:
    """The Scheduled section over a fresh database, closed after the test."""
    built = Scheduled(qtbot, tmp_path, openai_server)
    yield built
    built.close()


def closed(dialog: TaskDialog) -> bool:
    """Whether the dialog has closed (it deletes itself on close)."""
    return not shiboken6.isValid(dialog) or not dialog.isVisible()


def fill_dialog(dialog: TaskDialog, name: str, prompt: str, schedule: str) -> None:
    dialog.name_edit.setText(name)
    dialog.prompt_edit.setPlainText(prompt)
    dialog.schedule_edit.setText(schedule)


def test_the_dialog_previews_the_schedule_and_saves_only_a_valid_one(
    scheduled: Scheduled, qtbot: QtBot
) -> None:
    dialog = scheduled.section.new_task()
    assert isinstance(dialog, TaskDialog)
    fill_dialog(dialog, "Morning", "Summarise the news", "0 8 * * 1-5")
    assert dialog.preview_text() == "Weekdays at 08:00"
    assert dialog.save_button.isEnabled()
    dialog.schedule_edit.setText("every 2 weeks")
    assert "unknown unit" in dialog.preview_text()
    assert not dialog.save_button.isEnabled()
    dialog.schedule_edit.setText("every 2m")
    assert dialog.preview_text() == "Every 2 minutes"

    dialog.save_button.click()
    wait_for(qtbot, lambda: closed(dialog))
    scheduled.settle()
    [task] = scheduled.scheduler.list_tasks()
    assert (task.name, task.prompt, task.schedule) == ("Morning", "Summarise the news", "every 2m")
    assert query(scheduled.db_path, "SELECT name, schedule FROM tasks") == [("Morning", "every 2m")]
    model = scheduled.section.model
    assert model.rowCount() == 1
    assert model.index(0).data(SubtitleRole) == "Next run in 1 min"


def test_a_schedule_in_the_past_is_refused_in_the_dialog(
    scheduled: Scheduled, qtbot: QtBot
) -> None:
    dialog = scheduled.section.new_task()
    assert isinstance(dialog, TaskDialog)
    fill_dialog(dialog, "Late", "p", "2001-01-01 08:00")
    assert dialog.preview_text().startswith("Once on")
    dialog.save_button.click()
    wait_for(qtbot, lambda: dialog.error.isVisible())
    assert "already passed" in dialog.error.text()
    assert dialog.isVisible()
    assert scheduled.scheduler.list_tasks() == []
    dialog.reject()


def test_run_now_stores_a_reply_and_marks_the_task_unread(
    scheduled: Scheduled, qtbot: QtBot
) -> None:
    task = run(qtbot, scheduled.scheduler.add_task(name="T", prompt="hi", schedule="every 1 h"))
    opened: list[str] = []
    scheduled.section.taskOpened.connect(opened.append)
    scheduled.section.select_task(task.id)
    scheduled.section.run_button.click()
    scheduled.settle()
    assert opened == [task.id]
    index = scheduled.section.model.index(0)
    assert index.data(UnreadRole) is True
    assert query(scheduled.db_path, "SELECT role, content FROM messages ORDER BY position") == [
        ("user", "hi"),
        ("assistant", "Hello from the test server."),
    ]
    run(qtbot, scheduled.scheduler.mark_read(task.id))
    assert index.data(UnreadRole) is False


def test_pause_and_resume_from_the_section(scheduled: Scheduled, qtbot: QtBot) -> None:
    task = run(qtbot, scheduled.scheduler.add_task(name="T", prompt="p", schedule="every 1 h"))
    section = scheduled.section
    section.select_task(task.id)
    assert section.pause_button.text() == "Pause"
    section.pause_button.click()
    scheduled.settle()
    assert section.model.index(0).data(SubtitleRole) == "Paused"
    assert section.pause_button.text() == "Resume"
    assert query(scheduled.db_path, "SELECT enabled FROM tasks") == [(0,)]
    section.pause_button.click()
    scheduled.settle()
    assert section.model.index(0).data(SubtitleRole) == "Next run in 59 min"
    assert query(scheduled.db_path, "SELECT enabled FROM tasks") == [(1,)]


def test_edit_changes_the_task(scheduled: Scheduled, qtbot: QtBot) -> None:
    task = run(qtbot, scheduled.scheduler.add_task(name="Old", prompt="p", schedule="every 1 h"))
    scheduled.section.select_task(task.id)
    dialog = scheduled.section.edit_selected()
    assert isinstance(dialog, TaskDialog)
    assert (dialog.name_edit.text(), dialog.schedule_edit.text()) == ("Old", "every 1 h")
    dialog.name_edit.setText("New")
    dialog.save_button.click()
    wait_for(qtbot, lambda: closed(dialog))
    assert scheduled.scheduler.get_task(task.id).name == "New"
    assert scheduled.section.model.index(0).data() == "New"


@pytest.mark.parametrize("answer", [DELETE_RESULTS, KEEP_RESULTS, None])
def test_delete_asks_what_becomes_of_the_results(
    scheduled: Scheduled, qtbot: QtBot, answer: str | None
) -> None:
    task = run(qtbot, scheduled.scheduler.add_task(name="Doomed", prompt="p", schedule="every 1 h"))
    run(qtbot, scheduled.scheduler.run_now(task.id))
    scheduled.delete_answer = answer
    scheduled.section.select_task(task.id)
    scheduled.section.delete_button.click()
    scheduled.settle()
    assert scheduled.questions == ["Doomed"]
    sessions = query(scheduled.db_path, "SELECT kind, title FROM sessions")
    if answer is None:
        assert scheduled.section.model.rowCount() == 1
        assert sessions == [("task", "Doomed")]
    elif answer == KEEP_RESULTS:
        assert scheduled.section.model.rowCount() == 0
        assert sessions == [("chat", "Doomed")]
    else:
        assert scheduled.section.model.rowCount() == 0
        assert sessions == []


def test_next_run_words() -> None:
    now = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    task = Task(id="t", name="n", prompt="p", schedule="every 1 h")
    soon = Task(id="t", name="n", prompt="p", schedule="x", next_run_at=now + timedelta(minutes=5))
    assert next_run_words(task, running=True, now=now) == "Running now…"
    assert next_run_words(task, running=False, now=now) == "No more runs"
    assert next_run_words(soon, running=False, now=now) == "Next run in 5 min"
    paused = Task(id="t", name="n", prompt="p", schedule="x", enabled=False)
    assert next_run_words(paused, running=False, now=now) == "Paused"
    failed = Task(
        id="t",
        name="n",
        prompt="p",
        schedule="x",
        next_run_at=now + timedelta(minutes=5),
        last_status="error",
    )
    assert next_run_words(failed, running=False, now=now) == "Last run failed · next run in 5 min"


def test_the_task_model_passes_qt_model_checks_while_tasks_change(
    scheduled: Scheduled, qtbot: QtBot, qtmodeltester: ModelTester
) -> None:
    model = scheduled.section.model
    qtmodeltester.check(model)
    scheduler = scheduled.scheduler
    first = run(qtbot, scheduler.add_task(name="A", prompt="p", schedule="every 1 h"))
    second = run(qtbot, scheduler.add_task(name="B", prompt="p", schedule="0 8 * * *"))
    run(qtbot, scheduler.run_now(first.id))
    run(qtbot, scheduler.pause(second.id))
    run(qtbot, scheduler.update_task(second.id, name="B2"))
    assert [model.index(r).data() for r in range(model.rowCount())] == ["A", "B2"]
    run(qtbot, scheduler.delete_task(first.id))
    assert [model.index(r).data() for r in range(model.rowCount())] == ["B2"]
    qtmodeltester.check(model)


def test_the_delete_key_on_a_selected_task_asks_to_delete_it(
    scheduled: Scheduled, qtbot: QtBot
) -> None:
    task = run(qtbot, scheduled.scheduler.add_task(name="Keyed", prompt="p", schedule="every 1 h"))
    scheduled.delete_answer = None
    scheduled.section.select_task(task.id)
    scheduled.section.view.setFocus()
    qtbot.keyClick(scheduled.section.view, Qt.Key.Key_Delete)
    assert scheduled.questions == ["Keyed"]
