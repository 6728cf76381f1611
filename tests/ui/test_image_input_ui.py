"""Images and text-only models in the window (issue #13, defect 11): the composer warns as
soon as an image is attached, Send asks first, and Settings has a per-model switch."""

from __future__ import annotations

from typing import Any

from pytestqt.qtbot import QtBot

from chatdesk.providers.base import IMAGE_OMITTED
from chatdesk.ui.main_window import MainWindow
from tests.core.conftest import make_png
from tests.openai_test_server import OpenAITestServer
from tests.ui.harness import Harness, wait_for


def send_and_wait(window: MainWindow, qtbot: QtBot) -> None:
    task = window.send_current()
    assert task is not None
    wait_for(qtbot, task.done)


def settings_on_server_model(window: MainWindow, server: OpenAITestServer) -> tuple[Any, Any]:
    """Settings opened, its per-model box showing the test server's model."""
    dialog = window.open_settings()
    box = dialog.model_context  # type: ignore[attr-defined]
    labels = [box.model_choice.itemText(i) for i in range(box.model_choice.count())]
    box.model_choice.setCurrentIndex(labels.index(f"{server.model} — {server.base_url}"))
    return dialog, box


def last_content_kinds(server: OpenAITestServer) -> list[str]:
    """The block types of the last message the server was sent."""
    return [block["type"] for block in server.requests[-1]["messages"][-1]["content"]]


def test_a_server_model_reported_text_only_is_warned_about_on_attach_and_on_send(
    harness: Harness, openai_server: OpenAITestServer, qtbot: QtBot
) -> None:
    openai_server.report_images = "ollama"
    openai_server.sees_images = False
    window = harness.window()
    window.composer.edit.setPlainText("What is in this picture?")
    assert window.composer.attach_image_bytes("photo.png", make_png())
    wait_for(qtbot, lambda: "reads text only" in window.composer.notice.text())
    assert "as its server reports" in window.composer.notice.text()

    harness.confirm_answer = True  # "Send the text anyway"
    send_and_wait(window, qtbot)
    assert any("reads text only" in c for c in harness.confirmations)
    sent = openai_server.requests[-1]["messages"][-1]["content"]
    assert sent == f"What is in this picture?\n{IMAGE_OMITTED}"
    session = window.chat.current
    assert session is not None
    stored = session.history[0].content
    assert isinstance(stored, list) and stored[1]["type"] == "image_url"


def test_a_model_that_sees_images_gets_them_without_a_question(
    harness: Harness, openai_server: OpenAITestServer, qtbot: QtBot
) -> None:
    openai_server.report_images = "llama.cpp"
    openai_server.sees_images = True
    window = harness.window()
    window.composer.edit.setPlainText("And this one?")
    assert window.composer.attach_image_bytes("photo.png", make_png())
    session = window.chat.current
    assert session is not None
    # The server is asked in the background as the image is attached.
    wait_for(qtbot, lambda: window.registry.reads_images(session) is True)
    send_and_wait(window, qtbot)
    assert harness.confirmations == []
    assert window.composer.notice.text() == ""
    assert last_content_kinds(openai_server) == ["text", "image_url"]


def test_the_images_switch_in_settings_shows_the_report_and_overrides_it(
    harness: Harness, openai_server: OpenAITestServer, qtbot: QtBot
) -> None:
    openai_server.report_images = "lmstudio"
    openai_server.sees_images = False
    window = harness.window()
    dialog, box = settings_on_server_model(window, openai_server)
    wait_for(qtbot, lambda: box.images_choice.itemText(0) == "As reported (text only)")
    assert box.images_choice.isEnabled()
    box.images_choice.setCurrentIndex(box.images_choice.findText("Sees images"))
    key = f"{openai_server.base_url} {openai_server.model}"
    assert window.preferences.image_input == {key: True}
    assert '"image_input"' in (harness.data_dir / "settings.json").read_text()
    # The embedded model's switch is fixed at text only.
    box.model_choice.setCurrentIndex(0)
    assert not box.images_choice.isEnabled()
    assert box.images_choice.currentText().startswith("Text only")
    dialog.close()

    window.composer.edit.setPlainText("Look")
    assert window.composer.attach_image_bytes("photo.png", make_png())
    send_and_wait(window, qtbot)
    assert harness.confirmations == []
    assert last_content_kinds(openai_server) == ["text", "image_url"]


def test_choosing_another_model_updates_the_notice_about_attached_images(
    harness: Harness, openai_server: OpenAITestServer, qtbot: QtBot
) -> None:
    openai_server.report_images = "models"
    openai_server.sees_images = True
    window = harness.window()
    assert window.composer.attach_image_bytes("photo.png", make_png())
    session = window.chat.current
    assert session is not None
    wait_for(qtbot, lambda: window.registry.reads_images(session) is True)
    assert window.composer.notice.text() == ""
    # The embedded model: the notice appears at once, before anything is sent.
    window.pane.model_selector.modelChosen.emit("local", None)
    wait_for(qtbot, lambda: "an embedded model" in window.composer.notice.text())
    # Back to the server's model, which sees images: the notice goes.
    window.pane.model_selector.modelChosen.emit(openai_server.base_url, openai_server.model)
    wait_for(qtbot, lambda: window.composer.notice.text() == "")
    assert openai_server.requests == []


def test_closing_settings_while_the_server_is_asked_reports_nothing(
    harness: Harness, openai_server: OpenAITestServer, qtbot: QtBot
) -> None:
    openai_server.info_delay = 0.5
    openai_server.report_images = "ollama"
    window = harness.window()
    dialog, _ = settings_on_server_model(window, openai_server)
    dialog.close()  # deleted on close, while the server is still being asked
    provider, model = window.registry.resolve_default()
    wait_for(qtbot, lambda: provider.reported_image_input(model) is False, timeout=5000)
    qtbot.wait(50)  # the box's own task resumes after the probe
    assert window.composer.notice.text() == ""
