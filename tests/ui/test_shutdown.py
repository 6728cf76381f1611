"""Shut-down finishes every write the UI started: nothing the user did is lost."""

from __future__ import annotations

from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from chatdesk.sessions import SessionManager
from chatdesk.settings import Preferences, sqlite_url
from tests.ui.harness import Harness, run, wait_for


def test_shutdown_with_a_rename_a_title_and_settings_saves_in_flight_loses_none(
    harness: Harness, qtbot: QtBot, openai_server
) -> None:
    window = harness.window(auto_title=True)
    manager = window.manager
    other = run(qtbot, manager.create_session("Old name"))
    wait_for(qtbot, lambda: window.sidebar.model.row_of(other.id) is not None)

    # A reply, then its title: the model is slow, so the title is still being made.
    openai_server.first_byte_delay = 1.0
    titled = window.current_session_id
    assert titled is not None
    window.send_text("Plans for the weekend trip")
    wait_for(qtbot, lambda: window.turn_task(titled) is None)
    wait_for(qtbot, lambda: len(openai_server.requests) == 2)  # the title request

    # A server being added (the server has not answered yet), a system prompt saved when
    # the settings close, and a rename from the sidebar: all in flight at shut-down.
    # The server answers later than the title model: the title is written while shut-down
    # waits for the server (with nothing else in flight, closing cancels a title being
    # made, see test_close_cancels_a_title_being_made).
    openai_server.first_byte_delay = 2.5
    dialog = window.open_settings()
    dialog.name_edit.setText("Office")
    dialog.url_edit.setText(openai_server.base_url)
    assert dialog.add_server() is not None
    wait_for(qtbot, lambda: openai_server.model_requests)
    dialog.prompt_edit.setPlainText("Answer like a pirate.")
    dialog.reject()
    row = window.sidebar.model.row_of(other.id)
    assert row is not None
    index = window.sidebar.model.index(row, 0)
    assert window.sidebar.model.setData(index, "New name", Qt.ItemDataRole.EditRole)
    assert window.tasks.pending()

    # What the app does on the way out, in its order, with no time in between.
    harness._open.clear()
    window.close()
    run(qtbot, window.shutdown())
    run(qtbot, window.engine.close())
    run(qtbot, window.registry.close())
    run(qtbot, manager.close())
    window.deleteLater()

    reopened = run(qtbot, SessionManager.open(sqlite_url(harness.data_dir / "chat.db")))
    try:
        first = run(qtbot, reopened.require_session(titled))
        assert first.system_prompt == "Answer like a pirate."
        assert first.title == "Hello from the test server"  # the model's title
        assert run(qtbot, reopened.require_session(other.id)).title == "New name"
        saved = Preferences.load(harness.data_dir / "settings.json").server(openai_server.base_url)
        assert saved is not None and saved.name == "Office"
    finally:
        run(qtbot, reopened.close())
