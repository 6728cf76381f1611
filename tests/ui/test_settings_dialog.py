"""The settings dialog: servers tested and added against the real test server, local
model files, the default model and the session's system prompt."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import shiboken6
from pytestqt.qtbot import QtBot

from chatdesk.settings import LOCAL_PROVIDER, Preferences, ServerConfig
from chatdesk.storage.database import StorageError
from chatdesk.ui.main_window import MainWindow
from chatdesk.ui.settings_dialog import SettingsDialog
from tests.ui.harness import Harness, run, wait_for


def selector_labels(window: MainWindow) -> list[str]:
    """What the window's model selector offers."""
    selector = window.pane.model_selector
    return [selector.itemText(i) for i in range(selector.count())]


def test_adding_a_server_fetches_its_models_and_offers_them(
    harness: Harness, qtbot: QtBot, openai_server
) -> None:
    window = harness.window()
    dialog = window.open_settings()
    assert isinstance(dialog, SettingsDialog)
    dialog.name_edit.setText("Office")
    dialog.url_edit.setText(openai_server.base_url + "/")
    dialog.add_button.click()
    wait_for(qtbot, lambda: dialog.server_list.count() == 1)

    server = window.registry.preferences.server(openai_server.base_url)
    assert server is not None and server.name == "Office"
    assert set(server.models) == set(openai_server.models)
    saved = Preferences.load(harness.data_dir / "settings.json")
    assert saved.server(openai_server.base_url) is not None
    labels = selector_labels(window)
    assert any("other-model — Office" in label for label in labels)

    dialog.remove_button.click()
    assert window.registry.preferences.server(openai_server.base_url) is None
    assert "Removed Office" in dialog.status.text()


def test_a_server_that_is_down_is_reported_and_not_added(harness: Harness, qtbot: QtBot) -> None:
    window = harness.window()
    dialog = window.open_settings()
    dialog.url_edit.setText("http://127.0.0.1:9/v1")  # the discard port: nobody listens
    dialog.add_button.click()
    wait_for(qtbot, lambda: "Could not use" in dialog.status.text())
    assert "Could not connect" in dialog.status.text()
    assert dialog.server_list.count() == 0
    assert window.registry.preferences.servers == []


def test_a_gguf_file_becomes_a_local_model_choice_and_other_files_are_refused(
    harness: Harness, qtbot: QtBot, tmp_path: Path
) -> None:
    window = harness.window()
    dialog = window.open_settings()
    not_a_model = tmp_path / "notes.gguf"
    not_a_model.write_bytes(b"hello, not a model")
    assert not dialog.add_local_model(str(not_a_model))
    assert "does not look like a GGUF model" in dialog.local_status.text()
    assert not dialog.add_local_model(str(tmp_path / "missing.gguf"))

    model_file = tmp_path / "tiny-model.gguf"
    model_file.write_bytes(b"GGUF" + bytes(60))  # the GGUF magic; not loaded by this test
    assert dialog.add_local_model(str(model_file))
    assert dialog.local_list.count() == 1
    labels = selector_labels(window)
    assert any("tiny-model (local file)" in label for label in labels)
    saved = Preferences.load(harness.data_dir / "settings.json")
    assert saved.local_models == [str(model_file.resolve())]

    # Chosen as the default, then removed: the default falls back to the bundled model.
    choice = next(i for i, c in enumerate(dialog._choices) if c.model == str(model_file.resolve()))
    dialog.default_selector.setCurrentIndex(choice)
    dialog.default_selector.activated.emit(choice)
    assert window.registry.default_choice() == (LOCAL_PROVIDER, str(model_file.resolve()))
    dialog.remove_local_model()
    assert window.registry.preferences.local_models == []
    assert window.registry.default_choice() == (LOCAL_PROVIDER, None)


def test_the_system_prompt_is_saved_when_the_dialog_closes(
    harness: Harness, qtbot: QtBot, openai_server
) -> None:
    window = harness.window()
    window.send_text("hi")
    session_id = window.current_session_id
    wait_for(qtbot, lambda: window.turn_task(session_id) is None)
    dialog = window.open_settings()
    dialog.prompt_edit.setPlainText("Answer like a pirate.")
    dialog.reject()
    wait_for(
        qtbot,
        lambda: (
            run(qtbot, window.manager.require_session(session_id)).system_prompt
            == "Answer like a pirate."
        ),
    )
    window.send_text("again")
    wait_for(qtbot, lambda: window.turn_task(session_id) is None)
    sent = openai_server.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "Answer like a pirate."}


class MemorySecrets:
    """A keyring that works, in memory."""

    keyring_available = True
    warning = None

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, bool]] = {}

    def get(self, provider_id: str) -> str | None:
        entry = self.keys.get(provider_id)
        return entry[0] if entry else None

    def set(self, provider_id: str, key: str, *, persist_in_settings_file: bool = False) -> None:
        self.keys[provider_id] = (key, persist_in_settings_file)

    def delete(self, provider_id: str) -> None:
        self.keys.pop(provider_id, None)


def close_and_wait_until_deleted(qtbot: QtBot, dialog: SettingsDialog) -> None:
    """Close the dialog as the user would and wait until Qt has deleted it."""
    dialog.reject()
    wait_for(qtbot, lambda: not shiboken6.isValid(dialog))


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What was logged at ERROR or above."""
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_closing_settings_while_a_server_is_being_added_still_adds_it(
    harness: Harness, qtbot: QtBot, openai_server, caplog: pytest.LogCaptureFixture
) -> None:
    openai_server.first_byte_delay = 0.4
    window = harness.window()
    window.secrets = MemorySecrets()
    dialog = window.open_settings()
    dialog.name_edit.setText("Office")
    dialog.url_edit.setText(openai_server.base_url)
    dialog.key_edit.setText("sk-office")
    task = dialog.add_server()
    assert task is not None
    wait_for(qtbot, lambda: openai_server.model_requests)  # the server is being asked
    close_and_wait_until_deleted(qtbot, dialog)
    wait_for(qtbot, task.done)

    assert task.exception() is None
    assert errors_logged(caplog) == []
    server = window.registry.preferences.server(openai_server.base_url)
    assert server is not None and server.name == "Office"
    assert set(server.models) == set(openai_server.models)
    assert window.secrets.keys[openai_server.base_url] == ("sk-office", False)
    saved = Preferences.load(harness.data_dir / "settings.json")
    assert saved.server(openai_server.base_url) is not None
    assert any("other-model — Office" in label for label in selector_labels(window))


def test_closing_settings_while_a_server_is_tested_or_refreshed_is_harmless(
    harness: Harness, qtbot: QtBot, openai_server, caplog: pytest.LogCaptureFixture
) -> None:
    window = harness.window()
    openai_server.first_byte_delay = 0.4
    dialog = window.open_settings()
    dialog.url_edit.setText(openai_server.base_url)
    task = dialog.test_new()
    assert task is not None
    wait_for(qtbot, lambda: openai_server.model_requests)
    close_and_wait_until_deleted(qtbot, dialog)
    wait_for(qtbot, task.done)
    assert task.exception() is None
    assert window.registry.preferences.servers == []  # "Test" adds nothing

    # A refresh finishing after the dialog closed keeps the server's new model list.
    window.registry.preferences.servers.append(
        ServerConfig(openai_server.base_url, "Office", [openai_server.model])
    )
    window.refresh_model_choices()
    openai_server.models = ["test-model", "other-model", "third-model"]
    dialog = window.open_settings()
    task = dialog.test_selected()
    assert task is not None
    wait_for(qtbot, lambda: len(openai_server.model_requests) == 2)
    close_and_wait_until_deleted(qtbot, dialog)
    wait_for(qtbot, task.done)
    assert task.exception() is None
    assert errors_logged(caplog) == []
    server = window.registry.preferences.server(openai_server.base_url)
    assert server is not None and "third-model" in server.models
    assert Preferences.load(harness.data_dir / "settings.json").servers[0].models == sorted(
        openai_server.models
    )
    assert any("third-model — Office" in label for label in selector_labels(window))


def test_a_system_prompt_that_cannot_be_saved_is_reported(
    harness: Harness, qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    window = harness.window()
    session_id = window.current_session_id

    async def refuse(_session_id: str, **_changes: object) -> None:
        raise StorageError("The chat database is read-only.")

    monkeypatch.setattr(window.manager, "update_session", refuse)
    dialog = window.open_settings()
    dialog.prompt_edit.setPlainText("Answer like a pirate.")
    dialog.reject()

    notice = window.composer.notice
    wait_for(qtbot, lambda: "read-only" in notice.text())
    assert notice.isVisible()
    assert "system prompt" in notice.text()
    monkeypatch.undo()
    assert run(qtbot, window.manager.require_session(session_id)).system_prompt is None
