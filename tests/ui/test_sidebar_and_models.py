"""The sidebar's ordering and times, and the per-session model selector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from PySide6.QtWidgets import QComboBox
from pytestqt.qtbot import QtBot

from chatdesk.settings import ServerConfig
from chatdesk.ui.session_list import relative_time
from tests.ui.harness import Harness, run, wait_for

NOW = datetime(2026, 3, 14, 15, 0, tzinfo=UTC)


def test_relative_time_reads_like_a_person_would_say_it() -> None:
    assert relative_time(NOW - timedelta(seconds=20), NOW) == "just now"
    assert relative_time(NOW - timedelta(minutes=5), NOW) == "5 min"
    local_now = NOW.astimezone()
    yesterday = (local_now - timedelta(days=1)).replace(hour=12)
    assert relative_time(yesterday, NOW) == "Yesterday"
    older = relative_time(NOW - timedelta(days=40), NOW)
    assert older[0].isdigit() and any(month in older for month in ("Jan", "Feb"))
    assert relative_time(NOW - timedelta(days=800), NOW).endswith(("2023", "2024"))


def test_sidebar_lists_chats_by_recent_activity_and_tasks_apart(
    harness: Harness, qtbot: QtBot
) -> None:
    window = harness.window()
    manager = window.manager
    older = run(qtbot, manager.create_session("Older chat"))
    task = run(qtbot, manager.ensure_task_session("digest", title="Daily digest"))
    newer = run(qtbot, manager.create_session("Newer chat"))
    model = window.sidebar.model
    wait_for(qtbot, lambda: model.rowCount() == 4)

    order = [model.session_row(r).id for r in range(model.rowCount())]
    assert order[-1] == task.id  # tasks come after every chat
    assert order.index(newer.id) < order.index(older.id)

    # A message makes a chat the most recent one without resetting the list.
    resets: list[bool] = []
    model.modelReset.connect(lambda: resets.append(True))
    run(qtbot, manager.add_message(older.id, "user", "bump"))
    wait_for(qtbot, lambda: model.session_row(0).id == older.id)
    assert model.session_row(model.rowCount() - 1).id == task.id
    assert resets == []


def test_choosing_a_model_is_remembered_for_that_session(
    harness: Harness, qtbot: QtBot, openai_server
) -> None:
    window = harness.window()
    window.registry.preferences.servers.append(
        ServerConfig(openai_server.base_url, "Test server", [openai_server.model, "other-model"])
    )
    window.refresh_model_choices()
    selector = window.findChild(QComboBox, "modelSelector")
    labels = [selector.itemText(i) for i in range(selector.count())]
    assert any("other-model" in label for label in labels)
    assert any("local" in label for label in labels)

    position = next(i for i, label in enumerate(labels) if "other-model" in label)
    selector.setCurrentIndex(position)
    selector.activated.emit(position)
    session_id = window.current_session_id
    wait_for(
        qtbot,
        lambda: run(qtbot, window.manager.require_session(session_id)).model == "other-model",
    )
    session = run(qtbot, window.manager.require_session(session_id))
    assert session.provider == openai_server.base_url

    # Sending now goes to the chosen model.
    window.send_text("Which model are you?")
    wait_for(qtbot, lambda: window.turn_task(session_id) is None)
    assert openai_server.last_model == "other-model"
