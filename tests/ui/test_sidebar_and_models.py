"""The sidebar's ordering and times, and the per-session model selector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLineEdit
from pytestqt.qtbot import QtBot

from chatdesk.settings import ServerConfig
from chatdesk.ui.main_window import MainWindow
from chatdesk.ui.session_model import SessionIdRole, relative_time
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


def click_row(qtbot: QtBot, window: MainWindow, session_id: str) -> None:
    """Click the sidebar row of ``session_id`` as a user would."""
    sidebar = window.sidebar
    row = sidebar.model.row_of(session_id)
    assert row is not None
    index = sidebar.proxy.mapFromSource(sidebar.model.index(row))
    assert index.isValid(), "the row is filtered out"
    centre = sidebar.list.visualRect(index).center()
    qtbot.mouseClick(sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=centre)


def highlighted(window: MainWindow) -> list[str]:
    """The ids of the sidebar rows drawn as selected."""
    selection = window.sidebar.list.selectionModel().selectedIndexes()
    return [index.data(SessionIdRole) for index in selection]


def test_typing_in_the_filter_never_switches_the_open_chat(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    manager = window.manager
    bananas = run(qtbot, manager.create_session("bananas"))
    apples = run(qtbot, manager.create_session("apples"))
    run(qtbot, manager.create_session("cherries"))
    sidebar = window.sidebar
    wait_for(qtbot, lambda: sidebar.proxy.rowCount() == 4)
    click_row(qtbot, window, apples.id)
    wait_for(qtbot, lambda: window.current_session_id == apples.id)

    activated: list[str] = []
    sidebar.sessionActivated.connect(activated.append)
    search = window.findChild(QLineEdit, "sessionFilter")
    qtbot.keyClicks(search, "ban")
    qtbot.wait(50)
    assert [sidebar.proxy.index(r, 0).data() for r in range(sidebar.proxy.rowCount())] == [
        "bananas"
    ]
    # The hidden chat stays open, and no other row pretends to be the open one.
    assert activated == []
    assert window.current_session_id == apples.id
    assert window.pane.title.text() == "apples"
    assert sidebar.current_session_id() is None and highlighted(window) == []

    search.clear()
    qtbot.wait(50)
    assert activated == []
    assert window.current_session_id == apples.id
    assert sidebar.current_session_id() == apples.id and highlighted(window) == [apples.id]

    # A filter that still shows the open chat keeps it selected.
    qtbot.keyClicks(search, "es")
    qtbot.wait(50)
    assert sidebar.proxy.rowCount() == 2  # apples, cherries
    assert activated == []
    assert sidebar.current_session_id() == apples.id and highlighted(window) == [apples.id]

    # The user still opens chats from the filtered list: a click, the arrow keys.
    search.setText("a")
    click_row(qtbot, window, bananas.id)
    wait_for(qtbot, lambda: window.current_session_id == bananas.id)
    assert activated == [bananas.id]
    sidebar.list.setFocus()
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Up)
    wait_for(qtbot, lambda: window.current_session_id == apples.id)
    assert highlighted(window) == [apples.id]


def test_a_chat_renamed_out_of_the_filter_stays_open(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    manager = window.manager
    pie = run(qtbot, manager.create_session("apple pie"))
    apples = run(qtbot, manager.create_session("apples"))
    sidebar = window.sidebar
    wait_for(qtbot, lambda: sidebar.proxy.rowCount() == 3)
    click_row(qtbot, window, apples.id)
    wait_for(qtbot, lambda: window.current_session_id == apples.id)
    window.findChild(QLineEdit, "sessionFilter").setText("apple")
    assert sidebar.proxy.rowCount() == 2

    # A new title (typed elsewhere, or the automatic one) that no longer matches the
    # filter hides the row; the chat next to it must not open in its place.
    run(qtbot, manager.update_session(apples.id, title="Pears"))
    wait_for(qtbot, lambda: sidebar.proxy.rowCount() == 1)
    qtbot.wait(50)
    assert window.current_session_id == apples.id
    assert highlighted(window) == []
    assert pie.id != window.current_session_id


def test_deleting_the_open_chat_opens_its_neighbour(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    manager = window.manager
    first = window.current_session_id
    older = run(qtbot, manager.create_session("older"))
    newer = run(qtbot, manager.create_session("newer"))
    sidebar = window.sidebar
    wait_for(qtbot, lambda: sidebar.proxy.rowCount() == 3)
    click_row(qtbot, window, newer.id)
    wait_for(qtbot, lambda: window.current_session_id == newer.id)

    sidebar.list.setFocus()
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Delete)
    wait_for(qtbot, lambda: sidebar.model.row_of(newer.id) is None)
    wait_for(qtbot, lambda: window.current_session_id in (older.id, first))
    assert sidebar.model.rowCount() == 2
    assert highlighted(window) == [window.current_session_id]


def choose_default(window: MainWindow, model: str) -> None:
    """Pick ``model`` as the default in the settings dialog, then close it."""
    dialog = window.open_settings()
    position = next(i for i, c in enumerate(dialog._choices) if c.model == model)
    dialog.default_selector.setCurrentIndex(position)
    dialog.default_selector.activated.emit(position)
    dialog.reject()


def test_a_new_chat_takes_the_default_and_older_chats_keep_their_model(
    harness: Harness, qtbot: QtBot, openai_server
) -> None:
    window = harness.window()
    manager = window.manager
    base_url = openai_server.base_url
    window.registry.preferences.servers.append(
        ServerConfig(base_url, "Test server", [openai_server.model, "other-model"])
    )
    window.refresh_model_choices()
    old_id = window.current_session_id
    old = run(qtbot, manager.require_session(old_id))
    assert (old.provider, old.model) == (base_url, "test-model")
    window.send_text("first question")
    wait_for(qtbot, lambda: window.turn_task(old_id) is None)
    assert openai_server.last_model == "test-model"

    choose_default(window, "other-model")
    assert window.registry.default_choice() == (base_url, "other-model")

    # The older chat never chose a model, yet it keeps the one it was created with.
    window.send_text("second question")
    wait_for(qtbot, lambda: window.turn_task(old_id) is None)
    assert openai_server.last_model == "test-model"
    assert "test-model" in window.pane.model_selector.currentText()

    # A new chat takes the new default.
    qtbot.mouseClick(window.sidebar.new_button, Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: window.current_session_id not in (None, old_id))
    new_id = window.current_session_id
    new = run(qtbot, manager.require_session(new_id))
    assert (new.provider, new.model) == (base_url, "other-model")
    assert "other-model" in window.pane.model_selector.currentText()

    # "New chat" in a chat still empty reuses it, on the default chosen since.
    choose_default(window, "test-model")
    qtbot.mouseClick(window.sidebar.new_button, Qt.MouseButton.LeftButton)
    wait_for(qtbot, lambda: run(qtbot, manager.require_session(new_id)).model == "test-model")
    assert window.current_session_id == new_id
    choose_default(window, "other-model")
    window.send_text("third question")
    wait_for(qtbot, lambda: window.turn_task(new_id) is None)
    assert openai_server.last_model == "test-model"

    # Reopened, the old chat still shows and uses its own model.
    window.sidebar.select_session(old_id)
    wait_for(qtbot, lambda: window.current_session_id == old_id)
    assert "test-model" in window.pane.model_selector.currentText()
    assert run(qtbot, manager.require_session(old_id)).model == "test-model"
